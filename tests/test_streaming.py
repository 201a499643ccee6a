"""Streaming per-site reductions: equal to recording every site and computing in NumPy float64, accumulators whose
shapes do not depend on the number of stimuli, and no retrace for a new stimulus count or new responses."""
import jax
import numpy as np
import pytest
from tracing import at_most_traces

from insilico import zoo
from insilico.analysis import rsa
from insilico.analysis import sufficient as suf
from insilico.analysis.encoding import ALPHAS, encode, pearson_columns, ridge_cv
from insilico.probes import brain
from insilico.probes import streaming as st
from insilico.validation import ArgumentError


@pytest.fixture(scope="module")
def images():
    return np.asarray(jax.random.uniform(jax.random.key(0), (60, 8, 8, 3)))


def _responses(feats, q=4, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    y = feats @ rng.normal(size=(feats.shape[1], q))
    return y + noise * y.std(0) * rng.normal(size=y.shape)


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_site_rdms_equal_the_rdms_of_recorded_sites(tiny_convnet, images, method):
    feats = brain.record_sites(tiny_convnet, images)
    one = st.site_rdms(tiny_convnet, images, rdm_method=method, batch_size=16)
    assert one.attrs["preflight_anchor"] == 60 and one.attrs["exact"] == 1        # every row held: one pass
    plan = st.preflight(tiny_convnet, 60, None, "rdm", dims=None, batch_size=16)
    row = sum(2 * (4 * int(np.prod(u)) + 8 * 60) for u in tiny_convnet.sites.values())
    few = st.site_rdms(tiny_convnet, images, rdm_method=method, batch_size=16,
                       max_bytes=plan.step_bytes + 25 * row + 1)
    assert few.attrs["preflight_anchor"] == 25                                    # three anchor passes
    for s in tiny_convnet.sites:
        want = rsa.rdm(feats[s], method)
        np.testing.assert_allclose(one[s], want, atol=1e-6, rtol=0, err_msg=s)
        np.testing.assert_allclose(few[s], want, atol=1e-6, rtol=0, err_msg=s)


@pytest.mark.parametrize("method", ["correlation", "euclidean"])
def test_projected_rdms_project_the_patterns_the_rdm_compares(tiny_convnet, images, method):
    """site_rdms(dims=...) against NumPy with the same Gaussian matrix: "correlation" projects the patterns centred
    and scaled per stimulus (and scales the projections again) — centring after a projection would leave the mean
    in; "euclidean" stays per unit of the site; a site with fewer units than ``dims`` is exact."""
    from insilico.analysis.projection import random_matrix

    key = jax.random.key(3)
    rdms = st.site_rdms(tiny_convnet, images, ["conv1", "fc1"], rdm_method=method, dims=20, key=key, batch_size=16)
    feats = brain.record_sites(tiny_convnet, images, ["conv1", "fc1"])
    x = np.asarray(feats["conv1"], np.float64).reshape(60, -1)
    w = random_matrix(key, list(tiny_convnet.sites).index("conv1"), x.shape[1], 20).astype(np.float64)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)
    if method == "correlation":
        p = unit(unit(x - x.mean(1, keepdims=True)) @ w)
        want = 1.0 - p @ p.T
    else:
        p = x @ w
        sq = (p ** 2).sum(1)
        want = (sq[:, None] + sq[None, :] - 2 * p @ p.T) / x.shape[1]
    np.fill_diagonal(want, 0.0)
    assert rdms.attrs["exact"] == 0
    np.testing.assert_allclose(rdms["conv1"], want, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(rdms["fc1"], rsa.rdm(feats["fc1"], method), atol=1e-6, rtol=0)    # 8 units: exact
    exact = rsa.rdm(feats["conv1"], method)
    upper = np.triu_indices(60, 1)
    assert 0.7 < rdms["conv1"][upper].mean() / exact[upper].mean() < 1.3             # the same scale on average
    near = st.site_rdms(tiny_convnet, images, ["conv1"], rdm_method=method, dims=200, key=key, batch_size=16)
    assert np.abs(near["conv1"] - exact)[upper].mean() < 1.5 / np.sqrt(200) * exact[upper].mean()  # ~ 1/√dims


def test_random_projection_drawn_in_blocks_inside_the_step():
    subject = zoo.load("cifar_convnet")
    x = np.asarray(jax.random.uniform(jax.random.key(1), (10, 32, 32, 3)))
    key = jax.random.key(4)
    out = st.project_sites(subject, x, ["conv1", "fc1"], dims=40, method="random", key=key, batch_size=4,
                           max_bytes=1e7)                     # the matrices do not fit: drawn inside every step
    held = st.project_sites(subject, x, ["conv1", "fc1"], dims=40, method="random", key=key, batch_size=4)
    feats = brain.record_sites(subject, x, ["conv1", "fc1"])
    units = feats["conv1"].shape[1]
    assert units > st.CHUNK and out["conv1"].shape == (10, 40)                   # several blocks of units
    w = st.random_matrix(key, list(subject.sites).index("conv1"), units, 40).astype(np.float64)
    want, tol = feats["conv1"] @ w, 2e-6 * np.abs(feats["conv1"]).sum(1).max()      # float32 sums of 32,768 terms
    np.testing.assert_allclose(out["conv1"], want, rtol=0, atol=tol)
    np.testing.assert_allclose(held["conv1"], want, rtol=0, atol=tol)
    if feats["fc1"].shape[1] > 40:
        w = st.random_matrix(key, list(subject.sites).index("fc1"), feats["fc1"].shape[1], 40)
        np.testing.assert_allclose(out["fc1"], feats["fc1"] @ w, rtol=1e-4, atol=1e-4)


def test_pca_projection_is_the_reference_pca(tiny_convnet, images):
    ref = np.asarray(jax.random.uniform(jax.random.key(5), (30, 8, 8, 3)))
    out = st.project_sites(tiny_convnet, images, ["conv1", "fc1"], dims=10, method="pca", reference=ref,
                           key=jax.random.key(0), batch_size=16)
    r = brain.record_sites(tiny_convnet, ref, ["conv1"])["conv1"]
    mu = r.mean(0)
    _, _, vt = np.linalg.svd(r - mu, full_matrices=False)
    v = vt[:10].T
    v *= np.sign(v[np.abs(v).argmax(0), np.arange(10)])
    x = brain.record_sites(tiny_convnet, images, ["conv1"])["conv1"]
    np.testing.assert_allclose(out["conv1"], (x - mu) @ v, rtol=0, atol=1e-4)
    assert out["fc1"].shape == (60, 8)                                            # 8 units ≤ dims: unprojected
    own = st.project_sites(tiny_convnet, images, ["conv1"], dims=10, method="pca", key=jax.random.key(0))
    same = st.project_sites(tiny_convnet, images, ["conv1"], dims=10, method="pca", reference=images,
                            key=jax.random.key(0))
    np.testing.assert_array_equal(own["conv1"], same["conv1"])          # default reference: the stimuli themselves


def _direct(x, y, folds, alphas=ALPHAS):
    """Ridge per outer fold with ridge_cv on the training folds (in fold order, so its inner folds are the training
    folds), and the held-out r: the record-everything computation in NumPy float64."""
    k = folds.max() + 1
    r, a = np.zeros((k, y.shape[1])), np.zeros((k, y.shape[1]))
    for o in range(k):
        tr = np.concatenate([np.flatnonzero(folds == g) for g in range(k) if g != o])
        model = ridge_cv(x[tr], y[tr], alphas=alphas, n_folds=k - 1)
        r[o], a[o] = pearson_columns(model.predict(x[folds == o]), y[folds == o]), model.alpha
    return r, a


def test_encoding_scores_equal_ridge_on_the_recorded_projections(tiny_convnet, images):
    key = jax.random.key(6)
    _, k_proj = jax.random.split(key)
    sites = ["conv2", "fc1"]
    proj = st.project_sites(tiny_convnet, images, sites, dims=20, method="random", key=k_proj, batch_size=16)
    y = _responses(proj["conv2"].astype(np.float64))
    folds = np.arange(60) % 5
    ds = st.encoding_scores(tiny_convnet, images, y, sites, folds=folds, dims=20, projection="random", key=key,
                            batch_size=16)
    assert ds.r.dims == ("site", "neuroid", "split") and ds.r.shape == (2, 4, 5)
    for s in sites:
        r, a = _direct(proj[s].astype(np.float64), y, folds)
        np.testing.assert_allclose(ds.r.sel(site=s).values.T, r, atol=1e-6, rtol=0, err_msg=s)
        np.testing.assert_array_equal(ds.alpha.sel(site=s).values.T, a)
        assert float(ds.raw.sel(site=s)) == pytest.approx(np.median(r.mean(0)))
    assert "median over neurons" in ds.attrs["formula"] and ds.attrs["preflight_peak_bytes"] > 0
    assert ds.attrs["max_rss_after_bytes"] >= ds.attrs["max_rss_before_bytes"] > 0


def test_encoding_scores_agree_with_encode_in_distribution(tiny_convnet):
    x = np.asarray(jax.random.uniform(jax.random.key(7), (200, 8, 8, 3)))
    feats = brain.record_sites(tiny_convnet, x, ["conv2"])["conv2"]
    y = _responses(feats, q=6, seed=2, noise=1.0)
    ds = st.encoding_scores(tiny_convnet, x, y, ["conv2"], n_splits=5, dims=1000, key=jax.random.key(8),
                            batch_size=50)
    res = encode(feats, y, n_splits=5, test_fraction=0.2, key=jax.random.key(9))
    spread = np.std(res.distribution) + np.std(ds.distribution.values[0])
    assert abs(float(ds.raw[0]) - res.raw) < 2 * spread + 0.02, (float(ds.raw[0]), res.raw, spread)


def test_accumulators_do_not_grow_with_stimuli_and_nothing_retraces(tiny_convnet):
    key = jax.random.key(10)
    small = np.asarray(jax.random.uniform(jax.random.key(11), (64, 8, 8, 3)))
    large = np.concatenate([small] * 10)
    rng = np.random.default_rng(3)
    a = st.encoding_scores(tiny_convnet, small, rng.normal(size=(64, 3)), n_splits=4, dims=16,
                           projection="random", key=key, batch_size=32)
    with at_most_traces(0):          # a new stimulus count and new responses compile nothing
        b = st.encoding_scores(tiny_convnet, large, rng.normal(size=(640, 3)), n_splits=4, dims=16,
                               projection="random", key=key, batch_size=32)
    for name in ("accumulator_shapes", "batch_shapes", "preflight_step_bytes", "preflight_accumulator_bytes",
                 "preflight_peak_bytes"):
        assert a.attrs[name] == b.attrs[name], name
    assert "640" not in a.attrs["accumulator_shapes"] + a.attrs["batch_shapes"]
    assert a.attrs["n_stimuli"] == 64 and b.attrs["n_stimuli"] == 640


def test_images_as_a_sequence_are_checked_batch_by_batch(tiny_convnet, images):
    class Lazy:
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, sl):
            return self.x[sl]

    want = st.site_rdms(tiny_convnet, images, ["fc1"], batch_size=16)["fc1"]
    np.testing.assert_array_equal(st.site_rdms(tiny_convnet, Lazy(images), ["fc1"], batch_size=16)["fc1"], want)
    bad = images.copy()
    bad[40, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"images\[32:48\] contains 1 NaN"):
        st.site_rdms(tiny_convnet, Lazy(bad), ["fc1"], batch_size=16)


