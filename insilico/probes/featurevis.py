"""Feature visualization by gradient ascent (activation maximization), for every unit of a layer at once.

Three parts compose, as in Lucid (Olah, Mordvintsev & Schubert 2017):

* an image **parameterization** (:class:`ImageParam`: pixels, 1/f-scaled Fourier coefficients, a Laplacian
  pyramid or a CPPN; colour decorrelated with a matrix estimated from natural images; squashed into the
  subject's declared pixel bounds by a sigmoid or a straight-through clip),
* random **transformations** applied before every step (pad, jitter, scale, rotate; a fresh draw per image),
* an **objective** (:class:`Objective`) built from small pieces that compose with ``+``, ``-`` and ``*``.

:func:`visualize` optimizes ``n_seeds`` images for each requested unit with Adam inside one compiled
``lax.scan``, vmapped over units and run through the sweep engine, so a whole layer is one call whose memory is
bounded by chunking. Defaults follow Olah et al. 2017 (Adam lr 0.05, 1/f Fourier parameterization with
decorrelated colour, pad/jitter/scale/rotate/jitter with offsets scaled from their 128 px to the subject's
input size, redirected ReLU gradients for the first 16 steps) except the number of steps (Olah: 2,560;
here 512 as in Lucid's ``render_vis``).

Every argument is checked before anything is compiled — explicit unit, channel and position indices in
objectives against the subject's sites when :func:`visualize` is called — and a bad one raises
:class:`~insilico.validation.ArgumentError` naming it, its value and what is valid.

Example::

    from insilico.probes import featurevis as fv
    result = fv.visualize(subject, fv.channel("conv2"), units=range(64), n_seeds=2, steps=256, key=key)
    result.images  # (unit, step, seed, y, x, channel)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import electrode as el
from ..validation import (ArgumentError, check_choice, check_count, check_finite, check_indices, check_key,
                          check_number, check_positive)
from ._loop import LOOPS, resolve_loop
from ..models import relu_gradient_override
from ..sweep import choose_batch_size, run_sweep

__all__ = ["ImageParam", "pixel", "fourier", "pyramid", "cppn", "color_matrix", "default_param",
           "Pad", "Jitter", "RandomScale", "RandomRotate", "standard_transforms", "apply_transforms",
           "Objective", "neuron", "channel", "direction", "deepdream", "class_logit", "total_variation", "l1", "l2",
           "alignment", "diversity", "visualize", "OptimizationError"]


class OptimizationError(FloatingPointError):
    """The objective or its gradient became NaN/inf during optimization."""


# --------------------------------------------------------------------------------------------- parameterizations

def color_matrix(images) -> np.ndarray:
    """Colour decorrelation matrix from data: the symmetric square root of the channel covariance of
    ``images`` (N, H, W, C), scaled so its largest column has unit norm (Lucid's convention, but estimated
    from the images the model sees instead of a fixed ImageNet matrix). Identity for one channel."""
    x = check_finite("images", images, ndim=4).astype(np.float64)
    c = x.shape[-1]
    if c == 1:
        return np.ones((1, 1))
    flat = x.reshape(-1, c)
    cov = np.cov(flat, rowvar=False)
    w, v = np.linalg.eigh(cov)
    root = (v * np.sqrt(np.maximum(w, 0))) @ v.T
    return root / np.linalg.norm(root, axis=0).max()


def _freqs(h: int, w: int) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx ** 2 + fy ** 2)


def _upsample(x, h: int, w: int):
    return jax.image.resize(x, (h, w, x.shape[-1]), "linear")


@dataclass(frozen=True)
class ImageParam:
    """An image parameterization: ``init(key) -> params`` and ``render(params) -> (H, W, C)`` in ``bounds``.

    Build one with :func:`pixel`, :func:`fourier`, :func:`pyramid` or :func:`cppn`. Fields: ``kind``,
    ``shape`` (H, W, C), ``bounds``, ``color`` (C x C decorrelation matrix as nested tuples, or None),
    ``output`` ("sigmoid" or "clip": straight-through clipping of 0.5 + z into the bounds), ``sd`` (initial
    scale), ``decay`` (Fourier: amplitude ~ 1/f^decay), ``levels`` (pyramid), ``width``/``depth`` (CPPN).
    """

    kind: str
    shape: tuple
    bounds: tuple = (0.0, 1.0)
    color: tuple | None = None
    output: str = "sigmoid"
    sd: float = 0.01
    decay: float = 1.0
    levels: int = 4
    width: int = 24
    depth: int = 8

    def __post_init__(self):
        check_choice("kind (the parameterization)", self.kind, ("pixel", "fourier", "pyramid", "cppn"))
        check_choice("output", self.output, ("sigmoid", "clip"))
        dims = check_finite("shape", self.shape, ndim=1)
        if dims.shape != (3,):
            raise ArgumentError(f"shape must be (H, W, C), got {self.shape}")
        shape = tuple(check_count(f"shape[{k}]", d) for k, d in enumerate(dims))
        c = shape[2]
        if self.color is not None:
            color = check_finite("color", self.color, ndim=2)
            if color.shape != (c, c):
                raise ArgumentError(f"color matrix must be {c}x{c}, got {color.shape}")
            object.__setattr__(self, "color", tuple(map(tuple, color.astype(float).tolist())))
        fields = {"shape": shape, "bounds": _check_bounds("bounds", self.bounds),
                  "sd": check_number("sd", self.sd, low=0), "decay": check_number("decay", self.decay),
                  "levels": check_count("levels", self.levels), "width": check_count("width", self.width),
                  "depth": check_count("depth", self.depth)}
        for name, value in fields.items():                    # normalized: hashable, plain Python numbers
            object.__setattr__(self, name, value)

    def init(self, key):
        h, w, c = self.shape
        if self.kind == "pixel":
            return self.sd * jax.random.normal(key, (h, w, c))
        if self.kind == "fourier":
            return self.sd * jax.random.normal(key, (2, c, h, w // 2 + 1))
        if self.kind == "pyramid":
            keys = jax.random.split(key, self.levels)
            return [self.sd * jax.random.normal(k, (max(1, h >> i), max(1, w >> i), c))
                    for i, k in enumerate(keys)]
        keys = jax.random.split(key, self.depth + 1)
        sizes = [3] + [self.width] * self.depth
        layers = []
        for i in range(self.depth):
            fan_in = sizes[i] * (1 if i == 0 else 2)
            layers.append((jax.random.normal(keys[i], (fan_in, self.width)) / math.sqrt(fan_in),
                           jnp.zeros(self.width)))
        layers.append((jnp.zeros((2 * self.width, c)), jnp.zeros(c)))
        return layers

    def _spatial(self, p):
        h, w, c = self.shape
        if self.kind == "pixel":
            return p
        if self.kind == "fourier":
            scale = 1.0 / np.maximum(_freqs(h, w), 1.0 / max(h, w)) ** self.decay
            scale = scale / np.sqrt(np.mean(scale ** 2))             # unit RMS: step size independent of size
            spec = (p[0] + 1j * p[1]) * scale
            return jnp.fft.irfft2(spec, s=(h, w), norm="ortho").transpose(1, 2, 0)
        if self.kind == "pyramid":
            return sum(_upsample(level, h, w) for level in p) / math.sqrt(len(p))
        ys, xs = jnp.meshgrid(jnp.linspace(-math.sqrt(3), math.sqrt(3), h),
                              jnp.linspace(-math.sqrt(3), math.sqrt(3), w), indexing="ij")
        z = jnp.stack([xs, ys, jnp.sqrt(xs ** 2 + ys ** 2)], -1)
        for i, (wt, b) in enumerate(p):
            z = z @ wt + b
            if i < len(p) - 1:                                       # Lucid's "composite" atan activation
                a = jnp.arctan(z)
                z = jnp.concatenate([a / 0.67, a ** 2 / 0.6], -1)
        return z

    def render(self, p):
        """Parameters of one image -> the image (H, W, C) inside ``bounds``."""
        z = self._spatial(p)
        if self.color is not None:
            z = z @ jnp.asarray(self.color, z.dtype).T
        lo, hi = self.bounds
        if self.output == "sigmoid":
            return lo + (hi - lo) * jax.nn.sigmoid(z)
        x = 0.5 + z
        x = x + jax.lax.stop_gradient(jnp.clip(x, 0.0, 1.0) - x)      # straight-through clip
        return lo + (hi - lo) * x


def _check_bounds(name: str, bounds) -> tuple:
    """Two finite numbers lo < hi."""
    b = check_finite(name, bounds, ndim=1)
    if b.shape != (2,) or not b[0] < b[1]:
        raise ArgumentError(f"{name} must be two numbers (lo, hi) with lo < hi; got {bounds!r}")
    return float(b[0]), float(b[1])


def _check_site_name(site):
    if not isinstance(site, str):
        raise ArgumentError(f"site must be a site name (a string); got {site!r}")
    return site


def _check_index(name: str, value):
    """None, or an integer ≥ 0 (its upper end is checked against the subject's site by :func:`visualize`)."""
    return None if value is None else check_number(name, value, low=0, integer=True)


def _shape_bounds(subject_or_shape, bounds):
    if hasattr(subject_or_shape, "input_spec"):
        spec = subject_or_shape.input_spec
        return tuple(spec.shape), tuple(bounds or spec.bounds)
    return tuple(subject_or_shape), tuple(bounds or (0.0, 1.0))


def _color(color):
    return None if color is None else tuple(map(tuple, np.asarray(color, float).tolist()))


def pixel(subject_or_shape, *, color=None, output="sigmoid", sd=0.01, bounds=None) -> ImageParam:
    """Plain pixel parameterization (optionally colour-decorrelated)."""
    shape, bounds = _shape_bounds(subject_or_shape, bounds)
    return ImageParam("pixel", shape, bounds, _color(color), output, sd)


def fourier(subject_or_shape, *, color=None, output="sigmoid", sd=0.01, decay=1.0, bounds=None) -> ImageParam:
    """Fourier coefficients scaled by 1/f^decay (natural-image spectrum), weights normalised to unit RMS."""
    shape, bounds = _shape_bounds(subject_or_shape, bounds)
    return ImageParam("fourier", shape, bounds, _color(color), output, sd, decay)


def pyramid(subject_or_shape, *, levels=4, color=None, output="sigmoid", sd=0.01, bounds=None) -> ImageParam:
    """Laplacian-pyramid parameterization: a sum of bilinearly upsampled images at full, 1/2, 1/4, ...
    resolution (``levels`` of them); coarse levels make low-frequency structure cheap to change."""
    shape, bounds = _shape_bounds(subject_or_shape, bounds)
    return ImageParam("pyramid", shape, bounds, _color(color), output, sd, levels=levels)


def cppn(subject_or_shape, *, width=24, depth=8, color=None, output="sigmoid", bounds=None) -> ImageParam:
    """Compositional pattern-producing network (x, y, r) -> colour, ``depth`` layers of ``width`` units with
    Lucid's composite arctan activation; each image has its own network. Use a smaller lr (~5e-3)."""
    shape, bounds = _shape_bounds(subject_or_shape, bounds)
    return ImageParam("cppn", shape, bounds, _color(color), output, width=width, depth=depth)


@lru_cache(maxsize=8)
def _natural_color(channels: int) -> np.ndarray:
    from ..data.stimuli import photos

    return color_matrix(photos(64, channels=channels))


def default_param(subject_or_shape) -> ImageParam:
    """Olah et al.'s default: 1/f Fourier + colour decorrelation (estimated from scikit-image's natural photos
    in the subject's channel count) + sigmoid into the subject's bounds."""
    c = _shape_bounds(subject_or_shape, None)[0][2]
    return fourier(subject_or_shape, color=_natural_color(c) if c > 1 else None)


# ---------------------------------------------------------------------------------------------------- transforms

def _bounds_mid(bounds):
    return 0.5 * (bounds[0] + bounds[1])


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
        v = _bounds_mid(bounds) if self.value is None else self.value
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
    h, w, c = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    ys, xs = jnp.meshgrid(jnp.arange(h) - cy, jnp.arange(w) - cx, indexing="ij")
    a = jnp.deg2rad(angle_deg)
    sy = (jnp.cos(a) * ys - jnp.sin(a) * xs) / scale + cy
    sx = (jnp.sin(a) * ys + jnp.cos(a) * xs) / scale + cx
    sample = lambda ch: jax.scipy.ndimage.map_coordinates(ch, [sy, sx], order=1, mode="nearest")  # noqa: E731
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
    px = lambda v: max(1, int(round(v * f)))  # noqa: E731
    return (Pad(px(16)), Jitter(px(16)), RandomScale((1.0, 0.975, 1.025, 0.95, 1.05)),
            RandomRotate(tuple(float(a) for a in range(-5, 6))), Jitter(px(8)))


def _check_transforms(transforms) -> tuple:
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
    _check_transforms(transforms)
    check_key("key", key)
    bounds = _check_bounds("bounds", bounds)
    if len(img.shape) != 3:
        raise ArgumentError(f"img must be one image (H, W, C); got shape {tuple(img.shape)}")
    h, w, _ = img.shape
    out = img
    for i, t in enumerate(transforms):
        out = t(jax.random.fold_in(key, i), out, bounds)
    return _crop_or_pad(out, h, w, _bounds_mid(bounds))


# ---------------------------------------------------------------------------------------------------- objectives

@dataclass(frozen=True, eq=False)
class Objective:
    """A quantity to maximize: ``fn(acts, images, unit) -> (B,)`` per-image values, where ``acts`` maps site
    names to activations (B, ...) of the transformed images, ``images`` are the rendered images (B, H, W, C)
    and ``unit`` the index of the unit being visualized (traced). Objectives compose:
    ``channel("conv2") - 1e-3 * total_variation()``, ``neuron("fc1") * channel("conv3")``, ``-channel(...)``
    (inhibit). ``sites``: sites whose activations the objective reads; ``unit_sites``: sites whose last axis
    ``unit`` indexes (checked against the requested units). ``spec``: a hashable description; objectives
    with equal specs are equal, so repeated calls reuse the compiled probe (None: compare by identity).
    ``checks``: functions ``(subject, units) -> None`` that :func:`visualize` calls before compiling, raising
    :class:`~insilico.validation.ArgumentError` for an explicit index (a channel, a position, a direction's
    width) that the subject's site does not have."""

    fn: Callable
    name: str
    sites: frozenset = field(default_factory=frozenset)
    unit_sites: frozenset = field(default_factory=frozenset)
    spec: tuple | None = None
    checks: tuple = ()

    def __post_init__(self):
        if not callable(self.fn):
            raise ArgumentError(f"fn must be a function (acts, images, unit) -> (B,) values; got {self.fn!r}")
        for name in ("sites", "unit_sites"):
            value = getattr(self, name)
            names = (value,) if isinstance(value, str) else tuple(value)
            if not all(isinstance(n, str) for n in names):
                raise ArgumentError(f"{name} must be site names (strings); got {value!r}")
            object.__setattr__(self, name, frozenset(names))
        object.__setattr__(self, "checks", tuple(self.checks))

    def __call__(self, acts, images, unit):
        return self.fn(acts, images, unit)

    def __eq__(self, other):
        if not isinstance(other, Objective):
            return NotImplemented
        return self is other or (self.spec is not None and self.spec == other.spec)

    def __hash__(self):
        return hash(self.spec) if self.spec is not None else id(self)

    def _combine(self, other, op, sym):
        if isinstance(other, Objective):
            spec = None if self.spec is None or other.spec is None else (sym, self.spec, other.spec)
            return Objective(lambda a, i, u: op(self(a, i, u), other(a, i, u)), f"({self.name} {sym} {other.name})",
                             self.sites | other.sites, self.unit_sites | other.unit_sites, spec,
                             self.checks + other.checks)
        c = float(check_number(f"the number {sym} {self.name}", other))
        return Objective(lambda a, i, u: op(self(a, i, u), c), f"({self.name} {sym} {c:g})", self.sites,
                         self.unit_sites, _spec(sym, self.spec, c), self.checks)

    def __add__(self, other):
        return self._combine(other, jnp.add, "+")

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self._combine(other, jnp.subtract, "-")

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, Objective):
            return self._combine(other, jnp.multiply, "*")
        c = float(check_number(f"the weight of {self.name}", other))
        return Objective(lambda a, i, u: c * self(a, i, u), f"{c:g} * {self.name}", self.sites, self.unit_sites,
                         _spec("*", c, self.spec), self.checks)

    __rmul__ = __mul__

    def __truediv__(self, c):
        c = check_number(f"the divisor of {self.name}", c)
        if c == 0:
            raise ArgumentError(f"the divisor of {self.name} must be a non-zero number; got {c!r}")
        return self * (1.0 / c)

    def __neg__(self):
        return Objective(lambda a, i, u: -self(a, i, u), f"-{self.name}", self.sites, self.unit_sites,
                         _spec("neg", self.spec), self.checks)

    def __repr__(self):
        return f"Objective({self.name})"


