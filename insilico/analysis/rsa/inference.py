"""Resampling inference on RDM comparisons: :func:`bootstrap` (over stimuli, subjects or both, with the noise
ceiling of every sample) and :func:`permutation_test` (condition labels, one vmapped call).

Resampling never materializes resampled RDMs: a bootstrap sample of stimuli with counts kᵢ turns the RDM vector into
the original pairs (i < j) with multiplicities kᵢkⱼ (a stimulus drawn twice contributes no pair with itself, as
rsatoolbox masks those entries), and every comparator is evaluated in its weighted form: Pearson and cosine from
weighted moments (one matrix product per block of samples, ``moments``), τ-a as quadratic forms in the weights
(``tau_bootstrap``), the rank correlations from weighted ranks. Samples are numbered and drawn one by one from the
key (``sampling``), and any number of them runs through one compiled function over fixed-size blocks of samples.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_choice, check_count, check_fraction, check_key
from .ceiling import CEILING_METHODS, _ceiling_core, noise_ceiling
from .compare import COMPARATORS, _compare_one, _pair_index, _sample_weights, _weighted_score, compare
from .moments import MOMENT_METHODS, full_moments, moment_columns, moment_scores, standardized, weighted_moments
from .rdm import _as_vectors, square
from .sampling import (
    block_size,
    counts_block,
    cyclic_weights,
    draw_counts,
    fits_int8,
    int8_products,
    pair_order,
    run_blocks,
    subject_mean,
)
from .tau_bootstrap import _boot_tau_a, plan_scores, tau_block, tau_plan

BOOTSTRAP_METHODS = CEILING_METHODS


def _rank_scores(models, data, counts, method: str, n: int):
    """Spearman / ρ-a per sample from weighted ranks: (samples, models, data RDMs); models (M, m), data (S, m)."""
    om, od = jnp.argsort(models, axis=1), jnp.argsort(data, axis=1)

    def one(k):
        w = _sample_weights(k, n)
        return jax.vmap(lambda a, oa: jax.vmap(lambda b, ob: _weighted_score(a, b, w, method, oa, ob))(data, od))(
            models, om)

    return jax.lax.map(one, counts)


def _rank_ceilings(data, counts, method: str, n: int):
    return jax.lax.map(lambda k: _ceiling_core(data, _sample_weights(k, n), method), counts)


_rank_scores_jit = jax.jit(_rank_scores, static_argnums=(3, 4))
_rank_ceilings_jit = jax.jit(_rank_ceilings, static_argnums=(2, 3))


def _columns(models, data, method: str):
    """The fixed-point moment columns of models and data (float64 (M, m), (S, m)), pairs in cyclic order."""
    order = pair_order(int(round((1 + np.sqrt(1 + 8 * data.shape[1])) / 2)))
    return moment_columns(standardized(models, method)[:, order], standardized(data, method)[:, order])


@partial(jax.jit, static_argnames=("n_models", "n_subjects", "method", "small"))
def _moments_of(counts, columns, *, n_models: int, n_subjects: int, method: str, small: bool):
    w = cyclic_weights(counts, jnp.int8 if small else None)
    return moment_scores(weighted_moments(w, columns, small), n_models, n_subjects, method)


def _moments_of_counts(models, data, counts, method: str):
    columns = _columns(np.asarray(models, np.float64), np.asarray(data, np.float64), method)
    counts = jnp.asarray(counts, jnp.float32)
    return _moments_of(counts, columns, n_models=len(models), n_subjects=len(data), method=method,
                       small=bool(fits_int8(counts)) and int8_products())


def _boot(models, data, counts, method: str, n: int):
    """Scores (samples, models, data RDMs) for stimulus counts (samples, n)."""
    if method == "tau-a":
        return _boot_tau_a(models, data, counts, n)
    if method in MOMENT_METHODS:
        return _moments_of_counts(models, data, counts, method)[0]
    return _rank_scores_jit(models, data, counts, method, n)


def _boot_ceilings(data, counts, method: str, n: int):
    """Noise ceiling (lower, upper) of every stimulus-bootstrap sample (stimulus counts (samples, n))."""
    if method in MOMENT_METHODS:
        return _moments_of_counts(np.zeros((0, data.shape[1])), data, counts, method)[1:]
    return _rank_ceilings_jit(data, counts, method, n)


@partial(jax.jit, static_argnames=("n_models", "n_subjects", "method", "over", "ceil", "small"))
def _moment_block(counts, start, kj, columns, *, n_models, n_subjects, method, over, ceil, small):
    per, lower, upper = _moments_of(counts, columns, n_models=n_models, n_subjects=n_subjects, method=method,
                                    small=small)
    return (subject_mean(per, kj, start, over),) + ((lower, upper) if ceil else ())


def _moment_blocks(ks, kj, columns, n: int, size: int, **kw):
    """``block(start)`` of Pearson / cosine; the int8 program serves every block whose weights fit int8 (the host
    reads ``fits_int8``), the float32 one is compiled only for a block that needs it."""
    def block(start):
        counts, small = counts_block(start, ks, n, size)
        return _moment_block(counts, start, kj, columns, small=bool(small) and int8_products(), **kw)

    return block


@partial(jax.jit, static_argnames=("method", "n", "over", "ceil", "size"))
def _rank_block(start, ks, kj, models, data, *, method, n, over, ceil, size):
    counts = draw_counts(ks, start, size, n)
    samples = subject_mean(_rank_scores(models, data, counts, method, n), kj, start, over)
    return (samples,) + (_rank_ceilings(data, counts, method, n) if ceil else ())


@partial(jax.jit, static_argnames=("size",))
def _subject_block(start, kj, per, *, size):
    return (subject_mean(jnp.broadcast_to(per, (size, *per.shape)), kj, start, "subjects"),)


def _subjects_only(per, kj, size: int):
    """Resampling subjects only: every sample weighs the same per-subject scores on all data (M, S)."""
    per = jnp.asarray(per, jnp.float32)
    return lambda s: _subject_block(s, kj, per, size=size)


def _prepare(vm, vd, n: int, method: str, over: str, ks, kj, ceil: bool, with_ceiling: bool, size: int):
    """The score on all data (mean over subjects, (M,)), the noise ceiling of the data (or None) and ``block(start)``
    → (samples (size, M),), with ``ceil`` (samples, lower (size,), upper (size,))."""
    kw = dict(method=method, n=n, over=over, ceil=ceil, size=size)
    if method in MOMENT_METHODS:                         # everything on all data from float64 moments too
        a, b = standardized(vm, method), standardized(vd, method)
        with np.errstate(invalid="ignore", divide="ignore"):
            per, lo, hi = moment_scores(full_moments(a, b), len(vm), len(vd), method, xp=np)
        ceiling = (float(lo[0]), float(hi[0])) if with_ceiling else None
        if over == "subjects":
            return per[0].mean(1), ceiling, _subjects_only(per[0], kj, size)
        block = _moment_blocks(ks, kj, _columns(vm, vd, method), n, size, n_models=len(vm), n_subjects=len(vd),
                               method=method, over=over, ceil=ceil)
        return per[0].mean(1), ceiling, block
    ceiling = noise_ceiling(vd, method) if with_ceiling else None
    if method == "tau-a" and over != "subjects":
        plan = tau_plan(vm, vd, pool_subjects=over == "stimuli")
        full = plan_scores(plan)                                # exact, from the sign matrices
        block = tau_block(plan, ks, kj, n, over, size)
        return (full if full is not None else compare(vm, vd, method)).mean(1), ceiling, lambda s: (block(s),)
    per = compare(vm, vd, method)                                                       # (M, S), float64
    if over == "subjects":
        return per.mean(1), ceiling, _subjects_only(per, kj, size)
    m32, d32 = jnp.asarray(vm, jnp.float32), jnp.asarray(vd, jnp.float32)
    return per.mean(1), ceiling, lambda s: _rank_block(s, ks, kj, m32, d32, **kw)


def bootstrap(model_rdms, data_rdms, *, method: str = "corr", n_samples: int = 1000, over: str = "stimuli",
              key, model_names: Sequence[str] | None = None, ci: float = 0.95,
              with_ceiling: bool = True) -> xr.Dataset:
    """Bootstrap the evaluation of model RDMs against subject RDMs: resample stimuli (``over="stimuli"``,
    pairs of a stimulus with itself masked, as rsatoolbox's ``eval_bootstrap_pattern``), subjects
    (``"subjects"``), or both.

    Returns a Dataset with ``score`` (model: the mean over subjects on all data), ``samples`` (sample, model),
    ``ci_low`` / ``ci_high`` (percentile interval ``ci``), ``sem`` (bootstrap standard deviation), the noise
    ceiling of the data (attrs ``ceiling_lower``, ``ceiling_upper``) and, for a stimulus bootstrap with a method
    other than τ-a, its value in every sample (``ceiling_lower_samples``, ``ceiling_upper_samples``:
    rsatoolbox's ``boot_noise_ceil``), when ``with_ceiling``.

    Sample b draws its stimuli from ``fold_in(k_stimuli, b)`` and its subjects from ``fold_in(k_subjects, b)``
    (``k_stimuli, k_subjects = jax.random.split(key)``): the same key gives the same samples, the first N samples
    do not depend on how many follow, and a new ``n_samples`` compiles nothing (blocks of a fixed number of
    samples, 256 on CPU, the last one's extras dropped — compute is that of the samples rounded up to a block). On
    CPU, Pearson, cosine and τ-a run as int8 products; a block in which a stimulus is drawn 12 times or more (for 92
    stimuli, about one block in 100,000) runs a float32 program instead, compiled the first time one occurs. This
    stream replaced one array of draws for all samples, so keys give other samples than in versions before it."""
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
    if isinstance(model_names, str):
        raise ArgumentError(f"model_names must be a sequence of names, one per model RDM; got the string "
                            f"{model_names!r} (for one model pass [{model_names!r}])")
    names = list(model_names) if model_names is not None else [f"model {i}" for i in range(vm.shape[0])]
    if len(names) != vm.shape[0]:
        raise ValueError(f"{len(names)} model names for {vm.shape[0]} model RDMs")
    ks, kj = jax.random.split(key)
    with_ceiling = with_ceiling and vd.shape[0] >= 2
    ceil = with_ceiling and method != "tau-a" and over == "stimuli"
    size = block_size()
    score, ceiling, block = _prepare(vm, vd, n, method, over, ks, kj, ceil, with_ceiling, size)
    out = run_blocks(block, n_samples, size)
    samples = out[0]
    lo_q, hi_q, sem, undefined = _sample_statistics(samples, ci, names, method)
    ds = xr.Dataset({"score": ("model", score), "samples": (("sample", "model"), samples),
                     "ci_low": ("model", lo_q), "ci_high": ("model", hi_q), "sem": ("model", sem),
                     "undefined_samples": ("model", undefined)},
                    coords={"model": names},
                    attrs={"method": method, "over": over, "n_samples": n_samples, "n_stimuli": n,
                           "n_subjects": int(vd.shape[0]), "ci": ci})
    if ceiling is not None:
        ds.attrs["ceiling_lower"], ds.attrs["ceiling_upper"] = ceiling
        if ceil:                                        # per-sample ceilings (not for τ-a, nor resampled subjects)
            ds["ceiling_lower_samples"] = ("sample", out[1])
            ds["ceiling_upper_samples"] = ("sample", out[2])
    return ds


def _sample_statistics(samples, ci: float, names, method: str):
    """Percentile interval, standard deviation and count of the samples in which a model's score is undefined
    (NaN: a resampled model RDM without two distinct dissimilarities), over the defined ones (as rsatoolbox
    drops them), with a warning naming how many; a model without two defined samples is an error."""
    finite = np.isfinite(samples)
    undefined = (~finite).sum(0)
    if (finite.sum(0) < 2).any():
        bad = [names[i] for i in np.flatnonzero(finite.sum(0) < 2)]
        raise ValueError(f"bootstrap: the {method} score of {', '.join(map(str, bad))} is undefined in all but "
                         f"{int(finite.sum(0).min())} of {len(samples)} samples (resampled RDMs that are constant)")
    if undefined.any():
        warnings.warn(f"bootstrap: {int(undefined.max())} of {len(samples)} samples leave a model's {method} score "
                      f"undefined (a resampled RDM that is constant); the interval and sem use the other samples "
                      f"(undefined_samples counts them per model)", RuntimeWarning, stacklevel=3)
    lo, hi = np.nanpercentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return lo, hi, np.nanstd(samples, 0, ddof=1), undefined


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

    def statistic(p):
        v = sq[p][:, p][i, j]
        return jax.vmap(lambda b: _compare_one(v, b, method, n))(data).mean()

    @jax.jit
    def null(keys):
        # the permutations, then the observed labelling computed the same way (float32) in the same call, so that
        # a permutation that reproduces it counts as ≥ it; the float64 score is what is reported
        perms = jax.vmap(lambda k: jax.random.permutation(k, n))(keys)
        return jax.lax.map(statistic, jnp.concatenate([perms, jnp.arange(n)[None]]))

    score = float(compare(vm, vd, method).mean())
    values = np.asarray(null(jax.random.split(key, n_permutations)))
    dist, same_way = values[:-1], values[-1]
    return {"score": score, "null": dist, "p": float((1 + np.sum(dist >= same_way)) / (1 + n_permutations))}
