"""The checks every probe runs before it computes: is it a subject, are these its sites, are these images it
takes. Each error names the argument, the bad value and what is valid."""
from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SiteError", "InputError", "ArgumentError", "UnknownNameError", "check_subject", "check_sites",
           "check_images", "check_number", "check_count", "check_positive", "check_fraction", "check_choice",
           "check_finite", "check_in_range", "check_mask", "check_indices", "check_labels", "check_key"]


class SiteError(KeyError):
    """An unknown site name; the message lists the valid ones."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0])


class InputError(ValueError):
    """A stimulus batch with the wrong shape, dtype or non-finite values."""


def check_subject(subject):
    """Raise ``TypeError`` unless ``subject`` is an insilico :class:`~insilico.subject.Subject`."""
    from .subject import Subject

    if not isinstance(subject, Subject):
        raise TypeError(f"subject must be an insilico Subject (insilico.zoo.load or insilico.subject.make_subject); "
                        f"got {type(subject).__name__}")


def _valid(subject) -> str:
    return ", ".join(subject.sites)


def check_sites(subject, names: Iterable[str], what: str):
    """Raise :class:`SiteError` for the first name that is not a site of ``subject``, explaining recurrent time
    steps, repeated calls and modules that are not sites, and listing the sites and the other modules."""
    for name in names:
        if not isinstance(name, str):
            raise SiteError(f"site names must be strings; got {name!r} for {what} on {subject.name}; valid: "
                            f"{_valid(subject)}")
        if name in subject.sites:
            continue
        steps = [s for s in subject.sites if s.startswith(f"{name}/t") and s[len(name) + 2:].isdigit()]
        if steps:
            raise SiteError(f"{name!r} on {subject.name} is recurrent: name one of its time steps for {what} "
                            f"({', '.join(steps)})")
        calls = [s for s in subject.sites if s.startswith(f"{name}@") and s[len(name) + 1:].isdigit()]
        if calls:
            raise SiteError(f"{name!r} on {subject.name} is called {len(calls)} times in a forward pass: name one "
                            f"call for {what} ({', '.join(calls)})")
        others = [f"{n} ({c})" for n, c in subject.modules if n not in subject.sites]
        kinds = dict(subject.modules)
        if name in kinds:
            raise SiteError(f"{name!r} is a module of {subject.name} ({kinds[name]}) but not one of its sites "
                            f"(selected by {getattr(subject.selector, 'description', subject.selector)}); to use it "
                            f"for {what}, make the subject with a selector that includes it "
                            f"(make_subject(..., sites=...)). Sites: {_valid(subject)}")
        tail = f"; other modules of the model (not sites): {', '.join(others)}" if others else ""
        raise SiteError(f"unknown site {name!r} for {what} on {subject.name}; valid: {_valid(subject)}{tail}")


@jax.jit
def _stats(x):
    return jnp.stack([jnp.isfinite(x).all(), jnp.min(x), jnp.max(x)]).astype(jnp.float32)


def _summary(x) -> tuple[bool, float, float]:
    """(every value finite, min, max) of a concrete array, reduced where it lives and read back once; evaluated
    eagerly even while a JAX trace is active (an image batch closed over by a jitted function). An array in host
    memory (NumPy, or a JAX array on CPU) is reduced in NumPy: the compiled reduction costs a compilation for
    every new batch shape."""
    if isinstance(x, jax.Array) and any(d.platform != "cpu" for d in x.devices()):
        with jax.ensure_compile_time_eval():
            finite, lo, hi = np.asarray(_stats(x))      # one compiled reduction, one read
        return bool(finite), float(lo), float(hi)
    a = np.asarray(x)
    return bool(np.isfinite(a).all()), float(a.min()), float(a.max())


def check_images(subject, x, name: str = "input", in_bounds: bool = False):
    """Raise :class:`InputError` unless ``x`` is a non-empty float batch (N, H, W, C) of the subject's input spec,
    finite, and (``in_bounds``) inside its pixel bounds; values of traced arrays are not checked."""
    spec = subject.input_spec
    shape = tuple(getattr(x, "shape", ()))
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        hint = " (divide uint8 images by 255)" if dtype is not None and jnp.issubdtype(dtype, jnp.integer) else ""
        raise InputError(f"{name} must be a floating-point array of pixels in {spec.bounds}; got "
                         f"{type(x).__name__ if dtype is None else 'dtype ' + str(dtype)}{hint}")
    if shape == tuple(spec.shape):
        raise InputError(f"{name} must be a batch of shape (N, {', '.join(map(str, spec.shape))}); got a single "
                         f"image of shape {shape}: add a leading axis (x[None])")
    if len(shape) != 4 or shape[1:] != tuple(spec.shape):
        raise InputError(f"{name} shape {shape} does not match {subject.name}'s input (N, "
                         f"{', '.join(map(str, spec.shape))}) (NHWC)")
    if shape[0] == 0:
        raise InputError(f"{name} is an empty batch (0 images); pass at least one image")
    if _traced(x):                      # inside jit, vmap or grad: the values cannot be inspected
        return
    finite, xmin, xmax = _summary(x)
    if not finite:
        bad = ~np.isfinite(np.asarray(x))
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name} contains {int(bad.sum())} NaN/inf value(s), the first at index {first}")
    if in_bounds:
        lo, hi = spec.bounds
        slack = 1e-6 * max(1.0, hi - lo)                                         # float32 rounding of the bounds
        if xmin < lo - slack or xmax > hi + slack:
            raise InputError(f"{name} must lie in {subject.name}'s pixel bounds [{lo}, {hi}]; got values in "
                             f"[{xmin:.4g}, {xmax:.4g}]")


# ------------------------------------------------------------------------------------------ argument checks
# One small set of helpers every public function uses. Each names the argument, the bad value and what is
# valid, and returns the value converted (a Python number, or a NumPy array). Values being traced by JAX
# (inside jit, vmap or grad) cannot be inspected and are returned unchanged.

class ArgumentError(ValueError):
    """An argument outside what a function accepts; the message names the argument, the value and the valid range."""


class UnknownNameError(ArgumentError, KeyError):
    """A name that is not one of the valid names (a parameter path, a model, a dataset); the message lists them."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0])


