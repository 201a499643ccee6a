"""Scores from sufficient statistics: the float64 algebra that turns moments accumulated over stimulus batches
(by :mod:`insilico.probes.streaming`) into RDMs, principal components and cross-validated ridge scores, without
ever holding the stimuli's features.

- :func:`rdm_from_gram`: a site's RDM from the Gram matrix of its (row-normalized) patterns.
- :func:`helmert` and :func:`pca_from_rotated`: exact PCA of reference patterns from ``B = Xᵀ Q`` (Q an orthonormal
  basis of the vectors orthogonal to 1, so ``B = X_cᵀ Q`` for the centred X_c): ``BᵀB = P Σ² Pᵀ`` and the
  components are ``B P Σ⁻¹`` — the n_ref × n_ref Gram trick, one pass over the reference.
- :class:`FoldMoments` and :func:`ridge_scores`: per-fold moments (n, Σx, ΣxxT, Σy, Σy², ΣxyT) → ridge for every α
  of a grid from the eigendecomposition of the training folds' centred XᵀX (train = total − held-out folds), α
  chosen per neuron by the pooled held-out Pearson r over the inner folds (the training folds each held out in
  turn, exactly :func:`insilico.analysis.encoding.ridge_cv`'s rule with those folds), refit on all training folds,
  and the held-out Pearson r of every outer fold from Σŷ, Σŷ², Σŷy.

Pearson correlations are formed from within-fold centred moments (a prediction's constant part never enters a
difference of large sums), pooled over folds by the within/between decomposition.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..validation import check_choice, check_count

__all__ = ["rdm_from_gram", "helmert", "pca_from_rotated", "FoldMoments", "ridge_scores", "assign_folds",
           "check_folds", "check_responses", "check_alphas", "y_moments", "scores_dataset", "RAW_FORMULA"]


def rdm_from_gram(gram, method: str, n_units: int) -> np.ndarray:
    """RDM (n, n) from the upper triangle of ``gram`` (entries i ≤ j are used, the rest mirrored).

    "correlation": ``gram`` holds dot products of patterns centred and scaled to unit norm per stimulus, so
    d = 1 − gram (a stimulus whose pattern is constant has a zero row: its distances are NaN). "euclidean":
    ``gram`` holds raw dot products and d = (G_ii + G_jj − 2 G_ij) / units (squared, per channel, as
    :func:`insilico.analysis.rsa.rdm`)."""
    method = check_choice("method", method, ("correlation", "euclidean"))
    n_units = check_count("n_units", n_units)
    g = np.triu(np.asarray(gram, np.float64))
    g = g + np.triu(g, 1).T
    if method == "correlation":
        d = 1.0 - g
        dead = np.diagonal(g) == 0
        d[dead, :], d[:, dead] = np.nan, np.nan
    else:
        sq = np.diagonal(g)
        d = (sq[:, None] + sq[None, :] - 2.0 * g) / n_units
    np.fill_diagonal(d, 0.0)
    return d


def helmert(n: int) -> np.ndarray:
    """(n, n − 1) orthonormal columns orthogonal to the vector of ones (the Helmert contrasts)."""
    q = np.zeros((n, n - 1))
    for j in range(1, n):
        q[:j, j - 1] = 1.0 / np.sqrt(j * (j + 1))
        q[j, j - 1] = -j / np.sqrt(j * (j + 1))
    return q


def pca_from_rotated(bt_b, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(P_k / σ_k, σ_k)`` from ``BᵀB`` (r × r) for ``B = X_cᵀ Q``: the components are ``B @ (P_k / σ_k)`` and σ
    the singular values of the centred reference, largest first; components of zero variance are dropped."""
    lam, p = np.linalg.eigh(0.5 * (bt_b + bt_b.T))
    order = np.argsort(lam)[::-1][:k]
    lam, p = lam[order], p[:, order]
    keep = lam > max(lam[0], 0.0) * 1e-12 if len(lam) else lam > 0
    sigma = np.sqrt(lam[keep])
    return p[:, keep] / sigma, sigma


def assign_folds(order: np.ndarray, k: int) -> np.ndarray:
    """Fold of every stimulus: the stimuli in ``order`` (a permutation) dealt to folds 0, 1, …, k − 1 in turn, so
    fold sizes differ by at most one."""
    k = check_count("k (folds)", k)
    folds = np.empty(len(order), np.int32)
    folds[np.asarray(order)] = np.arange(len(order)) % k
    return folds


