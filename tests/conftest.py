import atexit
import os
import shutil
import tempfile

# Tests run in parallel worker processes (pytest -n auto): on a GPU, each takes memory as it needs it instead of
# pre-allocating most of the device.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Most of a test's time on a CPU is XLA compiling its small programs. At LLVM optimization level 1 (XLA's default
# is 3) they compile in about 40% less time and run as fast at these sizes; results agree with the default level to
# float32 round-off (at most 2e-7 in a check of probes and a training run). Workers, notebooks, experiments and CLI
# runs inherit the setting; an XLA_FLAGS that already names a level is left alone.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()
# One XLA compilation cache for this test run, shared by the worker processes and the notebooks, experiments
# and CLI runs they start (they inherit the environment): a program compiled in one process is loaded, not
# compiled again, in another. A fresh directory per run, removed at the end, so no run reuses another's.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="insilico-tests-xla-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from insilico.models import ConvNet, MLP, ResNet  # noqa: E402
from insilico.subject import InputSpec, make_subject  # noqa: E402


def _randomize_batch_stats(variables, key):
    """Give batch norm non-trivial running statistics so tests exercise them."""
    if "batch_stats" not in variables:
        return variables
    leaves, tree = jax.tree.flatten(variables["batch_stats"])
    keys = jax.random.split(key, len(leaves))
    new = [jax.random.uniform(k, l.shape, minval=0.5, maxval=1.5) if i % 2 else
           jax.random.normal(k, l.shape) * 0.1 for i, (k, l) in enumerate(zip(keys, leaves))]
    # flattening order of {"mean", "var"} is alphabetical: mean (even), var (odd)
    return {**variables, "batch_stats": jax.tree.unflatten(tree, new)}


def tiny(model, shape=(8, 8, 3), name="tiny"):
    v = model.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
    v = _randomize_batch_stats(dict(v), jax.random.PRNGKey(1))
    return make_subject(name, model, v, InputSpec(shape))


@pytest.fixture(scope="session")
def tiny_convnet():
    return tiny(ConvNet(widths=(4, 6), kernels=(3, 3), fc=(8,), num_classes=5, mean=(0.4,), std=(0.3,)))


@pytest.fixture(scope="session")
def tiny_resnet():
    return tiny(ResNet(depth=8, widths=(4, 6, 8), num_classes=5))


@pytest.fixture(scope="session")
def tiny_mlp():
    return tiny(MLP(widths=(12, 7), num_classes=4))


@pytest.fixture
def images():
    return jax.random.uniform(jax.random.PRNGKey(2), (6, 8, 8, 3))


def data_or_skip():
    """The INSILICO_DATA directory; skip the test when unset, fail when INSILICO_REQUIRE_DATA=1."""
    root = os.environ.get("INSILICO_DATA")
    if not root or not os.path.isdir(root):
        msg = "INSILICO_DATA is not set (or not a directory): test needs the real data"
        if os.environ.get("INSILICO_REQUIRE_DATA") == "1":
            pytest.fail(msg + " and INSILICO_REQUIRE_DATA=1")
        pytest.skip(msg)
    return root


@pytest.fixture
def data_dir():
    return data_or_skip()


def assert_close(a, b, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


GABOR_ORIENTATIONS = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
GABOR_SFS = (0.12, 0.15, 0.18, 0.2, 0.14, 0.16)


@pytest.fixture(scope="session")
def gabor_subject():
    """A grayscale 24x24 ConvNet whose conv1 holds six known 9x9 Gabor filters (sigma 2 px, even phase, no bias,
    no batch norm, identity normalization), so conv1 unit k is a rectified linear Gabor filter."""
    from insilico.data.stimuli import gabor

    model = ConvNet(widths=(6, 4), kernels=(9, 3), fc=(4,), num_classes=3, norm=False, mean=(0.5,), std=(1.0,))
    v = model.init(jax.random.key(0), jnp.zeros((1, 24, 24, 1)))
    filters = np.asarray(gabor(9, np.asarray(GABOR_ORIENTATIONS), np.asarray(GABOR_SFS), 0.0, 2.0))[..., 0] - 0.5
    filters = filters / np.linalg.norm(filters.reshape(6, -1), axis=1)[:, None, None]
    params = jax.tree_util.tree_map(lambda a: a, v["params"])
    params["conv1"]["conv"]["kernel"] = jnp.asarray(filters.transpose(1, 2, 0)[:, :, None, :], jnp.float32)
    params["conv1"]["conv"]["bias"] = jnp.zeros(6)
    subject = make_subject("gabor", model, {"params": params}, InputSpec((24, 24, 1)))
    return subject, filters
