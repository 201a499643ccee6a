"""How a lesion sweep computes each lesion: the edit of an ablation mode, and the path — factored at the first
linear map after the site (:mod:`insilico.probes.factored`), or the whole network from the site on.

:func:`choose_path` decides and says why; :func:`shared_values` computes, once per sweep, what every lesion of a
factored sweep shares; :func:`factored_fn` is the per-lesion function the sweep engine maps over lesions.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jax
import jax.numpy as jnp

from .. import electrode as el
from ..validation import ArgumentError
from . import factored

__all__ = ["METHODS", "ablation", "choose_path", "shared_values", "factored_fn"]

METHODS = ("auto", "factored", "plain")
_PLANS: dict = {}


def ablation(mode: str, mask, stats) -> el.Edit:
    """The edit of an ablation ``mode`` for ``mask``: "zero" clamps to 0, "mean" to ``stats`` (per-unit means),
    "noise" adds Gaussian noise of ``stats`` (per-unit standard deviations) where the mask is 1."""
    if mode == "zero":
        return el.lesion(mask)
    return el.mean_ablation(mask, stats) if mode == "mean" else el.noise(mask * stats)


def _suffix(site):
    def suffix(subject, x, key, activation):
        return el.forward(subject, x, key=key, given={site: activation})[0]
    return suffix


def _plan(subject, x, site, key, activation, max_bytes):
    """The factored form of lesions of ``site`` (a :class:`~insilico.probes.factored.Plan`) or the reason there
    is none; cached per (subject structure, shapes, site): new weights reuse it."""
    args = (subject, x, key)
    leaves, tree = jax.tree.flatten(args)
    ident = (tree, tuple((tuple(a.shape), str(a.dtype)) for a in leaves), site, max_bytes)
    make = lambda: factored.plan(_suffix(site), args, activation, subject.sites[site][-1], site, max_bytes)
    try:
        hash(ident)
    except TypeError:
        return make()
    if ident not in _PLANS:
        if len(_PLANS) >= 32:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[ident] = make()
    return _PLANS[ident]


def choose_path(subject, x, sites: tuple, items, index_shapes, key, method: str, max_bytes: float, first: dict):
    """``(plan, description)`` for a factored sweep, or ``(None, why the whole network runs per lesion)``.

    Factored sweeps need one site and 0/1 channel lesions: channel indices (``index_shapes`` (C,)) or masks
    (M, C). ``method``: "auto", "factored" (raise ``ArgumentError`` naming why it does not apply) or "plain";
    ``max_bytes`` bounds the per-channel contributions; ``first``: ``{site: activation}`` computed once."""
    if method == "plain":
        return None, "whole network per lesion (method='plain')"
    if len(sites) > 1 or (index_shapes is not None and len(index_shapes[0]) != 1):
        why = "several sites" if len(sites) > 1 else "single units (spatial=True)"
        reason = f"whole network per lesion: {why} are not channel groups of one site"
    elif index_shapes is None and (items.ndim != 2 or items.shape[1] != subject.sites[sites[0]][-1]
                                   or not bool(jnp.all((items == 0) | (items == 1)))):
        reason = "whole network per lesion: the masks are not 0/1 channel masks (M, C)"
    else:
        p = _plan(subject, x, sites[0], key, first[sites[0]], max_bytes)
        if not isinstance(p, str):
            return p, p.describe()
        reason = f"whole network per lesion: {p}"
    if method == "factored":
        raise ArgumentError(f"method='factored' does not apply here: {reason.split(': ', 1)[1]}; use 'auto' or "
                            "'plain'")
    return None, reason


@lru_cache(maxsize=32)
def shared_values(p: factored.Plan, site: str, mode: str) -> Callable:
    """``(subject, x, key, activation, stats) -> shared``, compiled once per plan: the site's activation with
    every channel ablated, and what all lesions of the sweep share (:func:`~insilico.probes.factored.precompute`)."""
    def fn(subject, x, key, activation, stats):
        every = ablation(mode, jnp.ones(activation.shape[-1]), stats)
        _, rec = el.forward(subject, x, {site: every}, record=site, key=key, given={site: activation})
        return factored.precompute(p, jax.tree.leaves((subject, x, key)), activation, rec[site])
    return jax.jit(fn)


@lru_cache(maxsize=32)
def factored_fn(p: factored.Plan, by_index: bool, metrics: Callable) -> Callable:
    """``(item, (subject, x, target, intact, key, shared)) -> metrics(output, intact, target)`` for one lesion —
    a channel index (``by_index``) or a (C,) 0/1 mask — through the plan."""
    def fn(item, args):
        subject, x, target, intact, key, shared = args
        flat = jax.tree.leaves((subject, x, key))
        out = factored.lesioned_output(p, flat, shared, **{"index" if by_index else "mask": item})
        return metrics(out, intact, target)
    return fn
