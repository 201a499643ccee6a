"""Where data lives: ``INSILICO_DATA`` (read-only datasets) and the cache of decoded arrays."""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

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


def _entry(name: str, identity: dict, suffix: str) -> Path | None:
    """The cache file of ``name`` for ``identity`` (hashed), or None without a usable cache directory."""
    tag = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    try:
        return cache_dir() / f"{name}-{tag}{suffix}"
    except OSError:
        return None


def _drop(path: Path) -> None:
    """Remove a damaged entry; in a cache that cannot be written it stays (and is rebuilt each time)."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _keep(path: Path, save: Callable[[Path], None]) -> None:
    """``save(temporary path)``, then moved to ``path`` at once (concurrent processes never read half a file);
    a cache that cannot be written keeps nothing."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        save(tmp)
        tmp.replace(path)
    except OSError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def cached_array(name: str, identity: dict, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()``, kept in :func:`cache_dir` as ``name-<hash of identity>.npy`` and read from there while
    ``identity`` (everything the array depends on, JSON-serializable) is unchanged; a damaged file is rebuilt,
    and without a writable cache directory the array is built and not kept."""
    path = _entry(name, identity, ".npy")
    if path is None:
        return build()
    if path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            _drop(path)
    out = build()
    _keep(path, lambda tmp: np.save(tmp, out, allow_pickle=False))
    return out


def cached_arrays(name: str, identity: dict, build: Callable[[], dict[str, np.ndarray]] | None,
                  keys: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """:func:`cached_array` for several named arrays (``build()`` returns ``{name: array}``; kept as ``.npz``);
    an entry without every one of ``keys`` counts as damaged. ``build`` None only reads: the cached arrays, or
    None when there are none."""
    path = _entry(name, identity, ".npz")
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                if set(keys) <= set(f.files):
                    return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass
        _drop(path)
    if build is None:
        return None
    out = build()
    if path is not None:
        _keep(path, lambda tmp: np.savez(tmp, **cast(dict[str, Any], out)))
    return out
