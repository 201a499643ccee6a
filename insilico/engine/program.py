"""The program form: iterative optimization (attacks, metamers, controversial stimuli, MAD, DeepFool, feature
visualization) as init / step / finish, run as one compiled loop, and over many items in chunks.

A *program* is a hashable object (a frozen dataclass of its static settings) with three pure methods:

- ``init(*args) -> state``
- ``step(state, i, *args) -> (state, out)``  (``out`` is stacked over steps into a trace; ``None`` for none)
- ``finish(state, *args) -> result``

and an integer attribute ``steps``. :func:`drive` runs it either as one compiled ``lax.scan`` or as a Python loop
over one compiled step. XLA:CPU gives the input-gradient convolutions inside a compiled loop body a kernel layout
without its fast path (3-4x slower per step than the same gradient in a straight-line program), so on CPU the host
loop wins; on accelerators the scan avoids a dispatch per step. A program may also define ``done(state) -> bool``
(every sample finished): the host loop then stops early, checking every ``check_every`` steps.

:func:`run_programs` runs a program over many items (targets, seeds, starting images) in chunks whose size a
memory budget sets, sharded over the local devices, each chunk streamed to a resumable store: memory stays that
of one chunk however many items there are, and a killed run resumes from its finished chunks.

Arguments may hold anything: array leaves (images, ε, keys, the weights inside a subject — a subject is a pytree)
are traced, every other leaf (a score function, a class index given as a Python int) is static and part of the
compile key (:func:`split_static`). So new weights or new values of ε, step sizes and targets never retrace.
"""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import ArgumentError, check_choice, check_count, check_positive

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
    """``jax.jit`` of ``fn(*args)`` where array leaves are traced and any other leaf is static; ``.trace(*args)``
    traces it for those arguments (``jax.stages.Traced``: its ``jaxpr`` and ``out_info``), and a later call with
    arguments of the same shapes reuses that trace."""
    inner = jax.jit(lambda arrays, static: fn(*join_static(arrays, static)), static_argnums=1)

    def call(*args):
        arrays, static = split_static(args)
        return inner(arrays, static)
    call.trace = lambda *args: inner.trace(*split_static(args))          # type: ignore[attr-defined]
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


def _per_item_bytes(program, shared: tuple, items: tuple) -> float:
    """Upper bound on the memory one item adds to a step: every intermediate of the step on a one-item chunk.
    Cached per (program, static arguments, array shapes), so a repeated run traces nothing."""
    from .chunks import take
    from .memory import shapes, struct, total_intermediates

    arrays, static = split_static((*shared, *take(items, 0, 1)))
    key = (program, static, shapes(struct([a for a in arrays if a is not None])))
    if key in _ITEM_BYTES:
        return _ITEM_BYTES[key]
    if len(_ITEM_BYTES) >= 256:                                      # bounded: drop the oldest
        _ITEM_BYTES.pop(next(iter(_ITEM_BYTES)))
    _ITEM_BYTES[key] = _step_bytes(program, arrays, static, total_intermediates)
    return _ITEM_BYTES[key]


_ITEM_BYTES: dict = {}


def _step_bytes(program, arrays, static, total_intermediates) -> float:
    state = jax.eval_shape(lambda a: program.init(*join_static(a, static)), arrays)
    jaxpr = jax.make_jaxpr(lambda s, a: program.step(s, jnp.int32(0), *join_static(a, static)))(state, arrays)
    return float(total_intermediates(jaxpr.jaxpr))


def _on_devices(devices, shared: tuple, chunk: tuple):
    """``(shared, chunk)`` placed on a 1-D mesh of ``devices``: chunk items split over it, shared replicated."""
    if len(devices) == 1:
        return shared, chunk
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("items",))
    split, whole = NamedSharding(mesh, PartitionSpec("items")), NamedSharding(mesh, PartitionSpec())
    put = lambda sharding: lambda a: jax.device_put(a, sharding) if _is_array(a) else a
    return jax.tree.map(put(whole), shared), jax.tree.map(put(split), chunk)


