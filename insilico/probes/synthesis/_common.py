"""What every synthesis method shares: 8-bit quantization, argument and image checks, a classifier's logits and
loss, and the chunked run of a program (memory-bounded, resumable) with its arguments checked."""
from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import optax

from ... import electrode as el
from ...engine import LOOPS, run_programs, to_device
from ...validation import ArgumentError, check_choice, check_count, check_finite, check_labels, check_positive

__all__ = ["quantize", "check_images"]


def _quantize(x, bounds, levels: int = 256, xp=jnp):
    lo, hi = bounds
    return lo + xp.round((xp.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1)) / (levels - 1) * (hi - lo)


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
    x = to_device(x, np.float32) if not hasattr(x, "dtype") else x
    check_images(subject, x, what)
    return to_device(x, np.float32)


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
    return x, to_device(check_labels("labels", labels, subject.n_outputs, x.shape[0]))


# ------------------------------------------------------------------------------- chunked, resumable programs

def _check_chunking(store, chunk_size, memory_budget, overwrite) -> dict:
    """The checked chunking arguments, as keyword arguments of :func:`~insilico.engine.run_programs`."""
    if store is not None and not isinstance(store, (str, os.PathLike)):
        raise ArgumentError(f"store must be a directory (a str or os.PathLike path) or None; got "
                            f"{type(store).__name__} {store!r:.80}")
    if chunk_size is not None:
        chunk_size = check_count("chunk_size", chunk_size)
    return {"store": store, "chunk_size": chunk_size, "memory_budget": check_positive("memory_budget", memory_budget),
            "overwrite": _check_flag("overwrite", overwrite)}


def _subject_identity(*subjects) -> dict:
    """The subjects as a store names them: name, architecture and weights (by content), with _a / _b suffixes
    for two subjects, so a refusal says which subject's weights differ."""
    out = {}
    for i, s in enumerate(subjects):
        suffix = f"_{'ab'[i]}" if len(subjects) > 1 else ""
        out.update({f"subject{suffix}": f"{s.name} ({s.architecture})", f"weights{suffix}": s.variables})
    return out


def _run(program, items: tuple, shared: tuple, chunking: dict, *, tag: str, identity: dict, check, loop: str,
         progress: bool = False):
    """:func:`~insilico.engine.run_programs` of ``program`` with a probe's chunking, identity and failure check."""
    return run_programs(program, items, shared, tag=tag, identity=identity, check=check, loop=loop,
                        progress=progress, desc=tag, **chunking)
