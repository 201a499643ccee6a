"""Where data lives: ``INSILICO_DATA`` (read-only datasets) and the cache of decoded arrays."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np


class DataNotFoundError(FileNotFoundError):
    """A dataset is not where ``INSILICO_DATA`` says it should be."""


def data_dir() -> Path:
    """The data directory named by ``INSILICO_DATA``; a clear error when it is unset or missing."""
    root = os.environ.get("INSILICO_DATA")
    if not root:
        raise DataNotFoundError(
            "INSILICO_DATA is not set: point it at the insilico data directory, e.g. "
            "`export INSILICO_DATA=/path/to/data` (see README, 'Data')")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"INSILICO_DATA={root!r} is not a directory")
    return path


def dataset_path(folder: str, *files: str) -> Path:
    """Path of ``folder`` inside the data directory, checking that ``files`` exist there."""
    path = data_dir() / folder
    missing = [f for f in files if not (path / f).exists()]
    if not path.is_dir() or missing:
        raise DataNotFoundError(
            f"dataset folder {path} is missing" if not path.is_dir()
            else f"{path} lacks {', '.join(missing)}")
    return path


def cache_dir() -> Path:
    """Cache for decoded arrays: ``INSILICO_CACHE`` or ``~/.cache/insilico``."""
    path = Path(os.environ.get("INSILICO_CACHE", Path.home() / ".cache" / "insilico")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_array(name: str, identity: dict, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()``, kept in :func:`cache_dir` as ``name-<hash of identity>.npy`` and read from there while
    ``identity`` (everything the array depends on, JSON-serializable) is unchanged; a damaged file is rebuilt,
    and without a writable cache directory the array is built and not kept."""
    tag = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    try:
        path = cache_dir() / f"{name}-{tag}.npy"
    except OSError:
        return build()
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)
    out = build()
    tmp = path.with_name(f"{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp.npy")       # concurrent processes
    try:
        np.save(tmp, out, allow_pickle=False)
        tmp.replace(path)
    except OSError:
        pass                                                  # a read-only cache: the array, not kept
    finally:
        tmp.unlink(missing_ok=True)
    return out
