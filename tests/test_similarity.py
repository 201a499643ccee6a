"""CKA, CCA, SVCCA, PWCCA, Procrustes and dimensionality against published values and independent computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, sqrtm

from insilico.analysis import dimensionality as dim
from insilico.analysis import similarity as sim


@pytest.fixture(scope="module")
def kornblith():
    """Kornblith et al.'s demo data: seed 1337, X = randn(100, 10), Y = randn(100, 10) + X."""
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return x, y


def test_cka_reproduces_kornblith_reference_values(kornblith):
    x, y = kornblith
    assert sim.cka(x, y, debiased=False) == pytest.approx(0.55761, abs=5e-5)
    assert sim.cka(x, y) == pytest.approx(0.51346, abs=5e-5)                  # debiased is the default
    assert sim.cka(x, y, kernel="rbf", threshold=0.5, debiased=False) == pytest.approx(0.65483, abs=5e-5)


def test_cka_invariances_and_bias(kornblith):
    x, y = kornblith
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))
    base = sim.cka(x, y)
    assert sim.cka(x @ q, y) == pytest.approx(base, abs=1e-5)                 # orthogonal transform
    assert sim.cka(3.0 * x, y) == pytest.approx(base, abs=1e-5)               # isotropic scaling
    assert sim.cka(x * np.arange(1, 11), y) != pytest.approx(base, abs=1e-3)   # not any linear map
    assert sim.cka(x, x) == pytest.approx(1.0, abs=1e-5)
    # unrelated representations with units >> stimuli: the biased estimator is high, the debiased one near 0
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(100, 512)), rng.normal(size=(100, 512))
    assert sim.cka(a, b, debiased=False) > 0.7 and abs(sim.cka(a, b)) < 0.05


def test_cka_jax_is_differentiable(kornblith):
    x, y = (jnp.asarray(m, jnp.float32) for m in kornblith)
    g = jax.grad(lambda x: sim.cka_jax(x, y))(x)
    assert g.shape == x.shape and bool(jnp.all(jnp.isfinite(g)))
    assert float(sim.cka_jax(x, y)) == pytest.approx(0.51346, abs=1e-4)


def test_canonical_correlations_match_whitened_cross_covariance(kornblith):
    x, y = kornblith
    xc, yc = x - x.mean(0), y - y.mean(0)
    cxx, cyy, cxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    ref = np.linalg.svd(np.real(np.linalg.inv(sqrtm(cxx)) @ cxy @ np.linalg.inv(sqrtm(cyy))), compute_uv=False)
    assert np.allclose(sim.canonical_correlations(x, y), ref, atol=1e-6)
    assert sim.cca(x, y) == pytest.approx(np.mean(ref ** 2), abs=1e-6)
    assert sim.svcca(x, y, keep=1.0) == pytest.approx(np.mean(ref), abs=1e-6)
    assert 0 < sim.pwcca(x, y) <= 1 and sim.pwcca(x, x) == pytest.approx(1.0, abs=1e-6)


def test_svcca_keeps_the_top_directions():
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(200, 3))
    x = signal @ rng.normal(size=(3, 20)) + 1e-3 * rng.normal(size=(200, 20))
    y = signal @ rng.normal(size=(3, 30)) + 1e-3 * rng.normal(size=(200, 30))
    assert sim.svcca(x, y) == pytest.approx(1.0, abs=1e-3)       # 3 shared directions carry 99% of the variance


def test_procrustes_matches_scipy(kornblith):
    x, y = kornblith
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    r, _ = orthogonal_procrustes(xc, yc)
    cos = np.sum((xc @ r) * yc)
    assert sim.procrustes(x, y) == pytest.approx(np.arccos(cos), abs=1e-5)
    assert sim.procrustes(x, y, metric="euclidean") == pytest.approx(np.linalg.norm(xc @ r - yc), abs=1e-5)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(10, 10)))
    assert sim.procrustes(x, 2 * x @ q) == pytest.approx(0.0, abs=2e-3)
    # full whitening (alpha = 0) is a CCA distance: arccos of the mean canonical correlation
    rho = sim.canonical_correlations(x, y)
    assert sim.procrustes(x, y, alpha=0.0) == pytest.approx(np.arccos(rho.mean()), abs=1e-4)


def test_bad_input_is_named():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 6))
    with pytest.raises(ValueError, match="x has 20 stimuli but y has 19"):
        sim.cka(x, y[:19])
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sim.cka(bad, y)
    with pytest.raises(ValueError, match="constant"):
        sim.cca(np.ones((20, 5)), y)
    with pytest.raises(ValueError, match="at least"):
        sim.cka(x[:2], y[:2], debiased=False)
    with pytest.warns(sim.SimilarityWarning, match="units ≥ stimuli"):
        sim.cca(rng.normal(size=(10, 12)), rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="kernel"):
        sim.cka(x, y, kernel="poly")


def test_dimensionality_on_known_structure():
    rng = np.random.default_rng(5)
    iso = rng.normal(size=(20000, 8))
    assert dim.participation_ratio(iso) == pytest.approx(8, rel=0.02)
    # a spectrum with λ_n = n^-1.5 (independent components with those variances)
    n = np.arange(1, 201)
    x = rng.normal(size=(5000, 200)) * n ** -0.75
    fit = dim.powerlaw_exponent(x, (5, 100))
    assert fit["alpha"] == pytest.approx(1.5, abs=0.1) and fit["r2"] > 0.98
    # a 4-dimensional linear manifold embedded in 50 dimensions
    z = rng.uniform(size=(2000, 4)) @ rng.normal(size=(4, 50))
    assert dim.two_nn(z) == pytest.approx(4, rel=0.15)
    with pytest.raises(ValueError, match="identical twin"):
        dim.two_nn(np.concatenate([z[:10], z[:10]]))
    with pytest.raises(ValueError, match="at least 3 non-zero"):
        dim.powerlaw_exponent(rng.normal(size=(4, 2)))
