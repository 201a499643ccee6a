"""Where data lives: ``INSILICO_DATA`` (read-only datasets) and the cache of decoded arrays."""
from __future__ import annotations

import os
from pathlib import Path


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
