"""The shrinking form: one compiled step over a batch of items that leave it as they finish, the rest compacted
into a smaller batch — for probes where most items finish long before the last step (an attack breaks most
images at a large ε within a few steps), so later steps cost only the items still running.

A *shrinking program* is a hashable object (a frozen dataclass of its static settings) with three pure methods
over a batch whose every leaf has a leading item axis:

- ``init(*shared, *items) -> state``
- ``step(state, i, *shared, *items) -> (state, out)``  (``out``: per-item values of this step, or ``None``)
- ``judge(state, *shared, *items) -> (kept, done)``  (``kept``: what an item keeps if it leaves now; ``done``:
  one bool per item)

:func:`run_shrinking` judges the start and every step's state; an item leaves at its first judgement with
``done`` (or after the last step) keeping that judgement's values. The remaining items are gathered into a batch
padded to a bucket size (8, 12, 16, 24, 32, 48, ...: at most a third padding, repeating an item; on CPU a larger
batch runs as calls of at most 128 items a slice, the last call's slices rounded up to 16 items), so a few
compiled shapes serve every step and a repeated run compiles nothing. The number of steps is an argument of the
run, not of the compiled program: the program object (its settings) and the batch shapes are the compile key,
so a new step count — like new values in the items — compiles nothing. ``step`` and ``judge`` are separate
compiled calls (on XLA:CPU the two fused into one run 2x slower). Without early stopping (``stop_early=False``)
the batch never shrinks and is judged once, after the last step: the host-loop form of a fixed-length program.

On CPU, XLA runs one such program on little more than one core (a convolution network's input gradient keeps
about 1.3 of 2 cores busy); the batch is therefore cut into ``shards`` equal slices, one per core, whose compiled
calls run concurrently in threads. Every item's computation is its own, so the results do not depend on the cut.
Unlike :func:`~insilico.engine.drive`, which freezes a finished item but keeps computing it, this form stops
computing it; it runs as a host loop. On CPU the loop's own gathers, slices and joins of the batch run in NumPy
(the device's memory is the host's): each new shape of a ``jnp`` gather, slice or concatenation outside a compiled
function compiles a program of its own (0.01–0.05 s each, a dozen in a first run).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import check_choice, check_count
from .chunks import n_items
from .host import on_host
from .program import filter_jit

__all__ = ["run_shrinking", "first_call_bytes", "bucket", "default_shards", "default_rows"]


CPU_ROWS = 128
GRAIN = 16


def bucket(n: int) -> int:
    """Batch size for ``n`` items: the next of 8, 12, 16, 24, 32, 48, ... (at most a third padding)."""
    b = 8
    while b < n:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3
    return b


def default_rows() -> int | None:
    """The most items one compiled call takes per slice: on CPU :data:`CPU_ROWS` (a network's input gradient on a
    larger batch runs slower per item there: its activations leave the caches), elsewhere no limit (an
    accelerator wants the largest batch)."""
    return CPU_ROWS if jax.default_backend() == "cpu" else None


def default_shards() -> int:
    """Concurrent slices of a batch: on CPU the cores this process may use (at most 8), elsewhere 1."""
    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _layout(n: int, shards: int, buckets: bool, rows: int | None = None) -> tuple[tuple[int, int], ...]:
    """The compiled calls that cover ``n`` items: ``((size, slices), ...)``, each call at most ``shards`` slices
    of at least four items each, its size a bucket (or ``n``) rounded up to a whole number of items per slice.
    With ``rows``, a slice holds at most ``rows`` items: full calls of ``rows * shards`` items, then one call for
    the rest, whose slices, when above ``4 * GRAIN`` items, are rounded up to a multiple of :data:`GRAIN` items
    rather than a bucket (fewer than ``GRAIN * shards`` padded items in all, where a bucket pads up to a third),
    from a few shapes that are the same every step. Without ``buckets`` a call may hold fewer than four items a
    slice (the rest of an exact batch)."""
    if rows is not None and n > rows * shards:
        full, rest = divmod(n, rows * shards)
        return ((rows * shards, shards),) * full + (_layout(rest, shards, buckets, rows) if rest else ())
    if rows is not None and buckets and n > 4 * GRAIN * shards:
        per = min(rows, -(-n // (shards * GRAIN)) * GRAIN)
        return ((per * shards, shards),)
    size = bucket(n) if buckets else n
    k = max(1, min(shards, size // 4))
    if rows is not None and -(-size // k) > rows:            # a bucket's slices above the cap: cap them instead
        k = -(-n // rows)
        return ((rows * k, k),)
    return ((-(-size // k) * k, k),)


def _total(layout) -> int:
    return sum(size for size, _ in layout)


def _hostable(a) -> bool:
    return not jax.dtypes.issubdtype(getattr(a, "dtype", np.float32), jax.dtypes.prng_key)


def _padded(positions: np.ndarray, size: int, host: bool):
    """``positions`` padded to ``size`` by repeating the first."""
    out = np.concatenate([positions, np.repeat(positions[:1], size - len(positions))])
    return out if host else jnp.asarray(out)


def _take(tree, positions, host: bool):
    """Rows ``positions`` of every leaf (NumPy on the host, where a leaf allows it)."""
    def one(a):
        if host and _hostable(a):
            return np.take(np.asarray(a), positions, axis=0)
        return jnp.take(a, jnp.asarray(positions), axis=0)
    return jax.tree.map(one, tree)


def _part(tree, start: int, stop: int, host: bool):
    """Rows ``start:stop`` of every leaf (a NumPy view on the host)."""
    return jax.tree.map(lambda a: np.asarray(a)[start:stop] if host and _hostable(a) else a[start:stop], tree)


def _join(parts: list, host: bool):
    """The leaves of ``parts`` concatenated along the item axis."""
    def one(*a):
        if host and _hostable(a[0]):
            return np.concatenate([np.asarray(v) for v in a])
        return jnp.concatenate(a)
    return jax.tree.map(one, *parts)


def _rows(tree, live: int, which=None):
    """The running items' rows (``which`` of the first ``live``) of every leaf, as NumPy arrays."""
    return jax.tree.map(lambda a: np.asarray(a)[:live] if which is None else np.asarray(a)[:live][which], tree)


