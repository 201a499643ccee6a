"""Encoding models: ridge-CV against the closed form, PLS against scikit-learn, reliability, held-out scoring."""
import jax
import numpy as np
import pytest

from insilico.analysis import encoding as enc


@pytest.fixture(scope="module")
def linear_world():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 15))
    w = rng.normal(size=(15, 6))
    signal = x @ w
    y = signal + rng.normal(size=signal.shape) * signal.std(0) * np.array([0.2, 0.5, 1.0, 2.0, 4.0, 8.0])
    return x, y


def test_ridge_matches_the_closed_form(linear_world):
    x, y = linear_world
    xc, yc = x - x.mean(0), y - y.mean(0)
    for alpha in (0.0, 3.0, 1e3):                       # a one-value grid: the refit is the closed form
        w = enc.ridge_cv(x, y, alphas=[alpha]).weights
        ref = np.linalg.solve(xc.T @ xc + alpha * np.eye(15), xc.T @ yc)
        assert np.allclose(w, ref, atol=1e-8)
    m = enc.ridge_cv(x, y, alphas=[0.1, 10.0, 1e4], key=jax.random.key(0))
    for k in range(6):                                  # the refit uses the chosen α of each target
        a = m.alpha[k]
        ref = np.linalg.solve(xc.T @ xc + a * np.eye(15), xc.T @ yc[:, k])
        assert np.allclose(m.weights[:, k], ref, atol=1e-8)
    assert m.cv_scores.shape == (3, 6) and m.alpha[0] <= m.alpha[-1]   # noisier targets pick more shrinkage
    assert np.allclose(m.predict(x), x @ m.weights + (m.y_mean - m.x_mean @ m.weights))


def test_ridge_cv_scores_equal_explicit_folds(linear_world):
    x, y = linear_world
    m = enc.ridge_cv(x, y[:, :2], alphas=[1.0], n_folds=4)
    pred = np.zeros((120, 2))
    for test in np.array_split(np.arange(120), 4):
        train = np.setdiff1d(np.arange(120), test)
        xm, ym = x[train].mean(0), y[train, :2].mean(0)
        xc = x[train] - xm
        w = np.linalg.solve(xc.T @ xc + np.eye(15), xc.T @ (y[train, :2] - ym))
        pred[test] = (x[test] - xm) @ w + ym
    assert np.allclose(m.cv_scores[0], [np.corrcoef(pred[:, k], y[:, k])[0, 1] for k in range(2)])


def test_pls_matches_scikit_learn(linear_world):
    sklearn = pytest.importorskip("sklearn.cross_decomposition")
    x, y = linear_world
    for k in (1, 3, 10):
        ours = enc.pls(x[:100], y[:100], n_components=k)
        ref = sklearn.PLSRegression(n_components=k, scale=True).fit(x[:100], y[:100])
        assert np.allclose(ours.predict(x[100:]), ref.predict(x[100:]), atol=1e-6)
    assert enc.pls(x[:10], y[:10], n_components=25).n_components == 9          # capped at stimuli − 1


def test_split_half_reliability_recovers_the_signal_fraction():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(200, 3))
    noise_sd = np.array([0.5, 1.0, 2.0])
    trials = signal[..., None] + rng.normal(size=(200, 3, 10)) * noise_sd[None, :, None]
    rel = enc.split_half_reliability(trials, n_splits=50, key=jax.random.key(0))
    expected = 1 / (1 + noise_sd ** 2 / 10)           # reliability of a 10-trial mean
    assert np.allclose(rel, expected, atol=0.03)
    with pytest.raises(ValueError, match="at least 2 repetitions"):
        enc.split_half_reliability(trials[..., :1], key=jax.random.key(0))