def _spec(*parts):
    return None if any(p is None for p in parts) else parts


def _pick(index, unit):
    return unit if index is None else index


def _index_check(site: str, what: str, value, axis: int):
    """A check (subject, units) that ``value`` indexes axis ``axis`` of the unit shape of ``site`` (a
    convolutional site (H, W, C) for the spatial axes 0 and 1)."""
    def check(subject, units):
        shape = tuple(subject.sites[site])
        if axis >= 0 and len(shape) != 3:
            raise ArgumentError(f"{what} applies to convolutional sites (H, W, C); {site!r} of {subject.name} has "
                                f"units of shape {shape}")
        check_indices(f"{what} (of {site!r} of {subject.name}, which has {shape[axis]})", value, shape[axis])
    return check


def neuron(site: str, index: int | None = None, x: int | None = None, y: int | None = None) -> Objective:
    """One unit: channel ``index`` (default: the unit being visualized) at position (``y``, ``x``) (default:
    the centre) of a convolutional site, or unit ``index`` of a dense site."""
    _check_site_name(site)
    index, x, y = _check_index("index", index), _check_index("x", x), _check_index("y", y)
    checks = tuple(_index_check(site, name, v, axis) for name, v, axis in
                   (("index (channel)", index, -1), ("y", y, 0), ("x", x, 1)) if v is not None)

    def fn(acts, images, unit):
        a = acts[site]
        if a.ndim == 4:
            yy = a.shape[1] // 2 if y is None else y
            xx = a.shape[2] // 2 if x is None else x
            a = a[:, yy, xx, :]
        elif a.ndim > 2:                        # other unit shapes (e.g. (T, C)): the centre of every position axis
            a = a[(slice(None), *(n // 2 for n in a.shape[1:-1]))]
        return a[:, _pick(index, unit)]
    return Objective(fn, f"neuron({site}{'' if index is None else ':' + str(index)})", frozenset([site]),
                     frozenset([site]) if index is None else frozenset(), ("neuron", site, index, x, y), checks)


def _channels(a):
    """Activations (N, ..., C) averaged over every position axis: (N, C)."""
    return a.mean(axis=tuple(range(1, a.ndim - 1))) if a.ndim > 2 else a


def channel(site: str, index: int | None = None) -> Objective:
    """Mean activation of a channel over all positions (a dense site: the unit itself)."""
    _check_site_name(site)
    index = _check_index("index", index)
    checks = () if index is None else (_index_check(site, "index (channel)", index, -1),)

    def fn(acts, images, unit):
        a = acts[site]
        a = _channels(a)
        return a[:, _pick(index, unit)]
    return Objective(fn, f"channel({site}{'' if index is None else ':' + str(index)})", frozenset([site]),
                     frozenset([site]) if index is None else frozenset(), ("channel", site, index), checks)


def direction(site: str, vectors, cossim_pow: float = 0.0) -> Objective:
    """Projection of the (spatially averaged) activation vector onto ``vectors`` (C,), or, when ``vectors``
    is (U, C), onto row ``unit``. ``cossim_pow`` > 0 multiplies by cosine similarity^pow (Lucid)."""
    _check_site_name(site)
    arr = check_finite("vectors", vectors, ndim=(1, 2)).astype(np.float32)
    cossim_pow = check_number("cossim_pow", cossim_pow, low=0)
    v = jnp.asarray(arr)

    def check(subject, units):
        shape = tuple(subject.sites[site])
        if arr.shape[-1] != shape[-1]:
            raise ArgumentError(f"vectors must have {shape[-1]} entries per direction (the channels of {site!r} of "
                                f"{subject.name}); got shape {arr.shape}")
        if arr.ndim == 2:
            check_indices(f"units (rows of the {arr.shape[0]} direction vectors)", units, arr.shape[0])

    def fn(acts, images, unit):
        a = acts[site]
        a = _channels(a)
        d = v[unit] if v.ndim == 2 else v
        dot = a @ d
        if cossim_pow:
            cos = dot / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(d) + 1e-8)
            dot = dot * jnp.maximum(cos, 1e-3) ** cossim_pow
        return dot
    return Objective(fn, f"direction({site})", frozenset([site]), frozenset(),
                     ("direction", site, arr.shape, arr.tobytes(), float(cossim_pow)), (check,))


def deepdream(site: str) -> Objective:
    """Mean squared activation of the whole site (Mordvintsev et al.'s DeepDream)."""
    _check_site_name(site)

    def fn(acts, images, unit):
        a = acts[site]
        return (a.reshape(a.shape[0], -1) ** 2).mean(-1)
    return Objective(fn, f"deepdream({site})", frozenset([site]), spec=("deepdream", site))


def class_logit(site: str = "logits", index: int | None = None) -> Objective:
    """A class logit (default: the class with index = the unit being visualized)."""
    obj = neuron(site, index)
    index = _check_index("index", index)
    return Objective(obj.fn, f"class_logit({site}{'' if index is None else ':' + str(index)})", obj.sites,
                     obj.unit_sites, ("class_logit", site, index), obj.checks)


def total_variation() -> Objective:
    """Total variation of the rendered image (a penalty: subtract it)."""
    def fn(acts, images, unit):
        dy = jnp.abs(jnp.diff(images, axis=1)).sum(axis=(1, 2, 3))
        dx = jnp.abs(jnp.diff(images, axis=2)).sum(axis=(1, 2, 3))
        return dx + dy
    return Objective(fn, "total_variation", spec=("total_variation",))


def l1(constant: float = 0.5) -> Objective:
    """L1 distance of the image from ``constant`` (a penalty: subtract it)."""
    constant = check_number("constant", constant)
    return Objective(lambda a, img, u: jnp.abs(img - constant).sum(axis=(1, 2, 3)), "l1",
                     spec=("l1", float(constant)))


def l2(constant: float = 0.5, epsilon: float = 1e-6) -> Objective:
    """L2 distance of the image from ``constant`` (a penalty: subtract it)."""
    constant, epsilon = check_number("constant", constant), check_number("epsilon", epsilon, low=0)
    return Objective(lambda a, img, u: jnp.sqrt(epsilon + ((img - constant) ** 2).sum(axis=(1, 2, 3))), "l2",
                     spec=("l2", float(constant), float(epsilon)))


def _batch_share(total, b):
    return jnp.full((b,), total / b)


def diversity(site: str) -> Objective:
    """Negative mean pairwise cosine similarity of the images' Gram matrices at ``site`` (Olah et al. 2017):
    add ``w * diversity(site)`` so the seeds of one unit show different facets. A batch-level term, shared
    equally by the images."""
    _check_site_name(site)

    def fn(acts, images, unit):
        a = acts[site]
        b = a.shape[0]
        if b < 2:
            return jnp.zeros((b,))
        flat = a.reshape(b, -1, a.shape[-1])
        gram = jnp.einsum("bpc,bpd->bcd", flat, flat).reshape(b, -1)
        gram = gram / (jnp.linalg.norm(gram, axis=-1, keepdims=True) + 1e-8)
        sim = gram @ gram.T
        return _batch_share(-(sim.sum() - jnp.trace(sim)) / (b * (b - 1)), b)
    return Objective(fn, f"diversity({site})", frozenset([site]), spec=("diversity", site))


def alignment(site: str, decay_ratio: float = 2.0) -> Objective:
    """Penalty on differences between neighbouring images of the batch at ``site`` (weights decay as
    ``decay_ratio``^-distance), for smooth interpolations; subtract it."""
    _check_site_name(site)
    decay_ratio = check_positive("decay_ratio", decay_ratio)

    def fn(acts, images, unit):
        a = acts[site]
        b = a.shape[0]
        total = 0.0
        for d in range(1, b):
            total = total + ((a[d:] - a[:-d]) ** 2).mean() / decay_ratio ** d
        return _batch_share(total, b)
    return Objective(fn, f"alignment({site})", frozenset([site]), spec=("alignment", site, float(decay_ratio)))


# ------------------------------------------------------------------------------------------------------- render

class _Program:
    """The optimization of one unit's images, in three pure pieces shared by both drivers of :func:`visualize`:
    ``init(unit, shared) -> state``, ``step(state, i, unit, shared) -> (state, objective values)`` and
    ``finish(state, unit, shared) -> outputs``; ``shared = (subject, key)`` (the subject is a pytree, so its
    weights are arguments of the compiled program, never constants in it). The state carries the image
    parameters, the Adam state, the first non-finite step (-1: none) and the snapshot buffer."""

    def __init__(self, objective: Objective, param: ImageParam, transforms: tuple, steps: int, lr: float,
                 n_seeds: int, snapshots: tuple, override_steps: int):
        self.objective, self.param, self.transforms = objective, param, transforms
        self.steps, self.n_seeds, self.snapshots, self.override_steps = steps, n_seeds, snapshots, override_steps
        self.sites = tuple(sorted(objective.sites))
        self.opt = optax.adam(lr)

    def _keys(self, unit, key):
        return jax.random.split(jax.random.fold_in(key, unit))             # (init key, step key)

    def _loss(self, p, key, unit, subject, step):
        imgs = jax.vmap(self.param.render)(p)
        keys = jax.random.split(key, self.n_seeds)
        seen = jax.vmap(lambda k, im: apply_transforms(self.transforms, k, im, self.param.bounds))(keys, imgs)
        with relu_gradient_override(step < self.override_steps):
            _, acts = el.forward(subject, seen, record=self.sites)
        values = self.objective(acts, imgs, unit)
        return -values.sum(), (values, imgs)

    def init(self, unit, shared):
        init_key, _ = self._keys(unit, shared[1])
        params = jax.vmap(self.param.init)(jax.random.split(init_key, self.n_seeds))
        buf = jnp.zeros((len(self.snapshots), self.n_seeds, *self.param.shape), jnp.float32)
        return params, self.opt.init(params), jnp.asarray(-1, jnp.int32), buf

    def step(self, state, i, unit, shared):
        p, s, nan_step, buf = state
        subject, key = shared
        key = jax.random.fold_in(self._keys(unit, key)[1], i)
        (_, (values, imgs)), g = jax.value_and_grad(self._loss, has_aux=True)(p, key, unit, subject, i)
        snaps = jnp.asarray(self.snapshots, jnp.int32)
        slot = jnp.minimum(jnp.searchsorted(snaps, i), len(self.snapshots) - 1)
        buf = jnp.where(snaps[slot] == i, buf.at[slot].set(imgs), buf)          # images after i updates
        updates, s_new = self.opt.update(g, s, p)
        p_new = optax.apply_updates(p, updates)
        finite = jnp.all(jnp.isfinite(values)) & jnp.all(jnp.array(
            [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(p_new)]))
        nan_step = jnp.where((nan_step < 0) & ~finite, i, nan_step)
        keep = nan_step >= 0                                # frozen at the last finite step
        p = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), p, p_new)
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), s, s_new)
        return (p, s, nan_step, buf), jnp.nan_to_num(values)

    def finish(self, state, unit, shared):
        p, _, nan_step, buf = state
        final = jax.vmap(self.param.render)(p)
        buf = buf.at[-1].set(final)                                        # the last snapshot is always ``steps``
        _, acts = el.forward(shared[0], final, record=self.sites)
        score = self.objective(acts, final, unit)                          # final images, untransformed
        return {"images": jnp.nan_to_num(buf), "score": jnp.nan_to_num(score), "nan_step": nan_step}

    def scan_fn(self, unit, shared):
        """The whole optimization of one unit as one ``lax.scan`` (for the sweep engine)."""
        state, trace = jax.lax.scan(lambda st, i: self.step(st, i, unit, shared), self.init(unit, shared),
                                    jnp.arange(self.steps))
        return {**self.finish(state, unit, shared), "objective": trace}