@dataclass
class FoldMoments:
    """Moments of features x (d) and responses y (q) per fold: counts ``n`` (K,), ``sx`` (K, d), ``sxx`` (K, d, d),
    ``sy`` (K, q), ``syy`` (K, q) (Σy² per neuron), ``sxy`` (K, d, q)."""
    n: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    sy: np.ndarray
    syy: np.ndarray
    sxy: np.ndarray

    def total(self, folds) -> tuple:
        """The moments summed over ``folds`` (a list of fold indices)."""
        idx = list(folds)
        return tuple(getattr(self, f)[idx].sum(0) for f in ("n", "sx", "sxx", "sy", "syy", "sxy"))


def _centred(n, sx, sxx, sy, syy, sxy):
    """Means and within-set centred moments: (mx, my, Cxx, Cxy, Cyy)."""
    return (sx / n, sy / n, sxx - np.outer(sx, sx) / n, sxy - np.outer(sx, sy) / n, syy - sy ** 2 / n)


def _fit(train, alphas):
    """Ridge on centred training moments for every α: (means mx, my; eigenvectors V; coefficients in the
    eigenbasis B[a] = diag(1/(λ + α_a)) Vᵀ Cxy, shape (A, d, q))."""
    mx, my, cxx, cxy, _ = _centred(*train)
    lam, v = np.linalg.eigh(0.5 * (cxx + cxx.T))
    w = v.T @ cxy
    return mx, my, v, w[None] / (lam[None, :, None] + alphas[:, None, None])


def _fold_parts(fit, held):
    """Per α and neuron for one held-out fold: (n, mean of ŷ, mean of y, within-fold var ŷ·n, cov·n, var y·n)."""
    mx, my, v, b = fit
    n, sx, sxx, sy, syy, sxy = held
    _, ey, cxx, cxy, cyy = _centred(n, sx, sxx, sy, syy, sxy)
    m = v.T @ cxx @ v
    var = np.einsum("ajk,jl,alk->ak", b, m, b, optimize=True)
    cov = np.einsum("ajk,jk->ak", b, v.T @ cxy)
    mean_hat = my[None] + np.einsum("j,ajk->ak", v.T @ (sx / n - mx), b)
    return n, mean_hat, ey, var, cov, cyy