def _chunk_size(program, shared, items, n: int, n_dev: int, chunk_size, memory_budget: float, max_chunk: int):
    if chunk_size is None:
        chunk_size = n if n <= _SMALL else int(max(1, min(max_chunk, memory_budget // max(
            _per_item_bytes(program, shared, items), 1.0))))
    chunk_size = min(chunk_size, n)
    chunk_size = -(-n // -(-n // chunk_size))                      # balance chunks so padding stays small
    return -(-chunk_size // n_dev) * n_dev                           # a whole number of items per device


_SMALL = 16          # this many items or fewer run as one chunk without estimating memory


def _named(tree, prefix: str) -> dict:
    return {f"{prefix}{i}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(tree))}


def run_programs(program, items: tuple, shared: tuple = (), *, chunk_size: int | None = None,
                 memory_budget: float = 2e9, max_chunk: int = 256, store=None, tag: str = "",
                 identity: dict | None = None, loop: str = "auto", check_every: int = 16, devices=None,
                 progress: bool = False, desc: str = "", overwrite: bool = False, recompute_damaged: bool = False,
                 check=None):
    """``drive(program, *shared, *chunk)`` for every chunk of ``items``; returns ``(result, trace)`` as
    :func:`drive` does for all items at once: result leaves joined along their first (item) axis, trace leaves
    along their second (after the step axis).

    items: a tuple of arrays (or pytrees) with a common leading item axis (targets, starting images, keys), sliced
        into chunks; shared: the arguments every chunk gets whole (the subject, settings), passed first.
    chunk_size: items per chunk (default: every item when there are at most 16, else as many as ``memory_budget``
        bytes allow from the step's intermediates for one item, at most ``max_chunk``). The last chunk is padded
        by repeating its first item (the pads' results are dropped), so one compiled step serves every chunk.
    store / tag / identity / overwrite / recompute_damaged: as for :func:`insilico.engine.run_sweep` — each finished
        chunk is written to the store, and a rerun after a kill resumes from the verified chunks; the manifest
        records the program (type and settings), the items, every array of ``shared`` and ``identity``.
    devices: a chunk's items are split over these devices (default every local device; one device: no split).
    check: ``check(result, trace, start)`` on each chunk's NumPy values before they are kept (a probe's own
        failure, e.g. FloatingPointError naming the step); then any NaN is a :class:`SweepError`.
    """
    from .chunks import check_no_nan, n_items, pad_to, run_chunks, take
    from .store import describe, describe_static

    if not isinstance(items, tuple) or not isinstance(shared, tuple):
        raise TypeError(f"items and shared must be tuples of arguments; got {type(items).__name__} and "
                        f"{type(shared).__name__}")
    if chunk_size is not None:
        chunk_size = check_count("chunk_size", chunk_size)
    max_chunk = check_count("max_chunk", max_chunk)
    memory_budget = check_positive("memory_budget", memory_budget)
    if identity is not None and (not isinstance(identity, dict) or not all(isinstance(k, str) for k in identity)):
        raise ArgumentError(f"identity must be a dict of named settings {{name: value}}; got {identity!r:.200}")
    resolve_loop(loop)
    n = n_items(items)
    devices = list(devices if devices is not None else jax.local_devices())
    chunk_size = _chunk_size(program, shared, items, n, len(devices), chunk_size, memory_budget, max_chunk)
    trees: dict = {}

    def compute(start, stop):
        s, chunk = _on_devices(devices, shared, pad_to(take(items, start, stop), chunk_size))
        result, trace = drive(program, *s, *chunk, loop=loop, check_every=check_every,
                              progress=progress and n <= chunk_size, desc=desc)
        result = jax.tree.map(lambda a: np.asarray(a)[: stop - start], result)
        trace = jax.tree.map(lambda a: np.moveaxis(np.asarray(a), 1, 0)[: stop - start], trace)
        trees.setdefault("result", jax.tree.structure(result))
        trees.setdefault("trace", jax.tree.structure(trace))
        if check is not None:
            check(result, jax.tree.map(lambda a: np.moveaxis(a, 0, 1), trace), start)
        return {**_named(result, "result_"), **_named(trace, "trace_")}

    _, static = split_static(shared)
    settings = {"program": describe_static(program),
                "static": tuple(describe_static(s.value) for s in static[1] if s is not None), **(identity or {})}
    values, _ = run_chunks(compute, n, chunk_size, store=store, progress=progress and n > chunk_size,
                           desc=desc or type(program).__name__, overwrite=overwrite,
                           recompute_damaged=recompute_damaged,
                           check=lambda v, start, c: check_no_nan(v, start, c),
                           manifest=lambda: describe(type(program), items, _arrays_only(shared), n, chunk_size,
                                                     tag, settings))
    if not trees:                                              # every chunk came from the store
        trees.update(_structures(program, shared, take(items, 0, 1)))
    result = jax.tree.unflatten(trees["result"], [values[f"result_{i}"] for i in range(trees["result"].num_leaves)])
    trace = jax.tree.unflatten(trees["trace"], [np.moveaxis(values[f"trace_{i}"], 0, 1)
                                                for i in range(trees["trace"].num_leaves)])
    return result, trace


def _arrays_only(tree):
    """``tree`` with its static leaves dropped, so the store names an array by its place in the arguments."""
    return jax.tree.map(lambda a: a if _is_array(a) else None, tree)


def _structures(program, shared: tuple, one: tuple) -> dict:
    """Tree structures of a program's result and trace, from shapes alone (nothing compiled)."""
    arrays, static = split_static((*shared, *one))
    args = lambda a: join_static(a, static)
    state = jax.eval_shape(lambda a: program.init(*args(a)), arrays)
    _, out = jax.eval_shape(lambda s, a: program.step(s, jnp.int32(0), *args(a)), state, arrays)
    result = jax.eval_shape(lambda s, a: program.finish(s, *args(a)), state, arrays)
    return {"result": jax.tree.structure(result), "trace": jax.tree.structure(out)}
