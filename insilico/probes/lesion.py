"""Single-unit lesion sweeps: silence each unit of a site in turn and measure what the network loses.

All lesions run through the sweep engine (:func:`insilico.sweep.run_sweep`): the edits (one dense mask per
unit) are the leading axis of a compiled ``jax.lax.map`` with ``batch_size`` lesions vmapped at a time, and
metrics are reduced inside, so memory does not grow with the number of lesions.
"""
from __future__ import annotations

from functools import lru_cache

import jax.numpy as jnp
import xarray as xr

from .. import electrode as el
from ..sweep import run_sweep


def _metrics(logits, intact, labels):
    pred, pred0 = jnp.argmax(logits, -1), jnp.argmax(intact, -1)
    out = {"agreement": jnp.mean(pred == pred0),
           "logit_change": jnp.mean(jnp.abs(logits - intact))}
    if labels is not None:
        out["accuracy"] = jnp.mean(pred == labels)
    return out


@lru_cache(maxsize=32)
def _lesion_fn(subject, site):
    """``(edit, shared) -> metrics`` for one lesion of ``site``; cached so sweeps compile once per site."""
    def fn(edit, shared):
        variables, x, labels, intact = shared
        logits, _ = el.run(subject, x, {site: edit}, variables=variables)
        return _metrics(logits, intact, labels)
    return fn


def single_unit_sweep(subject, x, site: str, labels=None, mode: str = "zero", reference=None,
                      batch_size: int | None = None, store=None, progress: bool = False) -> xr.Dataset:
    """Ablate each channel of ``site`` in turn on images ``x`` (N, H, W, C); one compiled call.

    Args:
        labels: (N,) class labels; adds per-lesion ``accuracy``.
        mode: "zero" (lesion) or "mean" (clamp each channel to its mean over ``reference`` images, default x).
        batch_size: lesions vmapped per step of ``lax.map`` (default: from a 2 GB memory budget).
        store: directory to stream finished chunks to; an interrupted sweep rerun with it resumes.
    Returns: ``xarray.Dataset`` over dim ``unit`` with ``agreement`` (fraction of images whose top-1 class is
    unchanged), ``logit_change`` (mean |Δ logit|) and ``accuracy``; attrs hold the intact values.
    Example: ``single_unit_sweep(load("cifar_convnet"), x, "conv3", labels=y).accuracy``.
    """
    if isinstance(site, str) and site not in subject.sites:
        raise el.SiteError(f"unknown site {site!r}; valid: {', '.join(subject.sites)}")
    n_units = subject.sites[site][-1]
    if mode == "zero":
        edits = el.unit_edits(n_units, "lesion")
    elif mode == "mean":
        means = el.site_means(subject, x if reference is None else reference, site, over="space")[site]
        edits = el.unit_edits(n_units, "clamp", means)
    else:
        raise ValueError(f"unknown ablation mode {mode!r}; valid: zero, mean")
    x = jnp.asarray(x)
    intact, _ = el.run(subject, x)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    ds = run_sweep(_lesion_fn(subject, site), edits, (subject.variables, x, labels, intact), dim="unit",
                   batch_size=batch_size, store=store, tag=f"{subject.name}/{site}/{mode}", progress=progress,
                   desc=f"lesions {site}")
    for k, v in _metrics(intact, intact, labels).items():
        ds.attrs[f"intact_{k}"] = float(v)
    ds.attrs.update({"site": site, "mode": mode, "n_images": int(x.shape[0]), "subject": subject.name})
    return ds
