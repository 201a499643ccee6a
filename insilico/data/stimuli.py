"""Stimulus generators: gratings, Gabor patches, white and pink noise, natural-image patches and photos.

All images are float32 NHWC with pixel values in [0, 1] (mean luminance 0.5 for synthetic stimuli).
Conventions: ``orientation`` in degrees (0 = vertical bars, luminance varying along x; counter-clockwise
positive), ``sf`` in cycles per pixel, ``phase`` in degrees, ``contrast`` Michelson in [0, 1]. Every random
generator takes an explicit PRNG ``key`` and is deterministic given it.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import rng
from ..types import Flags, ImageArray, ImageBatch, ImageStack, PRNGKey, StimulusParam, StimulusParams
from ..validation import ArgumentError, check_choice, check_count, check_finite, check_in_range, check_key, check_number
from ._paths import cached_array

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon",
          "hubble_deep_field", "immunohistochemistry")


def _shape(name: str, shape, n: int | None = None) -> tuple[int, ...]:
    """An image shape: a sequence of counts ≥ 1 (of length ``n`` when given)."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or (n is not None and len(shape) != n):
        raise ArgumentError(f"{name} must be a sequence of {n or 'some'} positive integers "
                            f"{'(height, width, channels)' if n == 3 else ''}; got {shape!r}")
    return tuple(check_count(f"{name}[{i}]", v) for i, v in enumerate(shape))


def _grating_args(size, orientation, sf, phase, contrast, channels):
    check_count("size", size)
    check_count("channels", channels)
    check_in_range("orientation", orientation)
    check_in_range("sf", sf, low=0)
    check_in_range("phase", phase)
    check_in_range("contrast", contrast, low=0, high=1)


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


def grating(size: int, orientation: StimulusParam, sf: StimulusParam, phase: StimulusParam = 0.0,
            contrast: StimulusParam = 1.0, channels: int = 1) -> ImageBatch:
    """Full-field sinusoidal gratings; parameters broadcast together. Returns (..., size, size, channels).

    Raises :class:`~insilico.validation.ArgumentError` for ``size``/``channels`` < 1, a NaN/inf or empty
    parameter, ``sf`` < 0 or ``contrast`` outside [0, 1].

    >>> grating(32, orientation=jnp.arange(0, 180, 15), sf=0.1).shape
    (12, 32, 32, 1)
    """
    _grating_args(size, orientation, sf, phase, contrast, channels)
    orientation, sf, phase, contrast = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float32)
                                                             for a in (orientation, sf, phase, contrast)))
    lum = 0.5 + 0.5 * contrast[..., None, None] * _carrier(size, orientation, sf, phase)
    return _to_images(lum, channels)


def gabor(size: int, orientation: StimulusParam, sf: StimulusParam, phase: StimulusParam = 0.0,
          sigma: StimulusParam = 4.0, contrast: StimulusParam = 1.0, center: tuple[float, float] = (0.0, 0.0),
          channels: int = 1) -> ImageBatch:
    """Gabor patches: a grating under a Gaussian envelope of std ``sigma`` px at ``center`` (x, y) px
    from the image centre. Returns (..., size, size, channels) in [0, 1]. Parameters are checked as in
    :func:`grating`; ``sigma`` must be > 0 and ``center`` two finite numbers."""
    _grating_args(size, orientation, sf, phase, contrast, channels)
    check_in_range("sigma", sigma, low=0, low_open=True)
    c = check_finite("center", center, ndim=1)
    if isinstance(c, np.ndarray) and c.shape != (2,):
        raise ArgumentError(f"center must be two numbers (x, y) in pixels from the image centre; got {center!r}")
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
                contrasts: Sequence[float] = (1.0,), channels: int = 1
                ) -> tuple[ImageArray, dict[str, StimulusParams]]:
    """All combinations of the parameter lists, flattened: ``(images (N, size, size, C), params)``.

    ``params`` maps "orientation", "sf", "phase", "contrast" to arrays of length N (orientation slowest).
    Every list must be non-empty and finite (``sfs`` ≥ 0, ``contrasts`` in [0, 1]).
    """
    check_count("size", size)
    check_count("channels", channels)
    check_in_range("orientations", list(orientations))
    check_in_range("sfs", list(sfs), low=0)
    check_in_range("phases", list(phases))
    check_in_range("contrasts", list(contrasts), low=0, high=1)
    grid = np.array(list(itertools.product(orientations, sfs, phases, contrasts)), np.float32).reshape(-1, 4)
    params = dict(zip(("orientation", "sf", "phase", "contrast"), grid.T))
    images = grating(size, params["orientation"], params["sf"], params["phase"], params["contrast"], channels=channels)
    return images, params


def white_noise(key: PRNGKey, n: int, shape: Sequence[int], std: float | None = None) -> ImageArray:
    """White noise images (n, *shape): uniform in [0, 1], or Gaussian N(0.5, std) clipped to [0, 1]."""
    check_key("key", key)
    n = check_count("n", n)
    shape = _shape("shape", shape)
    if std is not None:
        std = check_number("std", std, low=0)
    if std is None:
        return rng.uniform(key, (n, *shape), jnp.float32)
    return jnp.clip(0.5 + std * rng.normal(key, (n, *shape), jnp.float32), 0.0, 1.0)