_POOL: list = []
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=8, thread_name_prefix="insilico-shard"))
        return _POOL[0]


class _Compiled:
    """A program's ``init(shared, items)``, ``step((i, *shared), (state, *items))`` and ``judge(shared, (state,
    *items))``, compiled, and :meth:`sliced` to run a job on equal slices of a batch at once."""

    def __init__(self, program, host: bool):
        self.host = host
        self.init = filter_jit(lambda whole, rows: program.init(*whole, *rows))
        self.step = filter_jit(lambda whole, rows: program.step(rows[0], whole[0], *whole[1:], *rows[1:]))
        self.judge = filter_jit(lambda whole, rows: program.judge(rows[0], *whole, *rows[1:]))
        self.seen: set = set()

    def sliced(self, name: str, job, rows: tuple, layout):
        """``job`` on the batch ``rows`` as ``layout`` cuts it (:func:`_layout`): call after call, each on its
        equal slices at once (one thread each), the outputs joined."""
        outs, start = [], 0
        for size, shards in layout:
            part = _part(rows, start, start + size, self.host) if len(layout) > 1 else rows
            outs.append(self._call(name, job, part, shards))
            start += size
        return outs[0] if len(outs) == 1 else _join(outs, self.host)

    def _call(self, name: str, job, rows: tuple, shards: int):
        """``job(rows)`` on ``shards`` equal slices of the leading axis of ``rows`` at once (one thread each), the
        outputs joined. The first call of a job at a new slice shape runs one slice alone, so that its programs
        are traced and compiled once, not once per thread."""
        if shards == 1:
            return job(rows)
        m = n_items(rows) // shards
        parts = [_part(rows, j * m, (j + 1) * m, self.host) for j in range(shards)]
        run = lambda p: jax.block_until_ready(job(p))
        key = (name, str(jax.tree.map(np.shape, parts[0])))
        outs = [] if key in self.seen else [run(parts.pop(0))]
        self.seen.add(key)
        outs += list(_pool().map(run, parts))
        return _join(outs, self.host)


@lru_cache(maxsize=64)
def _compiled(program, host: bool) -> _Compiled:
    return _Compiled(program, host)


def _check_arguments(items, shared) -> None:
    if not isinstance(items, tuple) or not isinstance(shared, tuple):
        raise TypeError(f"items and shared must be tuples of arguments; got {type(items).__name__} and "
                        f"{type(shared).__name__}")
    n_items(items)                        # a SweepError naming what is wrong: no arrays, no items, unequal axes


