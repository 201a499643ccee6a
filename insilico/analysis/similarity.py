"""Similarity of two representations of the same stimuli: CKA (linear and RBF, biased and debiased), CCA, SVCCA,
PWCCA and Procrustes shape distances.

Inputs are response matrices ``x`` (stimuli, units_x) and ``y`` (stimuli, units_y) with rows in the same stimulus
order (conv responses may be passed with any trailing shape; they are flattened). The public functions check
their inputs (NaN, constant responses, mismatched stimuli, out-of-range settings: :class:`~insilico.validation.
ArgumentError`) and compute in float64 NumPy, with the features centred before any Gram matrix is formed, so a
common offset (``cka(x + 1000, y)``) changes nothing. The kernels and ``center_gram`` follow their input: NumPy
arrays stay NumPy (float64), JAX arrays stay JAX and differentiable; :func:`cka_jax` is plain ``jax.numpy``, so CKA
can serve as an optimization objective.
Debiased CKA is the default: with fewer stimuli than units the biased estimator reports high similarity between
independent noise (0.83 for n = 100 stimuli, p = 512 units), the debiased one about 0.

CCA, SVCCA and PWCCA (and Procrustes with whitening) warn with :class:`InflatedScoreWarning` when the
representations have as many dimensions as the stimuli allow: when either has ≥ stimuli − 1 dimensions, or both
together more than the rank of centred responses (stimuli − 1), their subspaces share directions whatever the data
and the canonical correlations approach 1 (``svcca`` of independent noise, 100 stimuli × 512 units, scores ≈ 0.9).

References: Kornblith et al. 2019 (CKA, debiased centering from Székely & Rizzo 2014); Raghu et al. 2017 (SVCCA);
Morcos et al. 2018 (PWCCA); Williams et al. 2021 (generalized shape metrics).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..types import Correlations, Features, Gram, Responses, Scalar
from ..validation import ArgumentError, check_choice, check_finite, check_fraction, check_positive

__all__ = ["gram_linear", "gram_rbf", "center_gram", "cka", "cka_jax", "canonical_correlations", "cca", "svcca",
           "pwcca", "procrustes",
           "SimilarityWarning", "InflatedScoreWarning"]


class SimilarityWarning(RuntimeWarning):
    """A score is degenerate or biased for the given shapes (e.g. CCA with units ≥ stimuli)."""


class InflatedScoreWarning(SimilarityWarning):
    """A CCA-family score (CCA, SVCCA, PWCCA, whitened Procrustes) computed with too many dimensions for the
    stimuli: the canonical correlations approach 1 whatever the data, so the number is inflated."""


def _xp(a):
    """The array namespace of ``a``: NumPy for NumPy input (computed in its float64), jax.numpy otherwise."""
    return np if isinstance(a, (np.ndarray, np.generic)) else jnp


def _matrices(x, y, what: str, min_stimuli: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x, y = check_finite("x", x), check_finite("y", y)
    x, y = x.astype(np.float64), y.astype(np.float64)
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"{what}: responses must be (stimuli, units, ...); got shapes {x.shape} and {y.shape}")
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: x has {x.shape[0]} stimuli but y has {y.shape[0]}; rows must be the same "
                         "stimuli in the same order")
    if x.shape[0] < min_stimuli:
        raise ValueError(f"{what} needs at least {min_stimuli} stimuli; got {x.shape[0]}")
    for name, m in (("x", x), ("y", y)):
        if np.all(np.ptp(m, 0) == 0):                   # exact: a constant 0.1 has a std of 1e-17
            raise ValueError(f"{what}: every unit of {name} responds identically to all stimuli (constant "
                             "responses); the score is undefined")
    return x, y


# ----------------------------------------------------------------------------------------------------------- CKA

def gram_linear(x: Features) -> Gram:
    """Linear kernel matrix x xᵀ (NumPy in, NumPy out; JAX otherwise). Centre the features first (``x −
    x.mean(0)``) when the Gram will be centred: the centred Gram is the same, without the cancellation of a large
    common offset."""
    return x @ x.T


def gram_rbf(x: Features, threshold: float = 1.0) -> Gram:
    """RBF kernel with bandwidth σ = ``threshold`` × the median pairwise distance (Kornblith et al.'s choice).
    The features are centred first (distances do not change; a common offset then costs no precision)."""
    threshold = check_positive("threshold", threshold)
    xp = _xp(x)
    x = x - x.mean(0)
    sq = xp.sum(x ** 2, 1)
    d2 = xp.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    median = xp.median(d2)
    if _concrete_zero(median):
        raise ValueError("gram_rbf: the median squared distance between stimuli is 0 (more than half the pairs "
                         "of stimuli have identical responses), so the kernel's width is undefined; use the "
                         "linear kernel or drop the repeated responses")
    return xp.exp(-d2 / (2 * threshold ** 2 * median))


def _concrete_zero(value) -> bool:
    """``value`` is a concrete 0 (False when it is traced: the check is then left to the caller's inputs)."""
    try:
        return float(value) == 0
    except jax.errors.ConcretizationTypeError:
        return False


def center_gram(gram: Gram, unbiased: bool = False) -> Gram:
    """Double-centred Gram matrix; ``unbiased`` gives the U-centred form (zero diagonal) whose inner products are
    unbiased HSIC estimates. NumPy input is centred in float64 NumPy; JAX input stays JAX (differentiable)."""
    shape = tuple(np.shape(gram))
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ArgumentError(f"gram must be a square (n, n) matrix; got shape {shape}")
    n = shape[0]
    if n < (4 if unbiased else 1):
        raise ArgumentError(f"gram must be at least {4 if unbiased else 1}×{4 if unbiased else 1}"
                            f"{' for the unbiased (U-) centring' if unbiased else ''}; got {n}×{n}")
    xp = _xp(gram)
    if xp is np:
        gram = np.asarray(gram, np.float64)
    if unbiased:
        gram = gram * (1 - xp.eye(n))
        means = gram.sum(0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        return (gram - means[:, None] - means[None, :]) * (1 - xp.eye(n))
    means = gram.mean(0)
    means = means - means.mean() / 2
    return gram - means[:, None] - means[None, :]


def _cka(gx, gy, debiased: bool):
    xp = _xp(gx)
    gx, gy = center_gram(gx, debiased), center_gram(gy, debiased)
    return xp.vdot(gx, gy) / (xp.linalg.norm(gx) * xp.linalg.norm(gy))


def cka_jax(x: Responses, y: Responses, debiased: bool = True) -> Scalar:
    """Linear CKA of two (stimuli, units) arrays as a differentiable JAX expression (jit/vmap/grad-safe; no value
    checks). The features are centred before the Gram matrices, so a common offset costs no precision; it
    computes in the inputs' JAX dtype — float32 unless x64 is enabled, where it agrees with :func:`cka` (float64)
    to ~1e-5 for unit-scale responses, whatever their offset."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ArgumentError(f"cka_jax: x and y must be (stimuli, units) with the same stimuli; got shapes "
                            f"{x.shape} and {y.shape}")
    if x.shape[0] < (4 if debiased else 2):
        raise ArgumentError(f"cka_jax needs at least {4 if debiased else 2} stimuli; got {x.shape[0]}")
    x, y = x - x.mean(0), y - y.mean(0)
    return _cka(gram_linear(x), gram_linear(y), debiased)


def cka(x: Responses, y: Responses, *, kernel: str = "linear", debiased: bool = True, threshold: float = 1.0) -> float:
    """Centred kernel alignment between two representations of the same stimuli (1 = identical up to rotation
    and isotropic scaling). ``kernel``: "linear" or "rbf" (bandwidth ``threshold`` × median distance);
    ``debiased`` (default) uses the unbiased HSIC estimator, which stays near 0 for unrelated representations
    even when units outnumber stimuli (it can be slightly negative). Computed in float64 with the features
    centred first: invariant to a common offset of either representation."""
    kernel = check_choice("kernel", kernel, ("linear", "rbf"))
    threshold = check_positive("threshold", threshold)
    xm, ym = _matrices(x, y, "CKA", 4 if debiased else 3)
    xc, yc = xm - xm.mean(0), ym - ym.mean(0)
    if kernel == "linear":
        gx, gy = gram_linear(xc), gram_linear(yc)
    else:
        gx, gy = gram_rbf(xc, threshold), gram_rbf(yc, threshold)
    return float(_cka(gx, gy, debiased))


# ----------------------------------------------------------------------------------------------------------- CCA

def _orthonormal_basis(x, rank_tol: float = 1e-10):
    """An orthonormal basis of the centred columns of x (SVD; directions below ``rank_tol`` dropped)."""
    u, s, _ = np.linalg.svd(np.asarray(x - x.mean(0)), full_matrices=False)
    keep = s > rank_tol * max(s[0], 1e-300)
    return u[:, keep], s[keep]


def _warn_units(units: tuple[int, int], kx: int, ky: int, n: int, what: str,
                fewer: str = "fewer units (e.g. the top principal components)"):
    """Warn (:class:`InflatedScoreWarning`) when two representations of ``n`` stimuli with ``units`` (their raw
    widths) and ``kx``, ``ky`` dimensions entering the CCA leave the canonical correlations free to approach 1:
    units ≥ n − 1 (the rank of centred responses), or the two CCA widths together above it."""
    rank = n - 1
    wide = max(max(units), kx, ky)
    if wide < rank and kx + ky <= rank:
        return
    why = (f"{wide} units (units ≥ stimuli − 1 = {rank}) span every direction of the centred responses"
           if wide >= rank else
           f"the two widths together ({kx} + {ky} = {kx + ky}) exceed the rank of the centred responses "
           f"(stimuli − 1 = {rank}), so the two subspaces must share {kx + ky - rank} direction(s)")
    warnings.warn(f"{what} with {kx} and {ky} dimensions for {n} stimuli: {why}; the canonical correlations then "
                  "approach 1 whatever the data and the score is inflated (independent noise scores high). Use "
                  f"{fewer}, more stimuli, or CKA", InflatedScoreWarning, stacklevel=3)


def _canonical(x, y):
    qx, _ = _orthonormal_basis(x)
    qy, _ = _orthonormal_basis(y)
    return qx, qy, np.clip(np.linalg.svd(qx.T @ qy, compute_uv=False), 0.0, 1.0)


def canonical_correlations(x: Responses, y: Responses) -> Correlations:
    """Canonical correlations of two centred representations, largest first (singular values of Qxᵀ Qy). Warns
    (:class:`InflatedScoreWarning`) when the representations have too many dimensions for the stimuli."""
    x, y = _matrices(x, y, "canonical_correlations", 2)
    qx, qy, rho = _canonical(x, y)
    _warn_units((x.shape[1], y.shape[1]), qx.shape[1], qy.shape[1], x.shape[0], "canonical_correlations")
    return rho


def cca(x: Responses, y: Responses) -> float:
    """Mean squared canonical correlation R²_CCA (Kornblith et al.'s CCA similarity). Warns
    (:class:`InflatedScoreWarning`) when either representation has ≥ stimuli − 1 dimensions or both together
    more than stimuli − 1 (the rank of centred responses): the score is then inflated."""
    x, y = _matrices(x, y, "CCA")
    qx, qy, rho = _canonical(x, y)
    _warn_units((x.shape[1], y.shape[1]), qx.shape[1], qy.shape[1], x.shape[0], "CCA")
    return float(np.sum(rho ** 2) / min(qx.shape[1], qy.shape[1]))


def _top_directions(x, keep: float):
    """Projections of centred x on its top singular directions explaining a ``keep`` fraction of the variance."""
    xc = np.asarray(x - x.mean(0))
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    var = np.cumsum(s ** 2) / np.sum(s ** 2)
    k = int(np.searchsorted(var, keep) + 1)
    return u[:, :k] * s[:k]


def svcca(x: Responses, y: Responses, *, keep: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): each representation reduced to the singular directions explaining ``keep`` of
    its variance (``keep`` in (0, 1]), then the mean canonical correlation. Warns (:class:`InflatedScoreWarning`)
    when either representation has ≥ stimuli − 1 units, or the kept directions together exceed stimuli − 1:
    use fewer units, keep fewer directions (a lower ``keep``) or more stimuli. Even below these bounds
    independent noise scores about √(k/(stimuli − 1)) with k kept directions: compare with a shuffled baseline."""
    keep = check_fraction("keep", keep, open_low=True)
    x, y = _matrices(x, y, "SVCCA")
    xs, ys = _top_directions(x, keep), _top_directions(y, keep)
    qx, qy, rho = _canonical(xs, ys)
    _warn_units((x.shape[1], y.shape[1]), qx.shape[1], qy.shape[1], x.shape[0], "SVCCA",
                f"fewer units or SVD directions (a lower keep than {keep})")
    return float(np.mean(rho))


def pwcca(x: Responses, y: Responses) -> float:
    """Projection-weighted CCA similarity (Morcos et al. 2018): canonical correlations weighted by how much of
    x's units each canonical variate accounts for, Σ αᵢ ρᵢ with αᵢ ∝ Σⱼ |⟨hᵢ, xⱼ⟩| (hᵢ: the i-th canonical
    variate of x; xⱼ: unit j). 1 − pwcca is the PWCCA distance. Warns (:class:`InflatedScoreWarning`) when
    either representation has ≥ stimuli − 1 dimensions or both together more than stimuli − 1."""
    x, y = _matrices(x, y, "PWCCA")
    qx, _ = _orthonormal_basis(x)
    qy, _ = _orthonormal_basis(y)
    _warn_units((x.shape[1], y.shape[1]), qx.shape[1], qy.shape[1], x.shape[0], "PWCCA")
    u, rho, _ = np.linalg.svd(qx.T @ qy, full_matrices=False)
    h = qx @ u                                               # canonical variates of x (unit norm), (n, k)
    xc = x - x.mean(0)
    alpha = np.abs(h.T @ xc).sum(1)
    return float(np.sum(alpha / alpha.sum() * np.clip(rho, 0, 1)))


# ----------------------------------------------------------------------------------------------------- shape metrics

def _whiten(x, alpha: float):
    """Partial whitening x (α I + (1 − α) C)^(-1/2) of centred x (C: covariance); α = 1 leaves x unchanged."""
    if alpha == 1.0:
        return x
    c = np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
    w, v = np.linalg.eigh(alpha * np.eye(len(c)) + (1 - alpha) * c)
    return x @ ((v / np.sqrt(np.maximum(w, 1e-12))) @ v.T)


def procrustes(x: Responses, y: Responses, *, alpha: float = 1.0, metric: str = "angular") -> float:
    """Generalized shape distance (Williams et al. 2021) between two representations: both centred, partially
    whitened with ``alpha`` (1: Procrustes, no whitening; 0: full whitening, a CCA-like distance), scaled to unit
    norm and padded to the same width, then aligned by the best rotation. ``metric``: "angular" (arccos of the
    aligned correlation, a metric in [0, π/2]) or "euclidean" (‖x̂ − ŷR‖). 0 = identical up to rotation and
    scale. Computed in float64. With whitening (``alpha`` < 1) it warns like CCA (:class:`InflatedScoreWarning`)
    when the representations have too many dimensions for the stimuli."""
    alpha = check_fraction("alpha", alpha)
    metric = check_choice("metric", metric, ("angular", "euclidean"))
    x, y = _matrices(x, y, "Procrustes")
    if alpha < 1.0:
        n = x.shape[0]
        _warn_units((x.shape[1], y.shape[1]), min(x.shape[1], n - 1), min(y.shape[1], n - 1), n,
                    f"Procrustes with alpha={alpha}")
    x, y = _whiten(x - x.mean(0), alpha), _whiten(y - y.mean(0), alpha)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    width = max(x.shape[1], y.shape[1])
    x = np.pad(x, ((0, 0), (0, width - x.shape[1])))
    y = np.pad(y, ((0, 0), (0, width - y.shape[1])))
    s = min(float(np.sum(np.linalg.svd(x.T @ y, compute_uv=False))), 1.0)     # max over rotations of ⟨x, yR⟩
    return float(np.arccos(s) if metric == "angular" else np.sqrt(max(2 - 2 * s, 0.0)))