def test_preflight_fits_the_budget(tiny_convnet):
    big = st.preflight(tiny_convnet, 1000, None, "encoding", dims=50, n_splits=5, n_neurons=10)
    assert big.batch_size == 256 and big.peak_bytes <= big.max_bytes and big.groups == (tuple(tiny_convnet.sites),)
    tight = st.preflight(tiny_convnet, 1000, None, "encoding", dims=50, n_splits=5, n_neurons=10,
                         max_bytes=big.accumulator_bytes + big.step_bytes / 4)
    assert tight.batch_size < big.batch_size and tight.peak_bytes <= tight.max_bytes
    split = st.preflight(tiny_convnet, 1000, None, "encoding", dims=50, n_splits=5, n_neurons=10,
                         max_bytes=big.accumulator_bytes)
    assert len(split.groups) > 1 and sum(map(len, split.groups)) == len(tiny_convnet.sites)


def test_arguments_are_checked(tiny_convnet, images):
    key = jax.random.key(0)
    y = np.random.default_rng(0).normal(size=(60, 2))
    with pytest.raises(ArgumentError, match="rdm_method must be one of 'correlation', 'euclidean'; got 'tau'"):
        st.site_rdms(tiny_convnet, images, rdm_method="tau")
    with pytest.raises(ArgumentError, match=r"responses contains 1 NaN/inf value\(s\), the first at index \(3, 1\)"):
        st.encoding_scores(tiny_convnet, images, np.where(np.arange(120).reshape(60, 2) == 7, np.nan, y), key=key)
    with pytest.raises(ArgumentError, match=r"one row per image \(60\); got shape \(59, 2\)"):
        st.encoding_scores(tiny_convnet, images, y[:59], key=key)
    with pytest.raises(ArgumentError, match=r"folds must be ids 0\.\.K−1 with every fold used"):
        st.encoding_scores(tiny_convnet, images, y, folds=np.arange(60) % 4 * 2, key=key)
    with pytest.raises(ArgumentError, match="n_splits must be an integer ≥ 3 and ≤ 60; got 2"):
        st.encoding_scores(tiny_convnet, images, y, n_splits=2, key=key)
    with pytest.raises(ArgumentError, match="dims must be an integer ≥ 1; got 0"):
        st.project_sites(tiny_convnet, images, dims=0, key=key)
    with pytest.raises(ArgumentError, match="key must be a PRNG key"):
        st.encoding_scores(tiny_convnet, images, y, key=None)
    with pytest.raises(ArgumentError, match="max_bytes must be a number > 0; got -1"):
        st.site_rdms(tiny_convnet, images, max_bytes=-1)
    with pytest.raises(ArgumentError, match="respond identically to every stimulus"):
        st.encoding_scores(tiny_convnet, images, np.ones((60, 2)), key=key)
    with pytest.raises(KeyError, match="unknown site 'conv9'"):
        st.site_rdms(tiny_convnet, images, ["conv9"])


def test_sufficient_ridge_matches_ridge_cv_on_random_moments():
    rng = np.random.default_rng(4)
    x, folds = rng.normal(size=(48, 7)) + 3.0, np.arange(48) % 4
    y = x @ rng.normal(size=(7, 3)) + rng.normal(size=(48, 3)) + 50.0
    onehot = np.eye(4)[folds]
    n, sy, syy = suf.y_moments(y, folds, 4)
    m = suf.FoldMoments(n, onehot.T @ x, np.einsum("bk,bi,bj->kij", onehot, x, x), sy, syy,
                        np.einsum("bk,bi,bq->kiq", onehot, x, y))
    r, a = suf.ridge_scores(m, np.asarray(ALPHAS))
    want_r, want_a = _direct(x, y, folds)
    np.testing.assert_allclose(r, want_r, atol=1e-9, rtol=0)
    np.testing.assert_array_equal(a, want_a)
