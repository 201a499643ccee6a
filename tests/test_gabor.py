import numpy as np
import pytest

from insilico.analysis.gabor import PARAMS, _grid, _initial, fit_gabor, gabor_filter, gabor_similarity
from insilico.data import stimuli


def _stim(size, orientation, sf, phase, sigma, center):
    """Zero-mean Gabor of amplitude 0.5 from the stimulus generator."""
    return np.asarray(stimuli.gabor(size, orientation, sf, phase=phase, sigma=sigma, center=center))[..., 0] - 0.5


def _dori(a, b):
    return np.abs((np.asarray(a) - b + 90.0) % 180.0 - 90.0)


def _dphase(a, b):
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


CASES = [  # size, orientation, sf, phase, sigma, center (x, y) px
    (11, 0.0, 0.25, 0.0, 2.5, (0.0, 0.0)),
    (11, 30.0, 0.2, 90.0, 2.5, (1.0, -0.5)),
    (11, 160.0, 0.3, 60.0, 2.0, (-1.0, 1.0)),
    (16, 75.0, 0.15, 200.0, 3.5, (-2.0, 1.5)),
    (16, 120.0, 0.1, 45.0, 4.0, (1.5, 2.0)),
    (16, 160.0, 0.3, 300.0, 3.0, (0.0, -2.0)),
]


def test_gabor_filter_matches_stimulus_convention():
    for size, ori, sf, ph, sigma, (cx, cy) in CASES:
        p = dict(cx=cx, cy=cy, sigma_x=sigma, sigma_y=sigma, orientation=ori, sf=sf, phase=ph, amplitude=0.5)
        np.testing.assert_allclose(gabor_filter(size, p), _stim(size, ori, sf, ph, sigma, (cx, cy)), atol=1e-5)


def test_gabor_filter_axes():
    base = dict(sigma_x=1e4, sigma_y=1e4, sf=0.1, phase=90.0)
    vertical = gabor_filter((6, 9), {**base, "orientation": 0.0})
    horizontal = gabor_filter((6, 9), {**base, "orientation": 90.0})
    assert vertical.shape == horizontal.shape == (6, 9)
    np.testing.assert_allclose(vertical, vertical[:1].repeat(6, 0), atol=1e-6)        # constant along columns
    np.testing.assert_allclose(horizontal, horizontal[:, :1].repeat(9, 1), atol=1e-6)  # constant along rows
    # cos(2π·0.1·y + 90°) = −sin(2π·0.1·y): negative above the centre because y points up
    assert horizontal[0, 0] < 0 < horizontal[-1, 0] and vertical[0, 0] > 0 > vertical[0, -1]
    with pytest.raises(KeyError, match="sf"):
        gabor_filter(5, {k: v for k, v in base.items() if k != "sf"} | {"orientation": 0.0})


@pytest.mark.parametrize("shape, ori", [((16, 16), 30.0), ((16, 16), 120.0), ((12, 20), 60.0), ((20, 12), 160.0)])
def test_initial_estimate(shape, ori):
    """The FFT start already has the right orientation (rows run downwards, y upwards) and sf."""
    f = gabor_filter(shape, dict(cx=1.0, cy=-1.0, sigma_x=3.0, sigma_y=3.0, orientation=ori, sf=0.25))
    cx, cy, sx, sy, theta, sf = _initial(f, *_grid(shape))
    assert _dori(np.rad2deg(theta), ori) < 5.0 and abs(sf / 0.25 - 1) < 0.1
    assert abs(cx - 1.0) < 1.0 and abs(cy + 1.0) < 1.0 and 1.5 < sx < 6.0


@pytest.mark.parametrize("size, ori, sf, ph, sigma, center", CASES)
def test_recovers_stimulus_gabors(size, ori, sf, ph, sigma, center):
    f = _stim(size, ori, sf, ph, sigma, center)
    ds = fit_gabor(f)
    assert ds.sizes["unit"] == 1 and ds.fitted.shape == (1, size, size)
    r = ds.isel(unit=0)
    assert _dori(r.orientation, ori) < 3.0
    assert abs(float(r.sf) / sf - 1) < 0.05
    assert abs(float(r.cx) - center[0]) < 0.5 and abs(float(r.cy) - center[1]) < 0.5
    assert float(r.r2) > 0.99
    assert _dphase(r.phase, ph) < 5.0                               # canonical (θ in [0, 180)) phase
    assert float(r.amplitude) == pytest.approx(0.5, rel=0.05)
    assert float(r.sigma_x) == pytest.approx(sigma, rel=0.05) and float(r.sigma_y) == pytest.approx(sigma, rel=0.05)
    np.testing.assert_allclose(r.fitted, f, atol=1e-3)


