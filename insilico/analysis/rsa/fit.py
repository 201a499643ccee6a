"""Weighted (mixed) RSA: a data RDM modelled as a non-negative combination of component RDMs, fitted by
non-negative least squares and evaluated by cross-validation over stimuli (:func:`fit_weighted`).
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_choice, check_count, check_key
from .compare import COMPARATORS, compare
from .rdm import _as_vectors


def fit_weighted(components, data_rdms, *, method: str = "corr", n_folds: int = 4, key=None,
                 component_names: Sequence[str] | None = None) -> xr.Dataset:
    """Mixed (weighted) RSA: the data RDM modelled as a non-negative combination of component RDMs (e.g. one
    per site, or per feature group — Khaligh-Razavi & Kriegeskorte 2014), fitted by non-negative least squares
    on the dissimilarities and evaluated by cross-validation over stimuli: the weights are fitted on the pairs
    among the training stimuli (mean over subjects) and the prediction is compared (``method``) with each
    subject's RDM on the pairs among the held-out stimuli. Stimuli are split into ``n_folds`` folds with
    ``key`` (default: in order).

    Returns a Dataset: ``weights`` (component; fitted on all stimuli to z-scored components, with a free offset),
    ``fold_scores`` (fold), and for reference ``component_cv_score`` (component): each component alone, evaluated
    on the same folds; attrs ``cv_score`` (the mean over folds and subjects), ``offset`` and
    ``folds_without_prediction``: folds whose fitted weights are all zero, so that the prediction is a constant,
    which no comparator relates to the data (:func:`compare` refuses constant RDMs): scored 0, never left out of
    the mean (which would flatter the fit)."""
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

    fold_scores, comp_scores, flat = [], [], []
    for k, test in enumerate(folds):
        is_test = np.isin(np.arange(n), test)
        train_pairs, test_pairs = ~is_test[i] & ~is_test[j], is_test[i] & is_test[j]
        w = fit(train_pairs)
        pred = w[:-1] @ vc[:, test_pairs] + w[-1]
        sub = vd[:, None, test_pairs]            # (S, 1, pairs): condensed vectors, never read as one square RDM
        if np.ptp(pred) == 0:                    # all weights zero on this fold: a constant prediction
            flat.append(k)
            fold_scores.append(0.0)
        else:
            fold_scores.append(float(np.mean(compare(pred[None], sub, method))))
        comp_scores.append([float(np.mean(compare(c[None], sub, method))) for c in vc[:, test_pairs]])
    w_all = fit(np.ones(len(i), bool))
    return xr.Dataset({"weights": ("component", w_all[:-1]), "fold_scores": ("fold", np.asarray(fold_scores)),
                       "component_cv_score": ("component", np.mean(comp_scores, 0))},
                      coords={"component": names},
                      attrs={"cv_score": float(np.mean(fold_scores)), "offset": float(w_all[-1]),
                             "method": method, "n_folds": n_folds, "n_stimuli": n,
                             "folds_without_prediction": ", ".join(map(str, flat))})
