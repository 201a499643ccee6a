"""insilico.rng draws a shape flat and reshapes it: the same numbers as jax.random for every key implementation
and threefry mode (so results do not depend on which the library uses), in the shape and dtype asked for."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import rng

SHAPE = (3, 5, 4, 2)
DRAWS = {
    "uniform": (lambda k, s: rng.uniform(k, s, minval=-1.0, maxval=2.0),
                lambda k, s: jax.random.uniform(k, s, minval=-1.0, maxval=2.0)),
    "normal": (lambda k, s: rng.normal(k, s, jnp.float32), lambda k, s: jax.random.normal(k, s, jnp.float32)),
    "randint": (lambda k, s: rng.randint(k, s, 2, 11), lambda k, s: jax.random.randint(k, s, 2, 11)),
    "bernoulli": (lambda k, s: rng.bernoulli(k, 0.3, s), lambda k, s: jax.random.bernoulli(k, 0.3, s)),
}


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
@pytest.mark.parametrize("partitionable", [True, False])
@pytest.mark.parametrize("name", list(DRAWS))
def test_flat_draws_equal_jax_random(impl, partitionable, name):
    ours, theirs = DRAWS[name]
    before = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", partitionable)
    try:
        key = jax.random.key(7, impl=impl)
        a, b = ours(key, SHAPE), theirs(key, SHAPE)
        assert a.shape == SHAPE and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        keys = jax.random.split(key, 2)                # under vmap too (where rbg differs from a loop, for both)
        np.testing.assert_array_equal(np.asarray(jax.vmap(lambda k: ours(k, SHAPE))(keys)),
                                      np.asarray(jax.vmap(lambda k: theirs(k, SHAPE))(keys)))
    finally:
        jax.config.update("jax_threefry_partitionable", before)


def test_raw_uint32_keys_and_scalar_shapes():
    key = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(rng.normal(key, ()), jax.random.normal(key, ()))
    np.testing.assert_array_equal(rng.uniform(key, (0, 3)), jax.random.uniform(key, (0, 3)))
