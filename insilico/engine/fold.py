"""The fold form: stimuli streamed through one compiled function in batches, reduced on the fly.

:func:`fold` carries an accumulator (sums, Gram blocks, STA/STC moments, a running top-k) over batches of stimuli:
``acc = step(acc, batch, *args)``, compiled once per batch shape, so memory is one batch's whatever the number
of stimuli. The stimuli are either arrays with a leading stimulus axis (sliced into batches) or generated inside
the step from the batch index (noise drawn from ``fold_in(key, i)``). :func:`map_batches` is the same walk for
per-stimulus outputs that are kept (recordings, predictions), gathered on the host batch by batch.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import ArgumentError, check_count
from .program import filter_jit

__all__ = ["fold", "map_batches"]


def _batches(data, batch_size: int):
    """``(n_batches, batch(i))`` over ``data``: an int (batch i is the index itself) or arrays with a leading axis."""
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        n = check_count("data (a number of batches)", int(data))
        return n, lambda i: jnp.int32(i)
    leaves = jax.tree.leaves(data)
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if not leaves or len(sizes) != 1 or -1 in sizes or 0 in sizes:
        raise ArgumentError(f"data must be a number of batches or arrays with one common, non-empty leading "
                            f"(stimulus) axis; got leading axes {sorted(sizes)}")
    n = sizes.pop()
    return -(-n // batch_size), lambda i: jax.tree.map(lambda a: a[i * batch_size:(i + 1) * batch_size], data)


def _compiled(fn: Callable) -> Callable:
    """One :func:`filter_jit` per function (held while it lives), so repeated folds never retrace."""
    try:
        return _JITTED[fn]
    except (KeyError, TypeError):
        jitted = filter_jit(fn)
        try:
            if len(_JITTED) >= 64:                              # bounded: drop the oldest
                _JITTED.pop(next(iter(_JITTED)))
            _JITTED[fn] = jitted
        except TypeError:                                       # unhashable: compile per call
            pass
        return jitted


_JITTED: dict = {}


def fold(step: Callable, acc, data, *args, batch_size: int = 256, progress: bool = False, desc: str = "fold"):
    """``acc = step(acc, batch, *args)`` for every batch of ``data``; returns the final ``acc``.

    data: arrays (a pytree) with a leading stimulus axis, cut into batches of ``batch_size`` (the last may be
        smaller: one more compiled shape), or an int — a number of batches, the step receiving the batch index
        (an int32 scalar) to make its own stimuli from. args: passed to every step whole (a subject, a mean
        image); array leaves are traced and other leaves static, as for :func:`~insilico.engine.filter_jit`.

    >>> import jax.numpy as jnp
    >>> fold(lambda acc, x: acc + x.sum(), jnp.float32(0), jnp.arange(10.0), batch_size=4).item()
    45.0
    """
    from tqdm.auto import tqdm

    batch_size = check_count("batch_size", batch_size)
    n, batch = _batches(data, batch_size)
    body = _compiled(step)
    for i in tqdm(range(n), desc=desc, unit="batch", disable=not progress):
        acc = body(acc, batch(i), *args)
    return acc


def map_batches(fn: Callable, data, *args, batch_size: int = 256, progress: bool = False, desc: str = "batches"):
    """``fn(batch, *args)`` for every batch of ``data`` (as for :func:`fold`), outputs gathered on the host as
    NumPy arrays and joined along their leading axis: a pytree like ``fn``'s output over every stimulus.

    >>> import jax.numpy as jnp
    >>> map_batches(lambda x: {"double": 2 * x}, jnp.arange(5.0), batch_size=2)["double"].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    from tqdm.auto import tqdm

    batch_size = check_count("batch_size", batch_size)
    n, batch = _batches(data, batch_size)
    body = _compiled(fn)
    parts = [jax.tree.map(np.asarray, body(batch(i), *args))
             for i in tqdm(range(n), desc=desc, unit="batch", disable=not progress)]
    return jax.tree.map(lambda *a: np.concatenate(a), *parts)