def test_reliability_of_noise_neurons_stays_a_correlation_and_encode_takes_it():
    """Pure-noise neurons can have split-half r < -1/3, where 2r/(1+r) < -1: held at -1, so encode accepts the
    library's own reliabilities; NaN-padded repetitions are described as they are."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(20, 1))
    trials = np.concatenate([signal[..., None] + 0.3 * rng.normal(size=(20, 1, 4)),
                             rng.normal(size=(20, 99, 4))], 1)                  # 1 real neuron, 99 of noise
    raw = enc.split_half_reliability(trials, spearman_brown=False, key=jax.random.key(0))
    rel = enc.split_half_reliability(trials, key=jax.random.key(0))
    assert raw.min() < -1 / 3 and rel.min() == -1.0 and np.all(rel <= 1)
    low = raw > -1 / 3
    np.testing.assert_allclose(rel[low], 2 * raw[low] / (1 + raw[low]))
    x = np.concatenate([signal, rng.normal(size=(20, 3))], 1)
    enc.encode(x, trials.mean(2), n_splits=2, test_fraction=0.2, key=jax.random.key(1), ceiling=rel)   # no error
    full = enc.split_half_reliability(trials, key=jax.random.key(0))
    assert "the means of 2 and 2 repetitions" in full.formula and "a 4-repetition mean" in full.formula
    padded = trials.copy()
    padded[:5, :, 3] = np.nan                                                  # 5 stimuli with 3 repetitions
    text = enc.split_half_reliability(padded, key=jax.random.key(0)).formula
    assert "3-4 valid per stimulus and neuron" in text and "2 and 2" not in text


def test_encode_scores_held_out_and_normalizes(linear_world):
    x, y = linear_world
    r = enc.encode(x, y, n_splits=5, key=jax.random.key(0), ceiling=np.full(6, 0.8))
    assert r.per_split.shape == (5, 6) and r.distribution.shape == (5,)
    assert r.per_neuron[0] > 0.9 and r.per_neuron[0] > r.per_neuron[-1]       # predictivity falls with noise
    assert r.normalized == pytest.approx(r.raw / np.sqrt(0.8)) and "sqrt(median" in r.formula
    bs = enc.encode(x, y, n_splits=5, key=jax.random.key(0), ceiling=np.full(6, 0.8), normalization="brain-score")
    assert bs.normalized == pytest.approx(r.raw / 0.8) and "Brain-Score" in bs.formula
    p = enc.encode(x, y, method="pls", n_components=5, n_splits=3, key=jax.random.key(1))
    assert np.isnan(p.normalized) and p.per_neuron[0] > 0.9
    rng = np.random.default_rng(2)
    null = enc.encode(rng.normal(size=(120, 15)), y, n_splits=5, key=jax.random.key(0))
    assert abs(null.raw) < 0.2                                                # unrelated features predict nothing


def test_bad_input_is_named(linear_world):
    x, y = linear_world
    with pytest.raises(ValueError, match="features have 120 stimuli but responses 100"):
        enc.encode(x, y[:100], key=jax.random.key(0))
    bad = y.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"responses contains 1 NaN/inf value\(s\), the first at index \(5, 1\)"):
        enc.ridge_cv(x, bad)
    const = y.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"neurons \[2\] respond identically"):
        enc.encode(x, const, key=jax.random.key(0))
    with pytest.raises(ValueError, match="ceiling has 3 values for 6 neurons"):
        enc.encode(x, y, ceiling=np.ones(3), n_splits=2, key=jax.random.key(0))


def test_mismatched_stimulus_ids_are_an_error(linear_world):
    import xarray as xr

    x, y = linear_world
    ids = np.arange(120)
    fx = xr.DataArray(x, dims=("presentation", "unit"), coords={"stimulus_id": ("presentation", ids)})
    ry = xr.DataArray(y, dims=("presentation", "neuroid"), coords={"stimulus_id": ("presentation", ids[::-1])})
    with pytest.raises(ValueError, match=r"stimulus_id of features and responses differ at rows \[0, 1"):
        enc.encode(fx, ry, key=jax.random.key(0))
    ok = enc.encode(fx, ry.assign_coords(stimulus_id=("presentation", ids)), n_splits=2, key=jax.random.key(0))
    assert ok.per_neuron.shape == (6,)
