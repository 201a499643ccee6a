"""Similarity of two representations of the same stimuli: CKA (linear and RBF, biased and debiased), CCA, SVCCA,
PWCCA and Procrustes shape distances.

Inputs are response matrices ``x`` (stimuli, units_x) and ``y`` (stimuli, units_y) with rows in the same stimulus
order (conv responses may be passed with any trailing shape; they are flattened). The public functions check
their inputs (NaN, constant responses, mismatched stimuli) and return floats; the kernels, ``center_gram`` and
:func:`cka_jax` are plain ``jax.numpy`` and differentiable, so CKA can serve as an optimization objective.
Debiased CKA is the default: with fewer stimuli than units the biased estimator reports high similarity between
independent noise (0.83 for n = 100 stimuli, p = 512 units), the debiased one about 0.

References: Kornblith et al. 2019 (CKA, debiased centering from Székely & Rizzo 2014); Raghu et al. 2017 (SVCCA);
Morcos et al. 2018 (PWCCA); Williams et al. 2021 (generalized shape metrics).
"""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np

__all__ = ["gram_linear", "gram_rbf", "center_gram", "cka", "cka_jax", "canonical_correlations", "cca", "svcca",
           "pwcca", "procrustes",
           "SimilarityWarning"]


class SimilarityWarning(UserWarning):
    """A score is degenerate or biased for the given shapes (e.g. CCA with units ≥ stimuli)."""


def _matrices(x, y, what: str, min_stimuli: int = 3):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"{what}: responses must be (stimuli, units, ...); got shapes {x.shape} and {y.shape}")
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: x has {x.shape[0]} stimuli but y has {y.shape[0]}; rows must be the same "
                         "stimuli in the same order")
    if x.shape[0] < min_stimuli:
        raise ValueError(f"{what} needs at least {min_stimuli} stimuli; got {x.shape[0]}")
    for name, m in (("x", x), ("y", y)):
        if not np.isfinite(m).all():
            raise ValueError(f"{what}: {name} contains NaN or inf ({int((~np.isfinite(m)).sum())} values)")
        if np.all(m.std(0) == 0):
            raise ValueError(f"{what}: every unit of {name} responds identically to all stimuli (constant "
                             "responses); the score is undefined")
    return jnp.asarray(x), jnp.asarray(y)


# ----------------------------------------------------------------------------------------------------------- CKA

def gram_linear(x):
    """Linear kernel matrix x xᵀ."""
    return x @ x.T


