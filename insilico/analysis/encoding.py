"""Linear encoding models: predict each recorded neuron from a model site's responses, scored on held-out stimuli.

- :func:`ridge_cv`: ridge regression with every α of a grid evaluated in one SVD per fold (the solution for all α
  is V diag(s / (s² + α)) Uᵀ y), α chosen per neuron by cross-validated correlation, refit on all training data.
- :func:`pls`: partial least squares (PLS2, NIPALS with standardized variables — Brain-Score's default regression
  with 25 components).
- :func:`split_half_reliability`: the correlation between mean responses of random halves of the repetitions,
  Spearman–Brown corrected to the full number of repetitions (a noise ceiling per neuron); the returned
  :class:`Reliability` array states its formula.
- :func:`encode`: repeated train/test splits → per-neuron held-out Pearson r; the :class:`EncodingResult` carries
  the raw score, the ceiling, the normalization formula and the resampling distribution.

Normalization. The Spearman–Brown corrected split-half reliability c estimates the correlation between two
independent measurements of the mean response; a model that predicts the true mean response exactly correlates
with one measurement at √c, not c. The default ``normalization="sqrt"`` divides the raw r by √(ceiling), so such
a perfect model scores 1. ``normalization="brain-score"`` divides by the ceiling itself (Brain-Score's
convention, raw r / c: a perfect model then scores 1/√c > 1, and the score is comparable with Brain-Score's).

All resampling takes an explicit PRNG key (``jax.random``) and inputs are checked (NaN, constant neurons,
mismatched stimuli).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import jax
import numpy as np
import xarray as xr

from ..validation import (
    ArgumentError,
    check_choice,
    check_count,
    check_finite,
    check_fraction,
    check_in_range,
    check_key,
    check_positive,
)
from .stats import pearson

__all__ = ["RidgeModel", "ridge_cv", "PLSModel", "pls", "split_half_reliability", "Reliability", "EncodingResult",
           "encode", "pearson_columns", "NORMALIZATIONS"]

ALPHAS = tuple(float(a) for a in np.logspace(-3, 6, 19))

#: normalization name -> formula of the normalized score (r: median over neurons of the held-out r; c: median
#: over neurons of the ceiling)
NORMALIZATIONS = {"sqrt": "median_n(mean_split r) / sqrt(median_n(ceiling))",
                  "brain-score": "median_n(mean_split r) / median_n(ceiling)"}


def _alphas(alphas) -> np.ndarray:
    a = check_finite("alphas", alphas, ndim=(0, 1)).astype(np.float64).reshape(-1)
    return check_in_range("alphas (ridge penalties)", a, low=0)


def _stimulus_ids(a):
    if isinstance(a, xr.DataArray) and "stimulus_id" in a.coords:
        return np.asarray(a.coords["stimulus_id"].values)
    return None


def _xy(x, y, what: str):
    ix, iy = _stimulus_ids(x), _stimulus_ids(y)
    if ix is not None and iy is not None and (len(ix) != len(iy) or np.any(ix != iy)):
        bad = np.flatnonzero(ix != iy)[:5] if len(ix) == len(iy) else np.zeros(0, np.int64)
        raise ValueError(f"{what}: the stimulus_id of features and responses differ" +
                         (f" at rows {bad.tolist()} (e.g. {ix[bad[0]]!r} vs {iy[bad[0]]!r})" if len(bad) else
                          f" ({len(ix)} vs {len(iy)} stimuli)") + "; align them first (xarray .sel(stimulus_id=...))")
    x = check_finite("features", x.values if isinstance(x, xr.DataArray) else x).astype(np.float64)
    y = check_finite("responses", y.values if isinstance(y, xr.DataArray) else y).astype(np.float64)
    if x.ndim < 2:
        raise ArgumentError(f"{what}: features must be (stimuli, units, ...); got shape {x.shape}")
    if y.ndim < 1:
        raise ArgumentError(f"{what}: responses must be (stimuli,) or (stimuli, neurons); got shape {y.shape}")
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1) if y.ndim > 1 else y[:, None]
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{what}: features have {x.shape[0]} stimuli but responses {y.shape[0]}; rows must be the "
                         "same stimuli in the same order")
    if x.shape[0] < 4:
        raise ValueError(f"{what} needs at least 4 stimuli; got {x.shape[0]}")
    return x, y


def pearson_columns(a, b) -> np.ndarray:
    """Pearson r between matching columns of a and b (n, k); NaN where a column is constant
    (:func:`insilico.analysis.stats.pearson`, computed with NumPy in the arrays' dtype: float64 here)."""
    a, b = check_finite("a", a, ndim=2), check_finite("b", b, ndim=2)
    if a.shape != b.shape or a.shape[0] < 2:
        raise ArgumentError(f"a and b must be (n, k) of one shape with n ≥ 2 rows (matching columns); got "
                            f"{a.shape} and {b.shape}")
    return pearson(a, b, axis=0)


# --------------------------------------------------------------------------------------------------------- ridge

@dataclass
class RidgeModel:
    """A fitted ridge map: ``predict(x) = (x − x_mean) @ weights + y_mean``; ``alpha`` per target and the
    cross-validated correlation for every α (``cv_scores``: alphas × targets)."""
    weights: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray
    alpha: np.ndarray
    alphas: np.ndarray
    cv_scores: np.ndarray

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return (x - self.x_mean) @ self.weights + self.y_mean


def _svd(x, y):
    """(Vᵀ, s, Uᵀy) of centred x: every ridge solution is Vᵀᵀ diag(s / (s² + α)) Uᵀy."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return vt, s, u.T @ y


def ridge_cv(x, y, *, alphas=ALPHAS, n_folds: int = 5, key=None, per_target: bool = True) -> RidgeModel:
    """Ridge regression with α chosen by ``n_folds``-fold cross-validation (held-out Pearson r, per target
    unless ``per_target=False``), then refit on all of (x, y). Folds are drawn with ``key`` (default: in order).
    Held-out predictions for every α come from one SVD per fold without forming the weights:
    X_test V diag(s / (s² + α)) Uᵀ y."""
    alphas = _alphas(alphas)
    if key is not None:
        check_key("key", key)
    x, y = _xy(x, y, "ridge_cv")
    n = x.shape[0]
    check_count("n_folds", n_folds)
    if not 2 <= n_folds <= n:
        raise ArgumentError(f"n_folds must be between 2 and the number of stimuli ({n}); got {n_folds}")
    order = np.arange(n) if key is None else np.asarray(jax.random.permutation(key, n))
    folds = np.array_split(order, n_folds)
    pred = np.zeros((len(alphas), n, y.shape[1]))
    for test in folds:
        train = np.setdiff1d(order, test)
        xm, ym = x[train].mean(0), y[train].mean(0)
        vt, s, uty = _svd(x[train] - xm, y[train] - ym)
        proj = (x[test] - xm) @ vt.T                                       # (n_test, r)
        d = s[None, :] / (s[None, :] ** 2 + alphas[:, None])               # (A, r)
        pred[:, test] = np.einsum("nr,ar,rk->ank", proj, d, uty) + ym
    scores = np.stack([pearson_columns(p, y) for p in pred])          # (A, k)
    filled = np.nan_to_num(scores, nan=-np.inf)
    best = filled.argmax(0) if per_target else np.full(y.shape[1], np.nanmean(scores, 1).argmax())
    xm, ym = x.mean(0), y.mean(0)
    vt, s, uty = _svd(x - xm, y - ym)
    d = s[None, :] / (s[None, :] ** 2 + alphas[best][:, None])         # (k, r): each target's own α
    weights = vt.T @ (d.T * uty)                                       # (p, k)
    return RidgeModel(weights, xm, ym, alphas[best], alphas, scores)


# ----------------------------------------------------------------------------------------------------------- PLS

@dataclass
class PLSModel:
    """A fitted PLS2 map on standardized variables: ``predict(x)``; ``n_components`` used."""
    coef: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    n_components: int

    def predict(self, x) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        return ((x - self.x_mean) / self.x_std) @ self.coef * self.y_std + self.y_mean


def pls(x, y, *, n_components: int = 25, max_iter: int = 500, tol: float = 1e-6) -> PLSModel:
    """PLS2 regression by NIPALS on standardized x and y (the algorithm and defaults of scikit-learn's
    ``PLSRegression(scale=True)``, Brain-Score's regression). ``n_components`` is capped at the rank available
    (min(stimuli − 1, units)) with a warning-free cap recorded on the model."""
    n_components = check_count("n_components", n_components)
    max_iter = check_count("max_iter", max_iter)
    tol = check_positive("tol", tol)
    x, y = _xy(x, y, "pls")
    xm, ym = x.mean(0), y.mean(0)
    xs, ys = x.std(0, ddof=1), y.std(0, ddof=1)
    xs[xs == 0], ys[ys == 0] = 1.0, 1.0
    xk, yk = (x - xm) / xs, (y - ym) / ys
    k = int(min(n_components, x.shape[1], x.shape[0] - 1))
    p, q = x.shape[1], y.shape[1]
    w_, p_, c_ = np.zeros((p, k)), np.zeros((p, k)), np.zeros((q, k))
    for c in range(k):
        yvar = (yk ** 2).sum(0)
        if np.all(yvar < np.finfo(float).eps):
            k = c
            break
        u = yk[:, np.flatnonzero(np.any(np.abs(yk) > np.finfo(float).eps, 0))[0]]
        w_old = np.zeros(p)
        for _ in range(max_iter):
            w = xk.T @ u / (u @ u)
            w /= np.linalg.norm(w)
            t = xk @ w
            cc = yk.T @ t / (t @ t)
            u = yk @ cc / (cc @ cc)
            if np.sum((w - w_old) ** 2) < tol or q == 1:
                break
            w_old = w
        t = xk @ w
        pp = xk.T @ t / (t @ t)
        qq = yk.T @ t / (t @ t)
        xk = xk - np.outer(t, pp)
        yk = yk - np.outer(t, qq)
        w_[:, c], p_[:, c], c_[:, c] = w, pp, qq
    w_, p_, c_ = w_[:, :k], p_[:, :k], c_[:, :k]
    rotations = w_ @ np.linalg.pinv(p_.T @ w_)
    return PLSModel(rotations @ c_.T, xm, xs, ym, ys, k)


# ----------------------------------------------------------------------------------------------------- reliability

class Reliability(np.ndarray):
    """Per-neuron reliabilities (a NumPy array) that state how they were computed: ``formula`` (text) and
    ``spearman_brown`` (whether corrected to the full number of repetitions). :func:`encode` copies the formula
    into its result."""

    formula: str = "reliability supplied by the caller"
    spearman_brown: bool | None = None

    def __new__(cls, values, formula: str, spearman_brown: bool):
        out = np.asarray(values, np.float64).view(cls)
        out.formula, out.spearman_brown = formula, spearman_brown
        return out

    def __array_finalize__(self, obj):
        self.formula = getattr(obj, "formula", Reliability.formula)
        self.spearman_brown = getattr(obj, "spearman_brown", None)

    def __reduce__(self):                       # pickles as a plain array plus the formula
        return Reliability, (np.asarray(self), self.formula, self.spearman_brown)


def split_half_reliability(trials, *, n_splits: int = 100, key, spearman_brown: bool = True) -> Reliability:
    """Per-neuron reliability of the mean response: ``trials`` (stimuli, neurons, repetitions; NaN for missing
    repetitions) are split into random halves of the repetitions ``n_splits`` times; the Pearson r between the
    halves' mean responses across stimuli is averaged and (``spearman_brown``, default) Spearman–Brown corrected
    to the full number of repetitions, 2r / (1 + r) — the expected correlation between two independent
    measurements of the mean response. A model equal to the true mean response correlates with the measured mean
    at √(corrected reliability): see :func:`encode`'s ``normalization``. Returns a :class:`Reliability` array
    whose ``formula`` says which."""
    n_splits = check_count("n_splits", n_splits)
    check_key("key", key)
    if not isinstance(spearman_brown, (bool, np.bool_)):
        raise ArgumentError(f"spearman_brown must be True or False; got {spearman_brown!r}")
    t = trials.values if isinstance(trials, xr.DataArray) else trials
    try:
        t = np.asarray(t, np.float64)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"trials must be a numeric array (stimuli, neurons, repetitions); got "
                            f"{type(trials).__name__} ({e})") from None
    if t.ndim != 3:
        raise ValueError(f"trials must be (stimuli, neurons, repetitions); got shape {t.shape}")
    if np.isinf(t).any():
        raise ArgumentError(f"trials contain {int(np.isinf(t).sum())} infinite value(s); mark missing repetitions "
                            "with NaN")
    if t.shape[2] < 2:
        raise ValueError("split-half reliability needs at least 2 repetitions")
    if t.shape[0] < 3 or t.shape[1] < 1:
        raise ArgumentError(f"trials must hold at least 3 stimuli and 1 neuron; got shape {t.shape}")
    rs = []
    for k in jax.random.split(key, n_splits):
        perm = np.asarray(jax.random.permutation(k, t.shape[2]))
        half = t.shape[2] // 2
        a = np.nanmean(t[:, :, perm[:half]], 2)
        b = np.nanmean(t[:, :, perm[half:2 * half]], 2)
        rs.append(pearson_columns(a, b))
    r = np.nanmean(np.stack(rs), 0)
    reps = 2 * (t.shape[2] // 2)
    valid = (~np.isnan(t)).sum(2)
    if valid.min() == t.shape[2]:
        halves, whole = f"the means of {reps // 2} and {reps // 2} repetitions", f"a {reps}-repetition mean"
    else:                                   # NaN-padded: the halves hold whatever valid repetitions fell in them
        halves = (f"the means of the valid repetitions in two random halves of the {t.shape[2]} repetition slots "
                  f"({valid.min()}-{valid.max()} valid per stimulus and neuron; NaN slots skipped)")
        whole = "a mean of all valid repetitions (approximately: the halves are not always equal)"
    if spearman_brown:                      # r ≤ -1/3 (no reliable signal) would give 2r/(1+r) ≤ -1: held at -1
        corrected = np.where(r <= -1 / 3, -1.0, 2 * r / (1 + np.where(r <= -1 / 3, 1.0, r)))
        return Reliability(corrected, f"Spearman-Brown corrected split-half r, 2r/(1+r), -1 where r ≤ -1/3 (r: mean "
                           f"over {n_splits} splits of the Pearson r between {halves}), the reliability of {whole}",
                           True)
    return Reliability(r, f"split-half r, not Spearman-Brown corrected (mean over {n_splits} splits of the "
                       f"Pearson r between {halves})", False)


# ----------------------------------------------------------------------------------------------------- evaluation

@dataclass
class EncodingResult:
    """Held-out predictivity of one feature set for a population of neurons.

    ``per_neuron``: mean held-out Pearson r per neuron over the splits; ``per_split`` (split, neuron);
    ``raw``: the median over neurons; ``ceiling``: per-neuron reliability (if given) and its median;
    ``normalized``: the raw score over the ceiling by ``normalization`` — "sqrt" (default): ``raw / √(median
    ceiling)``, under which a model equal to the true mean response scores 1; "brain-score": ``raw / median
    ceiling`` (Brain-Score's convention) — NaN without a ceiling (or with a median ceiling ≤ 0);
    ``formula`` states the normalization and how the ceiling was computed (from a :class:`Reliability`);
    ``distribution``: the median over neurons per split (the resampling distribution of ``raw``)."""
    per_neuron: np.ndarray
    per_split: np.ndarray
    raw: float
    ceiling: np.ndarray | None
    ceiling_median: float
    normalized: float
    formula: str
    distribution: np.ndarray
    method: str
    settings: dict = field(default_factory=dict)
    normalization: str = "sqrt"

    def __repr__(self) -> str:
        return (f"EncodingResult({self.method}: raw median r = {self.raw:.3f}, ceiling {self.ceiling_median:.3f}, "
                f"normalized {self.normalized:.3f} [{self.formula}], {len(self.distribution)} splits, "
                f"{len(self.per_neuron)} neurons)")


def encode(features, responses, *, method: str = "ridge", n_splits: int = 10, test_fraction: float = 0.1,
           ceiling=None, key, alphas=ALPHAS, n_components: int = 25, normalization: str = "sqrt") -> EncodingResult:
    """Fit ``features`` (stimuli, units) → ``responses`` (stimuli, neurons) on random train/test splits (``key``)
    and score each neuron by the Pearson r between predicted and measured held-out responses.

    method: "ridge" (α per neuron by 5-fold CV inside the training set, from ``alphas``) or "pls"
    (``n_components``). ``test_fraction`` in (0, 1) of the stimuli is held out in each of ``n_splits`` splits.
    ceiling: per-neuron reliability of the mean response (e.g. :func:`split_half_reliability`, Spearman–Brown
    corrected; NaN for neurons without one). normalization: "sqrt" (default) gives median r / √(median ceiling) —
    a model equal to the true mean response scores 1 (its r with the measured mean is √ceiling);
    "brain-score" gives median r / median ceiling, Brain-Score's convention (a perfect model scores 1/√ceiling).
    The result's ``formula`` names the one used. Constant neurons are an error (their correlation is undefined)."""
    method = check_choice("method", method, ("ridge", "pls"))
    normalization = check_choice("normalization", normalization, tuple(NORMALIZATIONS))
    n_splits = check_count("n_splits", n_splits)
    test_fraction = check_fraction("test_fraction", test_fraction, open_low=True, open_high=True)
    check_key("key", key)
    alphas = _alphas(alphas) if method == "ridge" else alphas
    n_components = check_count("n_components", n_components)
    x, y = _xy(features, responses, "encode")
    const = np.flatnonzero(np.ptp(y, 0) == 0)                 # exact: a constant 0.1 has a std of 1e-17
    if len(const):
        raise ValueError(f"encode: neurons {const.tolist()} respond identically to every stimulus")
    ceiling_formula = getattr(ceiling, "formula", None)
    if ceiling is not None:
        try:
            ceiling = np.asarray(ceiling, np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise ArgumentError(f"ceiling must be a numeric array of per-neuron reliabilities; got "
                                f"{type(ceiling).__name__} ({e})") from None
        if ceiling.shape[0] != y.shape[1]:
            raise ValueError(f"ceiling has {ceiling.shape[0]} values for {y.shape[1]} neurons")
        if np.isinf(ceiling).any() or np.isnan(ceiling).all() or np.nanmax(np.abs(ceiling)) > 1 + 1e-9:
            raise ArgumentError(f"ceiling must hold reliabilities in [-1, 1] (NaN for neurons without one), not all "
                                f"NaN; got values in [{np.nanmin(ceiling):.4g}, {np.nanmax(ceiling):.4g}]")
    n = x.shape[0]
    n_test = int(round(test_fraction * n))
    if n_test < 3:                   # a Pearson r over two points is ±1 whatever the model predicts
        raise ArgumentError(f"encode: test_fraction={test_fraction} of {n} stimuli holds out {n_test}; a held-out r "
                            f"needs at least 3 (over 2 it is always ±1): raise test_fraction or add stimuli")
    if n - n_test < 3:
        raise ArgumentError(f"encode: {n} stimuli leave too few for training with test_fraction={test_fraction}")
    scores: list[np.ndarray] = []
    for k in jax.random.split(key, n_splits):
        k_perm, k_cv = jax.random.split(k)
        perm = np.asarray(jax.random.permutation(k_perm, n))
        test, train = perm[:n_test], perm[n_test:]
        model: RidgeModel | PLSModel = (
            ridge_cv(x[train], y[train], alphas=alphas, n_folds=min(5, len(train)), key=k_cv) if method == "ridge"
            else pls(x[train], y[train], n_components=n_components))
        scores.append(pearson_columns(model.predict(x[test]), y[test]))
    per_split = np.stack(scores)
    per_neuron = np.nanmean(per_split, 0)
    raw = float(np.nanmedian(per_neuron))
    if ceiling is not None:
        c_med = float(np.nanmedian(ceiling))
        formula = (f"{NORMALIZATIONS[normalization]}"
                   f"{' (Brain-Score convention)' if normalization == 'brain-score' else ''}; ceiling: "
                   f"{ceiling_formula or 'per-neuron reliability supplied by the caller'}")
        if c_med > 0:
            normalized = raw / (np.sqrt(c_med) if normalization == "sqrt" else c_med)
        else:
            warnings.warn(f"encode: the median ceiling is {c_med:.3g} (≤ 0): the responses are not reliable "
                          "enough to normalize; normalized is NaN", RuntimeWarning, stacklevel=2)
            normalized, formula = float("nan"), f"median ceiling {c_med:.3g} ≤ 0: not normalized; {formula}"
    else:
        c_med, normalized, formula = float("nan"), float("nan"), "no ceiling given"
    return EncodingResult(per_neuron, per_split, raw, ceiling, c_med, float(normalized), formula,
                          np.nanmedian(per_split, 1), method,
                          {"n_splits": n_splits, "test_fraction": test_fraction, "n_stimuli": n,
                           "n_units": x.shape[1], "n_neurons": y.shape[1], "normalization": normalization},
                          normalization)
