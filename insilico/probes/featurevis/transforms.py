"""Random transformations (Lucid's ``transform``), applied to every image before every step so that the
visualization is robust to small shifts, zooms and rotations rather than an adversarial pattern.

A transform is a callable ``(key, img, bounds) -> img`` on one image (H, W, C): :class:`Pad`, :class:`Jitter`,
:class:`RandomScale`, :class:`RandomRotate`, :class:`RandomAffine` (zoom and rotation in one resampling).
:func:`apply_transforms` applies a sequence and crops or pads back to the input size; :func:`standard_transforms`
is Olah et al. 2017's set scaled to an image size. The built-in transforms also take their random numbers as
data: ``draws`` uniform numbers per image and ``apply(u, imgs, bounds)`` on a batch (N, H, W, C) with ``u``
(N, draws). :func:`apply_batch` draws the numbers of all built-in transforms of a sequence at once — one uniform
draw per image, not one or two per transform (XLA compiles each random draw anew: a visualization step with five
separate draws compiled 0.4 s longer) — runs them on the whole batch (resampling gathers and scatters the batch as
flat arrays) and runs any other transform under ``vmap`` with its own key.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ... import rng
from ...validation import ArgumentError, check_count, check_finite, check_key, check_number
from ._checks import bounds_mid, check_bounds

__all__ = ["Pad", "Jitter", "RandomScale", "RandomRotate", "RandomAffine", "standard_transforms",
           "apply_transforms", "apply_batch", "check_transforms"]


def _uniforms(keys, n: int):
    """``n`` uniform numbers in [0, 1) per key: (N, n)."""
    return jax.vmap(lambda k: rng.uniform(k, (n,)))(keys)


def _index(u, n: int):
    """Uniform numbers in [0, 1) as indices 0..n-1, each equally likely."""
    return jnp.minimum(jnp.floor(u * n).astype(jnp.int32), n - 1)


def _choose(u, values: tuple):
    """One of ``values`` per uniform number of ``u``, each equally likely."""
    return jnp.asarray(values, jnp.float32)[_index(u, len(values))]


class _Drawn:
    """A built-in transform: ``draws`` uniform numbers per image, given to ``apply(u, imgs, bounds)``."""
    draws = 0

    def __call__(self, key, img, bounds):
        return self.batch(key[None], img[None], bounds)[0]

    def batch(self, keys, imgs, bounds):
        """A batch (N, H, W, C), one key per image."""
        return self.apply(_uniforms(keys, self.draws) if self.draws else None, imgs, bounds)

    def apply(self, u, imgs, bounds):
        """A batch (N, H, W, C) with its uniform numbers ``u`` (N, ``draws``; None when ``draws`` is 0)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Pad(_Drawn):
    """Pad every side by ``width`` px with a constant (default: the middle of the pixel bounds)."""
    width: int
    value: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "width", check_count("width", self.width, minimum=0))
        if self.value is not None:
            object.__setattr__(self, "value", check_number("value", self.value))

    def apply(self, u, imgs, bounds):
        v = bounds_mid(bounds) if self.value is None else self.value
        w = self.width
        return jnp.pad(imgs, ((0, 0), (w, w), (w, w), (0, 0)), constant_values=v)


@dataclass(frozen=True)
class Jitter(_Drawn):
    """Random crop losing ``d`` px in each dimension (a translation by 0..d px); shrinks the image by d."""
    d: int

    def __post_init__(self):
        object.__setattr__(self, "d", check_count("d", self.d, minimum=0))

    draws = 2

    def apply(self, u, imgs, bounds):
        _, h, w, c = imgs.shape
        offsets = _index(u, self.d + 1)
        return jax.vmap(lambda o, img: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h - self.d, w - self.d, c)))(
            offsets, imgs)


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


def _check_scales(scales) -> tuple:
    a = check_finite("scales", scales, ndim=1)
    if a.min() <= 0:
        raise ArgumentError(f"scales must be zoom factors > 0; got {a.tolist()}")
    return tuple(float(v) for v in a)


@dataclass(frozen=True)
class RandomScale(_Drawn):
    """Zoom about the centre by a factor drawn from ``scales`` (size kept)."""
    scales: tuple

    draws = 1

    def __post_init__(self):
        object.__setattr__(self, "scales", _check_scales(self.scales))

    def apply(self, u, imgs, bounds):
        return _affine(imgs, _choose(u[:, 0], self.scales), jnp.zeros(len(imgs)))


