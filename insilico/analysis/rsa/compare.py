"""RDM comparators: :func:`compare` (every RDM of one set with every RDM of another; rsatoolbox's values) and the
weighted forms of the comparators that noise ceilings and resampling share.

Every weighted comparator works on vectors a (m,) and b (m,) with pair weights w (m,): 1 for an ordinary RDM, 0 for a
masked entry, kᵢkⱼ for a bootstrap sample of stimuli with counts k (``_sample_weights``). ``order_a`` is argsort(a)
(for ranks).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from ...validation import ArgumentError
from ..stats import pearson, rankdata
from .rdm import _as_vectors

COMPARATORS = ("corr", "cosine", "spearman", "rho-a", "tau-a", "corr_cov", "cosine_cov")
# the comparators with a weighted form (pair weights): those of noise ceilings and of resampling
_WEIGHTED_METHODS = ("corr", "cosine", "spearman", "rho-a", "tau-a")


def _pair_index(n: int):
    i, j = np.triu_indices(n, 1)
    return jnp.asarray(i), jnp.asarray(j)


def _sample_weights(counts, n: int):
    """Pair multiplicities kᵢkⱼ (i < j) for stimulus counts k (n,)."""
    i, j = _pair_index(n)
    return counts[i] * counts[j]


def _wmean(v, w):
    return jnp.sum(w * v) / jnp.sum(w)


def _wcos(a, b, w):
    return jnp.sum(w * a * b) / jnp.sqrt(jnp.sum(w * a * a) * jnp.sum(w * b * b))


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


def _weighted_score(a, b, w, method: str, order_a, order_b):
    if method == "corr":
        return pearson(a, b, w)
    if method == "cosine":
        return _wcos(a, b, w)
    if method in ("spearman", "rho-a"):
        ra, rb = rankdata(a, weights=w, order=order_a), rankdata(b, weights=w, order=order_b)
        return pearson(ra, rb, w) if method == "spearman" else _rho_a(ra, rb, w)
    if method == "tau-a":
        return _tau_a(a, b, w)
    raise ArgumentError(f"weighted comparisons support {_WEIGHTED_METHODS}; got {method!r}")


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
    with jax.enable_x64(True):                       # single comparisons in float64; resampling stays float32
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
