"""What every synthesis method shares: 8-bit quantization, argument and image checks, and a classifier's logits
and loss."""
from __future__ import annotations

import jax.numpy as jnp
import optax

from ... import electrode as el
from ...engine import LOOPS
from ...validation import ArgumentError, check_choice, check_count, check_finite, check_labels

__all__ = ["quantize", "check_images"]


def _quantize(x, bounds, levels: int = 256):
    lo, hi = bounds
    return lo + jnp.round((jnp.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1)) / (levels - 1) * (hi - lo)


def quantize(x, bounds=(0.0, 1.0), levels: int = 256):
    """Round pixels to ``levels`` steps inside ``bounds`` (8-bit by default), as a display would; values outside
    the bounds are clipped first. ``x`` must be finite, ``bounds`` two finite numbers lo < hi, ``levels`` ≥ 2."""
    levels = check_count("levels", levels, minimum=2)
    bounds = _check_bounds("bounds", bounds)
    check_finite("x", x, allow_empty=True)
    return _quantize(x, bounds, levels)


def _check_bounds(name: str, bounds) -> tuple:
    """Two finite numbers lo < hi."""
    b = check_finite(name, bounds, ndim=1)
    if b.shape != (2,) or not b[0] < b[1]:
        raise ArgumentError(f"{name} must be two numbers (lo, hi) with lo < hi; got {bounds!r}")
    return float(b[0]), float(b[1])


def _check_flag(name: str, value) -> bool:
    return bool(check_choice(name, value, (False, True)))


def _check_loop(loop) -> str:
    return check_choice("loop", loop, LOOPS)


def _check_site(subject, site, purpose: str):
    if not isinstance(site, str):
        raise ArgumentError(f"site must be a site name (a string) of {getattr(subject, 'name', 'the subject')}; "
                            f"got {site!r}")
    el.validate(subject, sites=(site,), purpose=purpose)


def _as_images(subject, x, what: str = "images"):
    """``x`` as a float32 batch, checked (subject, shape, dtype, finite, non-empty, inside the pixel bounds)."""
    el.validate(subject)
    x = jnp.asarray(x, jnp.float32) if not hasattr(x, "dtype") else x
    check_images(subject, x, what)
    return jnp.asarray(x, jnp.float32)


def check_images(subject, x, what: str = "images"):
    """Shape/dtype/NaN checks of the electrode plus the subject's pixel bounds (named, with the offending value)."""
    el.validate(subject, x, in_bounds=True, name=what)


def _same_inputs(a, b):
    if tuple(a.input_spec.shape) != tuple(b.input_spec.shape) or tuple(a.input_spec.bounds) != tuple(
            b.input_spec.bounds):
        raise el.InputError(f"{a.name} takes {a.input_spec.shape} in {a.input_spec.bounds} but {b.name} takes "
                            f"{b.input_spec.shape} in {b.input_spec.bounds}; controversial stimuli need one input "
                            "space")


def _logits(subject, x):
    return el.forward(subject, x)[0]


def _loss(subject, x, labels, targeted: bool):
    """Per-image cross-entropy; an attack ascends it (untargeted) or descends it towards ``labels`` (targeted)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(_logits(subject, x), labels)
    return -ce if targeted else ce


def _fooled(subject, x, labels, targeted: bool):
    pred = _logits(subject, x).argmax(-1)
    return pred == labels if targeted else pred != labels


def _prepare(subject, x, labels):
    """The checked images (float32, in bounds) and labels (one class index per image, int32)."""
    x = _as_images(subject, x)
    return x, jnp.asarray(check_labels("labels", labels, subject.n_outputs, x.shape[0]))
