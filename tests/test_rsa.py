"""RSA: RDMs, comparators, noise ceilings and resampling against rsatoolbox on the same inputs."""
import contextlib

import jax
import numpy as np
import pytest

from insilico.analysis import rsa
from insilico.analysis.rsa import sampling, tau_bootstrap
from insilico.analysis.stats import pearson

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import RDMs, calc_rdm  # noqa: E402
from rsatoolbox.rdm import compare as rt_compare  # noqa: E402


@pytest.fixture(scope="module")
def patterns():
    rng = np.random.default_rng(0)
    return rng.normal(size=(14, 30)) + rng.normal(size=(14, 1))


def _models_and_data(seed: int, n: int, n_data: int):
    """Two model RDMs (noise sd 1) and ``n_data`` data RDMs (sd 0.5) around one random RDM of ``n`` stimuli."""
    rng = np.random.default_rng(seed)
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20))))
    models = np.stack([base + rng.normal(size=base.shape) for _ in range(2)])
    data = np.stack([base + 0.5 * rng.normal(size=base.shape) for _ in range(n_data)])
    return models, data


def _rt_rdm(x, method, **kw):
    return calc_rdm(Dataset(x), method=method, **kw).get_matrices()[0]


@pytest.mark.parametrize("method", ["correlation", "euclidean", "mahalanobis", "poisson"])
def test_rdms_match_rsatoolbox(patterns, method):
    x = np.abs(patterns) if method == "poisson" else patterns
    kw = {}
    if method == "mahalanobis":
        a = np.random.default_rng(1).normal(size=(30, 30))
        kw["noise"] = np.linalg.inv(a @ a.T / 30 + np.eye(30))
    ours = rsa.rdm(x, method, **kw)
    assert np.abs(ours - _rt_rdm(x, method, **kw)).max() < 1e-6
    assert np.allclose(ours, ours.T) and np.all(np.diag(ours) == 0)


def test_crossnobis_matches_rsatoolbox():
    rng = np.random.default_rng(2)
    folds = rng.normal(size=(3, 10, 20)) + rng.normal(size=(1, 10, 20))
    x = folds.reshape(-1, 20)
    ds = Dataset(x, obs_descriptors={"stim": np.tile(np.arange(10), 3), "fold": np.repeat(np.arange(3), 10)})
    ref = calc_rdm(ds, method="crossnobis", descriptor="stim", cv_descriptor="fold").get_matrices()[0]
    assert np.abs(rsa.rdm(folds, "crossnobis") - ref).max() < 1e-6


@pytest.mark.parametrize("method", ["corr", "cosine", "spearman", "rho-a", "tau-a", "corr_cov", "cosine_cov"])
def test_comparators_match_rsatoolbox(method):
    rng = np.random.default_rng(3)
    n = 16
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20))))
    a = np.stack([base + 0.5 * rng.normal(size=base.shape) for _ in range(3)])
    b = np.stack([base + 0.7 * rng.normal(size=base.shape) for _ in range(4)])
    a[0] = np.round(a[0], 1)                                                   # ties matter for rank methods
    ours = rsa.compare(a, b, method)
    ref = rt_compare(RDMs(a), RDMs(b), method=method)
    assert ours.shape == (3, 4) and np.abs(ours - ref).max() < 1e-6
    assert rsa.compare(rsa.square(a[1]), rsa.square(a[1]), method)[0, 0] == pytest.approx(1.0, abs=1e-9) or \
        method in ("rho-a", "tau-a")


def test_noise_ceiling_matches_rsatoolbox():
    from rsatoolbox.inference import boot_noise_ceiling

    rng = np.random.default_rng(4)
    base = rsa.upper(rsa.rdm(rng.normal(size=(12, 20))))
    subjects = np.stack([base + 0.6 * rng.normal(size=base.shape) for _ in range(6)])
    for method in ("corr", "cosine", "spearman", "rho-a", "tau-a"):
        lo, hi = rsa.noise_ceiling(subjects, method)
        rlo, rhi = boot_noise_ceiling(RDMs(subjects), method=method)
        assert lo == pytest.approx(rlo, abs=1e-6) and hi == pytest.approx(rhi, abs=1e-6), method
        assert lo < hi