@lru_cache(maxsize=16)
def _program(*args) -> _Program:
    return _Program(*args)


@lru_cache(maxsize=16)
def _host_fns(program: _Program):
    """Jitted, unit-vmapped init / step / finish for the host-loop driver."""
    over = lambda f, *axes: jax.jit(jax.vmap(f, in_axes=axes))  # noqa: E731
    return (over(program.init, 0, None), over(program.step, 0, None, 0, None),
            over(program.finish, 0, 0, None))


def _host_loop(program: _Program, units: np.ndarray, shared, batch_size: int, progress: bool, desc: str) -> dict:
    """Drive the optimization from Python, one compiled step for a whole chunk of units per iteration.

    XLA:CPU runs the input-gradient convolutions inside a compiled loop body 3-4x slower than in a straight-line
    program (they get a kernel layout without the fast convolution path), so on CPU a step per dispatch wins."""
    from tqdm.auto import tqdm

    init, step, finish = _host_fns(program)
    n_chunks = math.ceil(len(units) / batch_size)
    chunks = []
    with tqdm(total=n_chunks * program.steps, desc=desc, disable=not progress, unit="step") as bar:
        for c in range(n_chunks):
            u = units[c * batch_size:(c + 1) * batch_size]
            u = jnp.asarray(np.pad(u, (0, batch_size - len(u)), mode="edge"), jnp.int32)   # one compiled shape
            state, trace = init(u, shared), []
            for i in range(program.steps):
                state, values = step(state, jnp.int32(i), u, shared)
                trace.append(values)
                bar.update()
            out = finish(state, u, shared)
            out["objective"] = jnp.stack(trace, 1)
            chunks.append({k: np.asarray(v) for k, v in out.items()})
    return {k: np.concatenate([ch[k] for ch in chunks])[:len(units)] for k in chunks[0]}


