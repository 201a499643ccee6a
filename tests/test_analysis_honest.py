"""Numerically honest analysis: Gram-based measures are shift invariant (float64, features centred first), the
CCA family warns when its score is inflated by too many dimensions, TwoNN keeps every point finite, the encoding
ceiling normalizes a perfect model to 1, and every bad argument is refused with an error naming it."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.analysis import dimensionality as dim
from insilico.analysis import encoding as enc
from insilico.analysis import gabor, rsa, selectivity as sel, similarity as sim, tuning as tn
from insilico.validation import ArgumentError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 12))
Y = X @ RNG.normal(size=(12, 9)) + 2.0 * RNG.normal(size=(60, 9))


# ------------------------------------------------------------------------------------ float64 NumPy references

def _ref_cka(x, y, debiased):
    """Linear CKA in float64 NumPy: HSIC with the centring matrix (biased) or Song et al.'s U-statistic."""
    x, y = x - x.mean(0), y - y.mean(0)
    k, l = x @ x.T, y @ y.T
    n = len(k)

    def hsic(a, b):
        if not debiased:
            h = np.eye(n) - 1.0 / n
            return np.trace(a @ h @ b @ h)
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        one = np.ones(n)
        return (np.trace(a @ b) + one @ a @ one * (one @ b @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def _ref_rbf_cka(x, y, threshold=1.0):
    def gram(z):
        d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * threshold ** 2 * np.median(d2)))

    h = np.eye(len(x)) - 1.0 / len(x)
    k, l = h @ gram(x) @ h, h @ gram(y) @ h
    return np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l))


def _ref_procrustes(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    xc, yc = xc / np.linalg.norm(xc), yc / np.linalg.norm(yc)
    yc = np.pad(yc, ((0, 0), (0, xc.shape[1] - yc.shape[1])))
    return np.arccos(min(np.linalg.svd(xc.T @ yc, compute_uv=False).sum(), 1.0))


def _ref_sqeuclidean(x, _):
    return ((x[:, None] - x[None]) ** 2).sum(-1) / x.shape[1]


# (measure on shifted data, float64 reference on the original data, shift, tolerance)
SHIFT_CASES = {
    "cka debiased": (lambda x, y: sim.cka(x, y), lambda x, y: _ref_cka(x, y, True), 1000.0, 1e-6),
    "cka biased": (lambda x, y: sim.cka(x, y, debiased=False), lambda x, y: _ref_cka(x, y, False), 1000.0, 1e-6),
    "cka rbf": (lambda x, y: sim.cka(x, y, kernel="rbf", debiased=False), _ref_rbf_cka, 1000.0, 1e-6),
    "cka_jax float32": (lambda x, y: float(jax.jit(sim.cka_jax)(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))),
                        lambda x, y: _ref_cka(x, y, True), 1000.0, 1e-3),
    "procrustes": (sim.procrustes, _ref_procrustes, 1e4, 1e-6),
    "rdm euclidean": (lambda x, y: rsa.rdm(x, "euclidean"), _ref_sqeuclidean, 1e6, 1e-6),
    "rdm_jax euclidean float32": (lambda x, y: np.asarray(rsa.rdm_jax(jnp.asarray(x, jnp.float32), "euclidean")),
                                  _ref_sqeuclidean, 1000.0, 1e-3),
}


@pytest.mark.parametrize("case", list(SHIFT_CASES))
def test_gram_measures_are_invariant_to_a_common_offset(case):
    measure, reference, shift, tol = SHIFT_CASES[case]
    expected = np.asarray(reference(X, Y))
    got = np.asarray(measure(X + shift, Y))
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.allclose(got, expected, rtol=0, atol=tol * scale), (case, got, expected)


# --------------------------------------------------------------------------------------------- CCA inflation

CCA_FAMILY = {"cca": sim.cca, "svcca": sim.svcca, "pwcca": sim.pwcca,
              "canonical_correlations": sim.canonical_correlations}
NOISE = np.random.default_rng(1)
ILL_POSED = {"units ≥ stimuli − 1": (NOISE.normal(size=(40, 45)), NOISE.normal(size=(40, 5))),
             "widths together > rank": (NOISE.normal(size=(100, 60)), NOISE.normal(size=(100, 60)))}


