"""Single-unit lesion sweeps: silence each unit of a site in turn and measure what the network loses.

All lesions run through the sweep engine (:func:`insilico.sweep.run_sweep`): the edits (one dense mask per
unit) are the leading axis of a compiled ``jax.lax.map`` with ``batch_size`` lesions vmapped at a time, and
metrics are reduced inside, so memory does not grow with the number of lesions.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import electrode as el
from ..engine import on_host, to_device
from ..engine.shrinking import bucket
from ..sweep import run_sweep
from ..types import Fractions, Images, Labels, Masks, Orders, ParamMasks, PRNGKey, UnitIndices
from ..validation import (
    ArgumentError,
    check_choice,
    check_finite,
    check_fraction,
    check_indices,
    check_key,
    check_labels,
    check_mask,
    check_number,
    check_positive,
)
from .lesion_metrics import intact_metrics, metrics
from .lesion_paths import METHODS, ablation, choose_path, factored_fn, shared_values

if TYPE_CHECKING:
    from ..subject import Subject

__all__ = ["single_unit_sweep", "mask_sweep", "ablation_curve", "synapse_sweep", "MODES", "METHODS"]


MODES = ("zero", "mean", "noise")


@lru_cache(maxsize=64)
def _lesion_fn(sites: tuple, mode, index_shapes):
    """``(item, shared) -> metrics`` for one lesion; cached so sweeps compile once per (sites, mode) — the
    subject travels in ``shared`` (a pytree), so new weights never recompile.

    An item is a 0/1 mask of the one site (``index_shapes`` None) or a unit index into the concatenated units
    of ``sites`` (shapes ``index_shapes``), turned into one-hot masks inside the compiled function (dense
    compares, no scatter), so huge single-unit sweeps need no mask arrays.
    """
    def fn(item, shared):
        subject, x, target, intact, key, stats, given = shared
        if index_shapes is None:
            masks = (item,)
        else:
            masks, offset = [], 0
            for shape in index_shapes:
                n = int(np.prod(shape))
                masks.append(((jnp.arange(n) + offset) == item).reshape(shape).astype(jnp.float32))
                offset += n
        edits = {site: ablation(mode, m, st) for site, m, st in zip(sites, masks, stats)}
        logits, _ = el.forward(subject, x, edits, key=key, given=given)
        return metrics(logits, intact, target)
    return fn


def _intact_and_prefix(subject, x, sites: tuple, key) -> tuple:
    """The intact output (no key) and the activation of the first of ``sites`` in the forward pass, computed
    once: no lesion of the sweep can change it (every edited site comes at or after it), so each lesion runs
    only the network from there on. One forward pass when there is no key."""
    first = min(sites, key=list(subject.sites).index)
    out, rec = el.run(subject, x, record=first, key=key)
    if key is not None:
        out, _ = el.run(subject, x)
    return out, {first: rec[first]}


def _check_site(subject, site):
    el.validate(subject, sites=(site,), purpose="lesions")


def _check_mode(mode):
    try:
        return check_choice("mode", mode, MODES)
    except ArgumentError:
        raise ArgumentError(f"mode: unknown ablation mode {mode!r}; valid: {', '.join(MODES)}") from None


def _check_inputs(subject, x, labels, mode, reference, key, noise_scale
                  ) -> tuple[jax.Array, jax.Array | None, jax.Array | None, float]:
    """The arguments every lesion probe shares, checked before anything is computed; returns ``(x, labels,
    reference, noise_scale)`` converted (labels as int32, or None)."""
    x = x if hasattr(x, "dtype") else np.asarray(x)
    el.validate(subject, x, purpose="lesions", name="x", in_bounds=True)
    if labels is not None:
        labels = to_device(check_labels("labels", labels, subject.n_outputs, n=int(x.shape[0])))
    _check_mode(mode)
    if reference is not None:
        reference = reference if hasattr(reference, "dtype") else np.asarray(reference)
        el.validate(subject, reference, purpose="lesions", name="reference", in_bounds=True)
        reference = to_device(reference)
    noise_scale = check_number("noise_scale", noise_scale, low=0)
    if mode == "noise" and key is None:
        raise ArgumentError("mode='noise' needs a PRNG key, e.g. key=jax.random.PRNGKey(0)")
    if key is not None:
        check_key("key", key)
    return to_device(x), labels, reference, noise_scale


def _metric_names(labels) -> tuple:
    return ("agreement", "logit_change") + (() if labels is None else ("accuracy", "class_accuracy", "loss"))


def _identity(subject, x, labels, **settings) -> dict:
    """What determines a lesion sweep's results, named for its store (see :func:`~insilico.sweep.run_sweep`):
    the subject (name, architecture, weights by content), images, labels, the metrics and ``settings``."""
    return {"subject": subject.name, "architecture": subject.architecture, "weights": subject.variables,
            "images": x, "labels": labels, "metrics": _metric_names(labels), **settings}


def _unit_stats(subject, site, mode, reference, noise_scale):
    """Per-unit mean (mode "mean") or ``noise_scale`` x std (mode "noise") over ``reference`` images."""
    _check_mode(mode)
    if mode == "zero":
        return to_device(np.zeros((), np.float32))      # transferred: jnp.zeros would compile a program
    _, rec = el.record(subject, reference, site)
    return rec[site].mean(0) if mode == "mean" else noise_scale * rec[site].std(0)


def _padded(x, labels) -> tuple:
    """Images (and labels) padded to the batch-size bucket of their count (8, 12, 16, 24, 32, 48, ...) with copies
    of the first (an image inside the pixel bounds, which zeros need not be), and the weight of each row (0 for
    padding): a new image count in the same bucket compiles nothing new."""
    n = int(x.shape[0])
    pad = bucket(n) - n
    weight = to_device(np.arange(n + pad) < n, np.float32)
    if pad:             # on CPU in NumPy: a jnp concatenation would compile a program (engine.host)
        xp = np if on_host() else jnp
        first = lambda a: xp.repeat(xp.asarray(a)[:1], pad, axis=0)
        x = to_device(xp.concatenate([xp.asarray(x), first(x)]))
        if labels is not None:
            labels = to_device(xp.concatenate([xp.asarray(labels), first(labels)]))
    return x, (labels, weight)


def _sweep(subject, x, sites: tuple, items, index_shapes, labels, mode, reference, key, noise_scale, dim, coords,
           identity: dict, method: str = "auto", **kwargs) -> xr.Dataset:
    """The compiled lesion sweep; ``x``, ``labels``, ``reference``, ``noise_scale`` come checked (``_check_inputs``)."""
    method = check_choice("method", method, METHODS)
    kwargs["memory_budget"] = check_positive("memory_budget", kwargs.get("memory_budget", 2e9))
    stats = tuple(_unit_stats(subject, s, mode, x if reference is None else reference, noise_scale) for s in sites)
    ident = {**(kwargs.pop("identity", None) or {}),
             **_identity(subject, x, labels, sites=sites, mode=mode, reference=reference, noise_scale=noise_scale,
                         key=key, **identity)}
    n_images = int(x.shape[0])
    x, target = _padded(x, labels)
    intact, first = _intact_and_prefix(subject, x, sites, key)
    plan, route = choose_path(subject, x, sites, items, index_shapes, key, method, kwargs["memory_budget"] / 2,
                              first)
    ident["method"] = "plain" if plan is None else "factored"
    fn: Callable
    shared: tuple
    if plan is None:
        fn, shared = _lesion_fn(sites, mode, index_shapes), (subject, x, target, intact, key, stats, first)
    else:
        pre = shared_values(plan, sites[0], mode)(subject, x, key, first[sites[0]], stats[0])
        fn, shared = factored_fn(plan, index_shapes is not None, metrics), (subject, x, target, intact, key, pre)
    if plan is not None:      # little work per lesion: size batches from its intermediates, without compiling
        kwargs.setdefault("estimate", "trace")
    ds = run_sweep(fn, items, shared, dim=dim, coords=coords, extra_dims={"class_accuracy": ("class",)},
                   identity=ident, desc=f"lesions {', '.join(sites)}", **kwargs)
    ds.attrs["propagation"] = route
    for k, v in intact_metrics(intact, target).items():
        if k == "class_accuracy":
            ds["intact_class_accuracy"] = ("class", np.asarray(v))
        else:
            ds.attrs[f"intact_{k}"] = float(v)
    ds.attrs.update({"sites": ", ".join(sites), "ablation": mode, "n_images": n_images, "subject": subject.name})
    return ds


def _check_masks(masks, shape: tuple, expected: str, min_ndim: int):
    """At least one mask (M, ...) of ≥ ``min_ndim`` axes with values in [0, 1] whose trailing axes broadcast to
    ``shape`` (a site's units or a parameter's); ``expected`` words the valid shapes."""
    masks = jnp.asarray(check_mask("masks", masks), jnp.float32)
    try:
        fits = masks.ndim >= min_ndim and jnp.broadcast_shapes(masks.shape[1:], shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ArgumentError(f"masks must be {expected}; got {masks.shape}")
    if masks.shape[0] == 0:
        raise ArgumentError(f"masks is empty (shape {masks.shape}); pass at least one mask")
    return masks


def mask_sweep(subject: Subject, x: Images, site: str, masks: Masks, labels: Labels | None = None,
               mode: str = "zero", reference: Images | None = None, key: PRNGKey | None = None,
               noise_scale: float = 1.0, dim: str = "mask", coords=None, **kwargs) -> xr.Dataset:
    """Ablate a batch of unit groups (one 0/1 mask per row) at ``site`` on images ``x``; one compiled sweep.

    Args:
        masks: (M, C) channel masks or (M, *unit_shape) single-unit masks (group and pairwise lesions).
        labels: (N,) class labels; adds per-mask ``accuracy``, ``class_accuracy`` and ``loss``.
        mode: "zero" (clamp to 0), "mean" (clamp to each unit's mean over ``reference``, default ``x``), or
            "noise" (add Gaussian noise of ``noise_scale`` x each unit's std over ``reference``; needs ``key``,
            the same draw for every mask).
        method: "auto" (default) propagates each lesion only as far as it must go when the site is followed by
            channel-wise operations (ReLU, pooling, batch norm, reshapes) and a linear map (dense layer or
            convolution): every channel's contribution to that map is computed once and only the rest of the
            network runs per lesion (:mod:`insilico.probes.factored`; results equal up to float rounding). It
            applies to 0/1 channel masks (M, C) of one site and falls back to the whole network per lesion
            otherwise; ``attrs["propagation"]`` says which ran and why. "factored" insists (an error names why
            it does not apply), "plain" always runs the whole network.
        **kwargs: for :func:`~insilico.sweep.run_sweep`: batch_size (default from a 2 GB memory budget),
            store (stream chunks there; an interrupted sweep rerun with it resumes), overwrite, recompute_damaged,
            progress, devices. A store records the subject (name, architecture, weights by content), images,
            labels, reference, sites, mode, noise_scale, key, the masks/units/orders/fractions and the metrics;
            a rerun that differs in any of them is refused, naming what differs.
    Raises: ``ArgumentError`` for masks outside [0, 1] or not finite, labels outside the subject's classes or
    not one per image, an unknown mode, a negative or non-finite noise_scale, a bad key; ``InputError`` for
    images that are empty or not the subject's input.
    Returns: ``xarray.Dataset`` over ``dim`` with ``agreement`` (fraction of images whose top-1 class is
    unchanged), ``logit_change`` (mean |Δ logit|) and, with labels, accuracy metrics; attrs hold intact values.
    """
    _check_site(subject, site)
    x, labels, reference, noise_scale = _check_inputs(subject, x, labels, mode, reference, key, noise_scale)
    units = tuple(subject.sites[site])
    masks = _check_masks(masks, units, f"(M, {units[-1]}) or (M, {', '.join(map(str, units))}) for site {site!r}", 2)
    identity = kwargs.pop("_identity", None) or {"masks": masks}
    ds = _sweep(subject, x, (site,), masks, None, labels, mode, reference, key, noise_scale, dim, coords, identity,
                **kwargs)
    ds.attrs["site"] = site
    return ds


def single_unit_sweep(subject: Subject, x: Images, site: str | Sequence[str], labels: Labels | None = None,
                      mode: str = "zero", units: UnitIndices | Sequence[int] | None = None, spatial: bool = False,
                      reference: Images | None = None, key: PRNGKey | None = None, noise_scale: float = 1.0,
                      **kwargs) -> xr.Dataset:
    """Ablate each unit of ``site`` — or of several sites, in one compiled call — in turn on images ``x``.

    Units are channels (default) or, with ``spatial=True``, single units (position x channel) of conv maps.
    ``units``: a subset of flat unit indices (into the concatenated units of the sites). Masks are built inside
    the compiled sweep, so even 30,000 spatial units need no mask array.

    Returns a Dataset over dim ``unit`` with coords ``site`` and ``channel`` (and ``y``, ``x`` when spatial);
    see :func:`mask_sweep` for metrics and options.
    Example: ``single_unit_sweep(load("cifar_convnet"), x, ["conv2", "conv3"], labels=y).accuracy``.
    """
    if not isinstance(site, str) and not (isinstance(site, (list, tuple)) and all(isinstance(s, str) for s in site)):
        raise ArgumentError(f"site must be a site name or a list of site names; got {site!r:.80}")
    sites = (site,) if isinstance(site, str) else tuple(site)
    if not sites:
        raise ArgumentError("site must name at least one site")
    if len(set(sites)) != len(sites):                 # one edit per site: a repeated site's first units do nothing
        raise ArgumentError(f"site names each site once; got {next(s for s in sites if sites.count(s) > 1)!r} "
                            f"more than once in {list(sites)}")
    for s in sites:
        _check_site(subject, s)
        if spatial and len(subject.sites[s]) != 3:
            raise ArgumentError(f"spatial=True needs convolutional sites (H, W, C); {s!r} is {subject.sites[s]}")
    x, labels, reference, noise_scale = _check_inputs(subject, x, labels, mode, reference, key, noise_scale)
    shapes = tuple(tuple(subject.sites[s]) if spatial else tuple(subject.sites[s][-1:]) for s in sites)
    sizes = [int(np.prod(sh)) for sh in shapes]
    n_units = sum(sizes)
    if units is None:
        units = np.arange(n_units)
    else:
        try:
            units = check_indices("units", units, n_units)
        except ArgumentError as e:
            kind = "flat unit" if spatial else "channel"
            raise ArgumentError(f"units must be {kind} indices in [0, {n_units}) of {', '.join(sites)}; "
                                f"{str(e).split('; ', 1)[-1]}") from None
    ds = _sweep(subject, x, sites, np.asarray(units, np.int32), shapes, labels, mode, reference, key,
                noise_scale, "unit", units, {"units": units, "spatial": bool(spatial)}, **kwargs)
    owner = np.searchsorted(np.cumsum(sizes), units, side="right")
    local = units - np.concatenate([[0], np.cumsum(sizes)])[owner]
    coords = {"site": ("unit", np.asarray(sites)[owner])}
    if spatial:
        pos = [np.unravel_index(i, shapes[o]) for i, o in zip(local, owner)]
        coords.update({name: ("unit", np.array([p[k] for p in pos])) for k, name in enumerate(("y", "x", "channel"))})
    else:
        coords["channel"] = ("unit", local)
    ds = ds.assign_coords(coords)
    if len(sites) == 1:
        ds.attrs["site"] = sites[0]
    return ds


def ablation_curve(subject: Subject, x: Images, site: str, orders: dict[str, Orders], labels: Labels | None = None,
                   fractions: Fractions | Sequence[float] | None = None, mode: str = "zero",
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
    fracs: np.ndarray
    if fractions is None:
        fracs = np.linspace(0, 1, 9)
    else:
        fracs = check_finite("fractions", fractions, ndim=1).astype(float)
        for i, f in enumerate(fracs):
            check_fraction(f"fractions[{i}]", f)
    counts = np.round(fracs * n_units).astype(int)
    if not isinstance(orders, dict) or not orders:
        raise ArgumentError(f"orders must be a non-empty dict {{name: permutation (C,) or permutations (n, C)}}; "
                            f"got {orders!r:.200}")
    names, stacks = [], []
    for name, order in orders.items():
        order = check_finite(f"orders[{name!r}]", order, ndim=(1, 2))
        order = order[None] if order.ndim == 1 else order
        if order.shape[1] != n_units or not all(np.array_equal(np.sort(o), np.arange(n_units)) for o in order):
            raise ArgumentError(f"order {name!r} must be a permutation of the {n_units} units of {site!r} (or a "
                                f"stack of them); got shape {order.shape}")
        names += [name] if len(order) == 1 else [f"{name}/{i}" for i in range(len(order))]
        stacks.append(order.astype(np.int64))
    perms = np.concatenate(stacks)
    rank = np.argsort(perms, axis=1)                                     # position of each unit in its order
    masks = (rank[:, None, :] < counts[None, :, None]).astype(np.float32)  # orders x fractions x units
    identity = {"orders": {name: np.asarray(p) for name, p in zip(names, perms)}, "order_names": tuple(names),
                "fractions": fracs}
    ds = mask_sweep(subject, x, site, masks.reshape(-1, n_units), labels, mode, _identity=identity, **kwargs)
    swept = {k: v for k, v in ds.data_vars.items() if v.dims[0] == "mask"}
    out = xr.Dataset({k: (("order", "fraction", *v.dims[1:]), v.values.reshape(len(names), len(counts), *v.shape[1:]))
                      for k, v in swept.items()},
                     coords={"order": names, "fraction": fracs, "n_removed": ("fraction", counts)},
                     attrs=ds.attrs)
    for k in set(ds.data_vars) - set(swept):
        out[k] = ds[k]
    return out


@lru_cache(maxsize=32)
def _synapse_fn(path):
    def fn(mask, shared):
        subject, x, labels, intact = shared
        cut = subject.replace(variables=el.lesion_synapses(subject.variables, {path: 1.0 - mask}))
        logits, _ = el.forward(cut, x)
        return metrics(logits, intact, (labels, None))
    return fn


def synapse_sweep(subject: Subject, x: Images, path: str, masks: ParamMasks, labels: Labels | None = None,
                  **kwargs) -> xr.Dataset:
    """Synaptic lesions: for each 0/1 mask, cut the weights of parameter ``path`` where the mask is 1
    (e.g. ``"conv2/conv/kernel"`` masks of shape (M, 1, 1, C_in, C_out) cut input→output channel
    connections). One compiled sweep; metrics as in :func:`mask_sweep`, over dim ``mask``."""
    leaf = el.parameter(subject, path)
    x, labels, _, _ = _check_inputs(subject, x, labels, "zero", None, None, 1.0)
    masks = _check_masks(masks, tuple(leaf.shape), f"(M, ...) for {path!r}, broadcastable to its shape "
                         f"{tuple(leaf.shape)}", 1)
    intact, _ = el.run(subject, x)
    identity = {**(kwargs.pop("identity", None) or {}),
                **_identity(subject, x, labels, parameter=path, masks=masks)}
    ds = run_sweep(_synapse_fn(path), masks, (subject, x, labels, intact), dim="mask",
                   extra_dims={"class_accuracy": ("class",)}, identity=identity, desc=f"synapses {path}", **kwargs)
    ds.attrs.update({"parameter": path, "n_images": int(x.shape[0]), "subject": subject.name})
    return ds
