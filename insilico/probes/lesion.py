"""Single-unit lesion sweeps: silence each unit of a site in turn and measure what the network loses.

All lesions run through one compiled function: the edits (one dense mask per unit) are the leading axis of a
``jax.lax.map`` with ``batch_size`` lesions vmapped at a time, and metrics are reduced inside, so memory
does not grow with the number of lesions.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import electrode as el


def _metrics(logits, intact, labels):
    pred, pred0 = jnp.argmax(logits, -1), jnp.argmax(intact, -1)
    out = {"agreement": jnp.mean(pred == pred0),
           "logit_change": jnp.mean(jnp.abs(logits - intact))}
    if labels is not None:
        out["accuracy"] = jnp.mean(pred == labels)
    return out


@partial(jax.jit, static_argnums=(0, 1, 6))
def _sweep_core(subject, site, variables, x, labels, edits, batch_size):
    intact, _ = el.run(subject, x, variables=variables)

    def one(edit):
        logits, _ = el.run(subject, x, {site: edit}, variables=variables)
        return _metrics(logits, intact, labels)

    return jax.lax.map(one, edits, batch_size=batch_size), _metrics(intact, intact, labels)


def single_unit_sweep(subject, x, site: str, labels=None, mode: str = "zero", reference=None,
                      batch_size: int | None = 32) -> xr.Dataset:
    """Ablate each channel of ``site`` in turn on images ``x`` (N, H, W, C); one compiled call.

    Args:
        labels: (N,) class labels; adds per-lesion ``accuracy``.
        mode: "zero" (lesion) or "mean" (clamp each channel to its mean over ``reference`` images, default x).
        batch_size: lesions vmapped per step of ``lax.map`` (memory ~ batch_size forward passes).
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
    el._check_input(subject, x)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    per_unit, intact = _sweep_core(subject, site, subject.variables, x, labels, edits,
                                   min(batch_size or n_units, n_units))
    ds = xr.Dataset({k: ("unit", np.asarray(v)) for k, v in per_unit.items()},
                    coords={"unit": np.arange(n_units)})
    ds.attrs.update({"site": site, "mode": mode, "n_images": int(x.shape[0]), "subject": subject.name,
                     **{f"intact_{k}": float(v) for k, v in intact.items()}})
    return ds