@dataclass(frozen=True)
class RandomRotate(_Drawn):
    """Rotate about the centre by an angle (degrees) drawn from ``angles`` (size kept)."""
    angles: tuple

    draws = 1

    def __post_init__(self):
        object.__setattr__(self, "angles", tuple(float(v) for v in check_finite("angles", self.angles, ndim=1)))

    def apply(self, u, imgs, bounds):
        return _affine(imgs, jnp.ones(len(imgs)), _choose(u[:, 0], self.angles))


@dataclass(frozen=True)
class RandomAffine(_Drawn):
    """Zoom by a factor drawn from ``scales`` and rotate by an angle (degrees) drawn from ``angles``, about the
    centre, in one resampling (size kept): :class:`RandomScale` then :class:`RandomRotate` with one
    interpolation instead of two (less blur, half the gathers)."""
    scales: tuple
    angles: tuple

    draws = 2

    def __post_init__(self):
        object.__setattr__(self, "scales", _check_scales(self.scales))
        object.__setattr__(self, "angles", tuple(float(v) for v in check_finite("angles", self.angles, ndim=1)))

    def apply(self, u, imgs, bounds):
        return _affine(imgs, _choose(u[:, 0], self.scales), _choose(u[:, 1], self.angles))


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
    jitter 16, scale {1, .975, 1.025, .95, 1.05} and rotate -5..5 deg (one resampling, :class:`RandomAffine`),
    jitter 8 (each at least 1 px)."""
    f = check_count("size", size) / 128.0
    px = lambda v: max(1, int(round(v * f)))
    return (Pad(px(16)), Jitter(px(16)),
            RandomAffine((1.0, 0.975, 1.025, 0.95, 1.05), tuple(float(a) for a in range(-5, 6))), Jitter(px(8)))


def check_transforms(transforms, size: tuple[int, int] | None = None) -> tuple:
    """``transforms`` as a tuple of callables; with the image ``size`` (H, W), every :class:`Jitter` must leave
    an image of at least one pixel (the size followed through the :class:`Pad` and :class:`Jitter` before it)."""
    try:
        transforms = tuple(transforms)
    except TypeError:
        raise ArgumentError(f"transforms must be a sequence of transforms (key, img, bounds) -> img; got "
                            f"{transforms!r}") from None
    for k, t in enumerate(transforms):
        if not callable(t):
            raise ArgumentError(f"transforms[{k}] must be a transform (key, img, bounds) -> img; got {t!r}")
    if size is not None:
        h, w = size
        for k, t in enumerate(transforms):
            if isinstance(t, Pad):
                h, w = h + 2 * t.width, w + 2 * t.width
            elif isinstance(t, Jitter):
                if t.d >= min(h, w):
                    raise ArgumentError(f"transforms[{k}] = Jitter({t.d}) would crop a {h}x{w} px image (after the "
                                        f"transforms before it) to nothing; d must be below {min(h, w)}")
                h, w = h - t.d, w - t.d
    return transforms


def apply_transforms(transforms: Sequence, key, img, bounds=(0.0, 1.0)):
    """Apply ``transforms`` to one image (H, W, C), then centre crop/pad back to (H, W): :func:`apply_batch` on a
    batch of one (the same numbers)."""
    check_key("key", key)
    bounds = check_bounds("bounds", bounds)
    if len(img.shape) != 3:
        raise ArgumentError(f"img must be one image (H, W, C); got shape {tuple(img.shape)}")
    check_transforms(transforms, tuple(img.shape[:2]))
    return apply_batch(transforms, key[None], img[None], bounds)[0]


def apply_batch(transforms: Sequence, keys, imgs, bounds=(0.0, 1.0)):
    """``transforms`` on every image of ``imgs`` (N, H, W, C) with its key of ``keys`` (N), then centre crop/pad
    back to (H, W). The built-in transforms' numbers come from one uniform draw per image (from the image's key
    folded with ``len(transforms)``), handed out in order; any other transform ``k`` runs under ``vmap`` with the
    image's key folded with ``k``. Unchecked: for compiled code (``transforms`` from :func:`check_transforms`,
    ``bounds`` from the parameterization)."""
    _, h, w, _ = imgs.shape
    drawn = sum(t.draws for t in transforms if isinstance(t, _Drawn))
    fold = lambda i: jax.vmap(jax.random.fold_in, (0, None))(keys, i)
    u = _uniforms(fold(len(transforms)), drawn) if drawn else None
    out, used = imgs, 0
    for i, t in enumerate(transforms):
        if isinstance(t, _Drawn):
            out = t.apply(None if u is None else u[:, used:used + t.draws], out, bounds)
            used += t.draws
        else:
            out = jax.vmap(t, (0, 0, None))(fold(i), out, bounds)
    return _crop_or_pad(out, h, w, bounds_mid(bounds))