def _traced(value) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def _show(value) -> str:
    a = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if a is not None and a.ndim and a.size > 6:
        return f"an array of shape {a.shape}"
    return repr(value.tolist() if hasattr(value, "tolist") else value)


def check_number(name: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
                 integer: bool = False):
    """``value`` as a finite Python number in the range (``low``/``high`` inclusive unless ``*_open``); with
    ``integer`` it must be a whole number (an int, or an integer-valued NumPy scalar — not a bool)."""
    if _traced(value):
        return value
    kind = "an integer" if integer else "a number"
    lo = "" if low is None else f"{'>' if low_open else '≥'} {low}"
    hi = "" if high is None else f"{'<' if high_open else '≤'} {high}"
    valid = f"{kind}{' ' if lo or hi else ''}{lo}{' and ' if lo and hi else ''}{hi}"
    if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
        raise ArgumentError(f"{name} must be {valid}; got {_show(value)}")
    try:
        number = value.item() if hasattr(value, "item") else value
        as_float = float(number)
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be {valid}; got {value!r}") from None
    if not np.isfinite(as_float):
        raise ArgumentError(f"{name} must be {valid}; got {as_float}")
    if integer:
        if not isinstance(number, (int, np.integer)):
            raise ArgumentError(f"{name} must be {valid}; got {value!r} ({type(value).__name__})")
        number = int(number)
    if (low is not None and (as_float <= low if low_open else as_float < low)) or \
            (high is not None and (as_float >= high if high_open else as_float > high)):
        raise ArgumentError(f"{name} must be {valid}; got {number!r}")
    return number


