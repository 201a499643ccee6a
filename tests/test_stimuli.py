import jax
import numpy as np
import pytest

from insilico.data import stimuli as st


def peak_frequency(img):
    """(fx, fy) in cycles per pixel of the strongest Fourier component of a 2-D image (y up)."""
    spec = np.abs(np.fft.fft2(img - img.mean()))
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    f = np.fft.fftfreq(img.shape[0])
    return f[ix], -f[iy]


@pytest.mark.parametrize("orientation", [0.0, 30.0, 90.0, 135.0])
def test_grating_orientation_and_frequency(orientation):
    img = np.asarray(st.grating(64, orientation, sf=0.125))[..., 0]
    fx, fy = peak_frequency(img)
    assert np.hypot(fx, fy) == pytest.approx(0.125, abs=1 / 64)
    # the modulation direction is perpendicular to the bars; compare as an axis (mod 180)
    measured = np.rad2deg(np.arctan2(fy, fx)) % 180
    assert min(abs(measured - orientation), 180 - abs(measured - orientation)) < 8


def test_grating_contrast_phase_and_grid():
    img = st.grating(33, 0.0, 0.125, phase=0.0, contrast=0.4)      # samples the peaks and troughs exactly
    assert float(img.max() - img.min()) == pytest.approx(0.4, abs=0.01)
    assert float(img.mean()) == pytest.approx(0.5, abs=0.02)
    imgs, params = st.grating_set(16, [0, 90], [0.1, 0.2, 0.3], [0, 180], channels=3)
    assert imgs.shape == (12, 16, 16, 3) and len(params["sf"]) == 12
    assert list(params["orientation"][:6]) == [0] * 6
    # phases 0 and 180 are contrast-reversed
    assert np.allclose(imgs[0] - 0.5, -(imgs[1] - 0.5), atol=1e-6)


def test_gabor_center_and_envelope():
    g = np.asarray(st.gabor(33, 0.0, 0.1, phase=0.0, sigma=3.0, contrast=0.8))[..., 0]
    assert g[16, 16] == pytest.approx(0.9, abs=1e-5)
    assert abs(g[0, 0] - 0.5) < 1e-6                          # far outside the envelope: mean grey


def test_noise_is_deterministic_and_in_bounds():
    k = jax.random.PRNGKey(0)
    a, b = st.white_noise(k, 4, (8, 8, 3)), st.white_noise(k, 4, (8, 8, 3))
    assert np.array_equal(a, b) and not np.array_equal(a, st.white_noise(jax.random.PRNGKey(1), 4, (8, 8, 3)))
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    g = st.white_noise(k, 64, (16, 16, 1), std=0.1)
    assert float(g.std()) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_pink_noise_spectrum_slope(exponent):
    imgs = np.asarray(st.pink_noise(jax.random.PRNGKey(0), 16, (64, 64, 1), exponent=exponent, std=0.05))[..., 0]
    power = (np.abs(np.fft.fft2(imgs - imgs.mean((1, 2), keepdims=True))) ** 2).mean(0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64)))
    sel = (f > 0.03) & (f < 0.4)
    slope = np.polyfit(np.log(f[sel]), np.log(power[sel]), 1)[0]
    assert slope == pytest.approx(-2 * exponent, abs=0.25)


def test_photos_and_patches():
    p = st.photos(24, channels=1, names=("camera", "astronaut"))
    assert p.shape == (2, 24, 24, 1) and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    k = jax.random.PRNGKey(5)
    a = st.natural_patches(k, 6, 12, channels=3, scale=2)
    assert a.shape == (6, 12, 12, 3)
    assert np.array_equal(a, st.natural_patches(k, 6, 12, channels=3, scale=2))
    assert a.std() > 0.02
    with pytest.raises(ValueError, match="names must be one of 'astronaut'.*; got 'dog'"):
        st.photos(8, names=("dog",))


def test_faces_and_nonfaces():
    x, is_face = st.faces_and_nonfaces(32, channels=3)
    assert x.shape == (200, 32, 32, 3) and is_face.sum() == 100 and 0 <= x.min() and x.max() <= 1
