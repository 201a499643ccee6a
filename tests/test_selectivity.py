import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from insilico.analysis import selectivity as sel


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    r = np.abs(rng.normal(size=(200, 6))).astype(np.float32)
    r[:, 0] += 3.0 * (labels == 2)                       # unit 0 prefers class 2
    r[:, 5] = 1.0                                        # unit 5 is untuned
    return r, labels


def test_class_selectivity_matches_loop(data):
    r, labels = data
    si = np.asarray(sel.class_selectivity(r, labels, 4))
    for u in range(6):
        mu = np.array([r[labels == k, u].mean() for k in range(4)])
        top = mu.max()
        rest = np.delete(mu, mu.argmax()).mean()
        assert si[u] == pytest.approx((top - rest) / (top + rest), abs=1e-5)
    assert si.argmax() == 0 and si[5] == pytest.approx(0.0, abs=1e-6)


def test_dprime_and_sparseness(data):
    r, labels = data
    a = labels == 2
    d = np.asarray(sel.category_dprime(r, a))
    tuned = r[:, :5]                                        # unit 5 is constant: d' undefined
    ref = (tuned[a].mean(0) - tuned[~a].mean(0)) / np.sqrt((tuned[a].var(0, ddof=1) + tuned[~a].var(0, ddof=1)) / 2)
    np.testing.assert_allclose(d[:5], ref, rtol=1e-4)
    ls = np.asarray(sel.lifetime_sparseness(r))
    n = r.shape[0]
    ref = (1 - (r.sum(0) / n) ** 2 / ((r ** 2).sum(0) / n)) / (1 - 1 / n)
    np.testing.assert_allclose(ls, ref, rtol=1e-4, atol=1e-6)
    assert ls[5] == pytest.approx(0.0, abs=1e-6)
    one_hot = np.eye(6, dtype=np.float32)
    np.testing.assert_allclose(sel.population_sparseness(one_hot), 1.0, rtol=1e-6)


def test_spearman_and_ranks_match_scipy():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 50).astype(np.float32)          # many ties
    y = x + rng.normal(size=50).astype(np.float32)
    np.testing.assert_allclose(sel.rankdata(jnp.asarray(x)), stats.rankdata(x))
    assert float(sel.spearman(x, y)) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-5)
    rho, (lo, hi), dist = sel.spearman_bootstrap(x, y, jax.random.PRNGKey(0), n_boot=500)
    assert dist.shape == (500,) and lo < float(rho) < hi
    ref = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b).statistic, paired=True, n_resamples=2000,
                          method="percentile", rng=np.random.default_rng(0)).confidence_interval
    assert float(lo) == pytest.approx(ref.low, abs=0.05) and float(hi) == pytest.approx(ref.high, abs=0.05)


def test_unit_responses():
    a = jnp.arange(2 * 3 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 3, 4)
    np.testing.assert_allclose(sel.unit_responses(a), a.mean((1, 2)))


def test_empty_classes_are_refused_and_dead_units_have_no_sparseness():
    from insilico.validation import ArgumentError

    r = np.ones((6, 2), np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert np.allclose(sel.class_selectivity(r, labels, 2), 0.0, atol=1e-6)       # a constant unit: 0
    with pytest.raises(ArgumentError, match=r"no stimulus of class\(es\) \[2, 3\] of n_classes=4"):
        sel.class_selectivity(r, labels, 4)                                       # was 0.5 for a constant unit
    dead = np.concatenate([np.zeros((10, 1)), np.abs(np.random.default_rng(0).normal(size=(10, 2)))], 1)
    life = np.asarray(sel.lifetime_sparseness(dead))
    assert np.isnan(life[0]) and np.all((life[1:] >= 0) & (life[1:] <= 1))       # was 10/9 for the dead unit
    silent = np.asarray(sel.population_sparseness(np.zeros((2, 5))))
    assert np.isnan(silent).all()
