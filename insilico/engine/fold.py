"""The fold form: stimuli streamed through one compiled function in batches, reduced on the fly.

:func:`fold` carries an accumulator (sums, Gram blocks, STA/STC moments, a running top-k) over batches of stimuli:
``acc = step(acc, batch, *args)``, compiled once per batch shape, so memory is one batch's whatever the number
of stimuli. The stimuli are either arrays with a leading stimulus axis (sliced into batches) or generated inside
the step from the batch index (noise drawn from ``fold_in(key, i)``). :func:`map_batches` is the same walk for
per-stimulus outputs that are kept (recordings, predictions), gathered on the host batch by batch.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import ArgumentError, check_count
from .chunks import pad_to, take
from .program import filter_jit

__all__ = ["EmptyStream", "Stream", "fold", "map_batches"]


class EmptyStream(ArgumentError):
    """A :class:`Stream` that yielded no batch."""


class Stream:
    """Batches that arrive one after another (an iterable of arrays, e.g. images read from disk a shard at a
    time), for :func:`fold` and :func:`map_batches`; each batch is one step, whatever its size."""

    def __init__(self, batches: Iterable):
        if hasattr(batches, "shape") or not isinstance(batches, Iterable):
            raise ArgumentError(f"Stream takes an iterable of batches (arrays); got {type(batches).__name__}")
        self.batches = batches


def _batches(data, batch_size: int):
    """``(n_batches or None, iterator of batches)`` over ``data``: an int (each batch is its own index), a
    :class:`Stream`, or arrays with a leading axis cut into batches of ``batch_size``."""
    if isinstance(data, Stream):
        return None, iter(data.batches)
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        n = check_count("data (a number of batches)", int(data))
        return n, (jnp.int32(i) for i in range(n))
    leaves = jax.tree.leaves(data)
    sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if not leaves or len(sizes) != 1 or -1 in sizes or 0 in sizes:
        raise ArgumentError(f"data must be a number of batches, a Stream of batches, or arrays with one common, "
                            f"non-empty leading (stimulus) axis; got leading axes {sorted(sizes)}")
    n = -(-sizes.pop() // batch_size)
    return n, (take(data, i * batch_size, (i + 1) * batch_size) for i in range(n))


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
        smaller: one more compiled shape); an int — a number of batches, the step receiving the batch index (an
        int32 scalar) to make its own stimuli from; or a :class:`Stream` of batches.
    args: passed to every step whole (a subject, a mean image); array leaves are traced and other leaves static,
        as for :func:`~insilico.engine.filter_jit`.

    >>> import jax.numpy as jnp
    >>> fold(lambda acc, x: acc + x.sum(), jnp.float32(0), jnp.arange(10.0), batch_size=4).item()
    45.0
    """
    from tqdm.auto import tqdm

    batch_size = check_count("batch_size", batch_size)
    n, batches = _batches(data, batch_size)
    body = _compiled(step)
    for batch in tqdm(batches, total=n, desc=desc, unit="batch", disable=not progress):
        acc = body(acc, batch, *args)
    return acc


def map_batches(fn: Callable, data, *args, batch_size: int = 256, progress: bool = False, desc: str = "batches"):
    """``fn(batch, *args)`` for every batch of ``data`` (as for :func:`fold`), outputs gathered on the host as
    NumPy arrays and joined along their leading axis: a pytree like ``fn``'s output over every stimulus. Arrays
    (and each batch of a :class:`Stream`) larger than ``batch_size`` are cut into batches of ``batch_size``, the
    remainder padded (its pads' outputs dropped), so one compiled shape serves; ``fn`` must treat stimuli
    independently (a model in inference mode does).

    >>> import jax.numpy as jnp
    >>> map_batches(lambda x: {"double": 2 * x}, jnp.arange(5.0), batch_size=2)["double"].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    from tqdm.auto import tqdm

    batch_size = check_count("batch_size", batch_size)
    if not isinstance(data, Stream):
        if isinstance(data, (int, np.integer)):
            raise ArgumentError("map_batches takes arrays with a leading stimulus axis or a Stream of them; a number "
                                "of batches (data made inside the step) is for fold")
        _batches(data, batch_size)                        # one common, non-empty leading axis, or an error
        data = Stream([data])
    _, batches = _batches(data, batch_size)
    body = _compiled(fn)
    parts = []
    for k, batch in enumerate(tqdm(batches, desc=desc, unit="batch", disable=not progress)):
        sizes = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in jax.tree.leaves(batch)}
        if len(sizes) != 1 or -1 in sizes or 0 in sizes:
            raise ArgumentError(f"batch {k} of the Stream must be arrays with one common, non-empty leading "
                                f"(stimulus) axis; got leading axes {sorted(sizes)}")
        total = sizes.pop()
        for start in range(0, total, batch_size):                  # a batch larger than batch_size is cut
            piece = take(batch, start, start + batch_size)
            size = min(batch_size, total - start)
            if total > batch_size and size < batch_size:           # its remainder padded: one compiled shape
                piece = pad_to(piece, batch_size)
            parts.append(jax.tree.map(lambda a, size=size: np.asarray(a)[:size], body(piece, *args)))
    if not parts:
        raise EmptyStream("data is an empty Stream (no batches); pass at least one batch")
    return jax.tree.map(lambda *a: np.concatenate(a), *parts)
