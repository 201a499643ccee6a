"""The one chunk loop under every form of the engine: items in chunks, each computed or reused from the store.

:func:`run_chunks` walks ``n`` items in chunks of ``chunk_size``; for each chunk it either takes the verified values
from the store (a resumed run) or calls ``compute(start, stop) -> {name: array with a leading item axis}``, checks
the values (NaN is an error) and writes them to the store atomically; a progress bar counts chunks. The map form
(:func:`insilico.engine.run_sweep`) and the program form (:func:`insilico.engine.run_programs`) differ only in
``compute``.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .store import SweepError, chunk_checksum, store_status, write_atomic

__all__ = ["run_chunks", "check_no_nan", "n_items", "take", "pad_to"]


def n_items(items) -> int:
    """The common length of the leading (item) axis of every array of ``items``."""
    leaves = jax.tree.leaves(items)
    if not leaves:
        raise SweepError("empty sweep: items has no arrays")
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if len(lengths) != 1 or -1 in lengths:
        raise SweepError(f"every array in items needs the same leading (sweep) axis; got lengths {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise SweepError("empty sweep: zero items")
    return n


def take(items, start: int, stop: int):
    """Items ``start:stop`` of every array of ``items``."""
    return jax.tree.map(lambda a: a[start:stop], items)


def pad_to(items, size: int):
    """Pad the leading axis to ``size`` by repeating the first item (the results of pads are dropped)."""
    def pad(a):
        extra = size - a.shape[0]
        xp = np if isinstance(a, np.ndarray) else jnp          # NumPy items stay NumPy: nothing to compile
        return a if extra == 0 else xp.concatenate([a, xp.repeat(a[:1], extra, axis=0)])
    return jax.tree.map(pad, items)


def check_no_nan(values: dict, start: int, chunk: int) -> None:
    """Raise :class:`SweepError` naming the metric and the first item whose value is NaN."""
    for k, v in values.items():
        if np.issubdtype(v.dtype, np.floating) and np.isnan(v).any():
            first = start + int(np.argwhere(np.isnan(v).reshape(len(v), -1).any(1))[0, 0])
            raise SweepError(f"metric {k!r} is NaN for item {first} (chunk {chunk}); check the function and its "
                             "inputs for that item")


def to_dataset(results: dict, dim: str, coords, extra_dims=None) -> xr.Dataset:
    """Metrics as variables over (dim, *extra dims); ``extra_dims`` names them per metric (default name_i)."""
    data = {}
    for name, arr in results.items():
        names = tuple((extra_dims or {}).get(name, ()))
        if len(names) != arr.ndim - 1:
            names = tuple(f"{name}_{i}" for i in range(1, arr.ndim))
        data[name] = ((dim, *names), arr)
    return xr.Dataset(data, coords={dim: coords})


def run_chunks(compute: Callable[[int, int], dict], n: int, chunk_size: int, *, store=None,
               manifest: Callable[[], dict] | None = None, dim: str = "item", progress: bool = True,
               desc: str = "sweep", overwrite: bool = False, recompute_damaged: bool = False,
               check: Callable[[dict, int, int], None] = check_no_nan) -> tuple[dict, int]:
    """Every item's values, chunk by chunk: ``({name: array over all n items}, chunks reused from the store)``.

    ``compute(start, stop)`` returns the chunk's values as NumPy arrays with ``stop - start`` items; ``check(values,
    start, chunk)`` raises on values that must not be kept (default: any NaN). With ``store`` (a directory) every
    finished chunk is written to ``store/chunk_NNNNN.nc`` with its item range, the store's fingerprint (from
    ``manifest()``, the record of what made the run) and a checksum; a rerun reuses verified chunks and refuses
    a store made by something else. In a multi-process run every process computes, process 0 writes.
    """
    from tqdm.auto import tqdm

    n_chunks = -(-n // chunk_size)
    store = Path(store) if store is not None else None
    writer = jax.process_index() == 0
    record: dict = {}

    def make_manifest():                                      # hashed once, by the process that writes
        record.update(manifest() if manifest is not None else {})
        return record

    status, verified = store_status(store, make_manifest, n_chunks, chunk_size, n, overwrite, recompute_damaged)
    parts, resumed = [], 0
    for c in tqdm(range(n_chunks), desc=desc, unit="chunk", disable=not progress or not writer):
        start, stop = c * chunk_size, min(n, (c + 1) * chunk_size)
        path = store / f"chunk_{c:05d}.nc" if store is not None else None
        if status[c] and path is not None:                    # a stored chunk (no store: every status is 0)
            if c in verified:
                parts.append(verified.pop(c))
            else:                                              # other processes: process 0 verified it
                with xr.open_dataset(path) as ds:
                    parts.append({k: ds[k].values for k in ds.data_vars})
            resumed += 1
            continue
        out = {k: np.asarray(v) for k, v in compute(start, stop).items()}
        check(out, start, c)
        if path is not None and writer:
            ds = to_dataset(out, dim, np.arange(start, stop))
            ds.attrs.update({"start": start, "stop": stop, "fingerprint": record["fingerprint"],
                             "checksum": chunk_checksum(out)})
            write_atomic(path, ds.to_netcdf)
        parts.append(out)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, resumed
