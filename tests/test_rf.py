"""Receptive-field probes: tuning statistics, reverse correlation, RF size, exemplars, input gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico.analysis.gabor import fit_gabor
from insilico.data.stimuli import grating
from insilico.probes import rf

from conftest import GABOR_ORIENTATIONS, GABOR_SFS, assert_close


def _embed(f, size=24, at=8):
    canvas = np.zeros((size, size))
    canvas[at:at + f.shape[0], at:at + f.shape[1]] = f
    return canvas


def _circ(a, b):
    d = np.abs(np.asarray(a) - np.asarray(b)) % 180
    return np.minimum(d, 180 - d)


def test_grating_tuning_recovers_gabor_orientation_and_sf(gabor_subject):
    subject, _ = gabor_subject
    tun = rf.grating_tuning(subject, "conv1", orientations=np.arange(0, 180, 10), sfs=np.geomspace(0.05, 0.4, 13),
                            phases=np.arange(0, 360, 45), contrast=(0.5, 1.0))
    assert tun["conv1"].dims == ("unit", "orientation", "sf", "phase", "contrast")
    s = rf.tuning_summary(tun["conv1"])
    assert (_circ(s.preferred_orientation.values, GABOR_ORIENTATIONS) < 5).all()
    np.testing.assert_allclose(s.preferred_sf.values, GABOR_SFS, rtol=0.10)
    # a rectified linear filter is a simple cell: F1/F0 of a half-wave rectified sinusoid = pi/2
    np.testing.assert_allclose(s.modulation_ratio.values, np.pi / 2, rtol=0.05)
    assert (s.osi.values > 0.3).all()
    # responses of a linear-rectified unit scale with contrast
    r = tun["conv1"].max(["orientation", "sf", "phase"])
    assert_close(r.sel(contrast=0.5).values, 0.5 * r.sel(contrast=1.0).values, rtol=1e-4)


def test_tuning_summary_flags_complex_cells():
    """An energy-model unit (sum of squares of a quadrature pair) is phase invariant: F1/F0 near 0."""
    ph = np.arange(0, 360, 30.0)
    ori, sf = np.arange(0, 180, 15.0), np.array([0.1, 0.2])
    simple = np.maximum(np.cos(np.deg2rad(ph)), 0)[None, None, None, :] * np.ones((1, len(ori), len(sf), 1))
    complex_ = np.ones_like(simple)
    import xarray as xr
    da = xr.DataArray(np.concatenate([simple, complex_]), dims=("unit", "orientation", "sf", "phase"),
                      coords={"unit": [0, 1], "orientation": ori, "sf": sf, "phase": ph})
    s = rf.tuning_summary(da)
    spectrum = np.fft.rfft(np.maximum(np.cos(np.deg2rad(ph)), 0))         # reference: F1/F0 from the DFT
    assert s.modulation_ratio.values[0] == pytest.approx(2 * abs(spectrum[1]) / spectrum[0].real, rel=1e-9)
    assert s.modulation_ratio.values[1] == pytest.approx(0.0, abs=1e-9)


def test_sta_recovers_gabor_filters(gabor_subject):
    subject, filters = gabor_subject
    r = rf.reverse_correlation(subject, "conv1", 16384, key=jax.random.key(2), progress=False)
    sta = r.sta.values[..., 0]
    for k in range(6):
        assert abs(np.corrcoef(sta[k].ravel(), _embed(filters[k]).ravel())[0, 1]) >= 0.9
    fit = fit_gabor(sta[:, 8:17, 8:17])
    assert (_circ(fit.orientation.values, GABOR_ORIENTATIONS) < 5).all()


def test_reverse_correlation_matches_numpy_reference(tiny_convnet):
    key = jax.random.key(4)
    r = rf.reverse_correlation(tiny_convnet, "conv2", 96, key=key, batch_size=32, std=0.2, stc=True, window=4,
                               progress=False)
    xs = np.concatenate([np.clip(0.5 + 0.2 * np.asarray(jax.random.normal(jax.random.fold_in(key, i),
                                                                            (32, 8, 8, 3))), 0, 1)
                         for i in range(3)])
    resp = np.asarray(el.record(tiny_convnet, jnp.asarray(xs), "conv2")[1]["conv2"])[:, 2, 2, :]   # centre unit
    d = (xs - 0.5).reshape(96, -1)
    sta = (resp.T @ d) / resp.sum(0)[:, None]
    assert_close(r.sta.values.reshape(6, -1), sta, rtol=1e-3, atol=1e-5)
    # the centre unit (2, 2) of conv2 sees input rows and columns 1-7 (clipped at 7): a 4-px window centred on 4
    y0, x0, size = r.attrs["stc_window"]
    assert (y0, x0, size) == (3, 3, 4)
    w = (xs - 0.5)[:, 3:7, 3:7, :].reshape(96, -1)
    k = 1
    s_w = sta[k].reshape(8, 8, 3)[3:7, 3:7].ravel()
    noise_cov = w.T @ w / 96                          # the noise's own covariance (clipped: not 0.04 I)
    stc = np.einsum("b,bd,be->de", resp[:, k], w - s_w, w - s_w) / resp[:, k].sum() - noise_cov
    vals = np.linalg.eigvalsh(stc)
    top = vals[np.argsort(-np.abs(vals))][:8]
    assert_close(r.stc_eigenvalues.values[k], top, rtol=1e-3, atol=1e-6)
    dead = rf.reverse_correlation(tiny_convnet, "logits", 64, key=key, batch_size=32, progress=False)
    silent = dead.n_spikes.values <= 0                                   # signed logits that sum below 0
    assert silent.any() and not silent.all()
    assert np.isnan(dead.sta.values[silent]).all() and np.isfinite(dead.sta.values[~silent]).all()


def test_receptive_field_sizes_follow_the_architecture(gabor_subject, tiny_convnet):
    subject, _ = gabor_subject
    ds = rf.receptive_field_size(subject, ["conv1", "conv2"], key=jax.random.key(0), n_images=8)
    # conv1: the 9x9 kernel; conv2: 9 + 1 (2x2 max pool) + 2 (3x3 conv) x 2 (stride of the pool) = 14
    assert ds.theoretical_size.values.tolist() == [9.0, 14.0]
    assert not ds.clipped.values.any()
    assert (ds.effective_size.values > 0).all() and ds.effective_size.values[1] > ds.effective_size.values[0]
    # the eRF of a linear unit is |filter| (one image suffices)
    one = rf.receptive_field_size(subject, "conv1", images=jnp.full((1, 24, 24, 1), 0.9))
    _, filters = gabor_subject
    act = np.asarray(el.record(subject, jnp.full((1, 24, 24, 1), 0.9), "conv1")[1]["conv1"])[0, 12, 12]
    expected = np.abs(sum(_embed(filters[k]) for k in range(6) if act[k] > 0))      # |Σ_active filters|
    assert_close(one.erf.values[0], expected, atol=1e-5)
    with pytest.raises(ValueError, match="PRNG key"):
        rf.receptive_field_size(tiny_convnet, "conv1")


def test_exemplars_equal_a_loop(tiny_convnet):
    x = np.asarray(jax.random.uniform(jax.random.key(0), (40, 8, 8, 3)))
    ex = rf.exemplars(tiny_convnet, "conv2", [x[:25], x[25:]], k=3, batch_size=8, progress=False)
    acts = np.asarray(el.record(tiny_convnet, jnp.asarray(x), "conv2")[1]["conv2"])      # (40, 4, 4, 6)
    for u in range(6):
        score = acts[..., u].reshape(40, -1).max(1)
        order = np.argsort(-score, kind="stable")
        assert ex.top_index.sel(unit=u).values.tolist() == order[:3].tolist()
        assert ex.bottom_index.sel(unit=u).values.tolist() == order[::-1][:3].tolist()
        assert_close(ex.top_score.sel(unit=u).values, score[order[:3]], rtol=1e-5)
        best = ex.top_index.sel(unit=u).values[0]
        pos = np.unravel_index(acts[best, ..., u].argmax(), (4, 4))
        assert tuple(ex.top_position.sel(unit=u).values[0]) == pos
    assert ex.top_crop.shape[:2] == (6, 3) and ex.top_crop.shape[-1] == 3
    dense = rf.exemplars(tiny_convnet, "fc1", x, k=2, units=[0, 5], progress=False)
    assert dense.top_crop.shape == (2, 2, 8, 8, 3)
    with pytest.raises(el.InputError, match="uint8"):
        rf.exemplars(tiny_convnet, "conv2", (x * 255).astype(np.uint8), progress=False)
    with pytest.raises(el.SiteError, match="valid"):
        rf.exemplars(tiny_convnet, "conv7", x, progress=False)


def test_input_gradients_match_finite_differences(tiny_convnet):
    x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
    g = rf.input_gradients(tiny_convnet, "fc1", x, units=[1, 3])
    assert g.dims == ("unit", "image", "y", "x", "channel") and g.shape == (2, 2, 8, 8, 3)
    eps = 1e-3
    for (i, yy, xx, c) in [(0, 3, 4, 1), (1, 6, 2, 0)]:
        bump = jnp.zeros_like(x).at[i, yy, xx, c].set(eps)
        up = np.asarray(el.record(tiny_convnet, x + bump, "fc1")[1]["fc1"])[i]
        down = np.asarray(el.record(tiny_convnet, x - bump, "fc1")[1]["fc1"])[i]
        fd = (up - down) / (2 * eps)
        assert_close(g.values[:, i, yy, xx, c], fd[[1, 3]], rtol=2e-2, atol=2e-3)


def test_grating_conventions_match_between_stimuli_and_filters(gabor_subject):
    """The unit built from an orientation-θ Gabor answers best to the orientation-θ grating."""
    subject, _ = gabor_subject
    g = grating(24, np.asarray(GABOR_ORIENTATIONS), np.asarray(GABOR_SFS), 0.0)
    act = np.asarray(el.record(subject, g, "conv1")[1]["conv1"])[:, 12, 12, :]      # (stimulus, unit)
    assert (act.argmax(1) == np.arange(6)).all()


def test_gratings_span_the_subjects_pixel_range(gabor_subject):
    """A model that takes 0–255 pixels sees the same gratings, scaled to its range, as its [0, 1] twin."""
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    subject, _ = gabor_subject
    model = ConvNet(widths=(6, 4), kernels=(9, 3), fc=(4,), num_classes=3, norm=False, mean=(127.5,), std=(255.0,))
    wide = make_subject("gabor_255", model, subject.variables, InputSpec((24, 24, 1), (0.0, 255.0)))
    kwargs = dict(orientations=(0, 45, 90), sfs=(0.1, 0.2), phases=(0, 180))
    a, b = rf.grating_tuning(subject, "conv1", **kwargs)["conv1"], rf.grating_tuning(wide, "conv1", **kwargs)["conv1"]
    np.testing.assert_allclose(b.values, a.values, rtol=1e-4, atol=1e-5)


def _support(subject, site, x, pos, unit):
    """Rows and columns (start, stop) where the input gradient of ``unit`` (None: all channels) at map position
    ``pos`` is non-zero for any of the images ``x``."""
    def r(img):
        out = el.forward(subject, img[None], record=(site,))[1][site][0, pos[0], pos[1]]
        return out.sum() if unit is None else out[unit]
    g = np.abs(np.asarray(jax.vmap(jax.grad(r))(jnp.asarray(x)))).sum((0, 3)) > 0
    ys, xs = np.nonzero(g)
    return (ys.min(), ys.max() + 1), (xs.min(), xs.max() + 1)


def test_crops_and_stc_windows_sit_on_the_units_field():
    """With even kernels and strides the field is not centred on the image: the crop of an exemplar at any
    position and the STC window of the centre unit are the pixels the unit's input gradient reaches."""
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    model = ConvNet(widths=(3, 4), kernels=(4, 3), pools="max", fc=(), num_classes=2)
    v = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    s = make_subject("even", model, v, InputSpec((16, 16, 3)))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (48, 16, 16, 3)))
    ex = rf.exemplars(s, "conv2", x, k=4, progress=False)
    size = ex.top_crop.shape[2]
    checked = 0
    for u in range(4):
        for rank in range(4):
            pos = tuple(ex.top_position.sel(unit=u).values[rank])
            (y0, y1), (x0, x1) = _support(s, "conv2", x, pos, u)
            if y1 - y0 == size and x1 - x0 == size:                        # a whole field inside the image
                img = x[ex.top_index.sel(unit=u).values[rank]]
                np.testing.assert_array_equal(ex.top_crop.sel(unit=u).values[rank], img[y0:y1, x0:x1])
                checked += 1
    assert checked >= 3
    r = rf.reverse_correlation(s, "conv1", 64, key=jax.random.key(2), batch_size=32, stc=True, progress=False)
    (y0, y1), (x0, x1) = _support(s, "conv1", x[:8], (8, 8), None)             # the centre unit, all channels
    assert r.attrs["stc_window"] == (y0, x0, y1 - y0) and y1 - y0 == 4