def test_batch_nonsquare_elliptical_and_canonical():
    shape = (12, 20)
    truth = [dict(cx=2.0, cy=-1.0, sigma_x=2.0, sigma_y=4.0, orientation=200.0, sf=0.2, phase=50.0,
                  amplitude=-1.5, offset=0.3),           # ≡ θ 20°, φ 130°, amplitude 1.5
             dict(cx=-3.0, cy=1.0, sigma_x=3.0, sigma_y=1.5, orientation=75.0, sf=0.25, phase=10.0, amplitude=2.0),
             dict(cx=0.5, cy=0.5, sigma_x=2.5, sigma_y=2.5, orientation=135.0, sf=0.15, phase=270.0, amplitude=1.0,
                  offset=-1.0)]
    expected = [(20.0, 130.0, 1.5), (75.0, 10.0, 2.0), (135.0, 270.0, 1.0)]
    filters = np.stack([gabor_filter(shape, p) for p in truth])
    ds = fit_gabor(filters)
    assert ds.fitted.shape == (3, 12, 20)
    np.testing.assert_allclose(ds.y, 5.5 - np.arange(12)) and np.testing.assert_allclose(ds.x, np.arange(20) - 9.5)
    for u, (p, (ori, ph, amp)) in enumerate(zip(truth, expected)):
        r = ds.isel(unit=u)
        assert _dori(r.orientation, ori) < 3.0 and 0.0 <= float(r.orientation) < 180.0
        assert _dphase(r.phase, ph) < 5.0 and 0.0 <= float(r.phase) < 360.0
        assert float(r.amplitude) == pytest.approx(amp, rel=0.05)
        assert abs(float(r.sf) / p["sf"] - 1) < 0.05 and float(r.r2) > 0.99
        assert abs(float(r.cx) - p["cx"]) < 0.5 and abs(float(r.cy) - p["cy"]) < 0.5
        for k in ("sigma_x", "sigma_y", "offset"):
            assert float(r[k]) == pytest.approx(p.get(k, 0.0), rel=0.05, abs=1e-3)
        np.testing.assert_allclose(gabor_filter(shape, r), filters[u], atol=1e-3)   # Dataset row round trip


def test_noisy_gabor_and_pure_noise():
    rng = np.random.default_rng(0)
    g = _stim(16, 30.0, 0.2, 0.0, 3.0, (0.0, 0.0))
    noise = rng.normal(0.0, 0.1, size=(2, 16, 16))
    ds = fit_gabor(np.stack([g + noise[0], noise[1]]))
    r2_gabor, r2_noise = ds.r2.values
    f = g + noise[0]
    r2_truth = 1 - ((f - g) ** 2).sum() / ((f - f.mean()) ** 2).sum()   # the generating Gabor's r2 (~0.6)
    assert r2_gabor >= r2_truth - 1e-3 and r2_gabor > r2_noise + 0.4
    assert _dori(ds.orientation[0], 30.0) < 5.0
    # r2 is the coefficient of determination of `fitted`
    assert float(ds.r2[0]) == pytest.approx(1 - ((f - ds.fitted[0]) ** 2).sum() / ((f - f.mean()) ** 2).sum())


@pytest.mark.parametrize("size", [11, 16])
def test_pure_noise_has_low_r2(size):
    ds = fit_gabor(np.random.default_rng(size).normal(size=(12, size, size)))
    assert (ds.r2.values < 0.5).all() and np.isfinite(ds.r2.values).all()


def test_color_filter():
    g = _stim(16, 120.0, 0.2, 45.0, 3.0, (1.0, 0.0))
    color = np.array([0.8, -0.2, 0.5]) / np.linalg.norm([0.8, -0.2, 0.5])
    opponent = np.array([1.0, -0.6, -0.4]) / np.linalg.norm([1.0, -0.6, -0.4])   # channel mean is zero
    rng = np.random.default_rng(1)
    filters = np.stack([g[..., None] * color, -g[..., None] * color, g[..., None] * -opponent])
    filters[:2] += rng.normal(0, 1e-3, filters[:2].shape)            # the opponent one stays an exact tie
    ds = fit_gabor(filters)
    assert ds.color.shape == (3, 3) and ds.fitted.shape == (3, 16, 16)
    assert (np.abs(ds.color.values @ np.stack([color, color, opponent]).T).diagonal() > 0.99).all()
    # sign: the projection correlates positively with the channel mean; tie -> largest entry positive
    assert ds.color.values[0] @ color > 0.99 and ds.color.values[1] @ color > 0.99
    assert ds.color.values[2] @ opponent > 0.99
    assert (_dori(ds.orientation, 120.0) < 3.0).all() and (ds.r2 > 0.99).all()
    assert _dphase(ds.phase[1], ds.phase[0] + 180.0) < 5.0 and _dphase(ds.phase[2], ds.phase[0] + 180.0) < 5.0
    single = fit_gabor(g[None, ..., None])
    assert single.color.shape == (1, 1) and float(single.color[0, 0]) == pytest.approx(1.0)


def test_constant_filter_and_determinism():
    ds = fit_gabor(np.full((2, 7, 7), 0.25))
    assert np.isnan(ds.r2).all() and np.allclose(ds.offset, 0.25) and np.allclose(ds.amplitude, 0.0)
    f = np.stack([_stim(11, 30.0, 0.2, 90.0, 2.5, (0, 0)), np.random.default_rng(2).normal(size=(11, 11))])
    a, b = fit_gabor(f), fit_gabor(f)
    for k in (*PARAMS, "r2"):
        np.testing.assert_array_equal(a[k], b[k])


def test_errors():
    f = np.zeros((3, 8, 8))
    f[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_gabor(f)
    f[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match="inf"):
        fit_gabor(f)
    for bad in (np.zeros(8), np.zeros((1, 2, 8, 8, 3))):
        with pytest.raises(ValueError, match="ndim"):
            fit_gabor(bad)
    with pytest.raises(ValueError, match="n_starts"):
        fit_gabor(np.ones((8, 8)), n_starts=0)


def test_gabor_similarity():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 5, 9, 9, 3))
    g = _stim(11, 30.0, 0.2, 0.0, 2.5, (0, 0))
    assert gabor_similarity(g, -3 * g + 1) == pytest.approx(1.0)
    assert gabor_similarity(g, g.T) < 0.99
    sim = gabor_similarity(a, b)
    expected = [abs(np.corrcoef(x.ravel(), y.ravel())[0, 1]) for x, y in zip(a, b)]
    assert sim.shape == (5,) and np.allclose(sim, expected)
    many = np.stack([g, g.T, -g])
    np.testing.assert_allclose(gabor_similarity(g, many), [1.0, gabor_similarity(g, g.T), 1.0])
