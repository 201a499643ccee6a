"""Checkpoints: one msgpack file per save (flax.serialization) with a header that is checked on load.

A checkpoint holds a pytree ``state`` and ``meta`` (JSON-able: model spec, epoch, metrics). Loading checks the
file's magic, its integrity (sha256 of the payload) and that the stored tree matches the target's structure and
shapes, and raises :class:`CheckpointError` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

MAGIC = b"INSILICO-CKPT-1\n"


class CheckpointError(ValueError):
    """A checkpoint file is corrupt or does not match the model it is loaded into."""


def save_checkpoint(path, state, meta: dict | None = None) -> Path:
    """Write ``state`` (any pytree of arrays) and ``meta`` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = serialization.to_bytes(jax.device_get(state))
    meta = meta or {}
    header = json.dumps({"meta": meta, "sha256": hashlib.sha256(payload).hexdigest(),
                         "sha256_with_meta": _with_meta(meta, payload)}).encode()
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")     # one per writer
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(8, "little") + header + payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_meta(path) -> dict:
    """The ``meta`` dict of a checkpoint, without reading its arrays."""
    return _read(path)[0]["meta"]


def _read(path):
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise CheckpointError(f"{path} is not an insilico checkpoint (bad magic bytes)")
    try:
        n = int.from_bytes(raw[len(MAGIC):len(MAGIC) + 8], "little")
        start = len(MAGIC) + 8
        header = json.loads(raw[start:start + n])
        payload = raw[start + n:]
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt: unreadable header ({e})") from None
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(f"{path} is corrupt: payload checksum mismatch (truncated or modified file)")
    if "sha256_with_meta" in header and _with_meta(header.get("meta"), payload) != header["sha256_with_meta"]:
        raise CheckpointError(f"{path} is corrupt: its header (epoch, history, identity) was modified")
    return header, payload


def _with_meta(meta, payload: bytes) -> str:
    """sha256 of the meta (canonical JSON) and the payload: the header cannot change unseen (files written before
    this checksum carry only the payload's)."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode() + payload).hexdigest()


def load_checkpoint(path, target):
    """Restore a checkpoint into the structure of ``target``; returns ``(state, meta)``.

    ``target``: a pytree of arrays, or of ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape(model.init, ...)``:
    nothing is initialized or compiled); only its structure, shapes and dtypes are used. The restored leaves are
    the stored numpy arrays.
    Raises :class:`CheckpointError` if the file is corrupt, its arrays differ from ``target`` in
    structure, shape or dtype kind (e.g. a checkpoint of another architecture), or any holds NaN or inf.
    """
    header, payload = _read(path)
    raw = serialization.msgpack_restore(payload)
    target_raw = serialization.to_state_dict(target)
    if isinstance(raw, dict) and isinstance(target_raw, dict):
        for k, v in target_raw.items():                 # a field the model leaves empty (e.g. no constants)
            if v is None and k not in raw:             # restores from checkpoints written before it existed
                raw[k] = None
    problems = _compare(raw, target_raw, "")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"{path} does not match the model: {shown}")
    bad = _nonfinite(raw, "")
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"{path} holds NaN or inf values ({shown}); weights like these record nothing but "
                              "NaN. Load an earlier checkpoint, or retrain")
    return serialization.from_state_dict(target, raw), header["meta"]


def _nonfinite(stored, prefix) -> list[str]:
    """Paths of the floating-point arrays of a restored state dict that hold NaN or inf (with their counts)."""
    if isinstance(stored, dict):
        return [p for k, v in stored.items() for p in _nonfinite(v, f"{prefix}/{k}")]
    a = np.asarray(stored) if stored is not None else None
    if a is None or not np.issubdtype(a.dtype, np.inexact):
        return []
    n = int(np.size(a) - np.isfinite(a).sum())
    return [f"{prefix}: {n} of {a.size}"] if n else []


def _compare(stored, target, prefix) -> list[str]:
    """Differences of a restored state dict from the target's (structure, shapes, dtype kinds); the target's leaves
    are arrays or ``jax.ShapeDtypeStruct``."""
    if isinstance(target, dict):
        if not isinstance(stored, dict):
            return [f"{prefix or '/'}: expected a mapping"]
        out = [f"{prefix}/{k}: missing in checkpoint" for k in target if k not in stored]
        out += [f"{prefix}/{k}: not in the model" for k in stored if k not in target]
        for k in target:
            if k in stored:
                out += _compare(stored[k], target[k], f"{prefix}/{k}")
        return out
    if target is None or isinstance(target, (int, float, str)):
        return []
    if isinstance(stored, dict):
        return [f"{prefix}: a mapping in checkpoint, an array in model"]
    s = np.asarray(stored)
    t_shape = tuple(target.shape) if hasattr(target, "shape") else np.shape(target)
    if s.shape != t_shape:
        return [f"{prefix}: shape {s.shape} in checkpoint, {t_shape} in model"]
    t_dtype = target.dtype if hasattr(target, "dtype") else np.asarray(target).dtype
    s_kind, t_kind = _kind(s.dtype), _kind(t_dtype)
    if t_kind is not None and s_kind != t_kind:
        return [f"{prefix}: dtype {s.dtype} ({s_kind or 'not numeric'}) in checkpoint, {t_dtype} ({t_kind}) in model"]
    return []


_KINDS = (("floating-point", jnp.floating), ("complex", jnp.complexfloating), ("integer", jnp.integer),
          ("boolean", jnp.bool_))


def _kind(dtype) -> str | None:
    """The kind of a dtype (floating-point — bfloat16 included —, complex, integer, boolean); None for others
    (PRNG keys)."""
    return next((kind for kind, cls in _KINDS if jnp.issubdtype(dtype, cls)), None)