@pytest.mark.parametrize("shape", list(ILL_POSED))
@pytest.mark.parametrize("name", list(CCA_FAMILY))
def test_cca_family_warns_when_independent_noise_scores_high(name, shape):
    a, b = ILL_POSED[shape]
    with pytest.warns(sim.InflatedScoreWarning, match=r"inflated.*more stimuli") as rec:
        CCA_FAMILY[name](a, b)
    assert issubclass(rec[0].category, RuntimeWarning)


@pytest.mark.parametrize("name", list(CCA_FAMILY))
def test_cca_family_is_silent_when_well_posed(name):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(200, 10)), rng.normal(size=(200, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", sim.SimilarityWarning)
        value = np.mean(CCA_FAMILY[name](a, b))
    assert value < 0.3                                       # independent noise scores low when well posed


# ------------------------------------------------------------------------------------------------------ TwoNN

@pytest.mark.parametrize("d", [2, 5])
def test_two_nn_without_discarding_is_finite_and_recovers_the_dimension(d):
    rng = np.random.default_rng(d)
    z = rng.uniform(size=(1000, d)) @ rng.normal(size=(d, 30))          # a d-dimensional manifold in 30-D
    est = dim.two_nn(z, discard=0)
    assert np.isfinite(est) and est == pytest.approx(d, rel=0.15)


# ----------------------------------------------------------------------------------------- encoding ceiling

@pytest.fixture(scope="module")
def perfect_model():
    """Responses = signal + noise, 4 repetitions; the model's features are the true mean response."""
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(300, 8))
    trials = mu[:, :, None] + 1.5 * rng.normal(size=(300, 8, 4))
    ceiling = enc.split_half_reliability(trials, n_splits=20, key=jax.random.key(0))
    return mu, trials.mean(2), ceiling


@pytest.mark.parametrize("normalization, expected", [("sqrt", lambda c: 1.0),
                                                     ("brain-score", lambda c: 1 / np.sqrt(c))])
def test_a_perfect_model_of_the_mean_scores_one_under_the_default(perfect_model, normalization, expected):
    mu, y, ceiling = perfect_model
    assert ceiling.spearman_brown and "Spearman-Brown" in ceiling.formula
    kwargs = {} if normalization == "sqrt" else {"normalization": normalization}
    r = enc.encode(mu, y, ceiling=ceiling, n_splits=2, key=jax.random.key(1), **kwargs)
    assert r.normalization == normalization and "Spearman-Brown" in r.formula
    assert ("sqrt(median_n(ceiling))" in r.formula) == (normalization == "sqrt")
    assert r.normalized == pytest.approx(expected(r.ceiling_median), abs=0.06)


# --------------------------------------------------------------------------------------------- bad arguments

R = np.abs(np.random.default_rng(4).normal(size=(20, 5)))
LABELS = np.arange(20) % 4
ORI = np.arange(0, 180, 22.5)
CURVE = np.cos(np.deg2rad(2 * ORI)) + 1.5
SF = 2.0 ** np.arange(-3, 3)
SF_CURVE = np.exp(-np.log2(SF) ** 2)
TRIALS = np.random.default_rng(5).normal(size=(10, 3, 4))
RDMS = np.stack([rsa.rdm(np.random.default_rng(s).normal(size=(8, 6))) for s in range(3)])
KEY = jax.random.key(0)


def _with(a, index, value):
    a = np.array(a, float)
    a[index] = value
    return a


BAD = {
    # similarity
    "cka nan": (lambda: sim.cka(_with(X, (3, 2), np.nan), Y), "x"),
    "cka inf y": (lambda: sim.cka(X, _with(Y, (0, 0), np.inf)), "y"),
    "cka empty": (lambda: sim.cka(np.empty((0, 3)), np.empty((0, 3))), "x"),
    "cka kernel": (lambda: sim.cka(X, Y, kernel="poly"), "kernel"),
    "cka threshold 0": (lambda: sim.cka(X, Y, kernel="rbf", threshold=0.0), "threshold"),
    "cka threshold nan": (lambda: sim.cka(X, Y, kernel="rbf", threshold=np.nan), "threshold"),
    "svcca keep 0": (lambda: sim.svcca(X, Y, keep=0.0), "keep"),
    "svcca keep 1.5": (lambda: sim.svcca(X, Y, keep=1.5), "keep"),
    "procrustes alpha": (lambda: sim.procrustes(X, Y, alpha=-0.1), "alpha"),
    "procrustes alpha nan": (lambda: sim.procrustes(X, Y, alpha=np.nan), "alpha"),
    "procrustes metric": (lambda: sim.procrustes(X, Y, metric="cosine"), "metric"),
    # dimensionality
    "two_nn discard 1": (lambda: dim.two_nn(X, discard=1.0), "discard"),
    "two_nn discard <0": (lambda: dim.two_nn(X, discard=-0.1), "discard"),
    "two_nn discard nan": (lambda: dim.two_nn(X, discard=np.nan), "discard"),
    "participation inf": (lambda: dim.participation_ratio(_with(X, (1, 1), np.inf)), "x"),
    "powerlaw range 0": (lambda: dim.powerlaw_exponent(X, (0, 10)), "fit_range"),
    "powerlaw range reversed": (lambda: dim.powerlaw_exponent(X, (5, 3)), "fit_range"),
    # encoding
    "encode method": (lambda: enc.encode(X, Y, method="lasso", key=KEY), "method"),
    "encode normalization": (lambda: enc.encode(X, Y, normalization="ceiling", key=KEY), "normalization"),
    "encode n_splits": (lambda: enc.encode(X, Y, n_splits=0, key=KEY), "n_splits"),
    "encode test_fraction 0": (lambda: enc.encode(X, Y, test_fraction=0.0, key=KEY), "test_fraction"),
    "encode test_fraction 1": (lambda: enc.encode(X, Y, test_fraction=1.0, key=KEY), "test_fraction"),
    "encode test_fraction nan": (lambda: enc.encode(X, Y, test_fraction=np.nan, key=KEY), "test_fraction"),
    "encode alphas <0": (lambda: enc.encode(X, Y, alphas=[-1.0, 1.0], key=KEY), "alphas"),
    "encode alphas nan": (lambda: enc.encode(X, Y, alphas=[np.nan], key=KEY), "alphas"),
    "encode key": (lambda: enc.encode(X, Y, key=None), "key"),
    "encode ceiling inf": (lambda: enc.encode(X, Y, ceiling=np.full(9, np.inf), key=KEY), "ceiling"),
    "encode responses nan": (lambda: enc.encode(X, _with(Y, (2, 2), np.nan), key=KEY), "responses"),
    "ridge_cv n_folds": (lambda: enc.ridge_cv(X, Y, n_folds=1), "n_folds"),
    "ridge_cv alphas nan": (lambda: enc.ridge_cv(X, Y, alphas=[1.0, np.nan]), "alphas"),
    "pls n_components": (lambda: enc.pls(X, Y, n_components=0), "n_components"),
    "pls tol": (lambda: enc.pls(X, Y, tol=-1.0), "tol"),
    "reliability n_splits": (lambda: enc.split_half_reliability(TRIALS, n_splits=0, key=KEY), "n_splits"),
    "reliability key": (lambda: enc.split_half_reliability(TRIALS, key=None), "key"),
    "reliability inf": (lambda: enc.split_half_reliability(_with(TRIALS, (0, 0, 0), np.inf), key=KEY), "trials"),
    # rsa
    "rdm method": (lambda: rsa.rdm(X, "manhattan"), "method"),
    "rdm prior_lambda": (lambda: rsa.rdm(R, "poisson", prior_lambda=-1.0), "prior_lambda"),
    "rdm noise nan": (lambda: rsa.rdm(X, "mahalanobis", noise=np.full((12, 12), np.nan)), "noise"),
    "compare method": (lambda: rsa.compare(RDMS[0], RDMS[1], "kendall"), "method"),
    "bootstrap n_samples": (lambda: rsa.bootstrap(RDMS[:1], RDMS, n_samples=0, key=KEY), "n_samples"),
    "bootstrap ci": (lambda: rsa.bootstrap(RDMS[:1], RDMS, ci=1.5, key=KEY), "ci"),
    "bootstrap ci nan": (lambda: rsa.bootstrap(RDMS[:1], RDMS, ci=np.nan, key=KEY), "ci"),
    "bootstrap method": (lambda: rsa.bootstrap(RDMS[:1], RDMS, method="corr_cov", key=KEY), "method"),
    "bootstrap key": (lambda: rsa.bootstrap(RDMS[:1], RDMS, key=None), "key"),
    "permutation count": (lambda: rsa.permutation_test(RDMS[:1], RDMS, n_permutations=0, key=KEY),
                          "n_permutations"),
    "fit_weighted n_folds": (lambda: rsa.fit_weighted(RDMS, RDMS, n_folds=1), "n_folds"),
    # selectivity
    "labels out of range": (lambda: sel.class_selectivity(R, _with(LABELS, 0, 4).astype(int), 4), "labels"),
    "labels negative": (lambda: sel.class_means(R, _with(LABELS, 0, -1).astype(int), 4), "labels"),
    "labels not integers": (lambda: sel.class_means(R, _with(LABELS, 0, 1.5), 4), "labels"),
    "labels wrong length": (lambda: sel.class_selectivity(R, LABELS[:7], 4), "labels"),
    "n_classes 0": (lambda: sel.class_means(R, LABELS, 0), "n_classes"),
    "n_classes 1": (lambda: sel.class_selectivity(R, LABELS * 0, 1), "n_classes"),
    "selectivity responses nan": (lambda: sel.class_selectivity(_with(R, (0, 0), np.nan), LABELS, 4),
                                  "responses"),
    "selectivity eps": (lambda: sel.class_selectivity(R, LABELS, 4, eps=-1.0), "eps"),
    "dprime one class": (lambda: sel.category_dprime(R, np.ones(20, bool)), "is_a"),
    "dprime length": (lambda: sel.category_dprime(R, np.ones(5, bool)), "is_a"),
    "sparseness empty": (lambda: sel.lifetime_sparseness(np.empty((0, 5))), "responses"),
    "spearman nan": (lambda: sel.spearman(_with(R[:, 0], 3, np.nan), R[:, 1]), "x"),
    "spearman lengths": (lambda: sel.spearman(R[:, 0], R[:5, 1]), "x and y"),
    "bootstrap n_boot": (lambda: sel.spearman_bootstrap(R[:, 0], R[:, 1], KEY, n_boot=0), "n_boot"),
    "bootstrap ci 0": (lambda: sel.spearman_bootstrap(R[:, 0], R[:, 1], KEY, ci=0.0), "ci"),
    "spearman_bootstrap key": (lambda: sel.spearman_bootstrap(R[:, 0], R[:, 1], None), "key"),
    # tuning
    "bandwidth level 0": (lambda: tn.log_bandwidth(SF, SF_CURVE, level=0.0), "level"),
    "bandwidth level nan": (lambda: tn.log_bandwidth(SF, SF_CURVE, level=np.nan), "level"),
    "halfwidth level": (lambda: tn.circular_halfwidth(ORI, CURVE, level=1.5), "level"),
    "halfwidth lengths": (lambda: tn.circular_halfwidth(ORI[:5], CURVE), "orientations_deg"),
    "osi nan": (lambda: tn.osi(ORI, _with(CURVE, 2, np.nan)), "responses"),
    "peak lengths": (lambda: tn.preferred_log_peak(SF[:4], SF_CURVE), "values"),
    "modulation empty": (lambda: tn.modulation_ratio(np.empty(0), np.empty(0)), "phases_deg"),
    # gabor
    "fit_gabor n_starts": (lambda: gabor.fit_gabor(np.ones((8, 8)), n_starts=0), "n_starts"),
    "fit_gabor empty": (lambda: gabor.fit_gabor(np.empty((0, 8, 8))), "filters"),
    "gabor_filter sigma": (lambda: gabor.gabor_filter(9, {"sigma_x": 0.0, "sigma_y": 2.0, "orientation": 0.0,
                                                          "sf": 0.2}), "sigma_x"),
    "gabor_filter phase text": (lambda: gabor.gabor_filter(9, {"sigma_x": 2.0, "sigma_y": 2.0, "orientation": 0.0,
                                                                "sf": 0.2, "phase": "90deg"}), "phase"),
    "gabor_filter shape": (lambda: gabor.gabor_filter((0, 9), {"sigma_x": 2.0, "sigma_y": 2.0,
                                                               "orientation": 0.0, "sf": 0.2}), "shape"),
    "gabor_similarity nan": (lambda: gabor.gabor_similarity(_with(np.ones((5, 5)), (0, 0), np.nan),
                                                            np.ones((5, 5))), "a"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_are_refused_by_name(case):
    call, name = BAD[case]
    with pytest.raises(ArgumentError) as info:
        call()
    assert name in str(info.value), str(info.value)


def test_checked_functions_stay_traceable():
    """Inside jit/vmap/grad the checks see tracers and let them through."""
    import scipy.stats

    r, labels = jnp.asarray(R), jnp.asarray(LABELS)
    jitted = jax.jit(sel.class_selectivity, static_argnums=2)(r, labels, 4)
    mapped = jax.jit(jax.vmap(lambda rr, ll: sel.class_selectivity(rr, ll, 4)))(jnp.stack([r, r]),
                                                                              jnp.stack([labels] * 2))
    mu = np.stack([R[LABELS == k].mean(0) for k in range(4)])
    top = mu.max(0)
    rest = (mu.sum(0) - top) / 3
    assert np.allclose(jitted, (top - rest) / (top + rest), atol=1e-5) and np.allclose(mapped[1], jitted, atol=1e-6)
    rho = float(jax.jit(sel.spearman)(r[:, 0], r[:, 1]))
    assert rho == pytest.approx(scipy.stats.spearmanr(R[:, 0], R[:, 1]).statistic, abs=1e-5)
    g = jax.jit(jax.grad(lambda x: sim.cka_jax(x, jnp.asarray(Y, jnp.float32))))(jnp.asarray(X, jnp.float32))
    assert bool(jnp.all(jnp.isfinite(g)))


# ------------------------------------------------------------------------- readings that could not be told apart

def test_stacked_condensed_vectors_are_not_read_as_one_square_rdm():
    """S condensed vectors of length S: as (S, 1, m) they are vectors; as (S, m) the refusal says so. A weighted
    fit whose held-out pairs number as many as the subjects runs (it used to be refused)."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(1, 6)), rng.normal(size=(6, 6))
    with pytest.raises(ValueError, match=r"must be symmetric .*\(6, 1, 6\)"):
        rsa.compare(a, b)
    got = rsa.compare(a, b[:, None])
    want = [[np.corrcoef(a[0], row)[0, 1] for row in b]]
    np.testing.assert_allclose(got, want, atol=1e-12)
    fit = rsa.fit_weighted(rng.normal(size=(2, 66)), rng.normal(size=(3, 66)), n_folds=4)   # 12 stimuli, 3 subjects
    assert np.isfinite(fit.fold_scores.values).all()


def test_bootstrap_samples_with_an_undefined_score_are_counted_and_left_out():
    """A category model with 2 of 10 stimuli in one class is constant in some resamples: those samples are NaN,
    counted, warned about and left out of the interval (as rsatoolbox drops them), never spread into it."""
    labels = np.array([0, 0] + [1] * 8)
    model = (labels[:, None] != labels[None, :]).astype(float)
    data = np.stack([rsa.rdm(np.random.default_rng(s).normal(size=(10, 6))) for s in range(3)])
    with pytest.warns(RuntimeWarning, match=r"samples leave a model's corr score undefined"):
        b = rsa.bootstrap(model[None], data, method="corr", n_samples=400, key=jax.random.PRNGKey(0),
                          with_ceiling=False)
    samples = b.samples.values[:, 0]
    undefined = int(np.isnan(samples).sum())
    assert undefined > 0 and int(b.undefined_samples.values[0]) == undefined
    np.testing.assert_allclose([b.ci_low.values[0], b.ci_high.values[0]],
                               np.percentile(samples[np.isfinite(samples)], [2.5, 97.5]))
    assert np.isfinite(b.sem.values).all()


def test_permutation_test_counts_a_draw_of_the_observed_labelling():
    """Of 3 stimuli's 6 labellings, the draws that are the identity reproduce the observed labelling: they count
    as ≥ it. Here their float32 value lies below the float64 score, so comparing the null with the score (as
    before) left all 32 of them out and made p too small."""
    rng = np.random.default_rng(2)
    model, data = rsa.rdm(rng.normal(size=(3, 4))), np.stack([rsa.rdm(rng.normal(size=(3, 4))) for _ in range(2)])
    key, n = jax.random.PRNGKey(2), 200
    out = rsa.permutation_test(model, data, method="corr", n_permutations=n, key=key)
    perms = [np.asarray(jax.random.permutation(k, 3)) for k in jax.random.split(key, n)]
    identity = np.array([bool((p == np.arange(3)).all()) for p in perms])
    assert identity.sum() > 0 and (out["null"][identity] < out["score"]).all()
    observed = out["null"][identity][0]                        # the observed labelling, computed as the null is
    assert out["p"] == (1 + np.sum(out["null"] >= observed)) / (1 + n)
    assert out["p"] > (1 + np.sum(out["null"] >= out["score"])) / (1 + n)


def test_near_constant_responses_are_constant():
    """A unit fixed at 0.1 has a float std of about 1e-17: it is constant all the same."""
    x, y = np.full((10, 3), 0.1), RNG.normal(size=(10, 4))
    for f in (sim.cka, sim.cca):
        with pytest.raises(ValueError, match="constant"):
            f(x, y)
    neurons = np.c_[RNG.normal(size=(40, 1)), np.full((40, 1), 0.1)]
    with pytest.raises(ValueError, match=r"neurons \[1\] respond identically"):
        enc.encode(RNG.normal(size=(40, 5)), neurons, key=jax.random.PRNGKey(0))
    repeated = np.r_[np.zeros((7, 3)), RNG.normal(size=(2, 3))]            # 7 of 9 stimuli the same
    with pytest.raises(ValueError, match="median squared distance between stimuli is 0"):
        sim.cka(repeated, RNG.normal(size=(9, 3)), kernel="rbf")


def test_rank_statistics_rank_in_float64():
    from scipy import stats

    for x in (1e8 + np.arange(10.0), 0.1 + np.arange(4) * 1e-9):
        y = np.arange(len(x), dtype=float)
        assert float(sel.spearman(x, y)) == pytest.approx(stats.spearmanr(x, y).statistic)
        np.testing.assert_array_equal(np.asarray(sel.rankdata(x)), stats.rankdata(x))
    rho, _, dist = sel.spearman_bootstrap(1e8 + np.arange(10.0), np.arange(10.0), jax.random.PRNGKey(0), n_boot=20)
    assert float(rho) == 1.0 and np.all(np.asarray(dist) == 1.0)


def test_indices_outside_their_range_are_refused_or_infinite():
    separated = sel.category_dprime(np.array([[1.0, 3.0], [1.0, 3.0], [2.0, 3.0], [2.0, 3.0]]),
                                    np.array([True, True, False, False]))
    assert np.isneginf(separated[0]) and np.isnan(separated[1])           # no floor that makes d' = -1e6
    negative = np.array([[-1.0, 2.0], [1.0, -1.0], [-1.0, 0.5], [1.0, 0.3]])
    for f in (sel.lifetime_sparseness, sel.population_sparseness):
        with pytest.raises(ArgumentError, match="needs non-negative responses .* minimum of -1"):
            f(negative)
    with pytest.raises(ArgumentError, match="class_selectivity needs non-negative responses"):
        sel.class_selectivity(np.array([[-1.0], [-1.0], [1.01], [1.01]]), np.array([0, 0, 1, 1]), 2)


MORE_BAD = {
    "pearson_columns shapes": (lambda: enc.pearson_columns(np.ones((10, 3)), np.ones((10, 1))),
                               r"a and b must be \(n, k\) of one shape"),
    "pearson_columns NaN": (lambda: enc.pearson_columns(np.full((10, 1), np.nan), np.ones((10, 1))), "a contains"),
    "noise with euclidean": (lambda: rsa.rdm(X[:5], "euclidean", noise=np.eye(12)),
                             "noise .* 'mahalanobis' and 'crossnobis' only"),
    "two held-out stimuli": (lambda: enc.encode(X[:10], Y[:10], test_fraction=0.2, key=jax.random.PRNGKey(0)),
                             r"holds out 2; a held-out r needs at least 3"),
    "model_names a string": (lambda: rsa.bootstrap(rsa.rdm(X[:6])[None], np.stack([rsa.rdm(X[:6])] * 2),
                                                   model_names="abc", key=jax.random.PRNGKey(0)),
                             "model_names must be a sequence of names"),
}


@pytest.mark.parametrize("case", MORE_BAD)
def test_more_bad_arguments_are_refused_by_name(case):
    call, message = MORE_BAD[case]
    with pytest.raises(ArgumentError, match=message):
        call()
