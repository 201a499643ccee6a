"""The map form: ``fn(item, shared) -> {metric: array}`` for every item, vmapped in batches inside one compiled
call per chunk, sharded over devices and hosts, streamed to a resumable store.

Inside one compiled call per chunk, ``jax.lax.map(..., batch_size=B)`` vmaps ``B`` items at a time, so peak memory
is ~B evaluations whatever the number of items; ``B`` is chosen from a memory budget
(:func:`~insilico.engine.memory.choose_batch_size`). With several devices, each chunk's item axis is sharded over a
1-D mesh (``shard_map``); across hosts after :func:`initialize_distributed` every process runs the same call and
gets the whole result, process 0 writing the store. Reduce inside ``fn`` (accuracy, not per-image outputs):
results are items x metric.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import jax
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..validation import ArgumentError, check_choice, check_count, check_positive
from .chunks import n_items, pad_to, run_chunks, take, to_dataset
from .memory import choose_batch_size
from .store import SweepError, describe

__all__ = ["run_sweep", "initialize_distributed", "SweepError"]


def initialize_distributed(coordinator_address: str, num_processes: int, process_id: int):
    """Join a multi-process (multi-host) run: ``jax.distributed.initialize`` with CPU collectives (gloo)
    enabled, so sweeps shard over every process's devices. Call before any other JAX work."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")      # only affects CPU devices
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


@lru_cache(maxsize=64)
def _compile_chunk(fn, batch_size, devices: tuple):
    """One jitted chunk function per (fn, batch size, devices): repeated sweeps never retrace."""
    def body(chunk, shared):
        return jax.lax.map(lambda it: fn(it, shared), chunk, batch_size=batch_size)

    if len(devices) == 1:
        return jax.jit(body), None
    mesh = Mesh(np.array(devices), ("sweep",))
    spec = PartitionSpec("sweep")
    return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(spec, PartitionSpec()), out_specs=spec,
                                 check_vma=False)), mesh


def _global(tree, mesh, spec):
    """Arrays that every process holds in full, as global arrays laid out by ``spec`` on ``mesh``."""
    sharding = NamedSharding(mesh, spec)

    def one(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda idx: a[idx])
    return jax.tree.map(one, tree)


def _run_chunk(compiled, mesh, chunk, shared):
    if mesh is None or jax.process_count() == 1:
        return {k: np.asarray(v) for k, v in compiled(chunk, shared).items()}
    from jax.experimental import multihost_utils

    out = compiled(_global(chunk, mesh, PartitionSpec("sweep")), _global(shared, mesh, PartitionSpec()))
    return {k: np.asarray(v) for k, v in multihost_utils.process_allgather(out, tiled=True).items()}


