"""The sweep store: a directory of per-chunk NetCDF files that knows what made it.

A store's ``manifest.json`` records, under readable names, a content hash of everything that determines a sweep's
results — the items, every array of ``shared`` (named by key path), the function (module, name and simple closure
values), the chunk layout, the tag and the caller's named ``identity`` settings — and a rerun that differs is
refused naming what differs. Each chunk carries its item range, the store's fingerprint and a checksum of its
values, all verified before it is reused; damaged chunks or manifests are named, and recomputed when asked.
Manifest and chunks are written atomically. :func:`insilico.engine.chunks.run_chunks` is the only user.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from .fingerprint import FORMAT, describe, describe_static

__all__ = ["SweepError", "describe", "describe_static", "store_status", "chunk_checksum", "write_atomic"]


class SweepError(ValueError):
    """An empty sweep, a metric that is NaN, or a store that belongs to another sweep or is damaged."""


# ------------------------------------------------------------------------------------------ store identity
# A store's manifest records, under readable names, a hash of everything that determines its results: the items,
# every array of ``shared``, the function (module, name and simple closure values), the chunk layout, the tag and
# the caller's named ``identity`` settings. Each chunk carries its item range, the store's fingerprint and a
# checksum of its values; all are verified before a chunk is reused.

_WAY_OUT = "use a new store directory, or pass overwrite=True (CLI: --overwrite) to start over"
_CHUNK_NAME = re.compile(r"chunk_\d{5,}\.nc(\.[0-9a-f-]+)?(\.tmp)?$")
_MANIFEST = re.compile(r"manifest\.json(\.[0-9a-f-]+)?(\.tmp)?$")


def _differ(name: str) -> str:
    return f"{name} {'differ' if name.endswith('s') else 'differs'}"


def _around_difference(a: str, b: str, width: int = 160) -> tuple[str, str]:
    """``a`` and ``b`` cut to about ``width`` characters around where they first differ (two long descriptions
    that differ late would otherwise show the same cut-off start)."""
    if len(a) <= width and len(b) <= width:
        return a, b
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, first - width // 2)
    cut = lambda t: ("..." if start else "") + t[start:start + width] + ("..." if len(t) > start + width else "")
    return cut(a), cut(b)


def _differences(old: dict, new: dict) -> list:
    """What differs between two manifests, in words: named settings first (when any differs, the generic
    components they explain are not repeated)."""
    named = []
    old_id, new_id = old.get("identity", {}), new["identity"]
    for name in list(old_id) + [k for k in new_id if k not in old_id]:
        a, b = old_id.get(name), new_id.get(name)
        if a is not None and b is not None and a.get("hash") == b.get("hash"):
            continue
        if a is None or b is None or "value" in a or "value" in b:
            then = "not set" if a is None else a.get("value", "an array")
            now = "not set" if b is None else b.get("value", "an array")
            named.append(f"{name}: {then} then, {now} now")
        else:
            named.append(_differ(name))
    if named:
        return named
    out = []
    oc, nc = old.get("components", {}), new["components"]
    for name in ("n", "chunk_size", "tag", "function"):
        if oc.get(name) != nc.get(name):
            a, b = _around_difference(repr(oc.get(name)), repr(nc.get(name)))
            hint = (" (the chunk layout follows batch_size, chunk_size and the number of devices)"
                    if name == "chunk_size" else "")
            out.append(f"{name}: {a} then, {b} now{hint}")
    if oc.get("items") != nc.get("items"):
        out.append("items differ")
    for name, words in (("code", "the function's code differs"), ("versions", None),
                        ("shared_static", "the static part of shared differs (e.g. a subject's model or sites)")):
        if oc.get(name) != nc.get(name):
            out.append(words or f"{name}: {oc.get(name)} then, {nc.get(name)} now")
    os_, ns = oc.get("shared", {}), nc.get("shared", {})
    for name in list(os_) + [k for k in ns if k not in os_]:
        if os_.get(name) != ns.get(name):
            out.append(_differ(name) if name in os_ and name in ns else
                       f"{name}: {'absent' if name not in os_ else 'present'} then, "
                       f"{'absent' if name not in ns else 'present'} now")
    return out


def chunk_checksum(values: dict) -> str:
    """Checksum of a chunk's values, insensitive to the dtype widening/narrowing of a NetCDF round trip."""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(values):
        a = np.asarray(values[name])
        kind = "i" if a.dtype.kind in "biu" else a.dtype.kind     # NetCDF 3 stores bool and uint as ints
        canonical = {"i": np.int64, "f": np.float64, "c": np.complex128}.get(kind)
        a = a.astype(canonical) if canonical is not None else a
        h.update(f"{name}|{kind}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class _Damaged(Exception):
    """A chunk file that cannot be trusted (the reason is the message)."""


def _read_chunk(path: Path, start: int, stop: int, fingerprint: str) -> dict:
    """The values of a chunk file after checking that it opens, belongs to this store, covers items
    [start, stop) and matches its checksum; raises :class:`_Damaged` otherwise."""
    try:
        with xr.open_dataset(path) as ds:
            ds.load()
            attrs = dict(ds.attrs)
            values = {k: ds[k].values for k in ds.data_vars}
            index = {k: np.asarray(v) for k, v in ds.indexes.items()}
    except Exception as e:                                     # any failure to parse is damage
        raise _Damaged(f"cannot be opened ({type(e).__name__}: {str(e)[:200]})") from None
    if "checksum" not in attrs or "fingerprint" not in attrs:
        raise _Damaged("carries no checksum or fingerprint (not written by this version of the sweep engine)")
    if attrs["fingerprint"] != fingerprint:
        raise _Damaged(f"belongs to another sweep (fingerprint {attrs['fingerprint']}, this store's {fingerprint})")
    try:
        span = (int(attrs["start"]), int(attrs["stop"]))
    except (KeyError, TypeError, ValueError):
        span = None
    coords = list(index.values())
    if span != (start, stop) or len(coords) != 1 or not np.array_equal(coords[0], np.arange(start, stop)):
        got = f"{span[0]}:{span[1]}" if span else "unknown"
        raise _Damaged(f"holds items {got} (coordinates {_show_coords(coords)}), expected {start}:{stop}")
    if any(np.shape(v)[:1] != (stop - start,) for v in values.values()):
        raise _Damaged(f"holds arrays whose leading axis is not {stop - start} items")
    if attrs["checksum"] != chunk_checksum(values):
        raise _Damaged("fails its checksum: its values were altered")
    return values


def _show_coords(coords) -> str:
    if len(coords) != 1:
        return f"{len(coords)} index coordinates"
    c = coords[0]
    return "empty" if c.size == 0 else f"{c[0]}..{c[-1]}" if c.size > 1 else f"{c[0]}"


def write_atomic(path: Path, write):
    """``write(tmp)`` then rename over ``path``; a failed write (a full disk) leaves no partial file, and two
    writers of one file never share a temporary file (each has its own name)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _clear_store(store: Path):
    """Delete this sweep store's own files (manifest, chunks, temporary files); nothing else in ``store``."""
    for f in store.iterdir():
        if (_MANIFEST.match(f.name) or _CHUNK_NAME.match(f.name)) and f.is_file():
            f.unlink()


def _open_store(store: Path, manifest: dict, n_chunks: int, chunk_size: int, n: int, overwrite: bool,
                recompute_damaged: bool):
    """Process 0's view of the store: check (or write) the manifest and verify every finished chunk. Returns
    ``(status, values)``: status per chunk 0 = to compute, 1 = verified (``values[c]`` holds it)."""
    store.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear_store(store)
    mpath = store / "manifest.json"
    write_manifest = not mpath.exists()
    if not write_manifest:
        try:
            old = json.loads(mpath.read_text())
            if not isinstance(old, dict) or not {"n", "chunk_size", "fingerprint"} <= set(old):
                raise ValueError("not a sweep manifest")
        except (ValueError, OSError, UnicodeDecodeError) as e:
            if not recompute_damaged:
                raise SweepError(f"the manifest {mpath} is damaged ({type(e).__name__}: {str(e)[:200]}), so the "
                                 f"sweep it belongs to is unknown; {_WAY_OUT}, or pass recompute_damaged=True to "
                                 "rewrite it and recompute every chunk that does not match this sweep") from None
            write_manifest = True
        else:
            if old.get("format") != FORMAT:
                raise SweepError(f"{store} holds a sweep store written by an older version, whose chunks carry no "
                                 f"checksums and cannot be verified; {_WAY_OUT}")
            if old["fingerprint"] != manifest["fingerprint"]:
                what = _differences(old, manifest) or ["its fingerprint differs"]
                raise SweepError(f"{store} holds another sweep: {'; '.join(what)}. To run this one, {_WAY_OUT}")
    if write_manifest:
        write_atomic(mpath, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True)))
    status, values, damaged = np.zeros(n_chunks, np.int8), {}, []
    for c in range(n_chunks):
        path = store / f"chunk_{c:05d}.nc"
        if not path.exists():
            continue
        try:
            values[c] = _read_chunk(path, c * chunk_size, min(n, (c + 1) * chunk_size), manifest["fingerprint"])
            status[c] = 1
        except _Damaged as e:
            damaged.append(f"{path} {e}")
    if damaged and not recompute_damaged:
        more = f" (and {len(damaged) - 3} more)" if len(damaged) > 3 else ""
        raise SweepError(f"damaged chunk{'s' if len(damaged) > 1 else ''} in {store}: {'; '.join(damaged[:3])}{more}. "
                         f"Pass recompute_damaged=True to recompute just the damaged chunks, or {_WAY_OUT}")
    return status, values


def store_status(store, manifest_fn, n_chunks, chunk_size, n, overwrite, recompute_damaged):
    """Chunk status and verified values as process 0 sees them, so every process skips the same chunks; a store
    that process 0 refuses raises :class:`SweepError` on every process."""
    status, values, error = np.zeros(n_chunks, np.int8), {}, None
    if store is not None and jax.process_index() == 0:
        try:
            status, values = _open_store(store, manifest_fn(), n_chunks, chunk_size, n, overwrite,
                                         recompute_damaged)
        except SweepError as e:
            if jax.process_count() == 1:
                raise
            error = e
    if store is not None and jax.process_count() > 1:
        from jax.experimental import multihost_utils

        flags = np.concatenate([[int(error is not None)], status]).astype(np.int32)
        flags = np.asarray(multihost_utils.broadcast_one_to_all(flags))
        if error is not None:
            raise error
        if flags[0]:
            raise SweepError(f"process 0 refused the sweep store {store}; see its error")
        status = flags[1:].astype(np.int8)
    return status, values
