"""Transformed worlds: each option changes the statistic it names and nothing else."""
import jax
import numpy as np
import pytest

from insilico.data.datasets import Dataset
from insilico.data.worlds import radial_amplitude, spectral_slope, transform


@pytest.fixture(scope="module")
def natural():
    """Images with a ~1/f amplitude spectrum (pink noise), in [0, 1], 4 classes."""
    rng = np.random.default_rng(0)
    n, h = 120, 32
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(h), indexing="ij")
    f = np.maximum(np.hypot(fy, fx), 1 / h)
    spec = (rng.normal(size=(n, h, h, 3)) + 1j * rng.normal(size=(n, h, h, 3))) / f[None, :, :, None]
    x = np.real(np.fft.ifft2(spec, axes=(1, 2)))
    x = np.clip(0.5 + 0.15 * x / x.std(), 0, 1).astype(np.float32)
    return Dataset(x, (np.arange(n) % 4).astype(np.int32), ("a", "b", "c", "d"), "pink")


def test_spectrum_options(natural):
    base = spectral_slope(natural.x)
    assert -1.3 < base < -0.7
    white = transform(natural, whiten=True)
    assert abs(spectral_slope(white.x)) < 0.25 and white.x.min() >= 0 and white.x.max() <= 1
    blurred = transform(natural, blur=1.5)
    f, a0 = radial_amplitude(natural.x)
    _, a1 = radial_amplitude(blurred.x)
    assert a1[-1] / a0[-1] < 0.1 and a1[0] / a0[0] > 0.8           # high frequencies removed, low ones kept
    assert blurred.x.shape == natural.x.shape and "blur=1.5" in blurred.name


def test_grayscale_and_categories(natural):
    gray = transform(natural, grayscale=True)
    assert gray.x.shape == natural.x.shape
    assert np.array_equal(gray.x[..., 0], gray.x[..., 2])
    lum = natural.x @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.allclose(gray.x[..., 1], lum, atol=1e-6)
    two = transform(natural, classes=["b", "d"])
    assert set(two.y) == {1, 3} and len(two.y) == 60 and two.class_names == natural.class_names
    heavy = transform(natural, class_weights={"a": 7.0}, key=jax.random.key(0))
    share = np.mean(heavy.y == 0)
    assert len(heavy.y) == 120 and abs(share - 0.7) < 0.1             # 7 / (7 + 1 + 1 + 1)
    with pytest.raises(ValueError, match="classes must be one of 'a', 'b', 'c', 'd'; got 'zebra'"):
        transform(natural, classes=["zebra"])
    with pytest.raises(ValueError, match="pass key="):
        transform(natural, class_weights={"a": 2.0})