def gram_rbf(x, threshold: float = 1.0):
    """RBF kernel with bandwidth σ = ``threshold`` × the median pairwise distance (Kornblith et al.'s choice)."""
    sq = jnp.sum(x ** 2, 1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    return jnp.exp(-d2 / (2 * threshold ** 2 * jnp.median(d2)))


def center_gram(gram, unbiased: bool = False):
    """Double-centred Gram matrix; ``unbiased`` gives the U-centred form (zero diagonal) whose inner products are
    unbiased HSIC estimates."""
    n = gram.shape[0]
    if unbiased:
        gram = gram * (1 - jnp.eye(n))
        means = gram.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        return (gram - means[:, None] - means[None, :]) * (1 - jnp.eye(n))
    means = gram.mean(0)
    means = means - means.mean() / 2
    return gram - means[:, None] - means[None, :]


def _cka(gx, gy, debiased: bool):
    gx, gy = center_gram(gx, debiased), center_gram(gy, debiased)
    return jnp.vdot(gx, gy) / (jnp.linalg.norm(gx) * jnp.linalg.norm(gy))


def cka_jax(x, y, debiased: bool = True):
    """Linear CKA of two (stimuli, units) arrays as a differentiable JAX expression (no input checks)."""
    return _cka(gram_linear(x), gram_linear(y), debiased)


def cka(x, y, *, kernel: str = "linear", debiased: bool = True, threshold: float = 1.0) -> float:
    """Centred kernel alignment between two representations of the same stimuli (1 = identical up to rotation
    and isotropic scaling). ``kernel``: "linear" or "rbf" (bandwidth ``threshold`` × median distance);
    ``debiased`` (default) uses the unbiased HSIC estimator, which stays near 0 for unrelated representations
    even when units outnumber stimuli (it can be slightly negative)."""
    x, y = _matrices(x, y, "CKA", 4 if debiased else 3)
    if kernel == "linear":
        gx, gy = gram_linear(x), gram_linear(y)
    elif kernel == "rbf":
        gx, gy = gram_rbf(x, threshold), gram_rbf(y, threshold)
    else:
        raise ValueError(f"kernel must be 'linear' or 'rbf'; got {kernel!r}")
    return float(_cka(gx, gy, debiased))


# ----------------------------------------------------------------------------------------------------------- CCA

def _orthonormal_basis(x, rank_tol: float = 1e-10):
    """An orthonormal basis of the centred columns of x (SVD; directions below ``rank_tol`` dropped)."""
    u, s, _ = np.linalg.svd(np.asarray(x - x.mean(0)), full_matrices=False)
    keep = s > rank_tol * max(s[0], 1e-300)
    return jnp.asarray(u[:, keep]), jnp.asarray(s[keep])


def _warn_units(x, y, what: str):
    n, p = x.shape[0], max(x.shape[1], y.shape[1])
    if p >= n:
        warnings.warn(f"{what} with {p} units and {n} stimuli: with units ≥ stimuli the canonical correlations "
                      "approach 1 whatever the data; reduce the units first (svcca) or use CKA",
                      SimilarityWarning, stacklevel=3)


def canonical_correlations(x, y) -> np.ndarray:
    """Canonical correlations of two centred representations, largest first (singular values of Qxᵀ Qy)."""
    qx, _ = _orthonormal_basis(x)
    qy, _ = _orthonormal_basis(y)
    return np.clip(np.linalg.svd(np.asarray(qx.T @ qy), compute_uv=False), 0.0, 1.0)


def cca(x, y) -> float:
    """Mean squared canonical correlation R²_CCA (Kornblith et al.'s CCA similarity); warns when units ≥
    stimuli."""
    x, y = _matrices(x, y, "CCA")
    _warn_units(x, y, "CCA")
    rho = canonical_correlations(x, y)
    return float(np.sum(rho ** 2) / min(_orthonormal_basis(x)[0].shape[1], _orthonormal_basis(y)[0].shape[1]))


def _top_directions(x, keep: float):
    """Projections of centred x on its top singular directions explaining a ``keep`` fraction of the variance."""
    xc = np.asarray(x - x.mean(0))
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    var = np.cumsum(s ** 2) / np.sum(s ** 2)
    k = int(np.searchsorted(var, keep) + 1)
    return u[:, :k] * s[:k]


def svcca(x, y, *, keep: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): each representation reduced to the singular directions explaining ``keep`` of
    its variance, then the mean canonical correlation. Warns when the kept directions reach the stimulus count."""
    x, y = _matrices(x, y, "SVCCA")
    xs, ys = _top_directions(x, keep), _top_directions(y, keep)
    _warn_units(xs, ys, "SVCCA")
    return float(np.mean(canonical_correlations(xs, ys)))


def pwcca(x, y) -> float:
    """Projection-weighted CCA similarity (Morcos et al. 2018): canonical correlations weighted by how much of
    x's units each canonical variate accounts for, Σ αᵢ ρᵢ with αᵢ ∝ Σⱼ |⟨hᵢ, xⱼ⟩| (hᵢ: the i-th canonical
    variate of x; xⱼ: unit j). 1 − pwcca is the PWCCA distance. Warns when units ≥ stimuli."""
    x, y = _matrices(x, y, "PWCCA")
    _warn_units(x, y, "PWCCA")
    qx, _ = _orthonormal_basis(x)
    qy, _ = _orthonormal_basis(y)
    u, rho, _ = np.linalg.svd(np.asarray(qx.T @ qy), full_matrices=False)
    h = np.asarray(qx) @ u                                   # canonical variates of x (unit norm), (n, k)
    xc = np.asarray(x - x.mean(0))
    alpha = np.abs(h.T @ xc).sum(1)
    return float(np.sum(alpha / alpha.sum() * np.clip(rho, 0, 1)))


# ----------------------------------------------------------------------------------------------------- shape metrics

def _whiten(x, alpha: float):
    """Partial whitening x (α I + (1 − α) C)^(-1/2) of centred x (C: covariance); α = 1 leaves x unchanged."""
    if alpha == 1.0:
        return x
    c = np.cov(np.asarray(x), rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    w, v = np.linalg.eigh(alpha * np.eye(len(c)) + (1 - alpha) * c)
    return x @ jnp.asarray((v / np.sqrt(np.maximum(w, 1e-12))) @ v.T)


def procrustes(x, y, *, alpha: float = 1.0, metric: str = "angular") -> float:
    """Generalized shape distance (Williams et al. 2021) between two representations: both centred, partially
    whitened with ``alpha`` (1: Procrustes, no whitening; 0: full whitening, a CCA-like distance), scaled to unit
    norm and padded to the same width, then aligned by the best rotation. ``metric``: "angular" (arccos of the
    aligned correlation, a metric in [0, π/2]) or "euclidean" (‖x̂ − ŷR‖). 0 = identical up to rotation and
    scale."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if metric not in ("angular", "euclidean"):
        raise ValueError(f"metric must be 'angular' or 'euclidean'; got {metric!r}")
    x, y = _matrices(x, y, "Procrustes")
    if alpha < 1.0:
        _warn_units(x, y, f"Procrustes with alpha={alpha}")
    x, y = _whiten(x - x.mean(0), alpha), _whiten(y - y.mean(0), alpha)
    x, y = x / jnp.linalg.norm(x), y / jnp.linalg.norm(y)
    width = max(x.shape[1], y.shape[1])
    x = jnp.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = jnp.pad(y, ((0, 0), (0, width - y.shape[1])))
    s = jnp.minimum(jnp.sum(jnp.linalg.svd(x.T @ y, compute_uv=False)), 1.0)     # max over rotations of ⟨x, yR⟩
    return float(jnp.arccos(s) if metric == "angular" else jnp.sqrt(jnp.maximum(2 - 2 * s, 0.0)))
