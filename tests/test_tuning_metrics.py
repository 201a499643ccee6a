"""Tuning-curve statistics (insilico.analysis.tuning) against independent references, and on real V1/V2 cells."""
import numpy as np
import pytest
from scipy.optimize import brentq

from insilico.analysis.tuning import (
    circular_halfwidth,
    log_bandwidth,
    modulation_ratio,
    osi,
    preferred_log_peak,
    vector_preferred_orientation,
)
from insilico.data import DataNotFoundError, goris2015
from insilico.validation import ArgumentError

FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def gauss_log2(values, peak, sigma_oct, amp=1.0):
    return amp * np.exp(-0.5 * ((np.log2(values) - np.log2(peak)) / sigma_oct) ** 2)


def test_parabola_in_log2_is_recovered_exactly_on_uneven_grid():
    v = np.array([0.3, 0.5, 1.1, 2.0, 2.9, 7.0])                 # uneven spacing in log2
    r = 5 - (np.log2(v) - np.log2(1.6)) ** 2                     # vertex between samples, at 1.6
    assert preferred_log_peak(v, r) == pytest.approx(1.6, rel=1e-12)
    assert preferred_log_peak(v, np.arange(6.0)) == 7.0     # rising curve: edge value
    assert preferred_log_peak(v, -np.arange(6.0)) == 0.3


def test_gaussian_peak_and_bandwidth_dense_sampling():
    v = np.logspace(-2, 5, 281, base=2)                           # 0.025-octave steps
    peaks, sigmas = np.array([[0.7, 1.3, 3.1]]), np.array([[0.4], [0.9]])
    r = gauss_log2(v, peaks[..., None], sigmas[..., None], amp=20.0)          # (2, 3, n)
    assert preferred_log_peak(v, r) == pytest.approx(np.broadcast_to(peaks, (2, 3)), rel=2e-5)
    out = log_bandwidth(v, r)
    assert out["bandwidth_octaves"].shape == (2, 3)
    assert out["bandwidth_octaves"] == pytest.approx(np.broadcast_to(FWHM_PER_SIGMA * sigmas, (2, 3)), abs=1e-3)
    half = FWHM_PER_SIGMA * sigmas / 2
    assert np.log2(out["low"]) == pytest.approx(np.log2(peaks) - half, abs=5e-4)
    assert np.log2(out["high"]) == pytest.approx(np.log2(peaks) + half, abs=5e-4)


def test_bandwidth_matches_brentq_on_piecewise_linear_curve():
    rng = np.random.default_rng(0)
    v = np.sort(rng.uniform(0.1, 10, 12))
    r = np.concatenate([np.sort(rng.uniform(0, 8, 5)), [10.0], np.sort(rng.uniform(0, 8, 6))[::-1]])
    x, thr, ipk = np.log2(v), 0.5 * 10.0, 5                      # unimodal: one crossing per side
    f = lambda t: np.interp(t, x, r) - thr
    out = log_bandwidth(v, r)
    assert np.log2(out["low"]) == pytest.approx(brentq(f, x[0], x[ipk]), abs=1e-10)
    assert np.log2(out["high"]) == pytest.approx(brentq(f, x[ipk], x[-1]), abs=1e-10)
    # baseline is the caller's business: a constant offset changes the half-height and so the width
    assert log_bandwidth(v, r + 3)["bandwidth_octaves"] > out["bandwidth_octaves"]


def test_bandwidth_takes_nearest_crossing_and_reports_open_ends():
    v = 2.0 ** np.arange(8)
    r = np.array([9, 1, 6, 10, 8, 4, 2, 1.0])                   # dips below half at index 1, rebounds at 0
    out = log_bandwidth(v, r)
    assert np.log2(out["low"]) == pytest.approx(2 - (6 - 5) / (6 - 1))     # between 1 and 6
    assert np.log2(out["high"]) == pytest.approx(4 + (8 - 5) / (8 - 4))     # between 8 and 4
    rising = log_bandwidth(v, np.arange(1.0, 9.0))
    assert np.isnan(rising["high"]) and np.isnan(rising["bandwidth_octaves"]) and np.isfinite(rising["low"])
    padded = log_bandwidth(np.append(v, np.nan), np.append(r, 0.0))     # NaN-padded values are ignored
    assert padded["bandwidth_octaves"] == pytest.approx(out["bandwidth_octaves"])
    assert np.isnan(log_bandwidth(v, np.zeros(8))["bandwidth_octaves"])