def _check_param(subject, param: ImageParam):
    if not isinstance(param, ImageParam):
        raise ArgumentError(f"param must be an ImageParam (fv.pixel, fv.fourier, ...); got {type(param).__name__}")
    if tuple(param.shape) != tuple(subject.input_spec.shape):
        raise ArgumentError(f"parameterization renders images of shape {tuple(param.shape)} (H, W, C) but "
                            f"{subject.name} takes {tuple(subject.input_spec.shape)}")
    lo, hi = subject.input_spec.bounds
    if param.bounds[0] < lo or param.bounds[1] > hi:
        raise ArgumentError(f"parameterization renders pixels in {param.bounds}, outside {subject.name}'s pixel "
                            f"bounds [{lo}, {hi}]")


def _check(subject, objective: Objective, units) -> np.ndarray:
    """Check the objective's sites and explicit indices and the units (returned as an int array) against
    ``subject``."""
    if not isinstance(objective, Objective):
        raise ArgumentError(f"objective must be an insilico Objective (fv.channel, fv.neuron, ...); got "
                            f"{type(objective).__name__}")
    el.validate(subject, sites=sorted(objective.sites), purpose=f"objective {objective.name}")
    if isinstance(units, (int, np.integer)) and not isinstance(units, (bool, np.bool_)):
        units = np.arange(check_count("units (a number of units)", units))
    elif not hasattr(units, "shape") and not isinstance(units, (str, bytes)):
        try:
            units = list(units)
        except TypeError:
            pass
    units = check_indices("units", units, None)
    if np.ndim(units) != 1:
        raise ArgumentError("units must be a 1-D sequence of unit indices or a number of units")
    for site in sorted(objective.unit_sites):
        n = subject.sites[site][-1]
        check_indices(f"units (channels of {site!r}, which has {n})", units, n)
    for check in objective.checks:
        check(subject, units)
    return units


