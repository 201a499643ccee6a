"""Random transformations (Lucid's ``transform``), applied to every image before every step so that the
visualization is robust to small shifts, zooms and rotations rather than an adversarial pattern.

A transform is a callable ``(key, img, bounds) -> img`` on one image (H, W, C): :class:`Pad`, :class:`Jitter`,
:class:`RandomScale`, :class:`RandomRotate`. :func:`apply_transforms` applies a sequence with independent keys and
crops or pads back to the input size; :func:`standard_transforms` is Olah et al. 2017's set scaled to an image size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ...validation import ArgumentError, check_count, check_finite, check_key, check_number
from ._checks import bounds_mid, check_bounds

__all__ = ["Pad", "Jitter", "RandomScale", "RandomRotate", "standard_transforms", "apply_transforms",
           "check_transforms"]


@dataclass(frozen=True)
class Pad:
    """Pad every side by ``width`` px with a constant (default: the middle of the pixel bounds)."""
    width: int
    value: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "width", check_count("width", self.width, minimum=0))
        if self.value is not None:
            object.__setattr__(self, "value", check_number("value", self.value))

    def __call__(self, key, img, bounds):
        v = bounds_mid(bounds) if self.value is None else self.value
        w = self.width
        return jnp.pad(img, ((w, w), (w, w), (0, 0)), constant_values=v)


@dataclass(frozen=True)
class Jitter:
    """Random crop losing ``d`` px in each dimension (a translation by 0..d px); shrinks the image by d."""
    d: int

    def __post_init__(self):
        object.__setattr__(self, "d", check_count("d", self.d, minimum=0))

    def __call__(self, key, img, bounds):
        h, w, c = img.shape
        oy, ox = jax.random.randint(key, (2,), 0, self.d + 1)
        return jax.lax.dynamic_slice(img, (oy, ox, 0), (h - self.d, w - self.d, c))


def _affine(img, scale, angle_deg):
    """Resample ``img`` scaled by ``scale`` and rotated by ``angle_deg`` about its centre (bilinear, edge mode)."""
    h, w, _ = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = jnp.meshgrid(jnp.arange(h) - cy, jnp.arange(w) - cx, indexing="ij")
    a = jnp.deg2rad(angle_deg)
    sy = (jnp.cos(a) * ys - jnp.sin(a) * xs) / scale + cy
    sx = (jnp.sin(a) * ys + jnp.cos(a) * xs) / scale + cx
    sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [sy, sx], order=1, mode="nearest")
    return jax.vmap(sample, in_axes=2, out_axes=2)(img)


@dataclass(frozen=True)
class RandomScale:
    """Zoom about the centre by a factor drawn from ``scales`` (size kept)."""
    scales: tuple

    def __post_init__(self):
        a = check_finite("scales", self.scales, ndim=1)
        if a.min() <= 0:
            raise ArgumentError(f"scales must be zoom factors > 0; got {a.tolist()}")
        object.__setattr__(self, "scales", tuple(float(v) for v in a))

    def __call__(self, key, img, bounds):
        return _affine(img, jax.random.choice(key, jnp.asarray(self.scales, jnp.float32)), 0.0)


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles`` (size kept)."""
    angles: tuple

    def __post_init__(self):
        object.__setattr__(self, "angles", tuple(float(v) for v in check_finite("angles", self.angles, ndim=1)))

    def __call__(self, key, img, bounds):
        return _affine(img, 1.0, jax.random.choice(key, jnp.asarray(self.angles, jnp.float32)))


def _crop_or_pad(img, h: int, w: int, value):
    ih, iw, _ = img.shape
    if ih < h or iw < w:
        py, px = max(0, h - ih), max(0, w - iw)
        img = jnp.pad(img, ((py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0)), constant_values=value)
        ih, iw, _ = img.shape
    y0, x0 = (ih - h) // 2, (iw - w) // 2
    return img[y0:y0 + h, x0:x0 + w]


def standard_transforms(size: int) -> tuple:
    """Olah et al. 2017's robustness transforms with offsets scaled from 128 px to ``size`` px: pad 16,
    jitter 16, scale {1, .975, 1.025, .95, 1.05}, rotate -5..5 deg, jitter 8 (each at least 1 px)."""
    f = check_count("size", size) / 128.0
    px = lambda v: max(1, int(round(v * f)))
    return (Pad(px(16)), Jitter(px(16)), RandomScale((1.0, 0.975, 1.025, 0.95, 1.05)),
            RandomRotate(tuple(float(a) for a in range(-5, 6))), Jitter(px(8)))


def check_transforms(transforms) -> tuple:
    try:
        transforms = tuple(transforms)
    except TypeError:
        raise ArgumentError(f"transforms must be a sequence of transforms (key, img, bounds) -> img; got "
                            f"{transforms!r}") from None
    for k, t in enumerate(transforms):
        if not callable(t):
            raise ArgumentError(f"transforms[{k}] must be a transform (key, img, bounds) -> img; got {t!r}")
    return transforms


def apply_transforms(transforms: Sequence, key, img, bounds=(0.0, 1.0)):
    """Apply ``transforms`` to one image (H, W, C) with independent keys, then centre crop/pad back to (H, W)."""
    check_transforms(transforms)
    check_key("key", key)
    bounds = check_bounds("bounds", bounds)
    if len(img.shape) != 3:
        raise ArgumentError(f"img must be one image (H, W, C); got shape {tuple(img.shape)}")
    h, w, _ = img.shape
    out = img
    for i, t in enumerate(transforms):
        out = t(jax.random.fold_in(key, i), out, bounds)
    return _crop_or_pad(out, h, w, bounds_mid(bounds))
