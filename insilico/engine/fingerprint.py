"""What made a sweep, as a manifest records it (:func:`describe`): the items and every array of ``shared`` by
content hash, the static part of ``shared`` (a subject's model and sites), the function by module, name,
closure values and code, insilico's and JAX's versions, and named settings — all without object addresses, so
that the same sweep describes itself the same way in every process (:func:`describe_static` for one setting)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import jax
import numpy as np

from ..validation import ArgumentError

__all__ = ["FORMAT", "describe", "describe_static", "stable_text"]

FORMAT = 4                      # the manifest layout (4: objects by their attributes); a store of another is refused


def _is_key_array(a) -> bool:
    dtype = getattr(a, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


class _Hasher:
    """Content hashes of arrays and pytrees, each array hashed once per call (memoized by identity)."""

    def __init__(self) -> None:
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
    """Module and qualified name of ``fn``, a hash of its code, its simple closure values and defaults (repr),
    array closure values (content hash) and closed-over functions (described the same way, two levels deep)."""
    import functools

    if isinstance(fn, functools.partial):
        args = [_describe_value(a, hasher, depth) for a in fn.args]
        args += [f"{k}={_describe_value(v, hasher, depth)}" for k, v in sorted(fn.keywords.items())]
        return f"partial({_describe_fn(fn.func, hasher, depth)}, {', '.join(args)})"
    owner = getattr(fn, "__self__", None) if hasattr(fn, "__func__") else None       # a bound method's object
    target = getattr(fn, "__wrapped__", fn)                   # a jitted function: the function it wraps
    target = getattr(target, "__func__", target)              # bound methods: the function
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None) or type(target).__module__
    parts = []
    code = getattr(target, "__code__", None)
    if code is not None:                # its body: an edited loss under the same name is another function
        parts.append(f"code={_code(target)[:12]}")
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
    if owner is not None:
        parts.insert(0, f"self={_describe_value(owner, hasher, depth)}")
    if code is None and not isinstance(target, type):                        # a callable object: its fields
        if dataclasses.is_dataclass(target):
            parts.append(_describe_value(target, hasher, depth + 1))
        elif depth < 3:
            parts.append(_describe_object(target, hasher, depth + 1))
    return f"{module}.{name}" + (f"({', '.join(parts)})" if parts else "")


def stable_text(text: str) -> str:
    """``text`` without object addresses (they change from process to process)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def _describe_value(value, hasher: _Hasher, depth: int) -> str:
    """Simple values by repr, arrays by content hash, sequences, dicts with simple keys and dataclasses (settings
    objects, Flax modules) by their parts, functions by :func:`_describe_fn`, other objects by their attributes
    (:func:`_describe_object`); three levels deep, below that by type only."""
    if _simple(value):
        return repr(_plain(value))
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"#{hasher.array(value)[:12]}"
    if depth >= 3:
        return f"<{type(value).__qualname__}>"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_describe_value(v, hasher, depth + 1) for v in value)}]"
    if isinstance(value, dict) and all(_simple(k) for k in value):
        return "{" + ", ".join(f"{k!r}: {_describe_value(v, hasher, depth + 1)}" for k, v in
                               sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):        # settings objects, Flax modules
        fields = [f"{f.name}={_describe_value(getattr(value, f.name, None), hasher, depth + 1)}"
                  for f in dataclasses.fields(value) if f.name not in ("parent", "name")]
        return f"{type(value).__module__}.{type(value).__qualname__}({', '.join(fields)})"
    if callable(value) and (hasattr(value, "__code__") or hasattr(value, "__func__") or hasattr(value, "__wrapped__")):
        return _describe_fn(value, hasher, depth + 1)
    return _describe_object(value, hasher, depth)


def _describe_object(value, hasher: _Hasher, depth: int) -> str:
    """Any other object by its type and its attributes (``vars``, each described the same way), so that an object a
    function closes over (a settings object of the user's own class) is part of what made a sweep; an object
    without attributes (a lock, a C object) by its type only."""
    attributes = getattr(value, "__dict__", None)
    if not isinstance(attributes, dict) or not attributes or not all(isinstance(k, str) for k in attributes):
        return f"<{type(value).__qualname__}>"
    parts = [f"{k}={_describe_value(v, hasher, depth + 1)}" for k, v in sorted(attributes.items())]
    return f"{type(value).__module__}.{type(value).__qualname__}({', '.join(parts)})"


def _code(fn) -> str:
    """A hash of the body of ``fn`` (its bytecode and constants): an edited function is another function."""
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    target = getattr(getattr(fn, "__wrapped__", fn), "__func__", getattr(fn, "__wrapped__", fn))
    code = getattr(target, "__code__", None)
    if code is None:
        return ""
    return _hash_text(code.co_code.hex() + stable_text(repr(code.co_consts)))


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


def describe(fn, items, shared, n, chunk_size, tag, identity) -> dict:
    """The manifest's record of what makes the sweep: readable names -> hashes or values."""
    hasher = _Hasher()
    groups: dict = {}
    for path, digest in hasher.leaves(shared):                 # grouped by top-level entry of ``shared``
        m = re.match(r"^(\[[^\]]*\]|\.[A-Za-z_]\w*)?", path)          # always matches (maybe empty)
        head = m.group(0) if m is not None else ""
        groups.setdefault(f"shared{head}", []).append((path, digest))
    from .. import __version__

    components = {"items": hasher.tree(items), "function": _describe_fn(fn, hasher), "code": _code(fn), "n": n,
                  "chunk_size": chunk_size, "tag": str(tag),
                  "shared": {name: _hash_text(json.dumps(v)) for name, v in groups.items()},
                  # the static part of ``shared`` (a subject's model and sites: the same weights in another
                  # architecture compute other numbers) and the code that ran
                  "shared_static": _hash_text(stable_text(str(jax.tree.structure(shared)))),
                  "versions": f"insilico {__version__}, jax {jax.__version__}"}
    settings = {str(k): _describe_setting(v, hasher) for k, v in (identity or {}).items()}
    fingerprint = _hash_text(json.dumps({"components": components,
                                         "identity": {k: e["hash"] for k, e in settings.items()}}, sort_keys=True))
    return {"format": FORMAT, "fingerprint": fingerprint, "n": n, "chunk_size": chunk_size,
            "components": components, "identity": settings}


def describe_static(value) -> str:
    """A description of a static setting that is the same in every run: a dataclass (a program) by its type and
    fields, functions by module, name and closure values, arrays by content hash — never by memory address."""
    import dataclasses

    hasher = _Hasher()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(f"{f.name}={describe_static(getattr(value, f.name))}" for f in dataclasses.fields(value))
        return f"{type(value).__module__}.{type(value).__qualname__}({fields})"
    if callable(value) and not isinstance(value, type):
        return _describe_fn(value, hasher)
    return _describe_value(value, hasher, 0)
