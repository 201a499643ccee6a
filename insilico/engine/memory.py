"""How many items fit a memory budget: per-item bytes from a function's jaxpr and its compiled memory analysis."""
from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

__all__ = ["choose_batch_size", "largest_intermediate", "total_intermediates", "shapes", "struct"]


def struct(tree, lead=None):
    """ShapeDtypeStructs of a pytree; ``lead`` replaces the leading axis."""
    def one(a):
        shape = tuple(np.shape(a)) if lead is None else (lead, *np.shape(a)[1:])
        return jax.ShapeDtypeStruct(shape, a.dtype if hasattr(a, "dtype") else np.result_type(a))
    return jax.tree.map(one, tree)


def shapes(tree) -> tuple:
    """(shape, dtype) of every leaf: a hashable description of a pytree of arrays or structs."""
    return tuple((tuple(a.shape), str(a.dtype)) for a in jax.tree.leaves(tree))


def _intermediate_bytes(jaxpr):
    """Bytes of every value computed in a jaxpr, sub-jaxprs (loop bodies, branches) included once each."""
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            aval = getattr(v, "aval", None)
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                itemsize = getattr(aval.dtype, "itemsize", None) or 4          # PRNG key dtypes: assume 4
                yield int(np.prod(aval.shape)) * int(itemsize)
        for param in eqn.params.values():
            for sub in (param if isinstance(param, (tuple, list)) else (param,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _intermediate_bytes(inner)


def largest_intermediate(jaxpr) -> int:
    """Bytes of the largest value computed anywhere in a jaxpr (sub-jaxprs included)."""
    return max(_intermediate_bytes(jaxpr), default=0)


def total_intermediates(jaxpr) -> int:
    """Bytes of all values computed in a jaxpr, each sub-jaxpr (a loop body) counted once: an upper bound on
    what is live at once."""
    return sum(_intermediate_bytes(jaxpr))


def _one(items):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), struct(items, 1))


def choose_batch_size(fn: Callable, items, shared=None, budget_bytes: float = 2e9, max_batch: int = 1024,
                      compile: bool = True) -> int:
    """Largest batch ``B`` (items vmapped at once) whose memory fits ``budget_bytes``.

    Per-item memory is the larger of two estimates: the growth of the compiled temporaries
    (``compiled.memory_analysis()`` of ``vmap(fn)`` at B = 1 and 8), and 4x the largest intermediate value of
    one item (XLA:CPU's analysis can miss convolution workspaces; a few activations of the largest layer are
    live at once), plus the item itself. ``compile=False`` skips the two compilations and takes the sum of every
    intermediate of one item instead (an upper bound on what is live at once; loop bodies counted once) — for
    expensive-to-compile functions such as optimization loops. Cached per (fn, item and shared shapes, budget).
    """
    key = (fn, jax.tree.structure(items), shapes(struct(items, 1)), jax.tree.structure(shared),
           shapes(struct(shared)), budget_bytes, max_batch, compile)
    if key in _BATCH_CACHE:
        return _BATCH_CACHE[key]
    if len(_BATCH_CACHE) >= _CACHE_LIMIT:                       # bounded: drop the oldest entry
        _BATCH_CACHE.pop(next(iter(_BATCH_CACHE)))
    jaxpr = jax.make_jaxpr(fn)(_one(items), struct(shared)).jaxpr
    if not compile:
        per_item, base = float(total_intermediates(jaxpr)), 0.0
    else:
        def temp(b):
            compiled = jax.jit(jax.vmap(fn, in_axes=(0, None))).lower(struct(items, b), struct(shared)).compile()
            stats = compiled.memory_analysis()
            return None if stats is None else float(stats.temp_size_in_bytes + stats.output_size_in_bytes)

        per_item = 4.0 * largest_intermediate(jaxpr)
        m1, m8 = temp(1), temp(8)
        if m1 is not None and m8 is not None:
            per_item = max(per_item, (m8 - m1) / 7.0)
        base = m1 or 0.0
    # the batch's own items are in memory too (a 4 MB item is 4 GB at a batch of 1,024, whatever fn computes)
    per_item += float(sum(int(np.prod(a.shape)) * (getattr(a.dtype, "itemsize", None) or 4)     # keys: assume 4
                          for a in jax.tree.leaves(struct(items, 1))))
    _BATCH_CACHE[key] = int(max(1, min(max_batch, (budget_bytes - base) // max(per_item, 1.0))))
    return _BATCH_CACHE[key]


_BATCH_CACHE: dict = {}
_CACHE_LIMIT = 256
