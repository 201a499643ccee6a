"""Random transformations (Lucid's ``transform``), applied to every image before every step so that the
visualization is robust to small shifts, zooms and rotations rather than an adversarial pattern.

A transform is a callable ``(key, img, bounds) -> img`` on one image (H, W, C): :class:`Pad`, :class:`Jitter`,
:class:`RandomScale`, :class:`RandomRotate`. :func:`apply_transforms` applies a sequence with independent keys and
crops or pads back to the input size; :func:`standard_transforms` is Olah et al. 2017's set scaled to an image size.
The built-in transforms also have ``batch(keys, imgs, bounds)``: a batch (N, H, W, C), one key per image, with the
numbers of N calls; :func:`apply_batch` uses it (and ``vmap`` for any other transform), so that resampling gathers
and scatters the whole batch at once, as flat arrays.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ...validation import ArgumentError, check_count, check_finite, check_key, check_number
from ._checks import bounds_mid, check_bounds

__all__ = ["Pad", "Jitter", "RandomScale", "RandomRotate", "standard_transforms", "apply_transforms", "apply_batch",
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
        return _one(self, key, img, bounds)

    def batch(self, keys, imgs, bounds):
        v = bounds_mid(bounds) if self.value is None else self.value
        w = self.width
        return jnp.pad(imgs, ((0, 0), (w, w), (w, w), (0, 0)), constant_values=v)


@dataclass(frozen=True)
class Jitter:
    """Random crop losing ``d`` px in each dimension (a translation by 0..d px); shrinks the image by d."""
    d: int

    def __post_init__(self):
        object.__setattr__(self, "d", check_count("d", self.d, minimum=0))

    def __call__(self, key, img, bounds):
        return _one(self, key, img, bounds)

    def batch(self, keys, imgs, bounds):
        _, h, w, c = imgs.shape
        offsets = jax.vmap(lambda k: jax.random.randint(k, (2,), 0, self.d + 1))(keys)
        return jax.vmap(lambda o, img: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h - self.d, w - self.d, c)))(
            offsets, imgs)


def _one(transform, key, img, bounds):
    """One image through ``transform.batch``: a batch of one."""
    return transform.batch(key[None], img[None], bounds)[0]


def _bilinear(imgs, sy, sx):
    """Images (N, H, W, C) sampled at rows ``sy`` and columns ``sx`` (N, H', W') with bilinear interpolation, edges
    repeated: ``jax.scipy.ndimage.map_coordinates(order=1, mode="nearest")`` on every channel of every image, the
    same arithmetic in the same order (so the same numbers), but each corner one gather of rows of C from the flat
    batch (and under differentiation one scatter), not a gather per channel with the batch as an index."""
    n, h, w, c = imgs.shape

    def nodes(coordinate, size):
        lower = jnp.floor(coordinate)
        upper_weight = coordinate - lower
        index = lower.astype(jnp.int32)
        return ((jnp.clip(index, 0, size - 1), 1 - upper_weight), (jnp.clip(index + 1, 0, size - 1), upper_weight))

    flat, base = imgs.reshape(n * h * w, c), (jnp.arange(n, dtype=jnp.int32) * (h * w))[:, None, None]
    corners = [(wy * wx)[..., None] * flat[base + iy * w + ix]
               for (iy, wy), (ix, wx) in itertools.product(nodes(sy, h), nodes(sx, w))]
    return sum(corners[1:], corners[0])


def _affine(imgs, scale, angle_deg):
    """Resample images (N, H, W, C) scaled by ``scale`` and rotated by ``angle_deg`` (N,) about their centres
    (bilinear, edge mode)."""
    _, h, w, _ = imgs.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = jnp.meshgrid(jnp.arange(h) - cy, jnp.arange(w) - cx, indexing="ij")
    a, scale = jnp.deg2rad(angle_deg)[:, None, None], scale[:, None, None]
    sy = (jnp.cos(a) * ys - jnp.sin(a) * xs) / scale + cy
    sx = (jnp.sin(a) * ys + jnp.cos(a) * xs) / scale + cx
    return _bilinear(imgs, sy, sx)


def _draw(keys, values: tuple):
    """One of ``values`` per key, uniformly."""
    return jax.vmap(lambda k: jax.random.choice(k, jnp.asarray(values, jnp.float32)))(keys)


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
        return _one(self, key, img, bounds)

    def batch(self, keys, imgs, bounds):
        return _affine(imgs, _draw(keys, self.scales), jnp.zeros(len(imgs)))


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles`` (size kept)."""
    angles: tuple

    def __post_init__(self):
        object.__setattr__(self, "angles", tuple(float(v) for v in check_finite("angles", self.angles, ndim=1)))

    def __call__(self, key, img, bounds):
        return _one(self, key, img, bounds)

    def batch(self, keys, imgs, bounds):
        return _affine(imgs, jnp.ones(len(imgs)), _draw(keys, self.angles))


def _crop_or_pad(imgs, h: int, w: int, value):
    """Images (..., H', W', C) centre-cropped or padded (with ``value``) to (..., h, w, C)."""
    ih, iw = imgs.shape[-3:-1]
    if ih < h or iw < w:
        py, px = max(0, h - ih), max(0, w - iw)
        pads = ((0, 0),) * (imgs.ndim - 3) + ((py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0))
        imgs = jnp.pad(imgs, pads, constant_values=value)
        ih, iw = imgs.shape[-3:-1]
    y0, x0 = (ih - h) // 2, (iw - w) // 2
    return imgs[..., y0:y0 + h, x0:x0 + w, :]


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


def apply_batch(transforms: Sequence, keys, imgs, bounds=(0.0, 1.0)):
    """:func:`apply_transforms` on every image of ``imgs`` (N, H, W, C) with its key of ``keys`` (N): the same
    numbers, the built-in transforms run on the whole batch at once. Unchecked: for compiled code (``transforms``
    from :func:`check_transforms`, ``bounds`` from the parameterization)."""
    _, h, w, _ = imgs.shape
    out = imgs
    for i, t in enumerate(transforms):
        ks = jax.vmap(jax.random.fold_in, (0, None))(keys, i)
        out = t.batch(ks, out, bounds) if hasattr(t, "batch") else jax.vmap(t, (0, 0, None))(ks, out, bounds)
    return _crop_or_pad(out, h, w, bounds_mid(bounds))
