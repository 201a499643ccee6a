"""Representational similarity analysis (Kriegeskorte, Mur & Bandettini 2008): RDMs, RDM comparators, noise ceilings
and resampling — every bootstrap a single compiled, vmapped call.

Conventions follow rsatoolbox so numbers agree with it: squared Euclidean and Mahalanobis distances are divided by
the number of channels; correlation distance is 1 − r; comparators return similarities. RDMs are square arrays
(..., n, n); :func:`upper` gives the condensed upper-triangle vectors (row-major, as ``scipy.spatial.distance.
squareform``).

Resampling without materializing resampled RDMs: a bootstrap sample of stimuli with counts kᵢ turns the RDM vector
into the original pairs (i < j) with multiplicities kᵢkⱼ (a stimulus drawn twice contributes no pair with itself,
as rsatoolbox masks those entries). Means and correlations become weighted sums, ranks become cumulative weights
in a presorted order, and Kendall's τ-a a quadratic form — so 1,000 samples are a few matrix products.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
import xarray as xr

from ..validation import ArgumentError, check_choice, check_count, check_finite, check_fraction, check_key, \
    check_positive

__all__ = ["rdm", "rdm_jax", "upper", "square", "compare", "noise_ceiling", "bootstrap", "permutation_test",
           "fit_weighted", "RDM_METHODS", "COMPARATORS"]

RDM_METHODS = ("correlation", "euclidean", "cosine", "mahalanobis", "crossnobis", "poisson")
COMPARATORS = ("corr", "cosine", "spearman", "rho-a", "tau-a", "corr_cov", "cosine_cov")


# ------------------------------------------------------------------------------------------------------------ RDMs

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


def _sq_dist(x, y, precision=None):
    kxy = x @ precision @ y.T if precision is not None else x @ y.T
    kxx = jnp.einsum("ij,jk,ik->i", x, precision, x) if precision is not None else jnp.sum(x * x, 1)
    kyy = jnp.einsum("ij,jk,ik->i", y, precision, y) if precision is not None else jnp.sum(y * y, 1)
    return kxx[:, None] + kyy[None, :] - kxy - kxy.T


def rdm_jax(x, method: str = "correlation"):
    """Differentiable RDM (n, n) of patterns x (stimuli, channels) for "correlation", "euclidean" (squared, per
    channel) or "cosine" — no value checks (jit/vmap/grad-safe); constant patterns make correlation distance NaN.
    Euclidean distances are computed from patterns centred over stimuli (the distances are the same; a common
    offset then costs no precision in float32)."""
    if getattr(x, "ndim", 2) != 2:
        raise ArgumentError(f"rdm_jax: patterns must be (stimuli, channels); got shape {x.shape}")
    if method == "correlation":
        z = x - x.mean(1, keepdims=True)
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
        return 1 - z @ z.T
    if method == "cosine":
        z = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        return 1 - z @ z.T
    if method == "euclidean":
        x = x - x.mean(0)
        return _sq_dist(x, x) / x.shape[1]
    raise ArgumentError(f"rdm_jax supports 'correlation', 'cosine' and 'euclidean'; got {method!r}")


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
    if noise is not None:
        prec = check_finite("noise", noise, ndim=2).astype(np.float64)
        if prec.shape != (n_ch, n_ch):
            raise ValueError(f"noise must be a ({n_ch}, {n_ch}) precision matrix; got {prec.shape}")
    elif method == "mahalanobis":
        raise ValueError("mahalanobis distance needs noise= (a precision matrix, channels × channels)")
    if method in ("correlation", "cosine"):
        z = x - x.mean(1, keepdims=True) if method == "correlation" else x
        norms = np.linalg.norm(z, axis=1)
        if np.any(norms == 0):
            raise ValueError(f"rdm({method!r}): stimuli {np.flatnonzero(norms == 0).tolist()} evoke a constant "
                             "pattern (zero variance across channels); the distance is undefined")
        z = z / norms[:, None]
        d = 1 - z @ z.T
    elif method in ("euclidean", "mahalanobis"):
        x = x - x.mean(0)
        kern = x @ (np.eye(n_ch) if prec is None else prec) @ x.T
        d = (np.diag(kern)[None, :] + np.diag(kern)[:, None] - 2 * kern) / n_ch
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


def _x64():
    """Context for exact (float64) evaluation of single comparisons; resampling stays in float32."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:                                                     # older JAX
        from jax.experimental import enable_x64 as ctx
    return ctx(True)


