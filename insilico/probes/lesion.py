"""Single-unit lesion sweeps: silence each unit of a site in turn and measure what the network loses.

All lesions run through the sweep engine (:func:`insilico.sweep.run_sweep`): the edits (one dense mask per
unit) are the leading axis of a compiled ``jax.lax.map`` with ``batch_size`` lesions vmapped at a time, and
metrics are reduced inside, so memory does not grow with the number of lesions.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import electrode as el
from ..sweep import run_sweep

__all__ = ["single_unit_sweep", "mask_sweep", "ablation_curve", "ablation_edits", "MODES"]


def _metrics(logits, intact, labels):
    """Reduced inside the compiled sweep: agreement and |Δ logit| vs the intact model; with labels also
    accuracy, per-class accuracy (classes absent from ``labels`` give NaN-free 0/0 -> 0) and mean loss."""
    pred, pred0 = jnp.argmax(logits, -1), jnp.argmax(intact, -1)
    out = {"agreement": jnp.mean(pred == pred0),
           "logit_change": jnp.mean(jnp.abs(logits - intact))}
    if labels is not None:
        correct = (pred == labels).astype(jnp.float32)
        onehot = jax.nn.one_hot(labels, logits.shape[-1])
        out["accuracy"] = jnp.mean(correct)
        out["class_accuracy"] = (onehot.T @ correct) / jnp.maximum(onehot.sum(0), 1.0)
        out["loss"] = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    return out


@lru_cache(maxsize=32)
def _lesion_fn(subject, site):
    """``(edit, shared) -> metrics`` for one lesion of ``site``; cached so sweeps compile once per site."""
    def fn(edit, shared):
        variables, x, labels, intact, key = shared
        logits, _ = el.run(subject, x, {site: edit}, variables=variables, key=key)
        return _metrics(logits, intact, labels)
    return fn


MODES = ("zero", "mean", "noise")


def _check_site(subject, site):
    if site not in subject.sites:
        raise el.SiteError(f"unknown site {site!r}; valid: {', '.join(subject.sites)}")


def ablation_edits(subject, site: str, masks, mode: str = "zero", reference=None, noise_scale: float = 1.0):
    """Stacked edits for a batch of 0/1 ``masks`` (M, C) or (M, *unit_shape) at ``site``.

    mode: "zero" (clamp to 0), "mean" (clamp to each channel's mean over ``reference`` images), "noise" (add
    Gaussian noise of ``noise_scale`` x each channel's std over ``reference``; needs a key when run).
    """
    _check_site(subject, site)
    if mode not in MODES:
        raise ValueError(f"unknown ablation mode {mode!r}; valid: {', '.join(MODES)}")
    masks = jnp.asarray(masks, jnp.float32)
    unit_shape = tuple(subject.sites[site])
    try:
        fits = masks.ndim >= 2 and jnp.broadcast_shapes(masks.shape[1:], unit_shape) == unit_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"masks must be (M, {unit_shape[-1]}) or (M, {', '.join(map(str, unit_shape))}) for site "
                         f"{site!r}; got {masks.shape}")
    if mode == "zero":
        return el.lesion(masks)
    if reference is None:
        raise ValueError(f"mode {mode!r} needs reference images to estimate each unit's statistics")
    _, rec = el.record(subject, reference, site)
    a = rec[site].reshape(-1, unit_shape[-1])
    if mode == "mean":
        return el.mean_ablation(masks, jnp.broadcast_to(a.mean(0), masks.shape))
    return el.noise(masks * noise_scale * a.std(0))


def mask_sweep(subject, x, site: str, masks, labels=None, mode: str = "zero", reference=None, key=None,
               batch_size: int | None = None, store=None, progress: bool = False, dim: str = "mask",
               coords=None) -> xr.Dataset:
    """Ablate a batch of unit groups (one 0/1 mask per row) at ``site`` on images ``x``; one compiled sweep.

    Args:
        masks: (M, C) channel masks or (M, *unit_shape) single-unit masks (group and pairwise lesions).
        labels: (N,) class labels; adds per-mask ``accuracy``. mode/reference: see :func:`ablation_edits`
            (reference defaults to ``x``). key: PRNG key for mode="noise" (the same draw for every mask).
        batch_size: masks vmapped per step (default: from a 2 GB memory budget).
        store: directory to stream finished chunks to; an interrupted sweep rerun with it resumes.
    Returns: ``xarray.Dataset`` over ``dim`` with ``agreement`` (fraction of images whose top-1 class is
    unchanged), ``logit_change`` (mean |Δ logit|) and ``accuracy``; attrs hold the intact values.
    """
    x = jnp.asarray(x)
    edits = ablation_edits(subject, site, masks, mode, x if reference is None else reference)
    if mode == "noise" and key is None:
        raise ValueError("mode='noise' needs a PRNG key: mask_sweep(..., key=jax.random.PRNGKey(0))")
    intact, _ = el.run(subject, x)
    labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    ds = run_sweep(_lesion_fn(subject, site), edits, (subject.variables, x, labels, intact, key), dim=dim,
                   coords=coords, extra_dims={"class_accuracy": ("class",)}, batch_size=batch_size, store=store,
                   tag=f"{subject.name}/{site}/{mode}",
                   progress=progress, desc=f"lesions {site}")
    for k, v in _metrics(intact, intact, labels).items():
        if k == "class_accuracy":
            ds["intact_class_accuracy"] = ("class", np.asarray(v))
        else:
            ds.attrs[f"intact_{k}"] = float(v)
    ds.attrs.update({"site": site, "ablation": mode, "n_images": int(x.shape[0]), "subject": subject.name})
    return ds


def single_unit_sweep(subject, x, site: str, labels=None, mode: str = "zero", units=None, **kwargs) -> xr.Dataset:
    """Ablate each channel (or each of ``units``) of ``site`` in turn on images ``x`` (N, H, W, C).

    Returns a Dataset over dim ``unit`` (see :func:`mask_sweep` for metrics and options).
    Example: ``single_unit_sweep(load("cifar_convnet"), x, "conv3", labels=y).accuracy``.
    """
    _check_site(subject, site)
    n_units = subject.sites[site][-1]
    units = jnp.arange(n_units) if units is None else jnp.asarray(units)
    if units.ndim != 1 or units.size == 0 or int(units.min()) < 0 or int(units.max()) >= n_units:
        raise ValueError(f"units must be channel indices in [0, {n_units}) of site {site!r}; got {units}")
    masks = jnp.eye(n_units, dtype=jnp.float32)[units]
    return mask_sweep(subject, x, site, masks, labels, mode, dim="unit", coords=units, **kwargs)


def ablation_curve(subject, x, site: str, orders: dict, labels=None, fractions=None, mode: str = "zero",
                   **kwargs) -> xr.Dataset:
    """Cumulative ablation: remove the units of ``site`` in each order and measure after every step.

    Args:
        orders: ``{name: permutation (C,) or permutations (n, C)}`` — e.g. random orders (many seeds),
            :func:`~insilico.probes.importance.order_by` of selectivity, L1 norm, Taylor or single-unit impact.
        fractions: fractions of units removed (default 0, 1/8, ..., 1).
    Returns: Dataset with dims (order, fraction) — ``order`` is "name" or "name/i" for stacked orders — and
    the metrics of :func:`mask_sweep`; one compiled sweep over all (order, fraction) masks.
    """
    _check_site(subject, site)
    n_units = subject.sites[site][-1]
    fractions = np.linspace(0, 1, 9) if fractions is None else np.asarray(fractions, float)
    counts = np.round(fractions * n_units).astype(int)
    names, perms = [], []
    for name, order in orders.items():
        order = np.asarray(order)
        order = order[None] if order.ndim == 1 else order
        if order.shape[1] != n_units or not all(np.array_equal(np.sort(o), np.arange(n_units)) for o in order):
            raise ValueError(f"order {name!r} must be a permutation of the {n_units} units of {site!r}")
        names += [name] if len(order) == 1 else [f"{name}/{i}" for i in range(len(order))]
        perms.append(order)
    perms = np.concatenate(perms)
    rank = np.argsort(perms, axis=1)                                     # position of each unit in its order
    masks = (rank[:, None, :] < counts[None, :, None]).astype(np.float32)  # orders x fractions x units
    ds = mask_sweep(subject, x, site, masks.reshape(-1, n_units), labels, mode, **kwargs)
    swept = {k: v for k, v in ds.data_vars.items() if v.dims[0] == "mask"}
    out = xr.Dataset({k: (("order", "fraction", *v.dims[1:]), v.values.reshape(len(names), len(counts), *v.shape[1:]))
                      for k, v in swept.items()},
                     coords={"order": names, "fraction": fractions, "n_removed": ("fraction", counts)},
                     attrs=ds.attrs)
    for k in set(ds.data_vars) - set(swept):
        out[k] = ds[k]
    return out
