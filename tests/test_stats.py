"""The one Pearson correlation and the one average-rank function (insilico.analysis.stats) against SciPy: ties,
weights (as repeated observations), columns and a leading axis, NumPy and JAX inputs, inside jit and vmap."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as sp

from insilico.analysis import encoding, selectivity
from insilico.analysis.stats import pearson, rankdata


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_pearson_of_vectors_matches_scipy(rng):
    a = rng.normal(size=50)
    b = a + rng.normal(size=50)
    ref = sp.pearsonr(a, b).statistic
    assert isinstance(pearson(a, b), np.ndarray) and float(pearson(a, b)) == pytest.approx(ref, abs=1e-12)
    r32 = pearson(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32))
    assert isinstance(r32, jax.Array) and r32.dtype == jnp.float32 and float(r32) == pytest.approx(ref, abs=1e-6)
    assert float(jax.jit(pearson)(jnp.asarray(a), jnp.asarray(b))) == pytest.approx(ref, abs=1e-6)
    with jax.enable_x64(True):
        r64 = pearson(jnp.asarray(a), jnp.asarray(b))
        assert r64.dtype == jnp.float64 and float(r64) == pytest.approx(ref, abs=1e-12)


def test_pearson_of_columns_and_rows_matches_scipy(rng):
    a = rng.normal(size=(30, 4)) + 100.0                                  # an offset costs no precision
    b = a + rng.normal(size=(30, 4))
    ref = np.array([sp.pearsonr(a[:, k], b[:, k]).statistic for k in range(4)])
    np.testing.assert_allclose(pearson(a, b), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pearson(a.T, b.T, axis=-1), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pearson(jnp.asarray(a.T), jnp.asarray(b.T), axis=1), ref, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(pearson)(jnp.asarray(a.T), jnp.asarray(b.T)), ref, atol=1e-5)
    np.testing.assert_array_equal(encoding.pearson_columns(a, b), pearson(a, b))


def test_pearson_weights_are_repeated_observations(rng):
    a = rng.normal(size=40)
    b = a + rng.normal(size=40)
    w = rng.integers(0, 4, 40).astype(np.float64)                          # zero weight: left out
    rep = np.repeat(np.arange(40), w.astype(int))
    ref = sp.pearsonr(a[rep], b[rep]).statistic
    assert float(pearson(a, b, w)) == pytest.approx(ref, abs=1e-12)
    assert float(pearson(jnp.asarray(a), jnp.asarray(b), jnp.asarray(w))) == pytest.approx(ref, abs=1e-5)
    assert float(pearson(a, b, np.ones(40))) == pytest.approx(float(pearson(a, b)), abs=1e-14)
    cols_a, cols_b = np.stack([a, b + 1], 1), np.stack([b, a], 1)           # weights along the columns' axis
    np.testing.assert_allclose(pearson(cols_a, cols_b, w),
                               [ref, sp.pearsonr(b[rep] + 1, a[rep]).statistic], atol=1e-12)
    np.testing.assert_allclose(pearson(cols_a.T, cols_b.T, w, axis=1), pearson(cols_a, cols_b, w), atol=1e-14)


def test_pearson_is_nan_for_a_constant_side(rng):
    a = rng.normal(size=(10, 3))
    b = a.copy()
    b[:, 1] = 2.0
    r = pearson(a, b)
    assert np.isnan(r[1]) and np.allclose(r[[0, 2]], 1.0)
    assert np.isnan(float(pearson(jnp.ones(5), jnp.arange(5.0))))
    assert np.isnan(float(pearson(np.arange(5.0), np.arange(5.0), np.r_[1.0, 0, 0, 0, 0])))   # one observation


def test_rankdata_matches_scipy_with_ties(rng):
    x = rng.integers(0, 6, 40).astype(np.float64)                          # many ties
    ref = sp.rankdata(x)
    np.testing.assert_array_equal(rankdata(x), ref)
    r = rankdata(jnp.asarray(x, jnp.float32))
    assert isinstance(r, jax.Array) and r.dtype == jnp.float32
    np.testing.assert_array_equal(r, ref)
    np.testing.assert_array_equal(jax.jit(rankdata)(jnp.asarray(x)), ref)
    m = rng.integers(0, 4, (3, 25)).astype(np.float64)
    np.testing.assert_array_equal(rankdata(m, axis=1), sp.rankdata(m, axis=1))
    np.testing.assert_array_equal(rankdata(m, axis=0), sp.rankdata(m, axis=0))
    np.testing.assert_array_equal(rankdata(jnp.asarray(m), axis=1), sp.rankdata(m, axis=1))
    np.testing.assert_array_equal(jax.vmap(rankdata)(jnp.asarray(m)), sp.rankdata(m, axis=1))
    np.testing.assert_array_equal(selectivity.rankdata(x), ref)


def test_rankdata_keeps_float64_distinctions_for_numpy_input():
    x = np.array([1.0, 1.0 + 1e-12, 1.0 - 1e-12, 2.0])                    # equal in float32
    np.testing.assert_array_equal(rankdata(x), [2.0, 3.0, 1.0, 4.0])
    np.testing.assert_array_equal(rankdata(jnp.asarray(x, jnp.float32)), [2.0, 2.0, 2.0, 4.0])


def test_rankdata_propagates_nan():
    assert np.isnan(rankdata(np.array([1.0, np.nan, 2.0]))).all()
    assert np.isnan(np.asarray(rankdata(jnp.array([1.0, jnp.nan, 2.0])))).all()


@pytest.mark.parametrize("xp", ["numpy", "jax"])
def test_weighted_ranks_are_the_ranks_of_the_repeated_entries(rng, xp):
    x = np.round(rng.normal(size=30), 1)                                   # ties
    w = rng.integers(0, 4, 30).astype(np.float64)
    w[0] = 0.0                                                             # an entry with no copies still ranks
    rep = np.repeat(np.arange(30), w.astype(int))
    copies = sp.rankdata(x[rep])                                          # scipy's ranks of the repeated entries
    arr = (lambda v: v) if xp == "numpy" else jnp.asarray
    got = np.asarray(rankdata(arr(x), weights=arr(w)))
    np.testing.assert_array_equal(got[rep], copies)
    # an entry without copies takes the rank that copies of its value would share
    np.testing.assert_array_equal(got, [w[x < v].sum() + (w[x == v].sum() + 1) / 2 for v in x])
    order = np.argsort(x)
    np.testing.assert_array_equal(np.asarray(rankdata(arr(x), weights=arr(w), order=arr(order))), got)
    np.testing.assert_array_equal(np.asarray(rankdata(arr(x), weights=arr(np.ones(30)))), sp.rankdata(x))


def test_spearman_is_pearson_of_ranks_and_zero_when_all_tied(rng):
    x = rng.integers(0, 5, 40).astype(np.float32)
    y = x + rng.normal(size=40).astype(np.float32)
    assert float(selectivity.spearman(x, y)) == pytest.approx(sp.spearmanr(x, y).statistic, abs=1e-6)
    assert float(selectivity.spearman(np.ones(10), np.arange(10.0))) == 0.0
    assert float(jax.jit(selectivity.spearman)(jnp.ones(10), jnp.arange(10.0))) == 0.0


def test_constants_that_do_not_centre_to_zero_are_still_constant():
    """0.1 is not exact in binary: centring ten copies leaves ~1e-17, which made pearson 1.0, an RDM row a
    distance and a constant unit a 'spectrum'. Constancy is decided exactly (the spread is 0)."""
    import jax.numpy as jnp

    from insilico.analysis import dimensionality, rsa
    from insilico.analysis.stats import pearson

    for c in (0.1, 0.3, 1 / 3, 2.2):
        assert np.isnan(pearson(np.full(10, c), np.full(10, c)))
        assert np.isnan(pearson(jnp.full(10, c), jnp.arange(10.0)))
    assert np.isnan(pearson(np.full(3, 0.1), np.array([1.0, 1.0, 1.0 + 1e-15])))
    w = np.r_[np.zeros(3), np.ones(5)]                                  # constant where the weight is not 0
    assert np.isnan(pearson(np.r_[np.arange(3.0), np.full(5, 0.1)], np.arange(8.0), w))
    with pytest.raises(ValueError, match=r"stimuli \[0\] evoke a constant pattern"):
        rsa.rdm(np.vstack([np.full(7, 0.1), np.random.default_rng(0).random((3, 7))]))
    with pytest.raises(ValueError, match="constant responses"):
        dimensionality.participation_ratio(np.full((10, 5), 0.1))
