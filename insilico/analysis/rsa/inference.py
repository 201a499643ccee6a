"""Resampling inference on RDM comparisons: :func:`bootstrap` (over stimuli, subjects or both, with the noise
ceiling of every sample) and :func:`permutation_test` (condition labels) — every set of samples one compiled,
vmapped call.

Resampling never materializes resampled RDMs: a bootstrap sample of stimuli with counts kᵢ turns the RDM vector into
the original pairs (i < j) with multiplicities kᵢkⱼ (a stimulus drawn twice contributes no pair with itself, as
rsatoolbox masks those entries), and every comparator is evaluated in its weighted form.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_choice, check_count, check_fraction, check_key
from .ceiling import CEILING_METHODS, _ceiling_core, noise_ceiling
from .compare import COMPARATORS, _compare_one, _pair_index, _sample_weights, _weighted_score, compare
from .rdm import _as_vectors, square
from .tau_bootstrap import _boot_tau_a

BOOTSTRAP_METHODS = CEILING_METHODS


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