def pink_noise(key: PRNGKey, n: int, shape: Sequence[int], exponent: float = 1.0, std: float = 0.15) -> ImageArray:
    """1/f^exponent noise (amplitude spectrum), random phases, per image scaled to mean 0.5 and ``std``,
    clipped to [0, 1]. ``exponent=1`` matches natural images' spectra (Field 1987)."""
    check_key("key", key)
    n = check_count("n", n)
    h, w, c = _shape("shape", shape, 3)
    exponent = check_number("exponent", exponent)
    std = check_number("std", std, low=0)
    fy = jnp.fft.fftfreq(h)[:, None]
    fx = jnp.fft.rfftfreq(w)[None, :]
    f = jnp.sqrt(fx ** 2 + fy ** 2)
    amp = jnp.where(f > 0, 1.0 / jnp.maximum(f, 1.0 / max(h, w)) ** exponent, 0.0)
    k1, k2 = jax.random.split(key)
    spec = (rng.normal(k1, (n, c, *f.shape)) + 1j * rng.normal(k2, (n, c, *f.shape))) * amp
    img = jnp.fft.irfft2(spec, s=(h, w)).transpose(0, 2, 3, 1)
    img = img - img.mean(axis=(1, 2, 3), keepdims=True)
    img = img / (img.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
    return jnp.clip(0.5 + std * img, 0.0, 1.0).astype(jnp.float32)


def _photo(name: str) -> np.ndarray:
    import skimage.data

    check_choice("names", name, PHOTOS)
    img = np.asarray(getattr(skimage.data, name)(), np.float32) / 255.0
    return img[..., None] if img.ndim == 2 else img[..., :3]


def _photo_args(size, channels, names) -> tuple[str, ...]:
    check_count("size", size)
    check_count("channels", channels)
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise ArgumentError(f"names must name at least one photo; valid: {', '.join(PHOTOS)}")
    for name in names:
        check_choice("names", name, PHOTOS)
    return names


def _match_channels(img: np.ndarray, channels: int) -> np.ndarray:
    if img.shape[-1] == channels:
        return img
    gray = img.mean(-1, keepdims=True) if img.shape[-1] == 3 else img
    return np.repeat(gray, channels, -1) if channels != 1 else gray


def photos(size: int, channels: int = 3, names: Sequence[str] = PHOTOS) -> ImageStack:
    """scikit-image's bundled photos (no download), centre-cropped to a square and resized to
    ``size`` x ``size``: (len(names), size, size, channels) in [0, 1]. Kept in the cache directory
    (``INSILICO_CACHE``) under the scikit-image version, the names, size and channels: importing scikit-image and
    resizing its photos took 0.9 s in every new process (the default feature visualization's colour matrix)."""
    from importlib.metadata import version

    names = _photo_args(size, channels, names)
    identity = {"photos": names, "size": int(size), "channels": int(channels), "scikit-image": version("scikit-image"),
                "method": "centre square, skimage.transform.resize anti-aliased, float32, clipped to [0, 1]"}
    return cached_array("photos", identity, lambda: _resized_photos(size, channels, names))


def _resized_photos(size: int, channels: int, names: tuple[str, ...]) -> ImageStack:
    from skimage.transform import resize

    out = []
    for name in names:
        img = _photo(name)
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(_match_channels(resize(img, (size, size), anti_aliasing=True).astype(np.float32), channels))
    return np.clip(np.stack(out), 0.0, 1.0)


def natural_patches(key: PRNGKey, n: int, size: int, channels: int = 3, names: Sequence[str] = PHOTOS,
                    scale: int = 1) -> ImageStack:
    """``n`` random ``size`` x ``size`` patches from scikit-image's photos, drawn with ``key``.

    ``scale`` > 1 crops ``size * scale`` pixels and downsamples by block averaging.
    Returns (n, size, size, channels) float32 in [0, 1].
    """
    check_key("key", key)
    n = check_count("n", n)
    names = _photo_args(size, channels, names)
    scale = check_count("scale", scale)
    imgs = [_match_channels(_photo(nm), channels) for nm in names]
    smallest = min(min(im.shape[:2]) for im in imgs)
    if size * scale > smallest:
        raise ArgumentError(f"size * scale must be ≤ {smallest} (the smallest photo among names); got {size} * "
                            f"{scale} = {size * scale}")
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


def faces_and_nonfaces(size: int, channels: int = 3) -> tuple[ImageStack, Flags]:
    """scikit-image's LFW subset: 100 face and 100 non-face 25x25 patches (no download), resized to
    ``size``. Returns ``(images (200, size, size, channels) in [0, 1], is_face (200,) bool)``."""
    from skimage.data import lfw_subset
    from skimage.transform import resize

    check_count("size", size)
    check_count("channels", channels)

    imgs = lfw_subset().astype(np.float32)
    imgs = (imgs - imgs.min()) / (imgs.max() - imgs.min())
    out = np.stack([resize(im, (size, size), anti_aliasing=True) for im in imgs]).astype(np.float32)[..., None]
    return np.clip(_match_channels(out, channels), 0, 1), np.arange(len(imgs)) < 100
