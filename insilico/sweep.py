"""The sweep engine: a batch of items (edits, seeds, units, ε, ...) with a leading axis through one compiled
function, chunked, sharded across devices, streamed to disk and resumable.

``run_sweep(fn, items, shared)`` evaluates ``fn(item, shared) -> {name: array}`` for every item along the
leading axis of the pytree ``items``. Inside one compiled call per chunk, ``jax.lax.map(..., batch_size=B)``
vmaps ``B`` items at a time, so peak memory is ~B evaluations whatever the number of items; ``B`` is chosen
from a memory budget with ``compiled.memory_analysis()``. With several devices, each chunk's sweep axis is
sharded over a 1-D mesh (``shard_map``); across hosts after :func:`initialize_distributed` every process runs
the same call and gets the whole result, process 0 writing the store. With ``store=DIR`` every finished chunk
is written to ``DIR/chunk_NNNNN.nc`` (NetCDF) atomically, and a rerun of an interrupted sweep loads finished
chunks instead of recomputing them. The store records what made it (the items, every array of ``shared``, the
function, named ``identity`` settings) and refuses a rerun that differs; every chunk is verified (item range,
fingerprint, checksum) before it is reused. Reduce inside ``fn`` (accuracy, not per-image outputs): results
are items x metric.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .sweep_store import SweepError, chunk_checksum, describe, store_status, write_atomic
from .validation import ArgumentError, check_count, check_positive

__all__ = ["run_sweep", "choose_batch_size", "initialize_distributed", "SweepError"]


def _n_items(items) -> int:
    leaves = jax.tree.leaves(items)
    if not leaves:
        raise SweepError("empty sweep: items has no arrays")
    n = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(n) != 1 or -1 in n:
        raise SweepError(f"every array in items needs the same leading (sweep) axis; got lengths {sorted(n)}")
    n = n.pop()
    if n == 0:
        raise SweepError("empty sweep: zero items")
    return n


def _slice(items, start, stop):
    return jax.tree.map(lambda a: a[start:stop], items)


def _pad(items, size):
    """Pad the leading axis to ``size`` by repeating the first item (results of pads are dropped)."""
    def pad(a):
        extra = size - a.shape[0]
        return a if extra == 0 else jnp.concatenate([a, jnp.repeat(a[:1], extra, axis=0)])
    return jax.tree.map(pad, items)


def _struct(tree, lead=None):
    """ShapeDtypeStructs of a pytree; ``lead`` replaces the leading axis."""
    def one(a):
        shape = tuple(np.shape(a)) if lead is None else (lead, *np.shape(a)[1:])
        return jax.ShapeDtypeStruct(shape, a.dtype if hasattr(a, "dtype") else np.result_type(a))
    return jax.tree.map(one, tree)


def _shapes(tree) -> tuple:
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


def _largest_intermediate(jaxpr) -> int:
    """Bytes of the largest value computed anywhere in a jaxpr (sub-jaxprs included)."""
    return max(_intermediate_bytes(jaxpr), default=0)


def _total_intermediates(jaxpr) -> int:
    """Bytes of all values computed in a jaxpr, each sub-jaxpr (a loop body) counted once."""
    return sum(_intermediate_bytes(jaxpr))


def choose_batch_size(fn: Callable, items, shared=None, budget_bytes: float = 2e9, max_batch: int = 1024,
                      compile: bool = True) -> int:
    """Largest batch ``B`` (items vmapped at once) whose memory fits ``budget_bytes``.

    Per-item memory is the larger of two estimates: the growth of the compiled temporaries
    (``compiled.memory_analysis()`` of ``vmap(fn)`` at B = 1 and 8), and 4x the largest intermediate value of
    one item (XLA:CPU's analysis can miss convolution workspaces; a few activations of the largest layer are
    live at once). ``compile=False`` skips the two compilations and takes the sum of every intermediate of
    one item instead (an upper bound on what is live at once; loop bodies counted once) — for expensive-to-
    compile functions such as optimization loops. Cached per (fn, item and shared shapes, budget).
    """
    key = (fn, jax.tree.structure(items), _shapes(_struct(items, 1)), jax.tree.structure(shared),
           _shapes(_struct(shared)), budget_bytes, max_batch, compile)
    if key not in _BATCH_CACHE and not compile:
        one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), _struct(items, 1))
        per_item = float(_total_intermediates(jax.make_jaxpr(fn)(one, _struct(shared)).jaxpr))
        _BATCH_CACHE[key] = int(max(1, min(max_batch, budget_bytes // max(per_item, 1.0))))
    if key not in _BATCH_CACHE:
        def temp(b):
            compiled = jax.jit(jax.vmap(fn, in_axes=(0, None))).lower(_struct(items, b), _struct(shared)).compile()
            stats = compiled.memory_analysis()
            return None if stats is None else float(stats.temp_size_in_bytes + stats.output_size_in_bytes)

        one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], a.dtype), _struct(items, 1))
        per_item = 4.0 * _largest_intermediate(jax.make_jaxpr(fn)(one, _struct(shared)).jaxpr)
        m1, m8 = temp(1), temp(8)
        if m1 is not None and m8 is not None:
            per_item = max(per_item, (m8 - m1) / 7.0)
        base = m1 or 0.0
        _BATCH_CACHE[key] = int(max(1, min(max_batch, (budget_bytes - base) // max(per_item, 1.0))))
    return _BATCH_CACHE[key]


_BATCH_CACHE: dict = {}


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
    return jax.tree.map(lambda a: jax.make_array_from_callback(np.shape(a), sharding,
                                                               lambda idx, a=np.asarray(a): a[idx]), tree)


def _run_chunk(compiled, mesh, chunk, shared):
    if mesh is None or jax.process_count() == 1:
        return {k: np.asarray(v) for k, v in compiled(chunk, shared).items()}
    from jax.experimental import multihost_utils

    out = compiled(_global(chunk, mesh, PartitionSpec("sweep")), _global(shared, mesh, PartitionSpec()))
    return {k: np.asarray(v) for k, v in multihost_utils.process_allgather(out, tiled=True).items()}


def _to_dataset(results: dict, dim: str, coords, extra_dims=None) -> xr.Dataset:
    """Metrics as variables over (dim, *extra dims); ``extra_dims`` names them per metric (default name_i)."""
    data = {}
    for name, arr in results.items():
        names = tuple((extra_dims or {}).get(name, ()))
        if len(names) != arr.ndim - 1:
            names = tuple(f"{name}_{i}" for i in range(1, arr.ndim))
        data[name] = ((dim, *names), arr)
    return xr.Dataset(data, coords={dim: coords})


def run_sweep(fn: Callable, items, shared=None, *, dim: str = "item", coords=None, batch_size: int | None = None,
              chunk_size: int | None = None, memory_budget: float = 2e9, store=None, tag: str = "", extra_dims=None,
              devices=None, progress: bool = True, desc: str = "sweep", identity: dict | None = None,
              overwrite: bool = False, recompute_damaged: bool = False) -> xr.Dataset:
    """Evaluate ``fn(item, shared) -> {name: array}`` for every item of ``items`` (leading axis = sweep).

    Args:
        shared: pytree passed unbatched to every call (weights, images, labels).
        dim/coords: name and coordinates of the sweep dimension in the result. extra_dims: ``{metric:
            (dim names of its trailing axes)}``, e.g. ``{"class_accuracy": ("class",)}``.
        batch_size: items vmapped per ``lax.map`` step (default: from ``memory_budget`` bytes).
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
    Example: ``run_sweep(lambda e, x: {"mean": (e * x).mean()}, jnp.arange(10.), jnp.ones(3), dim="gain")``.
    """
    from tqdm.auto import tqdm

    if batch_size is not None:
        batch_size = check_count("batch_size", batch_size)
    if chunk_size is not None:
        chunk_size = check_count("chunk_size", chunk_size)
    memory_budget = check_positive("memory_budget", memory_budget)
    if identity is not None and (not isinstance(identity, dict) or not all(isinstance(k, str) for k in identity)):
        raise ArgumentError(f"identity must be a dict of named settings {{name: value}}; got {identity!r:.200}")
    n = _n_items(items)
    devices = list(devices if devices is not None else jax.devices())
    n_dev = len(devices)
    if batch_size is None:
        batch_size = choose_batch_size(fn, _slice(items, 0, 1), shared, memory_budget / n_dev)
    batch_size = max(1, min(int(batch_size), math.ceil(n / n_dev)))
    steps = math.ceil(n / (n_dev * batch_size))
    batch_size = math.ceil(n / (n_dev * steps))             # balance batches so padding stays small
    step = n_dev * batch_size                                  # items per lax.map step over all devices
    chunk_steps = math.ceil((chunk_size or 8 * step) / step)
    chunk_size = step * max(1, min(chunk_steps, steps))         # a whole number of steps, at most the sweep
    compiled, mesh = _compile_chunk(fn, batch_size, tuple(devices))
    n_chunks = math.ceil(n / chunk_size)

    store = Path(store) if store is not None else None
    writer = jax.process_index() == 0
    manifest = {}

    def make_manifest():                                      # hashed once, by the process that writes
        manifest.update(describe(fn, items, shared, n, chunk_size, tag, identity))
        return manifest

    status, verified = store_status(store, make_manifest, n_chunks, chunk_size, n, overwrite, recompute_damaged)

    parts, resumed = [], 0
    bar = tqdm(range(n_chunks), desc=desc, unit="chunk", disable=not progress or not writer)
    for c in bar:
        start, stop = c * chunk_size, min(n, (c + 1) * chunk_size)
        path = store / f"chunk_{c:05d}.nc" if store is not None else None
        if status[c]:
            if c in verified:
                parts.append(verified.pop(c))
            else:                                              # other processes: process 0 verified it
                with xr.open_dataset(path) as ds:
                    parts.append({k: ds[k].values for k in ds.data_vars})
            resumed += 1
            continue
        out = _run_chunk(compiled, mesh, _pad(_slice(items, start, stop), chunk_size), shared)
        out = {k: v[: stop - start] for k, v in out.items()}
        for k, v in out.items():
            if np.issubdtype(v.dtype, np.floating) and np.isnan(v).any():
                first = start + int(np.argwhere(np.isnan(v).reshape(len(v), -1).any(1))[0, 0])
                raise SweepError(f"metric {k!r} is NaN for item {first} (chunk {c}); check the function "
                                 "and its inputs for that item")
        if path is not None and writer:
            ds = _to_dataset(out, dim, np.arange(start, stop))
            ds.attrs.update({"start": start, "stop": stop, "fingerprint": manifest["fingerprint"],
                             "checksum": chunk_checksum(out)})
            write_atomic(path, ds.to_netcdf)
        parts.append(out)
    ds = _to_dataset({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, dim,
                     np.arange(n) if coords is None else np.asarray(coords), extra_dims)
    ds.attrs.update({"n_items": n, "batch_size": batch_size, "chunk_size": chunk_size, "n_chunks": n_chunks,
                     "resumed_chunks": resumed, "devices": n_dev})
    return ds
