"""Stimulus generators: gratings, Gabor patches, white and pink noise, natural-image patches and photos.

All images are float32 NHWC with pixel values in [0, 1] (mean luminance 0.5 for synthetic stimuli).
Conventions: ``orientation`` in degrees (0 = vertical bars, luminance varying along x; counter-clockwise
positive), ``sf`` in cycles per pixel, ``phase`` in degrees, ``contrast`` Michelson in [0, 1]. Every random
generator takes an explicit PRNG ``key`` and is deterministic given it.
"""
from __future__ import annotations

import itertools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon",
          "hubble_deep_field", "immunohistochemistry")


def _coords(size: int):
    c = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    yy, xx = jnp.meshgrid(c, c, indexing="ij")
    return xx, -yy                                           # y grows upwards


def _carrier(size, orientation, sf, phase):
    xx, yy = _coords(size)
    theta = jnp.deg2rad(jnp.asarray(orientation, jnp.float32))[..., None, None]
    u = xx * jnp.cos(theta) + yy * jnp.sin(theta)            # distance along the modulation axis
    return jnp.cos(2 * jnp.pi * jnp.asarray(sf, jnp.float32)[..., None, None] * u
                   + jnp.deg2rad(jnp.asarray(phase, jnp.float32))[..., None, None])


def _to_images(lum, channels: int):
    return jnp.repeat(lum[..., None], channels, axis=-1).astype(jnp.float32)


def grating(size: int, orientation, sf, phase=0.0, contrast=1.0, channels: int = 1):
    """Full-field sinusoidal gratings; parameters broadcast together. Returns (..., size, size, channels).

    Example: ``grating(32, orientation=jnp.arange(0, 180, 15), sf=0.1)`` -> (12, 32, 32, 1).
    """
    orientation, sf, phase, contrast = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float32)
                                                             for a in (orientation, sf, phase, contrast)))
    lum = 0.5 + 0.5 * contrast[..., None, None] * _carrier(size, orientation, sf, phase)
    return _to_images(lum, channels)


def gabor(size: int, orientation, sf, phase=0.0, sigma=4.0, contrast=1.0, center=(0.0, 0.0),
          channels: int = 1):
    """Gabor patches: a grating under a Gaussian envelope of std ``sigma`` px at ``center`` (x, y) px
    from the image centre. Returns (..., size, size, channels) in [0, 1]."""
    orientation, sf, phase, sigma, contrast = jnp.broadcast_arrays(
        *(jnp.asarray(a, jnp.float32) for a in (orientation, sf, phase, sigma, contrast)))
    xx, yy = _coords(size)
    cx, cy = center
    xs, ys = xx - cx, yy - cy
    env = jnp.exp(-(xs ** 2 + ys ** 2) / (2 * sigma[..., None, None] ** 2))
    theta = jnp.deg2rad(orientation)[..., None, None]
    u = xs * jnp.cos(theta) + ys * jnp.sin(theta)
    carrier = jnp.cos(2 * jnp.pi * sf[..., None, None] * u + jnp.deg2rad(phase)[..., None, None])
    return _to_images(0.5 + 0.5 * contrast[..., None, None] * env * carrier, channels)


def grating_set(size: int, orientations: Sequence[float], sfs: Sequence[float], phases: Sequence[float] = (0.0,),
                contrasts: Sequence[float] = (1.0,), channels: int = 1):
    """All combinations of the parameter lists, flattened: ``(images (N, size, size, C), params)``.

    ``params`` maps "orientation", "sf", "phase", "contrast" to arrays of length N (orientation slowest).
    """
    grid = np.array(list(itertools.product(orientations, sfs, phases, contrasts)), np.float32).reshape(-1, 4)
    params = dict(zip(("orientation", "sf", "phase", "contrast"), grid.T))
    return grating(size, *(params[k] for k in ("orientation", "sf", "phase", "contrast")), channels=channels), params


