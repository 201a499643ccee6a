"""Image parameterizations (Lucid's ``param``): what the optimizer changes, and how it becomes an image.

An :class:`ImageParam` holds ``init(key) -> params`` and ``render(params) -> (H, W, C)`` inside the pixel bounds:
plain pixels (:func:`pixel`), 1/f-scaled Fourier coefficients (:func:`fourier`), a Laplacian pyramid
(:func:`pyramid`) or a CPPN (:func:`cppn`); colour optionally decorrelated with a matrix estimated from natural
images (:func:`color_matrix`), squashed into the bounds by a sigmoid or a straight-through clip.
:func:`default_param` is Olah et al. 2017's choice: Fourier with decorrelated colour.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ... import rng
from ...validation import ArgumentError, check_choice, check_count, check_finite, check_number
from ._checks import check_bounds

__all__ = ["ImageParam", "pixel", "fourier", "pyramid", "cppn", "color_matrix", "default_param"]


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
    norm = np.linalg.norm(root, axis=0).max()
    if not norm > 0:
        raise ArgumentError("images have no colour variance (every pixel the same): a colour matrix cannot be "
                            "estimated from them")
    return root / norm


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
        fields = {"shape": shape, "bounds": check_bounds("bounds", self.bounds),
                  "sd": check_number("sd", self.sd, low=0), "decay": check_number("decay", self.decay),
                  "levels": check_count("levels", self.levels), "width": check_count("width", self.width),
                  "depth": check_count("depth", self.depth)}
        for name, value in fields.items():                    # normalized: hashable, plain Python numbers
            object.__setattr__(self, name, value)

    def init(self, key):
        h, w, c = self.shape
        if self.kind == "pixel":
            return self.sd * rng.normal(key, (h, w, c))
        if self.kind == "fourier":
            return self.sd * rng.normal(key, (2, c, h, w // 2 + 1))
        if self.kind == "pyramid":
            keys = jax.random.split(key, self.levels)
            return [self.sd * rng.normal(k, (max(1, h >> i), max(1, w >> i), c)) for i, k in enumerate(keys)]
        keys = jax.random.split(key, self.depth + 1)
        sizes = [3] + [self.width] * self.depth
        layers = []
        for i in range(self.depth):
            fan_in = sizes[i] * (1 if i == 0 else 2)
            layers.append((rng.normal(keys[i], (fan_in, self.width)) / math.sqrt(fan_in), jnp.zeros(self.width)))
        layers.append((jnp.zeros((2 * self.width, c)), jnp.zeros(c)))
        return layers

    def _spatial(self, p):
        h, w, _ = self.shape
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


def _shape_bounds(subject_or_shape, bounds):
    if hasattr(subject_or_shape, "input_spec"):
        spec = subject_or_shape.input_spec
        return tuple(spec.shape), tuple(bounds or spec.bounds)
    if isinstance(subject_or_shape, str) or not hasattr(subject_or_shape, "__len__") or len(subject_or_shape) != 3:
        raise ArgumentError(f"subject_or_shape must be a subject or an image shape (H, W, C); got "
                            f"{subject_or_shape!r}")
    return tuple(subject_or_shape), tuple(bounds or (0.0, 1.0))


def _color(color):
    if color is None:
        return None
    if isinstance(color, str):
        raise ArgumentError(f"color must be a C x C colour matrix (e.g. color_matrix(images)) or None; got {color!r}")
    return tuple(map(tuple, check_finite("color", color, ndim=2).astype(float).tolist()))


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


# color_matrix(photos(64)): the colour decorrelation of scikit-image's 12 bundled photos at 64 px, written out so
# that a new process need not load and resize the photos for the default parameterization (0.7 s);
# tests/test_featurevis.py recomputes it from the photos.
NATURAL_RGB = np.array([[0.855816806356164, 0.44798068087055415, 0.25863275802784663],
                        [0.44798068087055415, 0.606611893106504, 0.5023534256231165],
                        [0.2586327580278466, 0.5023534256231165, 0.7208541788426079]])
NATURAL_RGB.setflags(write=False)


@lru_cache(maxsize=8)
def _natural_color(channels: int) -> np.ndarray:
    if channels == 3:
        return NATURAL_RGB
    from ...data.stimuli import photos

    return color_matrix(photos(64, channels=channels))


def default_param(subject_or_shape) -> ImageParam:
    """Olah et al.'s default: 1/f Fourier + colour decorrelation (estimated from scikit-image's natural photos
    in the subject's channel count) + sigmoid into the subject's bounds."""
    c = _shape_bounds(subject_or_shape, None)[0][2]
    return fourier(subject_or_shape, color=_natural_color(c) if c > 1 else None)
