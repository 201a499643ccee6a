"""Representational dissimilarity matrices: patterns (stimuli × channels) → RDMs (:func:`rdm`, and the
differentiable :func:`rdm_jax`), square ↔ condensed forms (:func:`upper`, :func:`square`), and the checked
conversion of RDM inputs to condensed vectors that every comparison starts from (``_as_vectors``).

Conventions follow rsatoolbox: squared Euclidean and Mahalanobis distances are divided by the number of channels;
correlation distance is 1 − r. Condensed vectors are the upper triangle, row-major (as
``scipy.spatial.distance.squareform``).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_finite, check_positive

RDM_METHODS = ("correlation", "euclidean", "cosine", "mahalanobis", "crossnobis", "poisson")


def _patterns(x, what: str, ndim: int = 2) -> np.ndarray:
    if isinstance(x, xr.DataArray):
        x = x.values
    try:
        x = np.asarray(x, np.float64)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{what}: patterns must be a numeric array; got {type(x).__name__} ({e})") from None
    if x.ndim != ndim:
        shape = "(folds, stimuli, channels)" if ndim == 3 else "(stimuli, channels)"
        raise ValueError(f"{what}: patterns must be {shape}; got shape {x.shape}")
    if x.shape[-2] < 3:
        raise ValueError(f"{what} needs at least 3 stimuli; got {x.shape[-2]}")
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{what}: patterns contain NaN/inf ({int((~np.isfinite(x)).sum())} values, first at index "
                         f"{tuple(int(i) for i in bad)})")
    return x


def _distances(x, method: str, precision, xp):
    """The one implementation of the pattern distances both :func:`rdm` (NumPy, float64, ``xp=np``) and
    :func:`rdm_jax` (JAX, differentiable, ``xp=jnp``) return: "correlation" and "cosine" (1 − r, 1 − cosine
    between stimulus patterns), "euclidean" and "mahalanobis" (squared, per channel; patterns centred over
    stimuli first — the distances are the same, a common offset then costs no precision)."""
    if method in ("correlation", "cosine"):
        z = x - x.mean(1, keepdims=True) if method == "correlation" else x
        z = z / xp.linalg.norm(z, axis=1, keepdims=True)
        return 1 - z @ z.T
    x = x - x.mean(0)
    kern = x @ x.T if precision is None else x @ precision @ x.T
    sq = xp.diagonal(kern)
    return (sq[None, :] + sq[:, None] - kern - kern.T) / x.shape[1]


def rdm_jax(x, method: str = "correlation"):
    """Differentiable RDM (n, n) of patterns x (stimuli, channels) for "correlation", "euclidean" (squared, per
    channel) or "cosine" — the same distances as :func:`rdm`, without its value checks (jit/vmap/grad-safe);
    constant patterns make correlation distance NaN."""
    if getattr(x, "ndim", 2) != 2:
        raise ArgumentError(f"rdm_jax: patterns must be (stimuli, channels); got shape {x.shape}")
    if method not in ("correlation", "cosine", "euclidean"):
        raise ArgumentError(f"rdm_jax supports 'correlation', 'cosine' and 'euclidean'; got {method!r}")
    return _distances(x, method, None, jnp)


def rdm(patterns, method: str = "correlation", *, noise=None, prior_lambda: float = 1.0,
        prior_weight: float = 0.1) -> np.ndarray:
    """Representational dissimilarity matrix (stimuli × stimuli) of ``patterns``.

    method:
        "correlation" (1 − Pearson r between patterns), "cosine" (1 − cosine), "euclidean" (squared distance per
        channel), "mahalanobis" (squared, with the precision matrix ``noise``, per channel), "crossnobis"
        (cross-validated Mahalanobis: patterns (folds, stimuli, channels); each fold against the mean of the
        others, averaged — unbiased, so it can be negative), "poisson" (symmetrized Poisson KL divergence with a
        prior of ``prior_lambda`` weighted ``prior_weight``, for spike counts).
    Squared Euclidean, Mahalanobis and crossnobis distances are computed in float64 from patterns centred over
    stimuli (the distances do not change; a large common offset costs no precision).
    Raises on NaN/inf (located), fewer than 3 stimuli, and constant patterns for correlation/cosine distances."""
    if method not in RDM_METHODS:
        raise ArgumentError(f"method must be one of {RDM_METHODS}; got {method!r}")
    if method == "poisson":
        prior_lambda = check_positive("prior_lambda", prior_lambda)
        prior_weight = check_positive("prior_weight", prior_weight)
    x = _patterns(patterns, f"rdm({method!r})", 3 if method == "crossnobis" else 2)
    n_ch = x.shape[-1]
    prec = None
    if noise is not None and method not in ("mahalanobis", "crossnobis"):
        raise ArgumentError(f"noise (a precision matrix) is used by 'mahalanobis' and 'crossnobis' only; got it with "
                            f"method={method!r} (for a Mahalanobis distance pass method='mahalanobis')")
    if noise is not None:
        prec = check_finite("noise", noise, ndim=2).astype(np.float64)
        if prec.shape != (n_ch, n_ch):
            raise ValueError(f"noise must be a ({n_ch}, {n_ch}) precision matrix; got {prec.shape}")
    elif method == "mahalanobis":
        raise ValueError("mahalanobis distance needs noise= (a precision matrix, channels × channels)")
    if method in ("correlation", "cosine"):
        z = x - x.mean(1, keepdims=True) if method == "correlation" else x
        # exactly: centring a constant pattern can leave a rounding residue whose norm is not 0
        constant = (np.ptp(x, 1) == 0) if method == "correlation" else (np.linalg.norm(z, axis=1) == 0)
        if np.any(constant):
            raise ValueError(f"rdm({method!r}): stimuli {np.flatnonzero(constant).tolist()} evoke a constant "
                             "pattern (zero variance across channels); the distance is undefined")
        d = _distances(x, method, None, np)
    elif method in ("euclidean", "mahalanobis"):
        d = _distances(x, method, prec, np)
    elif method == "crossnobis":
        if x.shape[0] < 2:
            raise ValueError("crossnobis needs at least 2 folds: patterns (folds, stimuli, channels)")
        p = np.eye(n_ch) if prec is None else prec
        x = x - x.mean((0, 1))
        d = np.zeros((x.shape[1], x.shape[1]))
        for k in range(x.shape[0]):
            train = np.delete(x, k, axis=0).mean(0)
            kern = train @ p @ x[k].T
            d += (np.diag(kern)[None, :] + np.diag(kern)[:, None] - kern - kern.T) / n_ch
        d = d / x.shape[0]
    else:                                                                                # poisson
        if np.any(x < 0):
            raise ValueError("poisson distance needs non-negative responses (spike counts or rates)")
        m = (x + prior_lambda * prior_weight) / (1 + prior_weight)
        kern = m @ np.log(m).T
        d = (np.diag(kern)[None, :] + np.diag(kern)[:, None] - kern - kern.T) / n_ch
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def upper(rdms) -> np.ndarray:
    """Condensed upper-triangle vectors (..., n(n−1)/2) of square RDMs (..., n, n)."""
    r = check_finite("rdms", rdms.values if isinstance(rdms, xr.DataArray) else rdms)
    if r.ndim < 2 or r.shape[-1] != r.shape[-2]:
        raise ValueError(f"RDMs must be square (..., n, n); got shape {r.shape}")
    i, j = np.triu_indices(r.shape[-1], 1)
    return r[..., i, j]


def square(vectors) -> np.ndarray:
    """Square RDMs (..., n, n) from condensed vectors (..., n(n−1)/2)."""
    v = check_finite("vectors", vectors)
    if v.ndim < 1:
        raise ArgumentError(f"vectors must be condensed RDMs (..., n(n−1)/2); got a scalar {v.tolist()!r}")
    n = int(round((1 + np.sqrt(1 + 8 * v.shape[-1])) / 2))
    if n * (n - 1) // 2 != v.shape[-1]:
        raise ValueError(f"{v.shape[-1]} is not the length of a condensed RDM (n(n−1)/2)")
    out = np.zeros((*v.shape[:-1], n, n), v.dtype)
    i, j = np.triu_indices(n, 1)
    out[..., i, j] = v
    out[..., j, i] = v
    return out


def _as_vectors(r, what: str) -> tuple[np.ndarray, int]:
    try:
        r = np.asarray(r.values if isinstance(r, xr.DataArray) else r, np.float64)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{what}: RDMs must be a numeric array; got {type(r).__name__} ({e})") from None
    if r.ndim < 1 or r.size == 0:
        raise ArgumentError(f"{what}: RDMs must be square (..., n, n) or condensed vectors; got shape {r.shape}")
    if r.ndim >= 2 and r.shape[-1] == r.shape[-2] and r.shape[-1] > 2:
        n = r.shape[-1]
        if not np.allclose(r, np.swapaxes(r, -1, -2), atol=1e-8, equal_nan=True):
            raise ValueError(f"{what}: square RDMs must be symmetric (shape {r.shape}; {n} condensed vectors of "
                             f"length {n} go as shape ({n}, 1, {n}))")
        v = upper(r)
    else:
        v = r
        n = int(round((1 + np.sqrt(1 + 8 * v.shape[-1])) / 2))
        if n * (n - 1) // 2 != v.shape[-1]:
            raise ValueError(f"{what}: expected square RDMs (..., n, n) or condensed vectors; got shape {r.shape}")
    v = v.reshape(-1, v.shape[-1])
    if n < 3:
        raise ValueError(f"{what}: RDMs need at least 3 stimuli; got {n}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what}: RDMs contain NaN/inf ({int((~np.isfinite(v)).sum())} entries)")
    if np.any(np.ptp(v, axis=1) == 0):
        raise ValueError(f"{what}: RDM(s) {np.flatnonzero(np.ptp(v, axis=1) == 0).tolist()} are constant; "
                         "correlation-type comparisons are undefined")
    return v, n