def white_noise(key, n: int, shape: Sequence[int], std: float | None = None):
    """White noise images (n, *shape): uniform in [0, 1], or Gaussian N(0.5, std) clipped to [0, 1]."""
    if std is None:
        return jax.random.uniform(key, (n, *shape), jnp.float32)
    return jnp.clip(0.5 + std * jax.random.normal(key, (n, *shape), jnp.float32), 0.0, 1.0)


def pink_noise(key, n: int, shape: Sequence[int], exponent: float = 1.0, std: float = 0.15):
    """1/f^exponent noise (amplitude spectrum), random phases, per image scaled to mean 0.5 and ``std``,
    clipped to [0, 1]. ``exponent=1`` matches natural images' spectra (Field 1987)."""
    h, w, c = shape
    fy = jnp.fft.fftfreq(h)[:, None]
    fx = jnp.fft.rfftfreq(w)[None, :]
    f = jnp.sqrt(fx ** 2 + fy ** 2)
    amp = jnp.where(f > 0, 1.0 / jnp.maximum(f, 1.0 / max(h, w)) ** exponent, 0.0)
    k1, k2 = jax.random.split(key)
    spec = (jax.random.normal(k1, (n, c, *f.shape)) + 1j * jax.random.normal(k2, (n, c, *f.shape))) * amp
    img = jnp.fft.irfft2(spec, s=(h, w)).transpose(0, 2, 3, 1)
    img = img - img.mean(axis=(1, 2, 3), keepdims=True)
    img = img / (img.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
    return jnp.clip(0.5 + std * img, 0.0, 1.0).astype(jnp.float32)


def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; valid: {', '.join(PHOTOS)}")
    img = np.asarray(getattr(skimage.data, name)(), np.float32) / 255.0
    return img[..., None] if img.ndim == 2 else img[..., :3]


def _match_channels(img: np.ndarray, channels: int) -> np.ndarray:
    if img.shape[-1] == channels:
        return img
    gray = img.mean(-1, keepdims=True) if img.shape[-1] == 3 else img
    return np.repeat(gray, channels, -1) if channels != 1 else gray


def photos(size: int, channels: int = 3, names: Sequence[str] = PHOTOS):
    """scikit-image's bundled photos (no download), centre-cropped to a square and resized to
    ``size`` x ``size``: (len(names), size, size, channels) in [0, 1]."""
    from skimage.transform import resize

    out = []
    for name in names:
        img = _photo(name)
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(_match_channels(resize(img, (size, size), anti_aliasing=True).astype(np.float32), channels))
    return np.clip(np.stack(out), 0.0, 1.0)


def natural_patches(key, n: int, size: int, channels: int = 3, names: Sequence[str] = PHOTOS, scale: int = 1):
    """``n`` random ``size`` x ``size`` patches from scikit-image's photos, drawn with ``key``.

    ``scale`` > 1 crops ``size * scale`` pixels and downsamples by block averaging.
    Returns (n, size, size, channels) float32 in [0, 1].
    """
    imgs = [_match_channels(_photo(nm), channels) for nm in names]
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    crop = size * scale
    out = np.empty((n, size, size, channels), np.float32)
    for i in range(n):
        img = imgs[rng.integers(len(imgs))]
        y = rng.integers(img.shape[0] - crop + 1)
        x = rng.integers(img.shape[1] - crop + 1)
        patch = img[y:y + crop, x:x + crop]
        out[i] = patch.reshape(size, scale, size, scale, channels).mean((1, 3))
    return out


def faces_and_nonfaces(size: int, channels: int = 3):
    """scikit-image's LFW subset: 100 face and 100 non-face 25x25 patches (no download), resized to
    ``size``. Returns ``(images (200, size, size, channels) in [0, 1], is_face (200,) bool)``."""
    from skimage.data import lfw_subset
    from skimage.transform import resize

    imgs = lfw_subset().astype(np.float32)
    imgs = (imgs - imgs.min()) / (imgs.max() - imgs.min())
    out = np.stack([resize(im, (size, size), anti_aliasing=True) for im in imgs]).astype(np.float32)[..., None]
    return np.clip(_match_channels(out, channels), 0, 1), np.arange(len(imgs)) < 100