def first_call_bytes(program, items: tuple, shared: tuple = (), *, buckets: bool = True, shards: int | None = None,
                     rows: int | str | None = "auto") -> int:
    """What :func:`run_shrinking` with these arguments holds at once, in bytes: every item's state, and the values
    that ``init``, ``step`` and ``judge`` compute on one slice of the first call (each value counted, sub-jaxprs
    once: an upper bound on what is live) times the slices that run at once. Traced, not compiled, for the shapes
    the run uses, so the run reuses these traces: sizing a batch this way costs no second trace."""
    from .memory import total_intermediates

    _check_arguments(items, shared)
    shards = default_shards() if shards is None else check_count("shards", shards)
    rows = default_rows() if isinstance(rows, str) and rows == "auto" else \
        None if rows is None else check_count("rows", rows, minimum=4)
    n, host = n_items(items), on_host()
    layout = _layout(n, shards, check_choice("buckets", buckets, (False, True)), rows)
    size, k = layout[0]
    part = _part(_take(items, _padded(np.arange(n), _total(layout), host), host), 0, size // k, host)
    c = _compiled(program, host)
    init = c.init.trace(shared, part)                                     # type: ignore[attr-defined]
    state = init.out_info
    step = c.step.trace((np.int32(0), *shared), (state, *part))          # type: ignore[attr-defined]
    judge = c.judge.trace(shared, (state, *part))                        # type: ignore[attr-defined]
    per_item = sum(np.prod(a.shape) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(state)) / (size // k)
    return int(k * sum(total_intermediates(t.jaxpr.jaxpr) for t in (init, step, judge)) + per_item * _total(layout))


def run_shrinking(program, items: tuple, shared: tuple = (), *, steps: int | None = None, stop_early: bool = True,
                  buckets: bool = True, shards: int | None = None, rows: int | str | None = "auto", check=None,
                  progress: bool = False, desc: str = ""):
    """Run ``program`` on every item, each leaving the batch at its first ``done`` judgement; returns
    ``(kept, left_at)``: ``kept`` as ``judge`` returns it for every item (NumPy, leading item axis) and
    ``left_at`` (n,) the judgement at which each item left (0 = the start, ``steps`` = after the last step).

    items: a tuple of arrays (or pytrees) with a common leading item axis, gathered as items leave; shared: the
        arguments every step gets whole (the subject), passed first. steps: the number of steps (default the
        program's ``steps`` attribute); data of the run, so a new count compiles nothing. stop_early: False judges
        only after the last step (every item runs every step). buckets: pad batches to bucket sizes (True) or
        only to a whole number of items per slice (False: one exact shape, for a batch that never shrinks).
        shards: concurrent slices of each batch (default :func:`default_shards`). rows: the most items of a slice
        in one compiled call ("auto": :func:`default_rows`; None: no limit); a larger batch runs as several calls.
        check: ``check(out, i)`` after
        step ``i`` on the step's ``out`` for the running items (NumPy) — a probe's own failure, e.g. a
        FloatingPointError naming the step.
    """
    from tqdm.auto import tqdm

    _check_arguments(items, shared)
    steps = check_count(f"steps (of {type(program).__name__})", getattr(program, "steps", None) if steps is None
                        else steps)
    shards = default_shards() if shards is None else check_count("shards", shards)
    rows = default_rows() if isinstance(rows, str) and rows == "auto" else \
        None if rows is None else check_count("rows", rows, minimum=4)
    stop_early = check_choice("stop_early", stop_early, (False, True))
    buckets = check_choice("buckets", buckets, (False, True))
    n, host = n_items(items), on_host()
    c = _compiled(program, host)
    judge = lambda rows: c.judge(shared, rows)

    def advance(i):
        """A step and, when stopping early, its judgement, in turn on each slice."""
        def job(part):
            state, out = c.step((np.int32(i), *shared), part)
            return (state, out, *(judge((state, *part[1:])) if stop_early else (None, None)))
        return job

    ids = np.arange(n)                                         # the running items, in batch order
    layout = _layout(n, shards, buckets, rows)
    batch = _take(items, _padded(ids, _total(layout), host), host)
    state = c.sliced("init", lambda part: c.init(shared, part), batch, layout)
    kept = done = None
    if stop_early:
        kept, done = c.sliced("judge", judge, (state, *batch), layout)
    out, left_at = None, np.full(n, steps, np.int32)
    with tqdm(total=steps, desc=desc or type(program).__name__, disable=not progress, unit="step") as bar:
        for i in range(steps + 1):
            if i == steps and not stop_early:
                kept, done = c.sliced("judge", judge, (state, *batch), layout)
            if i == steps:
                stop = np.ones(len(ids), bool)
            else:
                stop = np.asarray(done)[:len(ids)].astype(bool) if stop_early else np.zeros(len(ids), bool)
            if stop.any():
                leaving = _rows(kept, len(ids), stop)
                if out is None:
                    out = jax.tree.map(lambda a: np.zeros((n, *a.shape[1:]), a.dtype), leaving)
                for whole, part in zip(jax.tree.leaves(out), jax.tree.leaves(leaving)):
                    whole[ids[stop]] = part
                left_at[ids[stop]] = i
                stay = np.flatnonzero(~stop)
                ids = ids[stay]
                if not len(ids):
                    break
                layout = _layout(len(ids), shards, buckets, rows)
                positions = _padded(stay, _total(layout), host)
                state, batch = _take(state, positions, host), _take(batch, positions, host)
            state, step_out, kept, done = c.sliced("advance", advance(i), (state, *batch), layout)
            if check is not None:
                check(_rows(step_out, len(ids)), i)
            bar.update()
    return out, left_at
