"""The shrinking form: one compiled step over a batch of items that leave it as they finish, the rest compacted
into a smaller batch — for probes where most items finish long before the last step (an attack breaks most
images at a large ε within a few steps), so later steps cost only the items still running.

A *shrinking program* is a hashable object (a frozen dataclass of its static settings) with an integer ``steps``
and three pure methods over a batch whose every leaf has a leading item axis:

- ``init(*shared, *items) -> state``
- ``step(state, i, *shared, *items) -> (state, out)``  (``out``: per-item values of this step, or ``None``)
- ``judge(state, *shared, *items) -> (kept, done)``  (``kept``: what an item keeps if it leaves now; ``done``:
  one bool per item)

:func:`run_shrinking` judges the start and every step's state; an item leaves at its first judgement with
``done`` (or after the last step) keeping that judgement's values. The remaining items are gathered into a batch
padded to a bucket size (8, 12, 16, 24, 32, 48, ...: at most a third padding, repeating an item), so a few
compiled shapes serve every step and a repeated run compiles nothing. ``step`` and ``judge`` are separate
compiled calls (on XLA:CPU the two fused into one run 2x slower). Unlike :func:`~insilico.engine.drive`, which
freezes a finished item but keeps computing it, this form stops computing it; it runs as a host loop.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import check_count
from .chunks import n_items
from .program import filter_jit

__all__ = ["run_shrinking", "bucket"]


def bucket(n: int) -> int:
    """Batch size for ``n`` items: the next of 8, 12, 16, 24, 32, 48, ... (at most a third padding)."""
    b = 8
    while b < n:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3
    return b


def _padded(positions: np.ndarray) -> jax.Array:
    """``positions`` padded to its bucket size by repeating the first."""
    return jnp.asarray(np.concatenate([positions, np.repeat(positions[:1], bucket(len(positions)) - len(positions))]))


def _take(tree, positions):
    return jax.tree.map(lambda a: jnp.take(a, positions, axis=0), tree)


def _rows(tree, live: int, which=None):
    """The running items' rows (``which`` of the first ``live``) of every leaf, as NumPy arrays."""
    return jax.tree.map(lambda a: np.asarray(a)[:live] if which is None else np.asarray(a)[:live][which], tree)


@lru_cache(maxsize=64)
def _compiled(program):
    return filter_jit(program.init), filter_jit(program.step), filter_jit(program.judge)


def run_shrinking(program, items: tuple, shared: tuple = (), *, check=None, progress: bool = False,
                  desc: str = ""):
    """Run ``program`` on every item, each leaving the batch at its first ``done`` judgement; returns
    ``(kept, left_at)``: ``kept`` as ``judge`` returns it for every item (NumPy, leading item axis) and
    ``left_at`` (n,) the judgement at which each item left (0 = the start, ``steps`` = after the last step).

    items: a tuple of arrays (or pytrees) with a common leading item axis, gathered as items leave; shared: the
        arguments every step gets whole (the subject), passed first. check: ``check(out, i)`` after step ``i``
        on the step's ``out`` for the running items (NumPy) — a probe's own failure, e.g. a FloatingPointError
        naming the step.
    """
    from tqdm.auto import tqdm

    if not isinstance(items, tuple) or not isinstance(shared, tuple):
        raise TypeError(f"items and shared must be tuples of arguments; got {type(items).__name__} and "
                        f"{type(shared).__name__}")
    steps = check_count(f"steps (of {type(program).__name__})", getattr(program, "steps", None))
    n = n_items(items)
    init, step, judge = _compiled(program)
    ids = np.arange(n)                                         # the running items, in batch order
    batch = _take(items, _padded(ids))
    state = init(*shared, *batch)
    kept, done = judge(state, *shared, *batch)
    out, left_at = None, np.full(n, steps, np.int32)
    with tqdm(total=steps, desc=desc or type(program).__name__, disable=not progress, unit="step") as bar:
        for i in range(steps + 1):
            stop = np.asarray(done)[:len(ids)].astype(bool) if i < steps else np.ones(len(ids), bool)
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
                positions = _padded(stay)
                state, batch = _take(state, positions), _take(batch, positions)
            state, step_out = step(state, jnp.int32(i), *shared, *batch)
            kept, done = judge(state, *shared, *batch)
            if check is not None:
                check(_rows(step_out, len(ids)), i)
            bar.update()
    return out, left_at
