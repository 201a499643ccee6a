"""The checks every probe runs before it computes: is it a subject, are these its sites, are these images it
takes. Each error names the argument, the bad value and what is valid."""
from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SiteError", "InputError", "check_subject", "check_sites", "check_images"]


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


def _all_finite(x) -> bool | None:
    """Whether every value of ``x`` is finite (reduced on the device); None while ``x`` is being traced."""
    try:
        return bool(jnp.isfinite(x).all()) if isinstance(x, jax.Array) else bool(np.isfinite(x).all())
    except (jax.errors.TracerBoolConversionError, jax.errors.ConcretizationTypeError):
        return None


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
    finite = _all_finite(x)
    if finite is False:
        bad = ~np.isfinite(np.asarray(x))
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name} contains {int(bad.sum())} NaN/inf value(s), the first at index {first}")
    if in_bounds and finite is not None:
        lo, hi = spec.bounds
        xmin, xmax = float(jnp.min(x)), float(jnp.max(x))
        if xmin < lo - 1e-6 or xmax > hi + 1e-6:
            raise InputError(f"{name} must lie in {subject.name}'s pixel bounds [{lo}, {hi}]; got values in "
                             f"[{xmin:.4g}, {xmax:.4g}]")