@pytest.mark.parametrize("kappa, pref", [(1.5, 30.0), (4.0, 175.3), (10.0, 0.0)])
def test_von_mises_halfwidth_and_vector_orientation(kappa, pref):
    theta = np.arange(0, 180, 0.05)
    r = np.exp(kappa * (np.cos(np.deg2rad(2 * (theta - pref))) - 1))
    expected = np.rad2deg(0.5 * np.arccos(1 + np.log(0.5) / kappa))             # cos(2Δ) = 1 + ln(1/2)/κ
    assert circular_halfwidth(theta, r) == pytest.approx(expected, abs=1e-4)
    level = 1 / np.sqrt(2)
    assert circular_halfwidth(theta, r, level) == pytest.approx(
        np.rad2deg(0.5 * np.arccos(1 + np.log(level) / kappa)), abs=1e-4)
    assert np.cos(np.deg2rad(2 * (vector_preferred_orientation(theta, r) - pref))) == pytest.approx(1, abs=1e-10)
    # OSI of a von Mises in the doubled angle is I1(κ)/I0(κ)
    from scipy.special import ive
    assert osi(theta, r) == pytest.approx(ive(1, kappa) / ive(0, kappa), rel=1e-6)


def test_orientation_batch_and_untuned():
    theta = np.arange(0, 180, 15.0)
    r = np.stack([np.exp(2 * np.cos(np.deg2rad(2 * (theta - p)))) for p in (0, 45, 90, 165)])
    pref = vector_preferred_orientation(theta, r)
    assert pref == pytest.approx([0, 45, 90, 165], abs=1e-9) and ((pref >= 0) & (pref < 180)).all()
    widths = circular_halfwidth(theta, r)
    assert widths.shape == (4,) and np.allclose(widths, widths[0])   # same curve shifted by whole samples
    flat = np.ones_like(theta)
    assert osi(theta, flat) == pytest.approx(0, abs=1e-12) and np.isnan(circular_halfwidth(theta, flat))
    assert osi(theta, np.zeros_like(theta)) == 0


def test_modulation_ratio():
    phi = np.arange(0, 360, 22.5)
    a, b, phi0 = np.array([[4.0], [2.0]]), np.array([1.0, 3.0]), 37.0
    r = a[..., None] + b[:, None] * np.cos(np.deg2rad(phi - phi0))                # (2, 2, n)
    assert modulation_ratio(phi, r) == pytest.approx(b / a, rel=1e-12)
    dense = np.arange(0, 360, 0.01)
    rect = np.maximum(np.cos(np.deg2rad(dense - 80)), 0)
    assert modulation_ratio(dense, rect) == pytest.approx(np.pi / 2, rel=1e-6)
    coarse = np.maximum(np.cos(np.deg2rad(phi)), 0)                   # discrete reference: FFT bins 0, 1
    spec = np.fft.fft(coarse)
    assert modulation_ratio(phi, coarse) == pytest.approx(2 * abs(spec[1]) / spec[0].real, rel=1e-12)
    assert modulation_ratio(phi, np.full(16, 7.0)) == pytest.approx(0, abs=1e-12)
    assert np.isnan(modulation_ratio(phi, np.zeros((3, 16)))).all()               # no response: no ratio
    assert np.isnan(modulation_ratio(phi, -0.1 + 2 * np.cos(np.deg2rad(phi))))       # F0 < 0: not a rate
    for bad in ([0, 45, 90, 135], [0, 90, 180], [0, 120]):                        # not one cycle, evenly
        with pytest.raises(ArgumentError, match="equally spaced phases covering one cycle"):
            modulation_ratio(bad, np.ones(len(bad)))
    assert modulation_ratio([240, 0, 120], np.ones(3)) == pytest.approx(0, abs=1e-12)   # any order and start


def test_orientation_indices_take_each_orientation_once_in_any_order():
    theta = np.arange(0, 180, 15.0)
    r = np.exp(-0.5 * (np.minimum(np.abs(theta - 60), 180 - np.abs(theta - 60)) / 20) ** 2)
    perm = np.random.default_rng(0).permutation(len(theta))
    assert circular_halfwidth(theta[perm], r[perm]) == pytest.approx(circular_halfwidth(theta, r), rel=1e-12)
    assert osi(theta[perm], r[perm]) == pytest.approx(osi(theta, r), rel=1e-12)
    with pytest.raises(ArgumentError, match="each orientation once .* 0 deg appears twice"):
        osi(np.linspace(0, 180, 13), np.ones(13))                                  # 0 and 180 are one
    assert np.isnan(osi(theta, r - 0.5))                                          # negative responses