# ----------------------------------------------------------------------------------------------------- comparators
#
# Every comparator works on weighted vectors: a (m,) and b (m,) with pair weights w (m,) (1 for an ordinary RDM,
# 0 for a masked entry, kᵢkⱼ for a bootstrap sample of stimuli). ``order_a`` is argsort(a) (for ranks).

def _wmean(v, w):
    return jnp.sum(w * v) / jnp.sum(w)


def _wcorr(a, b, w):
    a, b = a - _wmean(a, w), b - _wmean(b, w)
    return jnp.sum(w * a * b) / jnp.sqrt(jnp.sum(w * a * a) * jnp.sum(w * b * b))


def _wcos(a, b, w):
    return jnp.sum(w * a * b) / jnp.sqrt(jnp.sum(w * a * a) * jnp.sum(w * b * b))


def _wranks(v, w, order):
    """Average (tie-aware) ranks of v's entries in the multiset where entry p appears w_p times."""
    vs, ws = v[order], w[order]
    cum = jnp.cumsum(ws)
    # ties: first and last position of each value in the sorted order
    left = jnp.searchsorted(vs, vs, side="left")
    right = jnp.searchsorted(vs, vs, side="right")
    before = jnp.where(left > 0, cum[jnp.maximum(left - 1, 0)], 0.0)
    through = cum[right - 1]
    ranks_sorted = before + (through - before + 1) / 2
    return jnp.zeros_like(v).at[order].set(ranks_sorted)


def _rho_a(ra, rb, w):
    n = jnp.sum(w)
    ra, rb = ra - _wmean(ra, w), rb - _wmean(rb, w)
    return 12 * jnp.sum(w * ra * rb) / (n ** 3 - n)


