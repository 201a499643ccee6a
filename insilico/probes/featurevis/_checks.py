"""Checks shared by the parameterizations and the transforms: pixel bounds."""
from __future__ import annotations

from ...validation import ArgumentError, check_finite


def check_bounds(name: str, bounds) -> tuple:
    """Two finite numbers lo < hi, as Python floats."""
    b = check_finite(name, bounds, ndim=1)
    if b.shape != (2,) or not b[0] < b[1]:
        raise ArgumentError(f"{name} must be two numbers (lo, hi) with lo < hi; got {bounds!r}")
    return float(b[0]), float(b[1])


def bounds_mid(bounds) -> float:
    """The middle of the pixel bounds (lo, hi): the grey that padding fills with."""
    return 0.5 * (bounds[0] + bounds[1])