@pytest.mark.parametrize("method", ["corr", "spearman", "rho-a", "tau-a"])
def test_one_bootstrap_sample_equals_rsatoolbox_on_the_resampled_rdms(method):
    """The multiplicity form of a stimulus bootstrap sample equals comparing the explicitly resampled RDMs
    (duplicate-stimulus pairs masked) with rsatoolbox."""
    rng = np.random.default_rng(5)
    n = 12
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20))))
    models = np.stack([base + 0.8 * rng.normal(size=base.shape) for _ in range(2)])
    data = np.stack([base + 0.5 * rng.normal(size=base.shape) for _ in range(3)])
    idx = rng.integers(0, n, n)
    counts = np.bincount(idx, minlength=n).astype(np.float32)[None]
    ours = np.asarray(rsa._boot(jax.numpy.asarray(models, jax.numpy.float32),
                                       jax.numpy.asarray(data, jax.numpy.float32), jax.numpy.asarray(counts),
                                       method, n))[0]
    m_rdms, d_rdms = RDMs(models).subsample_pattern("index", idx), RDMs(data).subsample_pattern("index", idx)
    ref = rt_compare(m_rdms, d_rdms, method=method)
    assert np.abs(ours - ref).max() < 2e-5


def _tau_forms_loop(a, bs, w):
    """Σ_{p≠q} w_p w_q sign(a_p − a_q) Σ_s sign(b_sp − b_sq), one pair at a time."""
    total = 0.0
    for p in range(len(a)):
        for q in range(len(a)):
            if p != q:
                total += w[p] * w[q] * np.sign(a[p] - a[q]) * sum(np.sign(b[p] - b[q]) for b in bs)
    return total


@pytest.mark.parametrize("size", [11, 40])          # several compiled calls of blocks / one call
def test_tau_forms_equal_a_python_loop(size):
    rng = np.random.default_rng(9)
    m = 37
    a = np.round(rng.normal(size=(2, m)), 1)                                   # ties
    bs = np.round(rng.normal(size=(3, m)), 1)
    w = rng.integers(0, 4, size=(5, m)).astype(np.float32)
    ra, rb = rsa._float32_ranks(a), rsa._float32_ranks(bs)
    pooled = np.asarray(rsa._tau_forms(ra, rb[None], jax.numpy.asarray(w), size))          # (B, M, 1)
    single = np.asarray(rsa._tau_forms(ra, rb[:, None], jax.numpy.asarray(w), size))       # (B, M, S)
    folded = np.asarray(rsa._tau_forms(ra, rb[None], jax.numpy.asarray(w), size, per_call=3))  # 3 blocks a call
    np.testing.assert_array_equal(folded, pooled)
    for b in range(w.shape[0]):
        for i in range(a.shape[0]):
            assert pooled[b, i, 0] == _tau_forms_loop(a[i], bs, w[b])
            for s in range(bs.shape[0]):
                assert single[b, i, s] == _tau_forms_loop(a[i], bs[s:s + 1], w[b])


def test_pooled_tau_bootstrap_is_the_mean_over_subjects():
    rng = np.random.default_rng(10)
    n = 15
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20))))
    models = np.stack([base + rng.normal(size=base.shape) for _ in range(2)]).astype(np.float32)
    data = np.stack([base + 0.5 * rng.normal(size=base.shape) for _ in range(4)]).astype(np.float32)
    counts = jax.numpy.asarray(np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(6)]),
                               jax.numpy.float32)
    per = np.asarray(rsa._boot_tau_a(models, data, counts, n))                           # (6, 2, 4)
    pooled = np.asarray(rsa._boot_tau_a(models, data, counts, n, pool_subjects=True))    # (6, 2, 1)
    assert np.abs(per.mean(-1) - pooled[..., 0]).max() < 1e-6
    ds = rsa.bootstrap(models, data, method="tau-a", n_samples=50, key=jax.random.key(3))
    assert np.isfinite(ds.samples.values).all() and abs(float(ds.samples.mean()) - ds.score.values.mean()) < 0.1