def _pooled_r(parts):
    """Pearson r over the union of held-out folds (within + between fold decomposition): (A, q)."""
    ns = np.array([p[0] for p in parts], np.float64)
    hat = np.stack([p[1] for p in parts])                       # (F, A, q)
    ey = np.stack([np.broadcast_to(p[2], p[1].shape) for p in parts])
    g_hat = np.tensordot(ns, hat, 1) / ns.sum()
    g_y = np.tensordot(ns, ey, 1) / ns.sum()
    dh, dy = hat - g_hat, ey - g_y
    s_hh = sum(p[3] for p in parts) + np.tensordot(ns, dh * dh, 1)
    s_hy = sum(p[4] for p in parts) + np.tensordot(ns, dh * dy, 1)
    s_yy = sum(p[5] for p in parts) + np.tensordot(ns, dy * dy, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s_hy / np.sqrt(s_hh * s_yy)


def ridge_scores(m: FoldMoments, alphas) -> tuple[np.ndarray, np.ndarray]:
    """Held-out Pearson r per outer fold and neuron (K, q), and the α chosen for each (K, q).

    For every outer fold o: the training set is every other fold; α is chosen per neuron as the one with the
    highest pooled held-out r when each training fold is in turn predicted from the others (ties: the first α;
    NaN scores never win), the model refit on all training folds with each neuron's α, and the r between its
    predictions and the responses of fold o returned (NaN where either is constant in fold o)."""
    alphas = np.asarray(alphas, np.float64)
    k = len(m.n)
    r = np.full((k, m.sy.shape[1]), np.nan)
    chosen = np.full_like(r, np.nan)
    for o in range(k):
        train = [f for f in range(k) if f != o]
        inner = [_fold_parts(_fit(m.total([g for g in train if g != i]), alphas), m.total([i])) for i in train]
        scores = np.nan_to_num(_pooled_r(inner), nan=-np.inf)
        best = scores.argmax(0)
        chosen[o] = alphas[best]
        fit = _fit(m.total(train), alphas)
        q = np.arange(len(best))
        one = (fit[0], fit[1], fit[2], fit[3][best, :, q].T[None])        # each neuron's own α
        _, _, _, var, cov, cyy = _fold_parts(one, m.total([o]))
        with np.errstate(invalid="ignore", divide="ignore"):
            r[o] = (cov / np.sqrt(var * cyy))[0]
    return r, chosen


def check_folds(folds, n: int, n_splits: int, key) -> np.ndarray:
    """Fold ids (n,) in 0..K−1, every fold used, K ≥ 3 (an outer fold and at least two inner ones): ``folds`` as
    given, else ``n_splits`` folds dealt from a random permutation drawn with ``key``."""
    from ..validation import ArgumentError, check_count, check_indices

    if folds is None:
        k = check_count("n_splits", n_splits, 3, n)
        import jax

        return assign_folds(np.asarray(jax.random.permutation(key, n)), k)
    f = check_indices("folds", folds, None)
    if f.shape != (n,):
        raise ArgumentError(f"folds must hold one fold id per stimulus ({n}); got shape {np.shape(folds)}")
    k = int(f.max()) + 1
    missing = sorted(set(range(k)) - set(f.tolist()))
    if f.min() < 0 or missing or k < 3:
        raise ArgumentError(f"folds must be ids 0..K−1 with every fold used and K ≥ 3; got ids in "
                            f"[{f.min()}, {f.max()}]" + (f", folds {missing} empty" if missing else ""))
    return f.astype(np.int32)


def y_moments(y: np.ndarray, folds: np.ndarray, k: int) -> tuple:
    """(n, Σy, Σy²) per fold of responses y (n, q), in float64."""
    onehot = np.eye(k)[folds]
    return onehot.sum(0), onehot.T @ y, onehot.T @ (y * y)


def scores_dataset(r: dict, alpha: dict, neuroid, attrs: dict):
    """The Dataset of :func:`insilico.probes.streaming.encoding_scores`: ``r`` and ``alpha`` (site, neuroid,
    split), ``per_neuron`` (mean over splits), ``raw`` (median over neurons of per_neuron) and ``distribution``
    (median over neurons per split)."""
    import xarray as xr

    sites = list(r)
    rr, aa = np.stack([r[s].T for s in sites]), np.stack([alpha[s].T for s in sites])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per = np.nanmean(rr, 2)
        raw, dist = np.nanmedian(per, 1), np.nanmedian(rr, 1)
    return xr.Dataset({"r": (("site", "neuroid", "split"), rr), "alpha": (("site", "neuroid", "split"), aa),
                       "per_neuron": (("site", "neuroid"), per), "raw": ("site", raw),
                       "distribution": (("site", "split"), dist)},
                      coords={"site": sites, "neuroid": neuroid, "split": np.arange(rr.shape[2])},
                      attrs={**attrs, "formula": RAW_FORMULA})


RAW_FORMULA = ("raw = median over neurons of (mean over the K outer folds of the held-out Pearson r); r of fold k: "
               "ridge fitted on the other K−1 folds, each neuron's α the one with the highest pooled held-out r when "
               "each of those folds is predicted from the rest, r from Σŷ, Σŷ², Σŷy of fold k")


def check_responses(responses, n: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(responses as float64 (stimuli, neurons), neuroid ids or None): finite (NaN refused, located), one row per
    stimulus when ``n`` is given, no neuron constant across stimuli."""
    import xarray as xr

    from ..validation import ArgumentError, check_finite

    ids = None
    if isinstance(responses, xr.DataArray):
        ids = responses.coords["neuroid_id"].values if "neuroid_id" in responses.coords else None
        responses = responses.values
    y = check_finite("responses", responses, ndim=(1, 2)).astype(np.float64)
    y = y.reshape(len(y), -1)
    if n is not None and y.shape[0] != n:
        raise ArgumentError(f"responses must hold one row per image ({n}); got shape {y.shape}")
    const = np.flatnonzero(np.ptp(y, 0) == 0)            # exactly (a constant's std may be 1e-17)
    if len(const):
        raise ArgumentError(f"responses: neurons {const.tolist()[:10]} respond identically to every stimulus; "
                            "their correlation is undefined")
    return y, ids


def check_alphas(alphas) -> np.ndarray:
    """Ridge penalties: a finite number or 1-D array, every value ≥ 0."""
    from ..validation import check_finite, check_in_range

    a = check_finite("alphas", alphas, ndim=(0, 1)).astype(np.float64).reshape(-1)
    return np.asarray(check_in_range("alphas (ridge penalties)", a, low=0))