def test_goris2015_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("INSILICO_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="goris2015_v1v2_gratings.*INSILICO_DATA"):
        goris2015()


def test_goris2015_real_cells(data_dir):
    ds = goris2015()
    assert dict(ds.sizes) == {"unit": 6, "sf_index": 11} and ds.sf.dims == ("unit", "sf_index")
    assert ds.unit.values.tolist() == ["m620r12", "m620r35", "m624l54", "m625r58", "m625r62", "m627r58"]
    assert (ds.area == "V1").sum() == 5 and ds.area.sel(unit="m620r12") == "V2"
    tested = np.isfinite(ds.sf.values)
    assert tested.sum(1).tolist() == [11, 11, 11, 10, 11, 11]            # m625r58: 10 SFs, 2.3-8 c/deg
    assert np.allclose(ds.sf.values[0], np.logspace(-1, 1, 11), rtol=1e-4)
    assert (ds.n_passes.values[tested] >= 2).all() and (ds.n_passes.values[~tested] == 0).all()
    for name in ("rate_mean", "rate_var"):
        vals = ds[name].values[tested]
        assert np.isfinite(vals).all() and (vals >= 0).all()
    assert np.isfinite(ds.spont_mean).all() and (ds.spont_mean >= 0).all()
    assert "Goris" in ds.attrs["citation"] and "redistribution" in ds.attrs["license"]

    drive = (ds.rate_mean - ds.spont_mean).values
    out = log_bandwidth(ds.sf.values, drive)
    for i, u in enumerate(ds.unit.values):                               # per-unit reference without padding
        single = log_bandwidth(ds.sf.values[i][tested[i]], drive[i][tested[i]])
        assert single["bandwidth_octaves"] == pytest.approx(out["bandwidth_octaves"][i], nan_ok=True)
        print(f"{u} {ds.area.values[i]}: preferred SF {out['peak'][i]:.2f} c/deg, "
              f"half-height {out['low'][i]:.2f}-{out['high'][i]:.2f} c/deg = {out['bandwidth_octaves'][i]:.2f} oct")
    bw = out["bandwidth_octaves"]
    assert np.isfinite(bw).all()                                         # every cell is band-pass here
    for i in range(len(bw)):            # independent reference: brentq on the piecewise-linear log2 curve
        x, r = np.log2(ds.sf.values[i][tested[i]]), drive[i][tested[i]]
        k = int(np.argmax(r))
        f = lambda t: np.interp(t, x, r) - 0.5 * r[k]
        lo_side = [j for j in range(k, 0, -1) if f(x[j - 1]) <= 0][0]
        hi_side = [j for j in range(k, len(x) - 1) if f(x[j + 1]) <= 0][0]
        ref = brentq(f, x[hi_side], x[hi_side + 1]) - brentq(f, x[lo_side - 1], x[lo_side])
        assert bw[i] == pytest.approx(ref, abs=1e-9)
    assert ((out["peak"] > 0.3) & (out["peak"] < 8)).all()


def test_curves_in_any_order_give_one_answer_and_log_values_are_positive():
    """The walk outwards from the peak needs the values in order: sorted here, so a curve given from high to low
    or shuffled gives the answer of the sorted one (it gave -2.47 octaves reversed, NaN shuffled)."""
    v = np.array([0.5, 1, 2, 4, 8, 16])
    r = np.exp(-0.5 * (np.log2(v) - np.log2(2.5)) ** 2)
    want = log_bandwidth(v, r)
    for order in (np.arange(6)[::-1], np.array([3, 0, 5, 1, 4, 2])):
        got = log_bandwidth(v[order], r[order])
        for k in ("peak", "low", "high", "bandwidth_octaves"):
            np.testing.assert_allclose(got[k], want[k], err_msg=k)
        np.testing.assert_allclose(preferred_log_peak(v[order], r[order]), preferred_log_peak(v, r))
    with pytest.raises(ArgumentError, match="values must be > 0 .* got -1"):
        log_bandwidth([-1.0, 2, 4, 8], [5.0, 1, 3, 1])
    with pytest.raises(ArgumentError, match="values must be > 0"):
        preferred_log_peak([0.0, 1, 2, 4], [5.0, 1, 0.5, 0.2])
    with pytest.raises(ArgumentError, match=r"phases_deg must be 3 or more equally spaced .* \[0.0, 10.0, 20.0, 30.0\]"):
        modulation_ratio([[0, 90, 180, 270], [0, 10, 20, 30]], [[2.0, 3, 2, 1]] * 2)