@pytest.mark.parametrize("pool", [True, False])
def test_tau_from_the_sign_matrices_equals_a_python_loop(pool):
    """τ-a of each sample from the int8 sign matrices — int8 products where every weight kᵢkⱼ fits int8, float32
    where one does not (a stimulus drawn 12 times) — equals the pair-by-pair sum."""
    rng = np.random.default_rng(12)
    n = 10
    m = n * (n - 1) // 2
    a = np.round(rng.normal(size=(2, m)), 1)                                   # ties
    bs = np.round(rng.normal(size=(3, m)), 1)
    small = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(4)])
    large = np.array([[12, 11, 1, 0, 2, 0, 0, 3, 0, 1]])
    i, j = np.triu_indices(n, 1)
    for counts in (small, large):
        got = np.asarray(rsa._boot_tau_a(a, bs, counts, n, pool_subjects=pool))
        assert got.shape == (len(counts), 2, 1 if pool else 3)
        for b, k in enumerate(counts):
            w = (k[i] * k[j]).astype(float)
            den = w.sum() * (w.sum() - 1)
            for r in range(2):
                if pool:
                    assert got[b, r, 0] == pytest.approx(_tau_forms_loop(a[r], bs, w) / den / 3, rel=1e-6)
                else:
                    for s_ in range(3):
                        assert got[b, r, s_] == pytest.approx(_tau_forms_loop(a[r], bs[s_:s_ + 1], w) / den,
                                                              rel=1e-6, abs=1e-7)


def test_tau_bootstrap_without_room_for_the_sign_matrices_gives_the_same_samples(monkeypatch):
    """Beyond ``MATRIX_BUDGET`` the sign matrices are built in blocks with every block of samples: same values."""
    models, data = _models_and_data(13, 14, 4)
    kw = dict(method="tau-a", n_samples=40, key=jax.random.key(5))
    with_matrices = {over: rsa.bootstrap(models, data, over=over, **kw) for over in ("stimuli", "both")}
    monkeypatch.setattr(tau_bootstrap, "MATRIX_BUDGET", 0)
    for over, ref in with_matrices.items():
        ds = rsa.bootstrap(models, data, over=over, **kw)
        np.testing.assert_allclose(ds.samples.values, ref.samples.values, atol=1e-6)
        np.testing.assert_allclose(ds.score.values, ref.score.values, atol=1e-12)


@pytest.mark.parametrize("method", ["corr", "cosine"])
def test_moment_scores_equal_the_weighted_comparisons(method):
    """Pearson / cosine and the per-sample noise ceiling from weighted moments (int8 products of fixed-point
    columns; float32 products where a weight passes int8) equal the weighted comparisons sample by sample; a sample
    in which a model RDM is constant gives NaN."""
    rng = np.random.default_rng(14)
    n = 12
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20)))) + 3.0
    models = np.stack([base + rng.normal(size=base.shape) for _ in range(2)])
    data = np.stack([base + 0.5 * rng.normal(size=base.shape) for _ in range(4)])
    small = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(5)]
                     + [np.r_[6, 6, np.zeros(n - 2, int)]])                              # one pair: constant
    large = np.r_[[np.r_[12, 11, rng.integers(0, 3, n - 2)]], small[:3]]                 # 12 · 11 > 127
    i, j = np.triu_indices(n, 1)

    def score(x, y, w):
        return pearson(x, y, w) if method == "corr" else np.sum(w * x * y) / np.sqrt(np.sum(w * x * x) *
                                                                                    np.sum(w * y * y))

    for counts in (small, large):
        scores = np.asarray(rsa._boot(models, data, counts.astype(np.float32), method, n))
        lo, hi = (np.asarray(t) for t in rsa._boot_ceilings(data, counts.astype(np.float32), method, n))
        for b, k in enumerate(counts):
            w = (k[i] * k[j]).astype(float)
            if np.ptp(models[0][w > 0]) == 0:
                assert np.isnan(scores[b]).all() if method == "corr" else np.isfinite(scores[b]).all()
                continue
            ref = np.array([[score(x, y, w) for y in data] for x in models])
            np.testing.assert_allclose(scores[b], ref, atol=2e-6)
            rlo, rhi = (float(t) for t in rsa.ceiling._ceiling_core(data, w, method))
            assert lo[b] == pytest.approx(rlo, abs=2e-6) and hi[b] == pytest.approx(rhi, abs=2e-6)


@contextlib.contextmanager
def _traces():
    """The functions JAX traces inside the block (a jitted function met with new static arguments or shapes)."""
    seen = []

    def listen(event, duration, fun_name=None, **_):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            seen.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


def test_the_trace_counter_sees_a_trace():
    with _traces() as seen:
        jax.jit(lambda x: x * 3)(np.float32(2.0))
    assert len(seen) == 1


@pytest.mark.parametrize("method,over", [("corr", "stimuli"), ("tau-a", "stimuli"), ("tau-a", "both"),
                                         ("spearman", "both"), ("cosine", "subjects")])