def run_sweep(fn: Callable, items, shared=None, *, dim: str = "item", coords=None, batch_size: int | None = None,
              chunk_size: int | None = None, memory_budget: float = 2e9, store=None, tag: str = "", extra_dims=None,
              devices=None, progress: bool = True, desc: str = "sweep", identity: dict | None = None,
              overwrite: bool = False, recompute_damaged: bool = False, estimate: str = "compile") -> xr.Dataset:
    """Evaluate ``fn(item, shared) -> {name: array}`` for every item of ``items`` (leading axis = sweep).

    Args:
        shared: pytree passed unbatched to every call (weights, images, labels).
        dim/coords: name and coordinates of the sweep dimension in the result. extra_dims: ``{metric:
            (dim names of its trailing axes)}``, e.g. ``{"class_accuracy": ("class",)}``.
        batch_size: items vmapped per ``lax.map`` step (default: from ``memory_budget`` bytes, with the per-item
            memory estimated by compiling ``fn`` (``estimate="compile"``) or, without compiling, as the sum of
            one item's intermediates (``estimate="trace"``, an upper bound; cheaper for small per-item work)).
        chunk_size: items per compiled call, the unit of progress and of resume (default 8 batches).
        store: directory for per-chunk NetCDF files; a rerun resumes from them. The store's manifest records
            what made it — the items, a content hash of every array of ``shared``, the function (module, name and
            simple closure values), the chunk layout, ``tag`` and ``identity`` — and a rerun that differs in any
            of them is refused with a :class:`SweepError` naming what differs. Every chunk carries its item range,
            the store's fingerprint and a checksum, verified before it is reused.
        tag: a label distinguishing sweeps over the same items (part of the fingerprint).
        identity: ``{name: value}`` of named settings that determine the results (values: str, numbers, bool,
            None, tuples, arrays or pytrees of arrays — hashed by content); a refusal names the settings that
            differ, e.g. "images differ" or "mode: 'zero' then, 'mean' now".
        overwrite: delete this store's own files (manifest, chunks, temporary files — nothing else in the
            directory) and start over.
        recompute_damaged: recompute chunks that cannot be opened or fail their checks (and rewrite a damaged
            manifest) instead of refusing the store.
        devices: devices for the 1-D mesh (default every device of every process; one device: no sharding).
    Returns: ``xarray.Dataset`` with one variable per metric, dims (dim, name_1, ...).

    >>> import jax.numpy as jnp
    >>> ds = run_sweep(lambda g, x: {"mean": (g * x).mean()}, jnp.arange(4.0), jnp.ones(3), dim="gain",
    ...                progress=False)
    >>> ds["mean"].values.tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size)
    if chunk_size is not None:
        chunk_size = check_count("chunk_size", chunk_size)
    memory_budget = check_positive("memory_budget", memory_budget)
    check_choice("estimate", estimate, ("compile", "trace"))
    if identity is not None and (not isinstance(identity, dict) or not all(isinstance(k, str) for k in identity)):
        raise ArgumentError(f"identity must be a dict of named settings {{name: value}}; got {identity!r:.200}")
    n = n_items(items)
    devices = list(devices if devices is not None else jax.devices())
    n_dev = len(devices)
    if not n_dev:
        raise ArgumentError("devices must hold at least one device (None: every device); got none")
    if coords is not None and len(coords) != n:
        raise ArgumentError(f"coords must give one coordinate per item ({n}); got {len(coords)}")
    if not (isinstance(dim, str) and dim.isidentifier()):
        raise ArgumentError(f"dim must be a dimension name (an identifier); got {dim!r}")
    if batch_size is None:
        batch_size = choose_batch_size(fn, take(items, 0, 1), shared, memory_budget / n_dev,
                                       compile=estimate == "compile")
    batch_size = max(1, min(int(batch_size), math.ceil(n / n_dev)))
    steps = math.ceil(n / (n_dev * batch_size))
    batch_size = math.ceil(n / (n_dev * steps))             # balance batches so padding stays small
    step = n_dev * batch_size                                  # items per lax.map step over all devices
    chunk_steps = math.ceil((chunk_size or 8 * step) / step)
    chunk_size = step * max(1, min(chunk_steps, steps))         # a whole number of steps, at most the sweep
    compiled, mesh = _compile_chunk(fn, batch_size, tuple(devices))

    def compute(start, stop):
        out = _run_chunk(compiled, mesh, pad_to(take(items, start, stop), chunk_size), shared)
        return {k: v[: stop - start] for k, v in out.items()}

    results, resumed = run_chunks(
        compute, n, chunk_size, store=store, dim=dim, progress=progress, desc=desc, overwrite=overwrite,
        recompute_damaged=recompute_damaged,
        manifest=lambda: describe(fn, items, shared, n, chunk_size, tag, identity))
    ds = to_dataset(results, dim, np.arange(n) if coords is None else np.asarray(coords), extra_dims)
    ds.attrs.update({"n_items": n, "batch_size": batch_size, "chunk_size": chunk_size,
                     "n_chunks": math.ceil(n / chunk_size), "resumed_chunks": resumed, "devices": n_dev})
    return ds