def visualize(subject, objective: Objective, units: Sequence[int] | int = 1, *, key, n_seeds: int = 1,
              param: ImageParam | None = None, transforms: Sequence | None = None, steps: int = 512,
              lr: float = 0.05, snapshots: Sequence[int] | None = None, relu_override_steps: int = 16,
              batch_size: int | None = None, memory_budget: float = 2e9, loop: str = "auto",
              progress: bool = True) -> xr.Dataset:
    """Optimize ``n_seeds`` images per unit to maximize ``objective``; all units of a chunk optimized together.

    Args:
        objective: an :class:`Objective`; pieces built without an explicit index (``channel("conv2")``) target
            the unit being visualized.
        units: unit indices (channels of a conv site), or an int n for units 0..n-1.
        key: PRNG key; unit u's images depend only on (key, u), not on the other units in the call.
        param: image parameterization (default :func:`default_param`); transforms: default
            :func:`standard_transforms` for the input size (pass ``()`` for none).
        steps/lr: Adam steps and learning rate. snapshots: steps at which images are kept (default: the last).
        relu_override_steps: redirected ReLU gradients for this many first steps (0 = off).
        batch_size/memory_budget: units vmapped together (default: sized from the memory budget).
        loop: "scan" runs each unit's whole optimization as one ``lax.scan`` on the sweep engine (sharded over
            devices); "host" dispatches one compiled step for all units of a chunk per iteration; "auto" picks
            "host" on CPU (where XLA's convolution gradients run 3-4x slower inside a loop body) and "scan"
            elsewhere. Both give the same images.
    Returns: ``xarray.Dataset`` with ``images`` (unit, step, seed, y, x, channel), ``objective`` (unit,
    iteration, seed) and the final objective ``score`` (unit, seed) of the untransformed images.
    Raises: :class:`OptimizationError` naming the unit and step where the objective became NaN/inf.
    """
    el.validate(subject)
    check_key("key", key)
    n_seeds, steps, lr = check_count("n_seeds", n_seeds), check_count("steps", steps), check_positive("lr", lr)
    relu_override_steps = check_count("relu_override_steps", relu_override_steps, minimum=0)
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size)
    memory_budget = check_positive("memory_budget", memory_budget)
    loop = check_choice("loop", loop, LOOPS)
    progress = bool(check_choice("progress", progress, (False, True)))
    if snapshots is None:
        snapshots = (steps,)
    else:
        try:
            snapshots = tuple(snapshots)
        except TypeError:
            raise ArgumentError(f"snapshots must be a sequence of steps in [0, {steps}]; got {snapshots!r}") from None
        if not snapshots:
            raise ArgumentError(f"snapshots must name at least one step in [0, {steps}] (None: the last)")
        snapshots = tuple(sorted({check_count(f"snapshots[{k}]", v, minimum=0, maximum=steps)
                                  for k, v in enumerate(snapshots)}))
    transforms = (standard_transforms(subject.input_spec.shape[0]) if transforms is None
                  else _check_transforms(transforms))
    units = _check(subject, objective, units)
    if param is not None:
        _check_param(subject, param)
    param = default_param(subject) if param is None else param
    snap_run = snapshots if snapshots[-1] == steps else snapshots + (steps,)
    loop = resolve_loop(loop)
    program = _program(objective, param, transforms, int(steps), float(lr), int(n_seeds), snap_run,
                       int(relu_override_steps))
    shared = (subject, key)
    if batch_size is None:                 # sized from the traced program: compiling twice to measure is slow
        batch_size = choose_batch_size(program.scan_fn, jnp.asarray(units[:1], jnp.int32), shared, memory_budget,
                                       compile=False)
    dims = {"images": ("step", "seed", "y", "x", "channel"), "objective": ("iteration", "seed"), "score": ("seed",)}
    desc = f"visualize {objective.name}"
    if loop == "scan":
        ds = run_sweep(program.scan_fn, jnp.asarray(units, jnp.int32), shared, dim="unit", coords=units,
                       batch_size=batch_size, memory_budget=memory_budget, progress=progress, desc=desc,
                       extra_dims=dims)
    else:
        batch_size = max(1, min(int(batch_size), len(units)))
        out = _host_loop(program, units, shared, batch_size, progress, desc)
        ds = xr.Dataset({k: (("unit", *dims.get(k, ())), v) for k, v in out.items()}, coords={"unit": units})
        ds.attrs.update({"batch_size": batch_size, "n_chunks": math.ceil(len(units) / batch_size)})
    nan_step = ds["nan_step"].values
    if (nan_step >= 0).any():
        i = int(np.argmax(nan_step >= 0))
        raise OptimizationError(f"objective {objective.name} became NaN/inf at step {int(nan_step[i])} for unit "
                                f"{int(units[i])}; lower the learning rate or check the objective")
    ds = ds.drop_vars("nan_step").assign_coords(step=list(snap_run), seed=np.arange(n_seeds))
    ds = ds.sel(step=list(snapshots))
    ds.attrs.update({"subject": subject.name, "objective": objective.name, "param": param.kind, "steps": steps,
                     "lr": lr, "n_seeds": n_seeds, "transforms": repr(transforms), "loop": loop})
    return ds