def test_a_new_sample_count_compiles_nothing(method, over):
    """The sample count is data: blocks of a fixed number of samples through one compiled function — a new
    ``n_samples`` traces nothing, and sample b (drawn from the key and b alone) is the same in both runs."""
    models, data = _models_and_data(15, 12, 3)
    kw = dict(method=method, over=over, key=jax.random.key(7))
    few = rsa.bootstrap(models, data, n_samples=30, **kw)
    with _traces() as seen:
        many = rsa.bootstrap(models, data, n_samples=2 * sampling.BLOCK + 77, **kw)
    assert seen == []
    assert many.samples.shape == (2 * sampling.BLOCK + 77, 2)
    np.testing.assert_array_equal(many.samples.values[:30], few.samples.values)
    if "ceiling_lower_samples" in few:
        np.testing.assert_array_equal(many.ceiling_lower_samples.values[:30], few.ceiling_lower_samples.values)


def test_samples_do_not_depend_on_the_block_size(monkeypatch):
    models, data = _models_and_data(16, 12, 3)
    for method, over in (("corr", "stimuli"), ("tau-a", "stimuli"), ("rho-a", "both")):
        kw = dict(method=method, over=over, n_samples=70, key=jax.random.key(8))
        ref = rsa.bootstrap(models, data, **kw)
        with monkeypatch.context() as mp:
            mp.setattr(sampling, "BLOCK", 16)
            ds = rsa.bootstrap(models, data, **kw)
        np.testing.assert_allclose(ds.samples.values, ref.samples.values, atol=1e-6)
    a = np.asarray(sampling.draw_counts(jax.random.key(3), np.int32(0), 64, 10))
    b = np.asarray(sampling.draw_counts(jax.random.key(3), np.int32(40), 8, 10))
    np.testing.assert_array_equal(a[40:48], b)
    assert (a.sum(1) == 10).all() and len({tuple(r) for r in a}) > 60


def test_tau_a_comparison_equals_a_python_loop():
    rng = np.random.default_rng(11)
    a, b = np.round(rng.normal(size=(2, 45)), 1)
    ref = _tau_forms_loop(a, [b], np.ones(45)) / (45 * 44)
    assert rsa.compare(a, b, "tau-a")[0, 0] == pytest.approx(ref, abs=1e-12)
    assert rsa.compare(a, np.r_[np.zeros(44), 1.0], "tau-a")[0, 0] == pytest.approx(
        _tau_forms_loop(a, [np.r_[np.zeros(44), 1.0]], np.ones(45)) / (45 * 44), abs=1e-12)


@pytest.mark.parametrize("method", ["corr", "cosine", "spearman", "rho-a"])
def test_per_sample_noise_ceiling_equals_rsatoolbox_on_the_resampled_rdms(method):
    from rsatoolbox.inference import boot_noise_ceiling

    rng = np.random.default_rng(8)
    n = 12
    base = rsa.upper(rsa.rdm(rng.normal(size=(n, 20))))
    data = np.stack([base + 0.5 * base.std() * rng.normal(size=base.shape) for _ in range(4)])
    idx = rng.integers(0, n, n)
    counts = jax.numpy.asarray(np.bincount(idx, minlength=n).astype(np.float32)[None])
    lo, hi = (float(np.asarray(t)[0]) for t in rsa._boot_ceilings(jax.numpy.asarray(data, jax.numpy.float32),
                                                                    counts, method, n))
    rlo, rhi = boot_noise_ceiling(RDMs(data).subsample_pattern("index", idx), method=method)
    assert lo == pytest.approx(rlo, abs=2e-5) and hi == pytest.approx(rhi, abs=2e-5)


