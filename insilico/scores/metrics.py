"""The three metrics as pure functions of per-site results and the data — RSA (site RDMs vs subject RDMs),
encoding (per-neuron held-out r) and tuning shape (distributions of unit vs cell tuning statistics) — each
choosing the model's site on the selection split and scoring it on the held-out split.

Every scorer returns an :class:`xarray.Dataset` over ``site`` (``selection_score``, ``heldout_score`` with its
bootstrap interval, ``full_score`` on all stimuli and neurons with its interval) and the benchmark's result:
``samples`` (the chosen site's held-out bootstrap distribution, absent without bootstrap samples) and attrs
``chosen_site``, ``selection_score``, ``raw_score`` (held-out), ``ceiling``, ``normalized`` and ``normalization``
(the formula).
"""
from __future__ import annotations

import warnings

import jax
import numpy as np
import xarray as xr

from .. import rng
from ..analysis import rsa
from ..validation import ArgumentError, check_count, check_indices

__all__ = ["score_rsa", "score_encoding", "score_tuning", "ks_distance", "tuning_shape_score", "CI"]

CI = 0.95


def _check_split(split, n: int, unit: str, n_boot) -> tuple[np.ndarray, np.ndarray]:
    """``split`` as (selection, held-out) index arrays: two non-empty, disjoint sets of distinct indices in
    [0, ``n``) — a site chosen and scored on the same ``unit`` would be scored on what chose it."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise ArgumentError(f"split must be a pair (selection indices, held-out indices); got {split!r:.80}")
    sel, held = (check_indices(f"split's {name} indices", idx, n) for name, idx in zip(("selection", "held-out"),
                                                                                     split))
    for name, idx in (("selection", sel), ("held-out", held)):
        if len(np.unique(idx)) != len(idx):
            raise ArgumentError(f"split's {name} indices repeat {unit}; each must appear once")
    shared = np.intersect1d(sel, held)
    if shared.size:
        raise ArgumentError(f"split's selection and held-out {unit} must not overlap (the site would be scored on "
                            f"what chose it); both hold {shared[:6].tolist()}")
    n_boot = check_count("n_boot", n_boot, minimum=0)
    if n_boot == 1:
        raise ArgumentError("n_boot must be 0 (no intervals) or at least 2; got 1")
    return sel, held


def _interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (CI) of ``samples`` (sample, site), NaN for a site without finite samples."""
    if samples.size == 0:
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # a site without finite samples: NaN
        lo, hi = np.nanpercentile(samples, [50 * (1 - CI), 50 * (1 + CI)], axis=0)
    return lo, hi


def _result(sites, selection, heldout, full, held_samples, full_samples, *, ceiling, ceiling_lower=np.nan,
            ceiling_upper=np.nan, normalization: str, ceiling_note: str, n_selection: int, n_heldout: int,
            unit: str) -> xr.Dataset:
    selection, heldout, full = (np.asarray(v, np.float64) for v in (selection, heldout, full))
    if not len(sites) or not np.isfinite(selection).any():
        raise ArgumentError("no site gave a finite selection score (constant responses at every site?)")
    best = int(np.nanargmax(selection))
    h_lo, h_hi = _interval(held_samples)
    f_lo, f_hi = _interval(full_samples)
    raw = float(heldout[best])
    if not np.isfinite(raw):
        raise ArgumentError(f"the chosen site {sites[best]!r} has no finite held-out score ({raw}; its held-out "
                            f"{unit} give no finite value) — a NaN is not a score")
    if np.isfinite(ceiling) and ceiling > 0:
        normalized = raw / np.sqrt(ceiling) if normalization.startswith("raw / sqrt") else raw / ceiling
    else:
        normalized = np.nan
        if np.isfinite(ceiling):
            ceiling_note = f"ceiling {ceiling:.3g} ≤ 0: {ceiling_note}"
    samples = held_samples[:, best] if held_samples.size else np.zeros(0)
    ds = xr.Dataset(
        {"selection_score": ("site", selection), "heldout_score": ("site", heldout),
         "heldout_ci_low": ("site", h_lo), "heldout_ci_high": ("site", h_hi), "full_score": ("site", full),
         "full_ci_low": ("site", f_lo), "full_ci_high": ("site", f_hi)},
        coords={"site": list(sites)},
        attrs={"chosen_site": str(sites[best]), "selection_score": float(selection[best]), "raw_score": raw,
               "ceiling": float(ceiling), "ceiling_lower": float(ceiling_lower), "ceiling_upper": float(ceiling_upper),
               "normalized": float(normalized), "normalization": normalization if np.isfinite(normalized) else
               f"not normalized ({ceiling_note})", "ceiling_method": ceiling_note, "n_selection": int(n_selection),
               "n_heldout": int(n_heldout), "n_boot": int(len(samples)), "selection_unit": unit, "ci": CI})
    if len(samples):                         # no "sample" dimension without samples (NetCDF3 has no empty ones)
        ds["samples"] = ("sample", samples)
    return ds


