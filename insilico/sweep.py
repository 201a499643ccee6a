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

import hashlib
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .validation import ArgumentError, check_count, check_positive

__all__ = ["run_sweep", "choose_batch_size", "initialize_distributed", "SweepError"]


class SweepError(ValueError):
    """An empty sweep, a metric that is NaN, or a store that belongs to another sweep or is damaged."""


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


# ------------------------------------------------------------------------------------------ store identity
# A store's manifest records, under readable names, a hash of everything that determines its results: the items,
# every array of ``shared``, the function (module, name and simple closure values), the chunk layout, the tag and
# the caller's named ``identity`` settings. Each chunk carries its item range, the store's fingerprint and a
# checksum of its values; all are verified before a chunk is reused.

_FORMAT = 2
_WAY_OUT = "use a new store directory, or pass overwrite=True (CLI: --overwrite) to start over"
_CHUNK_NAME = re.compile(r"chunk_\d{5,}\.nc(\.tmp)?$")


def _is_key_array(a) -> bool:
    dtype = getattr(a, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


class _Hasher:
    """Content hashes of arrays and pytrees, each array hashed once per call (memoized by identity)."""

    def __init__(self):
        self._memo: dict = {}

    def array(self, leaf) -> str:
        hit = self._memo.get(id(leaf))
        if hit is not None and hit[0] is leaf:
            return hit[1]
        h = hashlib.blake2b(digest_size=16)
        if _is_key_array(leaf):
            h.update(f"key:{leaf.dtype}".encode())
            a = np.asarray(jax.random.key_data(leaf))
        else:
            a = np.asarray(leaf)
        if a.dtype == object:                                  # not an array of numbers: its repr names it
            h.update(f"object:{a!r}".encode())
        else:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        digest = h.hexdigest()
        self._memo[id(leaf)] = (leaf, digest)                  # holding the leaf keeps its id unique
        return digest

    def leaves(self, tree) -> list:
        """``(key path, hash)`` of every array of a pytree (paths name the structure; no treedef strings)."""
        flat, _ = jax.tree_util.tree_flatten_with_path(tree)
        return [(jax.tree_util.keystr(path), self.array(leaf)) for path, leaf in flat]

    def tree(self, tree) -> str:
        return _hash_text(json.dumps(self.leaves(tree)))


def _hash_text(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _simple(value) -> bool:
    if isinstance(value, (str, int, float, bool, type(None), np.generic)):
        return not isinstance(value, np.generic) or np.ndim(value) == 0
    return isinstance(value, tuple) and all(_simple(v) for v in value)


def _plain(value):
    """NumPy scalars as Python numbers (so 3 and np.int64(3) describe the same setting)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _describe_fn(fn, hasher: _Hasher, depth: int = 0) -> str:
    """Module and qualified name of ``fn``, with its simple closure values and defaults (repr), array closure
    values (content hash) and closed-over functions (described the same way, two levels deep)."""
    import functools

    if isinstance(fn, functools.partial):
        args = [_describe_value(a, hasher, depth) for a in fn.args]
        args += [f"{k}={_describe_value(v, hasher, depth)}" for k, v in sorted(fn.keywords.items())]
        return f"partial({_describe_fn(fn.func, hasher, depth)}, {', '.join(args)})"
    target = getattr(fn, "__func__", fn)                      # bound methods: the function
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None) or type(target).__module__
    parts = []
    code = getattr(target, "__code__", None)
    if code is not None and getattr(target, "__closure__", None):
        for var, cell in zip(code.co_freevars, target.__closure__):
            try:
                value = cell.cell_contents
            except ValueError:                                # an empty cell
                continue
            parts.append(f"{var}={_describe_value(value, hasher, depth)}")
    for i, value in enumerate(getattr(target, "__defaults__", None) or ()):
        parts.append(f"default{i}={_describe_value(value, hasher, depth)}")
    for k, value in sorted((getattr(target, "__kwdefaults__", None) or {}).items()):
        parts.append(f"{k}={_describe_value(value, hasher, depth)}")
    return f"{module}.{name}" + (f"({', '.join(parts)})" if parts else "")


def _describe_value(value, hasher: _Hasher, depth: int) -> str:
    if _simple(value):
        return repr(_plain(value))
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"#{hasher.array(value)[:12]}"
    if callable(value) and depth < 2 and (hasattr(value, "__code__") or hasattr(value, "__func__")):
        return _describe_fn(value, hasher, depth + 1)
    return f"<{type(value).__qualname__}>"


def _describe_setting(value, hasher: _Hasher) -> dict:
    """One named setting of ``identity``: ``{"hash": ...}`` plus a readable ``"value"`` for simple values and
    small arrays (shown when the setting differs); larger arrays and pytrees by content hash only."""
    if _simple(value):
        text = repr(_plain(value))
        return {"hash": _hash_text(text), "value": text}
    try:
        entry = {"hash": hasher.tree(value)}
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"identity setting must be a simple value (str, number, bool, None, tuple), an array "
                            f"or a pytree of arrays; got {type(value).__name__} ({e})") from None
    leaves = jax.tree.leaves(value)
    if len(leaves) == 1 and not isinstance(value, dict):
        leaf = leaves[0]
        a = np.asarray(jax.random.key_data(leaf)) if _is_key_array(leaf) else np.asarray(leaf)
        if a.dtype != object and a.size <= 8:
            entry["value"] = repr(a.tolist())
    return entry


def _components(fn, items, shared, n, chunk_size, tag, identity) -> dict:
    """The manifest's record of what makes the sweep: readable names -> hashes or values."""
    hasher = _Hasher()
    groups: dict = {}
    for path, digest in hasher.leaves(shared):                 # grouped by top-level entry of ``shared``
        head = re.match(r"^(\[[^\]]*\]|\.[A-Za-z_]\w*)?", path).group(0)
        groups.setdefault(f"shared{head}", []).append((path, digest))
    components = {"items": hasher.tree(items), "function": _describe_fn(fn, hasher), "n": n,
                  "chunk_size": chunk_size, "tag": str(tag),
                  "shared": {name: _hash_text(json.dumps(v)) for name, v in groups.items()}}
    settings = {str(k): _describe_setting(v, hasher) for k, v in (identity or {}).items()}
    fingerprint = _hash_text(json.dumps({"components": components,
                                         "identity": {k: e["hash"] for k, e in settings.items()}}, sort_keys=True))
    return {"format": _FORMAT, "fingerprint": fingerprint, "n": n, "chunk_size": chunk_size,
            "components": components, "identity": settings}


def _differ(name: str) -> str:
    return f"{name} {'differ' if name.endswith('s') else 'differs'}"


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
            a, b = (repr(v) if len(repr(v)) <= 160 else repr(v)[:157] + "..." for v in (oc.get(name), nc.get(name)))
            hint = (" (the chunk layout follows batch_size, chunk_size and the number of devices)"
                    if name == "chunk_size" else "")
            out.append(f"{name}: {a} then, {b} now{hint}")
    if oc.get("items") != nc.get("items"):
        out.append("items differ")
    os_, ns = oc.get("shared", {}), nc.get("shared", {})
    for name in list(os_) + [k for k in ns if k not in os_]:
        if os_.get(name) != ns.get(name):
            out.append(_differ(name) if name in os_ and name in ns else
                       f"{name}: {'absent' if name not in os_ else 'present'} then, "
                       f"{'absent' if name not in ns else 'present'} now")
    return out


def _checksum(values: dict) -> str:
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
        span = (int(attrs.get("start")), int(attrs.get("stop")))
    except (TypeError, ValueError):
        span = None
    coords = list(index.values())
    if span != (start, stop) or len(coords) != 1 or not np.array_equal(coords[0], np.arange(start, stop)):
        got = f"{span[0]}:{span[1]}" if span else "unknown"
        raise _Damaged(f"holds items {got} (coordinates {_show_coords(coords)}), expected {start}:{stop}")
    if any(np.shape(v)[:1] != (stop - start,) for v in values.values()):
        raise _Damaged(f"holds arrays whose leading axis is not {stop - start} items")
    if attrs["checksum"] != _checksum(values):
        raise _Damaged("fails its checksum: its values were altered")
    return values


def _show_coords(coords) -> str:
    if len(coords) != 1:
        return f"{len(coords)} index coordinates"
    c = coords[0]
    return "empty" if c.size == 0 else f"{c[0]}..{c[-1]}" if c.size > 1 else f"{c[0]}"


def _write_atomic(path: Path, write):
    """``write(tmp)`` then rename over ``path``; a failed write (a full disk) leaves no partial file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _clear_store(store: Path):
    """Delete this sweep store's own files (manifest, chunks, temporary files); nothing else in ``store``."""
    for f in store.iterdir():
        if (f.name in ("manifest.json", "manifest.json.tmp") or _CHUNK_NAME.match(f.name)) and f.is_file():
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
            if old.get("format") != _FORMAT:
                raise SweepError(f"{store} holds a sweep store written by an older version, whose chunks carry no "
                                 f"checksums and cannot be verified; {_WAY_OUT}")
            if old["fingerprint"] != manifest["fingerprint"]:
                what = _differences(old, manifest) or ["its fingerprint differs"]
                raise SweepError(f"{store} holds another sweep: {'; '.join(what)}. To run this one, {_WAY_OUT}")
    if write_manifest:
        _write_atomic(mpath, lambda tmp: tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True)))
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


def _store_status(store, manifest_fn, n_chunks, chunk_size, n, overwrite, recompute_damaged):
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
        manifest.update(_components(fn, items, shared, n, chunk_size, tag, identity))
        return manifest

    status, verified = _store_status(store, make_manifest, n_chunks, chunk_size, n, overwrite, recompute_damaged)

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
                             "checksum": _checksum(out)})
            _write_atomic(path, ds.to_netcdf)
        parts.append(out)
    ds = _to_dataset({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, dim,
                     np.arange(n) if coords is None else np.asarray(coords), extra_dims)
    ds.attrs.update({"n_items": n, "batch_size": batch_size, "chunk_size": chunk_size, "n_chunks": n_chunks,
                     "resumed_chunks": resumed, "devices": n_dev})
    return ds