def _tau_a(a, b, w, chunk: int = 1024):
    """Kendall's τ-a of weighted vectors: Σ_{p<q} w_p w_q sign(a_p − a_q) sign(b_p − b_q) / (n(n−1)/2) with
    n = Σw (copies of one entry are tied with each other), in row chunks to bound memory."""
    m = a.shape[0]
    pad = (-m) % chunk
    ap, bp, wp = (jnp.pad(v, (0, pad)) for v in (a, b, w))

    def rows(c):
        sl = jax.lax.dynamic_slice_in_dim
        ar, br, wr = sl(ap, c * chunk, chunk), sl(bp, c * chunk, chunk), sl(wp, c * chunk, chunk)
        s = jnp.sign((ar[:, None] - a[None, :]) * (br[:, None] - b[None, :]))
        return wr @ (s @ w)

    num = jnp.sum(jax.lax.map(rows, jnp.arange((m + pad) // chunk))) / 2
    n = jnp.sum(w)
    return num / (n * (n - 1) / 2)


def _cov_weighted(v, n: int):
    """rsatoolbox's whitening for corr_cov / cosine_cov (no σ_k): the double-centred second-moment matrix
    G = −½·D, flattened with off-diagonal entries ×√2 — its Frobenius inner products."""
    i, j = np.triu_indices(n, 1)
    d = jnp.zeros((n, n)).at[i, j].set(v).at[j, i].set(v)
    g = -0.5 * d
    g = g - g.mean(0, keepdims=True) - g.mean(1, keepdims=True) + g.mean()
    return g


def _compare_one(a, b, method: str, n: int):
    """Similarity of two condensed RDM vectors (no masking)."""
    if method in ("corr_cov", "cosine_cov"):
        if method == "corr_cov":
            a, b = a - a.mean(), b - b.mean()
        ga, gb = _cov_weighted(a, n), _cov_weighted(b, n)
        return jnp.vdot(ga, gb) / jnp.sqrt(jnp.vdot(ga, ga) * jnp.vdot(gb, gb))
    return _weighted_score(a, b, jnp.ones_like(a), method, jnp.argsort(a), jnp.argsort(b))


@partial(jax.jit, static_argnums=(2, 3))
def _compare_all(va, vb, method: str, n: int):
    return jax.vmap(lambda a: jax.vmap(lambda b: _compare_one(a, b, method, n))(vb))(va)


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
            raise ValueError(f"{what}: square RDMs must be symmetric")
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


def compare(a, b, method: str = "corr") -> np.ndarray:
    """Similarity of every RDM in ``a`` with every RDM in ``b`` (square (..., n, n) or condensed), shape
    (n_a, n_b). ``method``: "corr" (Pearson), "cosine", "spearman", "rho-a" (Spearman's ρ expected under random
    tie breaking), "tau-a" (Kendall's τ-a, ties count as neither; the measure of Nili et al. 2014 for models
    predicting tied dissimilarities), "corr_cov" / "cosine_cov" (whitened by the RDM entries' covariance under
    i.i.d. pattern noise, Diedrichsen et al. 2021). Same values as ``rsatoolbox.rdm.compare``."""
    if method not in COMPARATORS:
        raise ArgumentError(f"method must be one of {COMPARATORS}; got {method!r}")
    va, na = _as_vectors(a, "compare: a")
    vb, nb = _as_vectors(b, "compare: b")
    if na != nb:
        raise ValueError(f"compare: a has RDMs over {na} stimuli, b over {nb}")
    if method == "tau-a":
        return np.array([[_tau_a_exact(x, y) for y in vb] for x in va])
    with _x64():
        return np.asarray(_compare_all(jnp.asarray(va), jnp.asarray(vb), method, na))


def _tau_a_exact(a, b) -> float:
    """Kendall's τ-a of two unweighted vectors in O(m log m) and float64: SciPy's τ-b (a merge count) rescaled by
    its tie-corrected denominator, (C − D) / (m(m − 1)/2)."""
    m = len(a)
    n0 = m * (m - 1) / 2

    def tied(v):
        t = np.unique(v, return_counts=True)[1].astype(np.float64)
        return float(np.sum(t * (t - 1) / 2))

    n1, n2 = tied(a), tied(b)
    if n1 == n0 or n2 == n0:                                   # a constant vector: every pair tied, C = D = 0
        return 0.0
    tau_b = scipy.stats.kendalltau(a, b).statistic
    return float(tau_b * np.sqrt((n0 - n1) * (n0 - n2)) / n0)


# -------------------------------------------------------------------------------------------------- noise ceilings

CEILING_METHODS = ("corr", "cosine", "spearman", "rho-a", "tau-a")
BOOTSTRAP_METHODS = CEILING_METHODS


def noise_ceiling(data_rdms, method: str = "corr") -> tuple[float, float]:
    """Lower and upper bounds of the noise ceiling (Nili et al. 2014) of a set of subject RDMs: the mean
    similarity of each subject's RDM to the pooled RDM of the *other* subjects (lower) and of all subjects
    (upper) — what the true model could score given the between-subject variability. The pooled RDM is
    rsatoolbox's ``pool_rdm``: the mean of z-scored (Pearson), RMS-scaled (cosine) or ranked RDMs."""
    if method not in CEILING_METHODS:
        raise ArgumentError(f"noise ceilings support {CEILING_METHODS}; got {method!r}")
    v, n = _as_vectors(data_rdms, "noise_ceiling")
    if v.shape[0] < 2:
        raise ValueError("noise_ceiling needs RDMs of at least 2 subjects")
    if method == "tau-a":                                      # exact merge counts on the pooled ranks
        t = scipy.stats.rankdata(v, axis=1)
        rest = (t.sum(0)[None] - t) / (v.shape[0] - 1)
        pooled = t.mean(0)
        return (float(np.mean([_tau_a_exact(r, x) for r, x in zip(rest, v)])),
                float(np.mean([_tau_a_exact(pooled, x) for x in v])))
    with _x64():
        lo, hi = (float(t) for t in _ceiling(jnp.asarray(v), method))
    return lo, hi


@partial(jax.jit, static_argnums=(1,))
def _ceiling(v, method: str):
    return _ceiling_core(v, jnp.ones(v.shape[1], v.dtype), method)


# ------------------------------------------------------------------------------------------------------- bootstrap

def _pair_index(n: int):
    i, j = np.triu_indices(n, 1)
    return jnp.asarray(i), jnp.asarray(j)


def _sample_weights(counts, n: int):
    """Pair multiplicities kᵢkⱼ (i < j) for stimulus counts k (n,)."""
    i, j = _pair_index(n)
    return counts[i] * counts[j]


def _weighted_score(a, b, w, method: str, order_a, order_b):
    if method == "corr":
        return _wcorr(a, b, w)
    if method == "cosine":
        return _wcos(a, b, w)
    if method in ("spearman", "rho-a"):
        ra, rb = _wranks(a, w, order_a), _wranks(b, w, order_b)
        return _wcorr(ra, rb, w) if method == "spearman" else _rho_a(ra, rb, w)
    if method == "tau-a":
        return _tau_a(a, b, w)
    raise ArgumentError(f"bootstrap supports {BOOTSTRAP_METHODS}; got {method!r}")


def _wpool_rows(v, w, method: str):
    """Per-subject transforms whose mean is rsatoolbox's ``pool_rdm`` of weighted vectors (rows of v); the
    constant shift ``pool_rdm`` adds for Pearson changes no comparison and is left out."""
    if method == "cosine":
        return v / jnp.sqrt(jnp.sum(w * v ** 2, 1, keepdims=True) / jnp.sum(w))
    if method == "corr":
        mu = jnp.sum(w * v, 1, keepdims=True) / jnp.sum(w)
        sd = jnp.sqrt(jnp.sum(w * (v - mu) ** 2, 1, keepdims=True) / jnp.sum(w))
        return (v - mu) / sd
    return jax.vmap(lambda r: _wranks(r, w, jnp.argsort(r)))(v)             # rank methods: mean ranks


def _ceiling_core(data, w, method: str):
    """Noise ceiling (lower, upper) for pair weights w: each subject against the pooled RDM of the others and
    of all subjects, averaged over subjects."""
    t = _wpool_rows(data, w, method)                                         # (S, m)
    pooled = t.mean(0)
    rest = (t.sum(0)[None] - t) / (data.shape[0] - 1)
    od = jnp.argsort(data, axis=1)
    hi = jax.vmap(lambda b, ob: _weighted_score(pooled, b, w, method, jnp.argsort(pooled), ob))(data, od)
    lo = jax.vmap(lambda a, b, ob: _weighted_score(a, b, w, method, jnp.argsort(a), ob))(rest, data, od)
    return lo.mean(), hi.mean()


@partial(jax.jit, static_argnums=(2, 3))
def _boot_ceilings(data, counts, method: str, n: int):
    """Noise ceiling (lower, upper) of every stimulus-bootstrap sample."""
    return jax.lax.map(lambda k: _ceiling_core(data, _sample_weights(k, n), method), counts)


@partial(jax.jit, static_argnums=(3, 4))
def _boot_scores(models, data, counts, method: str, n: int):
    """Per sample: each model's score against each data RDM, (samples, models, data RDMs).
    models (M, m), data (S, m), counts (B, n) stimulus counts."""
    om, od = jnp.argsort(models, axis=1), jnp.argsort(data, axis=1)

    def one(k):
        w = _sample_weights(k, n)
        score = jax.vmap(lambda a, oa: jax.vmap(lambda b, ob: _weighted_score(a, b, w, method, oa, ob))(data, od))(
            models, om)
        return score

    return jax.lax.map(one, counts)


def _dense_ranks(v) -> jnp.ndarray:
    """Dense integer ranks of each row, as float32 (exact below 2**24 entries): the signs of rank differences are
    the signs of the value differences, with no underflow however close two values are."""
    v = np.asarray(v)
    r = np.stack([np.unique(x, return_inverse=True)[1] for x in v.reshape(-1, v.shape[-1])]).reshape(v.shape)
    return jnp.asarray(r, jnp.float32)


def _tau_blocks(out, ra, rb, w, rows, cols, factors):
    """Adds Σ_k factors_k · Σ_{p in block rows_k, q in block cols_k} w_p w_q sign(a_p − a_q) Σ_s sign(b_sp − b_sq)
    to ``out`` (B, M, G); ``ra`` (n_blocks, M, size), ``rb`` (n_blocks, G, S, size) and ``w`` (n_blocks, B, size)
    are cut into blocks of pairs. The blocks are unrolled in one program so that XLA:CPU overlaps one block's
    (single-threaded) sign matrices with another's matrix product."""
    n_groups, n_sub = rb.shape[1:3]
    for r, c, f in zip(rows, cols, factors):
        br, bc = rb[r], rb[c]
        # the subjects' sum is unrolled: an elementwise sum of S terms vectorizes on XLA:CPU, where a reduction
        # over a broadcast axis runs 40x slower
        bsum = jnp.stack([sum(jnp.sign(br[g, s, :, None] - bc[g, s, None, :]) for s in range(n_sub))
                          for g in range(n_groups)])                                             # (G, R, C)
        bsum = jax.lax.optimization_barrier(bsum)
        c_ = jnp.stack([jnp.where(x[:, None] > y[None, :], bsum, jnp.where(x[:, None] < y[None, :], -bsum, 0.0))
                        for x, y in zip(ra[r], ra[c])])                                          # (M, G, R, C)
        # samples in rows, so that the last reduction runs along memory
        prod = jax.lax.dot_general(w[c], c_.reshape(-1, c_.shape[-1]), (((1,), (1,)), ((), ())))
        prod = prod.reshape(w.shape[1], ra.shape[1], n_groups, -1)                              # (B, M, G, R)
        out = out + f * jnp.sum(prod * w[r][:, None, None, :], -1)
    return out


# static block indices when all blocks fit one call (XLA fuses the slices: 1.6x faster), traced otherwise
_tau_blocks_static = jax.jit(_tau_blocks, static_argnums=(4, 5, 6))
_tau_blocks_traced = jax.jit(_tau_blocks)


def _tau_forms(ra, rb, w, size: int, per_call: int = 36):
    """Σ_{p≠q} w_p w_q sign(a_p − a_q) Σ_s sign(b_sp − b_sq) for every sample (rows of ``w`` (B, m)), model (rows
    of ``ra``, ranks) and group of data RDMs (``rb`` (G, S, m) ranks; the sign matrices of a group are summed):
    (B, M, G). The pair × pair matrix is built in blocks of ``size`` pairs, only its upper block triangle (the
    form is symmetric), and each block is multiplied by all samples' weights at once — one dense matrix product
    per block; ``per_call`` blocks per compiled call."""
    m = w.shape[1]
    n_blocks = -(-m // size)
    pad = n_blocks * size - m                                                  # padding carries zero weight

    def cut(x):
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
        return jnp.moveaxis(x.reshape(*x.shape[:-1], n_blocks, size), -2, 0)

    ra, rb, w = cut(ra), cut(rb), cut(w)
    pairs = [(i, j, 1.0 if i == j else 2.0) for i in range(n_blocks) for j in range(i, n_blocks)]
    out = jnp.zeros((w.shape[1], ra.shape[1], rb.shape[1]), jnp.float32)
    if len(pairs) <= per_call:
        return _tau_blocks_static(out, ra, rb, w, *zip(*pairs))
    pairs += [(0, 0, 0.0)] * (-len(pairs) % per_call)                          # zero-factor filler
    for start in range(0, len(pairs), per_call):
        r, c, f = (jnp.asarray(v) for v in zip(*pairs[start:start + per_call]))
        out = _tau_blocks_traced(out, ra, rb, w, r, c, f)
    return out


@partial(jax.jit, static_argnums=(1,))
def _all_sample_weights(counts, n: int):
    return jax.vmap(lambda k: _sample_weights(k, n))(counts)


def _boot_tau_a(models, data, counts, n: int, pool_subjects: bool = False):
    """τ-a for every sample as quadratic forms in the pair multiplicities w = kᵢkⱼ: Σ_{p<q} w_p S_pq w_q with
    S_pq = sign(a_p − a_q) sign(b_p − b_q), one dense matrix product per block of S for all samples together.
    Returns (samples, models, data RDMs), or with ``pool_subjects`` the mean over the data RDMs (samples, models,
    1): τ-a's denominator depends on the sample only, so the mean over subjects is one form with the subjects'
    sign matrices summed — S times cheaper."""
    w = _all_sample_weights(counts, n)                                                   # (B, m)
    total = jnp.sum(w, 1)
    ra, rb = _dense_ranks(models), _dense_ranks(data)
    rb = rb[None] if pool_subjects else rb[:, None]                                      # (G, S_g, m)
    m = w.shape[1]
    # blocks of ≤ 530 pairs, near-even (the upper block triangle then skips most of the lower half); smaller when
    # one block of the (models × groups) pair matrices would pass ~200 MB
    size = min(530, int(np.sqrt(5e7 / (ra.shape[0] * rb.shape[0]))), m)
    size = -(-m // -(-m // size))
    forms = _tau_forms(ra, rb, w, size) / rb.shape[1]                                  # (B, M, G)
    return forms / (total * (total - 1))[:, None, None]                                  # Σ_{p≠q} = 2 Σ_{p<q}


def _boot(models, data, counts, method: str, n: int):
    """Scores (samples, models, data RDMs) for stimulus counts (samples, n)."""
    if method == "tau-a":
        return _boot_tau_a(models, data, counts, n)
    return _boot_scores(models, data, counts, method, n)


def bootstrap(model_rdms, data_rdms, *, method: str = "corr", n_samples: int = 1000, over: str = "stimuli",
              key, model_names: Sequence[str] | None = None, ci: float = 0.95,
              with_ceiling: bool = True) -> xr.Dataset:
    """Bootstrap the evaluation of model RDMs against subject RDMs: resample stimuli (``over="stimuli"``,
    pairs of a stimulus with itself masked, as rsatoolbox's ``eval_bootstrap_pattern``), subjects
    (``"subjects"``), or both. One compiled call for all samples.

    Returns a Dataset with ``score`` (model: the mean over subjects on all data), ``samples`` (sample, model),
    ``ci_low`` / ``ci_high`` (percentile interval ``ci``), ``sem`` (bootstrap standard deviation), the noise
    ceiling of the data (attrs ``ceiling_lower``, ``ceiling_upper``) and, for a stimulus bootstrap with a method
    other than τ-a, its value in every sample (``ceiling_lower_samples``, ``ceiling_upper_samples``:
    rsatoolbox's ``boot_noise_ceil``), when ``with_ceiling``."""
    if over not in ("stimuli", "subjects", "both"):
        raise ArgumentError(f"over must be 'stimuli', 'subjects' or 'both'; got {over!r}")
    method = check_choice("method", method, BOOTSTRAP_METHODS)
    n_samples = check_count("n_samples", n_samples, minimum=2)
    ci = check_fraction("ci", ci, open_low=True, open_high=True)
    check_key("key", key)
    vm, n = _as_vectors(model_rdms, "bootstrap: model_rdms")
    vd, nd = _as_vectors(data_rdms, "bootstrap: data_rdms")
    if n != nd:
        raise ValueError(f"bootstrap: models have RDMs over {n} stimuli but the data over {nd}")
    if over != "stimuli" and vd.shape[0] < 2:
        raise ValueError("resampling subjects needs RDMs of at least 2 subjects")
    names = list(model_names) if model_names is not None else [f"model {i}" for i in range(vm.shape[0])]
    if len(names) != vm.shape[0]:
        raise ValueError(f"{len(names)} model names for {vm.shape[0]} model RDMs")
    ks, kj = jax.random.split(key)
    if over in ("stimuli", "both"):
        idx = jax.random.randint(ks, (n_samples, n), 0, n)
        counts = jax.vmap(lambda s: jnp.bincount(s, length=n))(idx).astype(jnp.float32)
    else:
        counts = jnp.ones((n_samples, n), jnp.float32)
    if over in ("subjects", "both"):
        subj = jax.random.randint(kj, (n_samples, vd.shape[0]), 0, vd.shape[0])
        subj_w = jax.vmap(lambda s: jnp.bincount(s, length=vd.shape[0]))(subj).astype(jnp.float32)
    else:
        subj_w = jnp.ones((n_samples, vd.shape[0]), jnp.float32)
    vm32, vd32 = jnp.asarray(vm, jnp.float32), jnp.asarray(vd, jnp.float32)
    if method == "tau-a" and over == "stimuli":            # ranks from the float64 values (ties as in `score`)
        samples = np.asarray(_boot_tau_a(vm, vd, counts, n, pool_subjects=True)[..., 0])
    else:
        # resampling subjects only: every sample has the same per-subject scores — compute them once
        m_in, d_in = (vm, vd) if method == "tau-a" else (vm32, vd32)          # τ-a ranks the float64 values
        per = _boot(m_in, d_in, counts[:1] if over == "subjects" else counts, method, n)   # (B or 1, M, S)
        samples = np.asarray(jnp.sum(per * subj_w[:, None, :], -1) / jnp.sum(subj_w, -1, keepdims=True))
    full = compare(vm, vd, method).mean(1)
    lo_q, hi_q = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    ds = xr.Dataset({"score": ("model", full), "samples": (("sample", "model"), samples),
                     "ci_low": ("model", lo_q), "ci_high": ("model", hi_q), "sem": ("model", samples.std(0, ddof=1))},
                    coords={"model": names},
                    attrs={"method": method, "over": over, "n_samples": n_samples, "n_stimuli": n,
                           "n_subjects": int(vd.shape[0]), "ci": ci})
    if with_ceiling and vd.shape[0] >= 2 and method in CEILING_METHODS:
        ds.attrs["ceiling_lower"], ds.attrs["ceiling_upper"] = noise_ceiling(vd, method)
        if method != "tau-a" and over == "stimuli":     # per-sample ceilings (not for τ-a, nor resampled subjects)
            lo_s, hi_s = (np.asarray(t) for t in _boot_ceilings(jnp.asarray(vd, jnp.float32), counts, method, n))
            ds["ceiling_lower_samples"] = ("sample", lo_s)
            ds["ceiling_upper_samples"] = ("sample", hi_s)
    return ds


def permutation_test(model_rdm, data_rdms, *, method: str = "corr", n_permutations: int = 1000, key) -> dict:
    """Condition-label permutation test of one model RDM against the mean subject score: the stimulus labels of
    the model RDM are permuted (rows and columns together) ``n_permutations`` times in one vmapped call; returns
    {"score", "null" (permutations,), "p"} with p = (1 + #null ≥ score) / (1 + permutations)."""
    method = check_choice("method", method, COMPARATORS)
    n_permutations = check_count("n_permutations", n_permutations)
    check_key("key", key)
    vm, n = _as_vectors(model_rdm, "permutation_test: model_rdm")
    if vm.shape[0] != 1:
        raise ValueError("permutation_test takes one model RDM")
    vd, nd = _as_vectors(data_rdms, "permutation_test: data_rdms")
    if n != nd:
        raise ValueError(f"permutation_test: the model RDM is over {n} stimuli, the data over {nd}")
    sq = jnp.asarray(square(vm[0]), jnp.float32)
    i, j = _pair_index(n)
    data = jnp.asarray(vd, jnp.float32)

    @jax.jit
    def null(keys):
        def one(k):
            p = jax.random.permutation(k, n)
            v = sq[p][:, p][i, j]
            return jax.vmap(lambda b: _compare_one(v, b, method, n))(data).mean()
        return jax.lax.map(one, keys)

    score = float(compare(vm, vd, method).mean())
    dist = np.asarray(null(jax.random.split(key, n_permutations)))
    return {"score": score, "null": dist, "p": float((1 + np.sum(dist >= score)) / (1 + n_permutations))}


# ---------------------------------------------------------------------------------------------- weighted models

def fit_weighted(components, data_rdms, *, method: str = "corr", n_folds: int = 4, key=None,
                 component_names: Sequence[str] | None = None) -> xr.Dataset:
    """Mixed (weighted) RSA: the data RDM modelled as a non-negative combination of component RDMs (e.g. one
    per site, or per feature group — Khaligh-Razavi & Kriegeskorte 2014), fitted by non-negative least squares
    on the dissimilarities and evaluated by cross-validation over stimuli: the weights are fitted on the pairs
    among the training stimuli (mean over subjects) and the prediction is compared (``method``) with each
    subject's RDM on the pairs among the held-out stimuli. Stimuli are split into ``n_folds`` folds with
    ``key`` (default: in order).

    Returns a Dataset: ``weights`` (component; fitted on all stimuli to z-scored components, with a free offset),
    ``cv_score`` (the mean over folds and subjects), ``fold_scores`` (fold), and for reference
    ``component_cv_score`` (component): each component alone, evaluated on the same folds."""
    from scipy.optimize import nnls

    method = check_choice("method", method, COMPARATORS)
    n_folds = check_count("n_folds", n_folds, minimum=2)
    if key is not None:
        check_key("key", key)
    vc, n = _as_vectors(components, "fit_weighted: components")
    vd, nd = _as_vectors(data_rdms, "fit_weighted: data_rdms")
    if n != nd:
        raise ValueError(f"fit_weighted: components are RDMs over {n} stimuli, the data over {nd}")
    if not 2 <= n_folds <= n // 3:
        raise ArgumentError(f"n_folds must be between 2 and {n // 3} (≥ 3 stimuli per fold) for {n} stimuli")
    names = list(component_names) if component_names is not None else [f"component {i}" for i in range(len(vc))]
    if len(names) != len(vc):
        raise ValueError(f"{len(names)} names for {len(vc)} components")
    vc = (vc - vc.mean(1, keepdims=True)) / vc.std(1, keepdims=True)
    i, j = np.triu_indices(n, 1)
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
    folds = np.array_split(order, n_folds)
    target = vd.mean(0)

    def fit(pairs):
        """Non-negative weights with a free offset (NNLS on the centred dissimilarities)."""
        a, y = vc[:, pairs].T, target[pairs]
        am, ym = a.mean(0), y.mean()
        w, _ = nnls(a - am, y - ym)
        return np.r_[w, ym - am @ w]

    fold_scores, comp_scores = [], []
    for test in folds:
        is_test = np.isin(np.arange(n), test)
        train_pairs, test_pairs = ~is_test[i] & ~is_test[j], is_test[i] & is_test[j]
        w = fit(train_pairs)
        pred = w[:-1] @ vc[:, test_pairs] + w[-1]
        sub = vd[:, test_pairs]
        if np.ptp(pred) == 0:                    # all weights zero on this fold: no prediction
            fold_scores.append(np.nan)
        else:
            fold_scores.append(float(np.mean(compare(pred[None], sub, method))))
        comp_scores.append([float(np.mean(compare(c[None], sub, method))) for c in vc[:, test_pairs]])
    w_all = fit(np.ones(len(i), bool))
    return xr.Dataset({"weights": ("component", w_all[:-1]), "fold_scores": ("fold", np.asarray(fold_scores)),
                       "component_cv_score": ("component", np.mean(comp_scores, 0))},
                      coords={"component": names},
                      attrs={"cv_score": float(np.nanmean(fold_scores)), "offset": float(w_all[-1]),
                             "method": method, "n_folds": n_folds, "n_stimuli": n})