# ---------------------------------------------------------------------------------------------------------- RSA

def _rsa_scores(rdms: dict, data: np.ndarray, idx: np.ndarray, comparator: str) -> np.ndarray:
    d = data[:, idx][:, :, idx]
    return np.array([float(rsa.compare(r[np.ix_(idx, idx)], d, comparator).mean()) for r in rdms.values()])


def _rsa_boot(rdms: dict, data: np.ndarray, idx: np.ndarray, comparator: str, n_boot: int, key) -> np.ndarray:
    if not n_boot:
        return np.zeros((0, len(rdms)))
    models = np.stack([r[np.ix_(idx, idx)] for r in rdms.values()])
    b = rsa.bootstrap(models, data[:, idx][:, :, idx], method=comparator, n_samples=n_boot, key=key,
                      with_ceiling=False)
    return np.asarray(b.samples.values, np.float64)


def score_rsa(rdms: dict, data, split, *, comparator: str, n_boot: int, key) -> xr.Dataset:
    """RSA of every site's RDM ``rdms`` {site: (n, n)} with the subject RDMs ``data`` (S, n, n): the mean over
    subjects of ``comparator``, on the selection stimuli (choice of site), the held-out stimuli (the score) and
    all of them. Intervals: stimulus bootstrap (``n_boot`` samples; ``key``) of the held-out (and of all)
    stimuli. Ceiling: :func:`insilico.analysis.rsa.noise_ceiling` of the subject RDMs on the held-out stimuli
    (none for one subject); normalized = raw / lower bound."""
    data = np.asarray(data, np.float64)
    if data.ndim != 3 or data.shape[1] != data.shape[2] or not data.shape[0]:
        raise ArgumentError(f"data must hold the subjects' RDMs (subjects, n, n); got shape {data.shape}")
    if not isinstance(rdms, dict) or not rdms:
        raise ArgumentError(f"rdms must be a non-empty dict {{site: (n, n) RDM}}; got {rdms!r:.80}")
    wrong = {k: np.shape(v) for k, v in rdms.items() if np.shape(v) != data.shape[1:]}
    if wrong:
        raise ArgumentError(f"every site's RDM must be {data.shape[1:]} like the subjects' (the same stimuli in the "
                            f"same order); got {wrong}")
    sel, held = _check_split(split, data.shape[-1], "stimuli", n_boot)
    every = np.arange(data.shape[-1])
    k_held, k_full = jax.random.split(key)
    lo = hi = np.nan
    if data.shape[0] >= 2:
        lo, hi = rsa.noise_ceiling(data[:, held][:, :, held], comparator)
        note = f"Nili et al. noise ceiling of {data.shape[0]} subject RDMs on the held-out stimuli ({comparator})"
    else:
        note = "no ceiling: a single RDM"
    return _result(list(rdms), _rsa_scores(rdms, data, sel, comparator), _rsa_scores(rdms, data, held, comparator),
                   _rsa_scores(rdms, data, every, comparator),
                   _rsa_boot(rdms, data, held, comparator, n_boot, k_held),
                   _rsa_boot(rdms, data, every, comparator, n_boot, k_full),
                   ceiling=lo, ceiling_lower=lo, ceiling_upper=hi, normalization="raw / ceiling lower bound",
                   ceiling_note=note, n_selection=len(sel), n_heldout=len(held), unit="stimuli")


# ----------------------------------------------------------------------------------------------------- encoding