def test_rf_arguments_are_checked(tiny_convnet):
    with pytest.raises(ValueError, match="sites must name one or more sites of tiny; got none"):
        rf.receptive_field_size(tiny_convnet, [], key=jax.random.key(0))
    x = np.asarray(jax.random.uniform(jax.random.key(0), (6, 8, 8, 3)))
    ex = rf.exemplars(tiny_convnet, "conv2", x, k=2, units=(i for i in range(3)), crop=False, progress=False)
    assert ex.unit.values.tolist() == [0, 1, 2]


def test_gratings_need_a_square_input_and_finite_tuning(tiny_convnet):
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    model = ConvNet(widths=(4,), kernels=(3,), fc=(), num_classes=2)
    wide = make_subject("wide", model, model.init(jax.random.key(0), jnp.zeros((1, 8, 12, 3))), InputSpec((8, 12, 3)))
    with pytest.raises(ValueError, match="square gratings; wide takes 8x12 px images"):
        rf.grating_tuning(wide, "conv1", orientations=(0.0, 90.0), sfs=(0.25,), phases=(0.0,), progress=False)
    tuning = rf.grating_tuning(tiny_convnet, "conv1", orientations=(0.0, 90.0), sfs=(0.25,), phases=(0.0, 3.0),
                               progress=False)["conv1"]
    for f in (rf.orientation_selectivity, rf.tuning_summary):
        with pytest.raises(ValueError, match="tuning contains .* NaN"):
            f(tuning * np.nan)