def test_bootstrap_and_permutation_behave():
    rng = np.random.default_rng(6)
    n = 20
    truth = rsa.upper(rsa.rdm(rng.normal(size=(n, 30))))
    sd = truth.std()
    data = np.stack([truth + sd * rng.normal(size=truth.shape) for _ in range(5)])
    good, bad = truth + 0.5 * sd * rng.normal(size=truth.shape), rng.normal(size=truth.shape)
    ds = rsa.bootstrap(np.stack([good, bad]), data, method="corr", n_samples=300, key=jax.random.key(0),
                       model_names=["good", "bad"])
    assert ds.samples.shape == (300, 2) and list(ds.model.values) == ["good", "bad"]
    assert ds.ci_low.sel(model="good") > ds.ci_high.sel(model="bad")
    assert ds.ci_low.sel(model="good") < ds.score.sel(model="good") < ds.ci_high.sel(model="good")
    assert abs(float(ds.samples.mean("sample").sel(model="good")) - float(ds.score.sel(model="good"))) < 0.05
    assert ds.attrs["ceiling_lower"] < ds.attrs["ceiling_upper"]
    assert ds.ceiling_lower_samples.shape == (300,) and float((ds.ceiling_lower_samples < ds.ceiling_upper_samples)
                                                              .mean()) > 0.95
    both = rsa.bootstrap(good, data, n_samples=200, over="both", key=jax.random.key(1))
    subj = rsa.bootstrap(good, data, n_samples=200, over="subjects", key=jax.random.key(1))
    assert float(both.sem[0]) > float(subj.sem[0]) > 0
    p = rsa.permutation_test(good, data, n_permutations=200, key=jax.random.key(2))
    assert p["p"] < 0.01 and abs(np.mean(p["null"])) < 0.05
    p_bad = rsa.permutation_test(bad, data, n_permutations=200, key=jax.random.key(2))
    assert p_bad["p"] > 0.01


def test_bad_input_is_named():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 5))
    with pytest.raises(ValueError, match="at least 3 stimuli"):
        rsa.rdm(x[:2])
    bad = x.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN/inf .*first at index \(2, 3\)"):
        rsa.rdm(bad)
    const = x.copy()
    const[4] = 1.0
    with pytest.raises(ValueError, match=r"stimuli \[4\] evoke a constant pattern"):
        rsa.rdm(const)
    with pytest.raises(ValueError, match="method must be one of"):
        rsa.rdm(x, "manhattan")
    with pytest.raises(ValueError, match="needs noise="):
        rsa.rdm(x, "mahalanobis")
    r = rsa.rdm(x)
    with pytest.raises(ValueError, match="a has RDMs over 6 stimuli, b over 5"):
        rsa.compare(r, rsa.rdm(x[:5]))
    with pytest.raises(ValueError, match="constant"):
        rsa.compare(r, np.ones(15))
    with pytest.raises(ValueError, match="NaN"):
        rsa.compare(r, np.full(15, np.nan))
    with pytest.raises(ValueError, match="noise ceilings support"):
        rsa.noise_ceiling(np.stack([r, 2 * r]), "corr_cov")


def test_weighted_rsa_recovers_the_mixture():
    rng = np.random.default_rng(9)
    n = 30
    comps = np.stack([rsa.upper(rsa.rdm(rng.normal(size=(n, 15)))) for _ in range(3)])
    z = (comps - comps.mean(1, keepdims=True)) / comps.std(1, keepdims=True)
    truth = 0.7 * z[0] + 0.3 * z[1]
    data = np.stack([truth + 0.3 * rng.normal(size=truth.shape) for _ in range(5)])
    ds = rsa.fit_weighted(comps, data, n_folds=3, key=jax.random.key(0), component_names=["a", "b", "c"])
    w = ds.weights.values
    assert w[2] < 0.1 * w[0] and w[0] / w[1] == pytest.approx(7 / 3, rel=0.25)
    assert ds.attrs["cv_score"] > ds.component_cv_score.max() + 0.05          # the mixture beats each part
    with pytest.raises(ValueError, match="n_folds must be between 2 and 10"):
        rsa.fit_weighted(comps, data, n_folds=11)
    assert ds.attrs["folds_without_prediction"] == ""
    anti = np.stack([-truth + 0.3 * rng.normal(size=truth.shape) for _ in range(5)])     # no positive weight fits
    none = rsa.fit_weighted(comps[:2], anti, n_folds=3, key=jax.random.key(0))
    assert none.attrs["folds_without_prediction"] == "0, 1, 2" and none.attrs["cv_score"] == 0.0
    assert (none.fold_scores.values == 0).all() and (none.weights.values == 0).all()


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
def test_rdm_jax_is_rdm_in_jax(method):
    """One implementation of the distances: the differentiable RDM equals the checked float64 one (to float32), and
    its gradient exists."""
    x = np.random.default_rng(3).normal(size=(7, 12)) + 5.0
    np.testing.assert_allclose(np.asarray(rsa.rdm_jax(jax.numpy.asarray(x, jax.numpy.float32), method)),
                               rsa.rdm(x, method), rtol=2e-5, atol=2e-5)
    g = jax.grad(lambda z: rsa.rdm_jax(z, method).sum())(jax.numpy.asarray(x, jax.numpy.float32))
    assert np.isfinite(np.asarray(g)).all()
