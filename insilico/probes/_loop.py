"""One driver for every iterative probe (attacks, metamers, controversial stimuli, MAD, DeepFool).

A *program* is a hashable object (a frozen dataclass of its static settings) with three pure methods:

- ``init(*args) -> state``
- ``step(state, i, *args) -> (state, out)``  (``out`` is stacked over steps into a trace; ``None`` for none)
- ``finish(state, *args) -> result``

and an integer attribute ``steps``. :func:`drive` runs it either as one compiled ``lax.scan`` or as a Python loop
over one compiled step. XLA:CPU gives the input-gradient convolutions inside a compiled loop body a kernel layout
without its fast path (3-4x slower per step than the same gradient in a straight-line program), so on CPU the host
loop wins; on accelerators the scan avoids a dispatch per step. A program may also define ``done(state) -> bool``
(every sample finished): the host loop then stops early, checking every ``check_every`` steps.

Arguments may hold anything: array leaves (images, ε, keys, the weights inside a subject — a subject is a pytree)
are traced, every other leaf (a score function, a class index given as a Python int) is static and part of the
compile key (:func:`split_static`). So new weights or new values of ε, step sizes and targets never retrace.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import check_choice, check_count

LOOPS = ("auto", "scan", "host")


def resolve_loop(loop: str) -> str:
    """``"auto"`` → ``"host"`` on CPU, ``"scan"`` elsewhere; validates the name."""
    check_choice("loop", loop, LOOPS)
    if loop == "auto":
        return "host" if jax.default_backend() == "cpu" else "scan"
    return loop


class Static:
    """A static (non-array) pytree leaf, compared by equality when hashable, else by identity."""

    __slots__ = ("value", "_hash")

    def __init__(self, value):
        self.value = value
        try:
            self._hash = hash(value)
        except TypeError:
            self._hash = None

    def __eq__(self, other):
        if not isinstance(other, Static):
            return NotImplemented
        if self.value is other.value:
            return True
        return self._hash is not None and other._hash is not None and self._hash == other._hash and bool(
            self.value == other.value)

    def __hash__(self):
        return self._hash if self._hash is not None else id(self.value)


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic)) or (hasattr(x, "shape") and hasattr(x, "dtype"))


def split_static(tree):
    """``(arrays, static)``: the array leaves of ``tree`` (other leaves None) and a hashable rest, so that
    ``join_static(arrays, static)`` rebuilds ``tree``; used to jit functions of arbitrary arguments."""
    leaves, treedef = jax.tree.flatten(tree)
    arrays = [leaf if _is_array(leaf) else None for leaf in leaves]
    static = tuple(None if _is_array(leaf) else Static(leaf) for leaf in leaves)
    return arrays, (treedef, static)


def join_static(arrays, static):
    treedef, rest = static
    return jax.tree.unflatten(treedef, [a if s is None else s.value for a, s in zip(arrays, rest)])


def filter_jit(fn):
    """``jax.jit`` of ``fn(*args)`` where array leaves are traced and any other leaf is static."""
    inner = jax.jit(lambda arrays, static: fn(*join_static(arrays, static)), static_argnums=1)

    def call(*args):
        arrays, static = split_static(args)
        return inner(arrays, static)
    return call


@lru_cache(maxsize=64)
def _scan_fn(program):
    def run(*args):
        state, trace = jax.lax.scan(lambda s, i: program.step(s, i, *args), program.init(*args),
                                    jnp.arange(program.steps))
        return program.finish(state, *args), trace
    return filter_jit(run)


@lru_cache(maxsize=64)
def _host_fns(program):
    done = filter_jit(program.done) if hasattr(program, "done") else None
    return filter_jit(program.init), filter_jit(program.step), filter_jit(program.finish), done


def _pad_trace(trace, steps: int):
    """Stack the per-step outputs; after an early stop, repeat the last one up to ``steps``."""
    if not trace or trace[0] is None:
        return None
    trace = trace + [trace[-1]] * (steps - len(trace))
    return jax.tree_util.tree_map(lambda *t: jnp.stack(t), *trace)


def drive(program, *args, loop: str = "auto", check_every: int = 16, progress: bool = False, desc: str = ""):
    """Run ``program`` for ``program.steps`` steps on ``args``; returns ``(finish(state), trace)``.
    ``program.steps`` and ``check_every`` must be integers ≥ 1."""
    check_count(f"steps (of {type(program).__name__})", getattr(program, "steps", None))
    check_every = check_count("check_every", check_every)
    loop = resolve_loop(loop)
    if loop == "scan":
        return _scan_fn(program)(*args)
    from tqdm.auto import tqdm

    init, step, finish, done = _host_fns(program)
    state, trace = init(*args), []
    with tqdm(total=program.steps, desc=desc or type(program).__name__, disable=not progress, unit="step") as bar:
        for i in range(program.steps):
            state, out = step(state, jnp.int32(i), *args)
            trace.append(out)
            bar.update()
            if done is not None and (i + 1) % check_every == 0 and bool(done(state)):
                break
    return finish(state, *args), _pad_trace(trace, program.steps)
