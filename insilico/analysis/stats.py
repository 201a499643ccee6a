"""Correlation and ranks, written once for the analysis modules: :func:`pearson` (Pearson's r along an axis,
optionally of weighted observations) and :func:`rankdata` (average ranks — tied values share the mean of their
ranks — optionally of a weighted multiset).

Both compute with the library of the arrays they are given, with the same arithmetic. NumPy arrays stay NumPy and
keep their dtype: the encoding models are fitted in float64 and never traced, and the exact RSA comparisons rank
float64 values that float32 would tie. JAX arrays and tracers go through jax.numpy, so that the functions run inside
``jit``/``vmap`` (the selectivity and RSA bootstraps, float32, or float64 under ``jax.enable_x64``). No value
checks: the public functions that use these check their inputs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.stats
import numpy as np
import scipy.stats

__all__ = ["pearson", "rankdata"]


def _xp(*arrays):
    """jax.numpy if any of ``arrays`` is a JAX array (tracers included), NumPy otherwise."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def pearson(a, b, w=None, axis: int = 0):
    """Pearson's r between ``a`` and ``b`` along ``axis`` — by default between matching columns of (n, k) arrays,
    a scalar for two vectors. ``w`` (n,): weights of the n observations along ``axis``; an observation of weight
    k counts as k copies, and ``w=None`` is the same as uniform weights. NaN where either side is constant."""
    xp = _xp(a, b, w)
    a, b = xp.asarray(a), xp.asarray(b)
    if w is not None:                                               # broadcast along `axis`
        w = xp.reshape(xp.asarray(w), (-1,) + (1,) * (a.ndim - 1 - axis % a.ndim))

    def mean(v):
        return v.mean(axis, keepdims=True) if w is None else xp.sum(w * v, axis, keepdims=True) / xp.sum(w)

    def dot(u, v):
        return xp.sum(u * v if w is None else w * u * v, axis)

    def spread(v):                # exactly 0 for a constant (centring a constant leaves rounding residue)
        if w is None:
            return xp.max(v, axis) - xp.min(v, axis)
        return xp.max(xp.where(w > 0, v, -xp.inf), axis) - xp.min(xp.where(w > 0, v, xp.inf), axis)

    varies = (spread(a) > 0) & (spread(b) > 0)
    a, b = a - mean(a), b - mean(b)
    den = xp.sqrt(dot(a, a) * dot(b, b))
    ok = varies & (den > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(ok, dot(a, b) / xp.where(ok, den, 1), xp.nan)


def rankdata(x, axis: int = -1, *, weights=None, order=None):
    """Average ranks along ``axis`` (1-based; tied values share the mean of their ranks), as
    ``scipy.stats.rankdata``; NaN in a slice makes its ranks NaN (without ``weights``: the weighted form takes
    finite values, as its callers check).

    ``weights`` (1-D ``x`` only): ranks in the multiset where entry p appears ``weights[p]`` times — an entry's
    rank is the mean rank of its copies and of the copies of equal entries; ``weights=None`` is the same as
    weights of 1. ``order``: ``argsort(x)``, when the caller has it already (it serves every set of weights, e.g.
    every bootstrap sample of one RDM)."""
    xp = _xp(x, weights)
    if weights is None:
        # the same ranks from each library's implementation: SciPy's for NumPy input (untraced, float64), JAX's
        # where the ranks are traced
        return jax.scipy.stats.rankdata(x, axis=axis) if xp is jnp else scipy.stats.rankdata(x, axis=axis)
    x, weights = xp.asarray(x), xp.asarray(weights)
    order = xp.argsort(x) if order is None else order
    xs, cum = x[order], xp.cumsum(weights[order])
    # the entries equal to x_p hold sorted positions [left, right): their copies come after the cum[left − 1]
    # copies of smaller entries, and end with copy number cum[right − 1]
    left, right = xp.searchsorted(xs, x, side="left"), xp.searchsorted(xs, x, side="right")
    before = xp.where(left > 0, cum[xp.maximum(left - 1, 0)], 0.0)
    through = cum[right - 1]
    return before + (through - before + 1) / 2
