"""Download a dataset of :data:`insilico.data.registry.DATASETS` into a local data directory, sha256-checked.

``fetch("mnist_test", "~/insilico-data", source="https://example.org/mirror")`` downloads every file the registry
lists for the dataset from ``<source>/<file>`` into ``~/insilico-data/mnist_test/<file>``. Point
``INSILICO_DATA`` at the destination afterwards. Files already present with the right sha256 are skipped; each
download goes to ``<file>.part`` and is renamed only once its hash matches, so an interrupted run never leaves a
corrupt file and can simply be run again (HTTP downloads resume a partial ``.part`` when the server allows it).
"""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

from .registry import DATASETS

__all__ = ["fetch", "ChecksumError"]

_BLOCK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded file's sha256 differs from the registry's."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _url(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + urllib.parse.quote(rel)


def _download(url: str, part: Path, progress: bool, label: str) -> None:
    """Write ``url`` to ``part``, appending to an existing partial file when the server honours a Range."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if offset and urllib.parse.urlsplit(url).scheme in ("http", "https"):
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request) as response:
        resumed = offset and getattr(response, "status", None) == 206
        total = response.headers.get("Content-Length")
        total = int(total) + (offset if resumed else 0) if total and total.isdigit() else None
        done = offset if resumed else 0
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(_BLOCK), b""):
                out.write(block)
                done += len(block)
                if progress:
                    size = f"/{total / 1e6:.1f}" if total else ""
                    print(f"\r  {label}: {done / 1e6:.1f}{size} MB", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)


def fetch(name: str, dest: str | os.PathLike, *, source: str | None = None, progress: bool = True) -> Path:
    """Download dataset ``name``'s files into ``dest/name/``, verifying each file's sha256; returns that folder.

    ``source``: base URL (``https://...``, ``file:///...``) under which the files lie at the paths the registry
    gives (e.g. ``<source>/images/images_190923.zip``); default: the dataset's ``"url"`` entry in the registry,
    and a ``ValueError`` when it has none. Raises :class:`ChecksumError` (naming the file and both hashes, after
    deleting the download) when a file's sha256 differs from the registry's, and ``KeyError`` for an unknown
    dataset. Only :mod:`urllib` is used; the transfer errors it raises (``urllib.error.URLError``) pass through.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    entry = DATASETS[name]
    base = source if source is not None else entry.get("url")
    if not base:
        raise ValueError(f"dataset {name!r} has no public URL recorded in insilico.data.registry; pass source= "
                         f"(a base URL or file:// mirror holding its files: {', '.join(entry['files'])})")
    folder = Path(dest).expanduser() / name
    for rel, expected in entry["files"].items():
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"dataset {name!r}: refusing file path {rel!r} outside the dataset folder")
        target = folder.joinpath(*parts)
        label = f"{name}/{rel}"
        if target.is_file() and _sha256(target) == expected:
            if progress:
                print(f"  {label}: present, sha256 ok", file=sys.stderr)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        url = _url(base, rel)
        _download(url, part, progress, label)
        got = _sha256(part)
        if got != expected:
            part.unlink(missing_ok=True)
            raise ChecksumError(f"{label}: sha256 mismatch for the file downloaded from {url}: expected {expected}, "
                                f"got {got} (the download was deleted)")
        part.replace(target)
    return folder
