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
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp

LOOPS = ("auto", "scan", "host")


def resolve_loop(loop: str) -> str:
    """``"auto"`` → ``"host"`` on CPU, ``"scan"`` elsewhere; validates the name."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    if loop == "auto":
        return "host" if jax.default_backend() == "cpu" else "scan"
    return loop


@lru_cache(maxsize=64)
def _scan_fn(program):
    def run(*args):
        state, trace = jax.lax.scan(lambda s, i: program.step(s, i, *args), program.init(*args),
                                    jnp.arange(program.steps))
        return program.finish(state, *args), trace
    return jax.jit(run)


@lru_cache(maxsize=64)
def _host_fns(program):
    done = jax.jit(program.done) if hasattr(program, "done") else None
    return jax.jit(program.init), jax.jit(program.step), jax.jit(program.finish), done


def _pad_trace(trace, steps: int):
    """Stack the per-step outputs; after an early stop, repeat the last one up to ``steps``."""
    if not trace or trace[0] is None:
        return None
    trace = trace + [trace[-1]] * (steps - len(trace))
    return jax.tree_util.tree_map(lambda *t: jnp.stack(t), *trace)


def drive(program, *args, loop: str = "auto", check_every: int = 16, progress: bool = False, desc: str = ""):
    """Run ``program`` for ``program.steps`` steps on ``args``; returns ``(finish(state), trace)``."""
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