def check_count(name: str, value, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer count ≥ ``minimum`` (and ≤ ``maximum``): step, sample, permutation and bootstrap counts."""
    return check_number(name, value, low=minimum, high=maximum, integer=True)


def check_positive(name: str, value) -> float:
    """A finite number > 0: step sizes, learning rates, scales, temperatures."""
    return check_number(name, value, low=0, low_open=True)


def check_fraction(name: str, value, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (ends excluded with ``open_low``/``open_high``): fractions, probabilities, levels."""
    return check_number(name, value, low=0.0, high=1.0, low_open=open_low, high_open=open_high)


def check_choice(name: str, value, valid):
    """``value`` must be one of ``valid``."""
    valid = tuple(valid)
    if not isinstance(value, (str, int, float, tuple, type(None))) or value not in valid or \
            (isinstance(value, bool) and not any(isinstance(v, bool) for v in valid)):     # True is not the 1 of 1, 3
        raise ArgumentError(f"{name} must be one of {', '.join(map(repr, valid))}; got {value!r}")
    return value


def check_finite(name: str, value, *, ndim=None, allow_empty: bool = False):
    """``value`` as an array with no NaN or inf (the first bad index is named), of ``ndim`` dimensions (an int
    or a tuple of ints) and not empty. Traced arrays are returned unchecked."""
    if _traced(value):
        return value
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{name} must be a numeric array; got {type(value).__name__} ({e})") from None
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ArgumentError(f"{name} must be a numeric array; got dtype {a.dtype}")
    if ndim is not None and a.ndim not in ((ndim,) if isinstance(ndim, int) else tuple(ndim)):
        raise ArgumentError(f"{name} must have {ndim if isinstance(ndim, int) else ' or '.join(map(str, ndim))} "
                            f"dimension(s); got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise ArgumentError(f"{name} is empty (shape {a.shape}); pass at least one value")
    if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        if a.ndim == 0:
            raise ArgumentError(f"{name} contains 1 NaN/inf value: got {a.item()}; it must be finite")
        bad = ~np.isfinite(a)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ArgumentError(f"{name} contains {int(bad.sum())} NaN/inf value(s), the first at index {first}; "
                            "every value must be finite")
    return a


def check_in_range(name: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False):
    """A number or array of numbers: not empty, finite, every value in the range (the first bad one is named, as
    :func:`check_number` would). Traced values pass unchecked. Returns ``value`` unchanged."""
    a = check_finite(name, value)
    if isinstance(a, np.ndarray) and (low is not None or high is not None):
        out = np.zeros(a.shape, bool)
        if low is not None:
            out |= (a <= low) if low_open else (a < low)
        if high is not None:
            out |= (a >= high) if high_open else (a > high)
        if out.any():
            first = tuple(int(i) for i in np.argwhere(out)[0])
            where = f" (index {first}, {int(out.sum())} value(s) out of range)" if a.ndim else ""
            try:
                bad = a[out].flat[0]                             # shown at its own precision (-0.2, not
                bad = float(str(bad)) if a.dtype.kind == "f" else bad.item()   # -0.20000000298 for float32)
                check_number(name, bad, low=low, high=high, low_open=low_open, high_open=high_open)
            except ArgumentError as e:
                raise ArgumentError(f"{e}{where}") from None
    return value


def check_mask(name: str, mask):
    """A mask: finite values in [0, 1] (1 = apply, 0 = leave; fractions blend). An index is not a mask."""
    a = check_finite(name, mask, allow_empty=True)
    if a is mask and _traced(mask):
        return mask
    if a.size and (a.min() < 0 or a.max() > 1):
        hint = (" (it looks like a unit index: pass a mask, e.g. jnp.zeros(n_units).at[index].set(1))"
                if a.ndim == 0 and float(a).is_integer() else "")
        raise ArgumentError(f"{name} must be a mask with values in [0, 1]; got values in [{a.min():.4g}, "
                            f"{a.max():.4g}]{hint}")
    return mask


def check_indices(name: str, indices, size: int | None, *, allow_empty: bool = False) -> np.ndarray:
    """Integer indices in [0, ``size``) (``size`` None: integers, the range checked later) — a scalar or a 1-D sequence,
    returned as a 1-D int array (traced indices are returned unchanged)."""
    if _traced(indices):
        return indices
    a = check_finite(name, indices, ndim=(0, 1), allow_empty=allow_empty)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            flat = a.reshape(-1)
            whole = (flat == np.round(flat)) if np.issubdtype(a.dtype, np.floating) else np.zeros(flat.shape, bool)
            first = int(np.argmin(whole))
            at = f" at position {first}" if a.ndim else ""
            valid = "integer indices" if size is None else f"integer indices in [0, {size})"
            raise ArgumentError(f"{name} must be {valid}; got {flat[first].item()!r}{at}, not an integer "
                                f"(dtype {a.dtype})")
    a = np.atleast_1d(a).astype(np.int64)
    if a.size and size is not None and (a.min() < 0 or a.max() >= size):
        bad = a[(a < 0) | (a >= size)]
        raise ArgumentError(f"{name} must be indices in [0, {size}); got {_show(bad[:6])} out of range")
    return a


def check_labels(name: str, labels, n_classes: int, n: int | None = None) -> np.ndarray:
    """Integer class labels in [0, ``n_classes``), one per image when ``n`` is given; returned as an int array
    (traced labels are returned unchanged)."""
    if _traced(labels):
        return labels
    a = check_finite(name, labels, ndim=1)
    if n is not None and a.shape[0] != n:
        raise ArgumentError(f"{name} must hold one label per image ({n}); got {a.shape[0]}")
    try:
        return check_indices(name, a, n_classes).astype(np.int32)
    except ArgumentError as e:
        raise ArgumentError(f"{name} must be class labels: integers in [0, {n_classes}) for {n_classes} classes; "
                            f"{str(e).split('; ', 1)[-1]}") from None


def check_key(name: str, key):
    """A JAX PRNG key: ``jax.random.key(s)`` or a raw ``jax.random.PRNGKey(s)`` (uint32 of shape (2,))."""
    if key is None:
        raise ArgumentError(f"{name} must be a PRNG key (e.g. jax.random.key(0)); got None. insilico has no "
                            "hidden default keys: every random choice takes yours")
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return key
    if dtype is not None and np.issubdtype(dtype, np.unsignedinteger) and tuple(np.shape(key))[-1:] == (2,):
        return key
    raise ArgumentError(f"{name} must be a PRNG key (e.g. jax.random.key(0)); got {_show(key)}")