def _neuron_boot(per_neuron: np.ndarray, idx: np.ndarray, n_boot: int, key) -> np.ndarray:
    """Medians over ``idx`` neurons resampled with replacement: (n_boot, sites)."""
    if not n_boot:
        return np.zeros((0, per_neuron.shape[0]))
    draw = idx[np.asarray(rng.randint(key, (n_boot, len(idx)), 0, len(idx)))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # an all-NaN site stays NaN
        return np.stack([np.nanmedian(per_neuron[:, d], 1) for d in draw])


def _check_at_most_one(name: str, values, *, low) -> None:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if (v > 1 + 1e-6).any() or (low is not None and (v < low - 1e-6).any()):
        valid = "in [-1, 1]" if low is not None else "at most 1"
        raise ArgumentError(f"{name} must be {valid}; got values from {v.min():.3g} to {v.max():.3g}")


def score_encoding(per_split: dict, split, *, ceiling=None, n_boot: int, key) -> xr.Dataset:
    """Encoding: ``per_split`` {site: (splits, neurons) held-out r}; per neuron the mean over splits, per site
    the median over the selection neurons (choice of site), the held-out neurons (the score) and all neurons.
    Intervals: the held-out (all) neurons resampled with replacement (``n_boot``; ``key``). ``ceiling``:
    per-neuron reliability (or None); normalized = raw / sqrt(median held-out ceiling), the normalization of
    :func:`insilico.analysis.encoding.encode`."""
    n = {np.shape(v)[-1] for v in per_split.values()}
    if len(n) != 1:
        raise ArgumentError(f"per_split must hold (splits, neurons) for every site with one neuron count; got "
                            f"{ {k: np.shape(v) for k, v in per_split.items()} }")
    sel, held = _check_split(split, n.pop(), "neurons", n_boot)
    for name, v in per_split.items():                       # correlations (NaN: a constant neuron)
        _check_at_most_one(f"per_split[{name!r}] (held-out correlations)", v, low=-1.0)
    if ceiling is not None:                                  # Spearman-Brown reliabilities: ≤ 1, maybe below -1
        _check_at_most_one("ceiling (per-neuron reliabilities)", ceiling, low=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_neuron = np.stack([np.nanmean(v, 0) for v in per_split.values()])        # (site, neuron)
        every = np.arange(per_neuron.shape[1])
        if ceiling is not None and np.shape(ceiling) != (len(every),):
            raise ArgumentError(f"ceiling must hold one reliability per neuron ({len(every)}); got shape "
                                f"{np.shape(ceiling)}")
        sel_s, held_s, full_s = (np.nanmedian(per_neuron[:, idx], 1) for idx in (sel, held, every))
        c = float(np.nanmedian(np.asarray(ceiling, np.float64)[held])) if ceiling is not None else np.nan
    k_held, k_full = jax.random.split(key)
    formula = getattr(ceiling, "formula", "per-neuron reliability")
    return _result(list(per_split), sel_s, held_s, full_s, _neuron_boot(per_neuron, held, n_boot, k_held),
                   _neuron_boot(per_neuron, every, n_boot, k_full), ceiling=c,
                   normalization="raw / sqrt(median held-out ceiling)",
                   ceiling_note=f"median over held-out neurons of: {formula}" if ceiling is not None else "no ceiling",
                   n_selection=len(sel), n_heldout=len(held), unit="neurons")


# ------------------------------------------------------------------------------------------------ tuning shape

def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov–Smirnov distance sup_x |F_a(x) − F_b(x)| between the finite values of ``a`` and
    ``b`` (NaN when either has none)."""
    a, b = (np.sort(np.asarray(v, np.float64)[np.isfinite(v)]) for v in (a, b))
    if not a.size or not b.size:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


def tuning_shape_score(model: dict, cells: dict) -> float:
    """1 − the mean KS distance over the statistics both give (``{"preferred_sf": ..., "sf_bandwidth": ...}``
    arrays of unit / cell values): 1 when the distributions coincide, 0 when every statistic separates them."""
    d = [ks_distance(model[k], cells[k]) for k in cells]
    return float(1 - np.mean(d)) if d and np.isfinite(d).all() else float("nan")


def score_tuning(model: dict, cells: dict, split, *, n_boot: int, key) -> xr.Dataset:
    """Tuning shape: ``model`` {site: {stat: (units,)}}, ``cells`` {stat: (cells,)}; per site
    :func:`tuning_shape_score` against the selection cells (choice of site), the held-out cells (the score) and
    all cells. Intervals: the cells (held-out or all) and the site's units resampled with replacement."""
    if not isinstance(cells, dict) or not cells or not isinstance(model, dict) or not model:
        raise ArgumentError("model and cells must be non-empty dicts ({site: {statistic: values}} and "
                            "{statistic: values})")
    sizes = {k: len(np.asarray(v).reshape(-1)) for k, v in cells.items()}
    if len(set(sizes.values())) != 1:
        raise ArgumentError(f"cells must give every statistic for every cell; got counts {sizes}")
    for site, stats_ in model.items():
        missing = [k for k in cells if k not in stats_]
        if missing:
            raise ArgumentError(f"model[{site!r}] lacks the statistic(s) {missing} that cells give")
    n_cells = next(iter(sizes.values()))
    sel, held = _check_split(split, n_cells, "cells", n_boot)
    sub = lambda idx: {k: np.asarray(v)[idx] for k, v in cells.items()}
    scores = {name: np.array([tuning_shape_score(m, sub(idx)) for m in model.values()])
              for name, idx in (("sel", sel), ("held", held), ("all", np.arange(n_cells)))}

    def boot(idx, k):
        out = np.zeros((n_boot, len(model)))
        for b in range(n_boot):
            kc, ku = jax.random.split(jax.random.fold_in(k, b))
            c = sub(idx[np.asarray(jax.random.randint(kc, (len(idx),), 0, len(idx)))])
            for i, m in enumerate(model.values()):
                n = len(next(iter(m.values())))
                u = np.asarray(jax.random.randint(jax.random.fold_in(ku, i), (n,), 0, n))
                out[b, i] = tuning_shape_score({s: np.asarray(v)[u] for s, v in m.items()}, c)
        return out

    k_held, k_full = jax.random.split(key)
    return _result(list(model), scores["sel"], scores["held"], scores["all"], boot(held, k_held),
                   boot(np.arange(n_cells), k_full), ceiling=np.nan, normalization="none",
                   ceiling_note="no ceiling", n_selection=len(sel), n_heldout=len(held), unit="cells")
