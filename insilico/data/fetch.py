"""Download a dataset of :data:`insilico.data.registry.DATASETS` into a local data directory, sha256-checked.

``fetch("mnist_test", "~/insilico-data", source="https://example.org/mirror")`` downloads every file the registry
lists for the dataset from ``<source>/<file>`` into ``~/insilico-data/mnist_test/<file>``. Point
``INSILICO_DATA`` at the destination afterwards.

A download can neither hang nor overflow, and never writes through a planted link:

- sources are ``https://`` URLs (certificates verified, redirects only to ``https://``) or ``file://`` mirrors
  (regular files only); ``http://``, ``ftp://`` and every other scheme are refused;
- every connect and read waits at most ``timeout`` seconds;
- no file grows beyond its size in the registry (``"sizes"``; :data:`DEFAULT_MAX_BYTES` or ``max_bytes`` for an
  entry without one): a larger ``Content-Length`` is refused before anything is written, and the transfer stops
  as soon as one byte more than allowed arrives;
- each file is written to a temporary file of its own (``<file>.<pid>-<thread>.part``, created exclusively and
  never through a symbolic link), hashed as it arrives and renamed over ``<file>`` only once its size and sha256
  match; a symbolic link at a temporary path, the lock file or a destination file is refused;
- concurrent fetches of one dataset (threads or processes) take turns on ``<dest>/<name>/.fetch.lock``: the
  later one finds the files verified and downloads nothing.

Files already present with the right sha256 are skipped, so an interrupted run leaves no corrupt file and can
simply be run again. Every failure is a :class:`FetchError` (a ``ValueError``) whose message is one line: what
failed, which file and URL, why, and what to do.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import stat
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from types import ModuleType

from ..validation import ArgumentError, check_choice, check_count, check_positive
from .registry import DATASETS

try:                                                    # POSIX advisory file locks
    fcntl: ModuleType | None = importlib.import_module("fcntl")
except ImportError:                                     # Windows: unique temporary files and atomic renames only
    fcntl = None

__all__ = ["fetch", "FetchError", "ChecksumError", "UnknownDatasetError", "DEFAULT_TIMEOUT", "DEFAULT_MAX_BYTES"]

DEFAULT_TIMEOUT = 30.0
"""Seconds a connect or a read may wait before the download fails."""
DEFAULT_MAX_BYTES = 1 << 30
"""Size cap (bytes) of a file whose registry entry records no size."""

_BLOCK = 1 << 20
_SCHEMES = ("https", "file")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class FetchError(ValueError):
    """A dataset file could not be fetched; the one-line message names the file, the URL or path, why, and what
    to do."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class ChecksumError(FetchError):
    """A downloaded file's sha256 differs from the registry's."""


class UnknownDatasetError(FetchError, KeyError):
    """A dataset name that is not in the registry (also a ``KeyError``)."""


def _line(x) -> str:
    return " ".join(str(x).split())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _url(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + urllib.parse.quote(rel)


def _base(name: str, entry: dict, source) -> str:
    """The source URL: ``source``, else the registry's ``"url"``; an existing local directory becomes ``file://``.
    Anything but https:// and file:// is refused."""
    base = source if source is not None else entry.get("url")
    if not base:
        raise FetchError(f"dataset {name!r} has no public URL recorded in insilico.data.registry; pass source= "
                         f"(an https:// URL or a file:// mirror holding its files: {', '.join(entry['files'])})")
    if not isinstance(base, (str, os.PathLike)):
        raise FetchError(f"source for dataset {name!r} must be an https:// or file:// URL; got {base!r}")
    base = os.fspath(base)
    if "://" not in base and Path(base).expanduser().is_dir():
        return Path(base).expanduser().resolve().as_uri()
    scheme = urllib.parse.urlsplit(base).scheme.lower()
    if scheme not in _SCHEMES:
        why = f"{scheme}:// is not allowed" if scheme else "it is neither a URL nor an existing directory"
        raise FetchError(f"refusing source {base!r} for dataset {name!r}: only https:// and file:// sources are "
                         f"accepted ({why}); use an https:// URL or a file:// mirror")
    return base


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() != "https":
            raise FetchError(f"{req.full_url} redirects to {newurl!r}, which is not https://; refusing to follow "
                             "it: use a source that serves the files over https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _ssl_context():
    """The TLS context of https downloads (system trust store, certificates and host names verified)."""
    import ssl

    return ssl.create_default_context()


def _open(url: str, timeout: float):
    """``(stream, length or None)`` for ``url``: a file:// path (a regular file) or an https:// response."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise OSError(f"file:// URLs must name a local path (file:///...), not host {parts.netloc!r}")
        path = urllib.request.url2pathname(parts.path)
        fd = os.open(path, os.O_RDONLY | _BINARY | _CLOEXEC | getattr(os, "O_NONBLOCK", 0))   # a FIFO cannot block
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise OSError(f"{path} is not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    if parts.scheme.lower() != "https":
        raise FetchError(f"refusing {url!r}: only https:// and file:// sources are accepted")
    opener = urllib.request.build_opener(_HttpsOnlyRedirects(), urllib.request.HTTPSHandler(context=_ssl_context()))
    response = opener.open(urllib.request.Request(url, headers={"User-Agent": "insilico-fetch"}), timeout=timeout)
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.strip().isdigit() else None


def _download(url: str, fd: int, cap: int, timeout: float, progress: bool, label: str) -> tuple[int, str]:
    """Write ``url`` to the open file ``fd``, at most ``cap`` bytes: ``(bytes, sha256)``. Raises
    :class:`FetchError` when the source announces or sends more than ``cap`` bytes."""
    stream, length = _open(url, timeout)
    with stream:
        if length is not None and length > cap:
            raise FetchError(f"{label}: {url} is {length} bytes, more than the {cap} bytes allowed for it; refusing "
                             "the download (the source holds a different file: check the source)")
        h, done = hashlib.sha256(), 0
        while True:
            block = stream.read(min(_BLOCK, cap - done + 1))
            if not block:
                break
            if done + len(block) > cap:
                raise FetchError(f"{label}: {url} sent more than the {cap} bytes allowed for it; stopped the download "
                                 "and deleted it (the source holds a different file: check the source)")
            view = memoryview(block)
            while view:
                view = view[_write(os.write, fd, label, view):]
            h.update(block)
            done += len(block)
            if progress:
                size = f"/{length / 1e6:.1f}" if length else ""
                print(f"\r  {label}: {done / 1e6:.1f}{size} MB", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return done, h.hexdigest()


def _write(op, fd: int, label: str, *args):
    """``op(fd, *args)`` (``os.write``, ``os.fsync``), a failure becoming a :class:`FetchError`."""
    try:
        return op(fd, *args)
    except OSError as e:
        raise FetchError(f"{label}: cannot write the download ({_line(e.strerror or e)}); free disk space or choose "
                         "another destination, then run the fetch again") from None


def _transfer_error(e: BaseException, label: str, url: str, timeout: float) -> FetchError:
    """A :class:`FetchError` for an exception raised while downloading."""
    reason = e.reason if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError) else e
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return FetchError(f"{label}: no data from {url} for {timeout:g} s (timed out); the source is unreachable or "
                          "stalled: try again later, or pass a larger timeout")
    if isinstance(e, urllib.error.HTTPError):
        why = f"HTTP {e.code} {e.reason}"
    else:
        why = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return FetchError(f"{label}: download from {url} failed ({_line(why)}); check the source and the network, then "
                      "run the fetch again (files already verified are kept)")


def _refuse_link(path: Path, what: str) -> None:
    if path.is_symlink():
        raise FetchError(f"refusing to write {what} {path}: it is a symbolic link (to {os.readlink(path)!r}); "
                         "remove the link and run the fetch again")


def _part(target: Path) -> Path:
    """This thread's temporary file for ``target``."""
    return target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.part")


def _clear_stale(target: Path) -> None:
    """Remove temporary files that interrupted fetches left for ``target`` (called under the dataset's lock);
    a symbolic link there is refused, not followed or removed."""
    # without a lock (no fcntl) another fetch may be writing its own temporary file: only the old name is stale
    pattern = re.compile(re.escape(target.name) + (r"(\.\d+-\d+)?\.part" if fcntl is not None else r"\.part"))
    for p in target.parent.iterdir():
        if pattern.fullmatch(p.name):
            _refuse_link(p, "the temporary file")
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path, name: str, progress: bool):
    """Hold ``folder/.fetch.lock`` (an exclusive ``flock``): one fetch of a dataset at a time, across threads and
    processes."""
    lock = folder / ".fetch.lock"
    if fcntl is None:
        yield
        return
    _refuse_link(lock, "the lock file")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
    except OSError as e:
        raise FetchError(f"cannot create the lock file {lock} for dataset {name!r} ({_line(e.strerror or e)}); "
                         "choose a destination directory you can write") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"  {name}: waiting for another fetch of it to finish ({lock})", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)                                    # releases the lock


def _verified(target: Path, expected: str) -> bool:
    return target.is_file() and not target.is_symlink() and _sha256(target) == expected


def _fetch_file(url: str, target: Path, expected: str, size: int | None, cap: int, timeout: float, progress: bool,
                label: str) -> None:
    """Download ``url`` into a fresh temporary file next to ``target``, check size and sha256, rename."""
    _clear_stale(target)
    part = _part(target)
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY, 0o644)
    except FileExistsError:
        _refuse_link(part, "the temporary file")
        raise FetchError(f"{label}: the temporary file {part} appeared while fetching; another program writes "
                         "there: stop it and run the fetch again") from None
    except OSError as e:
        raise FetchError(f"{label}: cannot create {part} ({_line(e.strerror or e)}); choose a destination "
                         "directory you can write") from None
    done = False
    try:
        try:
            n, got = _download(url, fd, cap, timeout, progress, label)
            _write(os.fsync, fd, label)
        except FetchError:
            raise
        except Exception as e:                          # URLError, timeouts, http.client errors (incomplete reads)
            raise _transfer_error(e, label, url, timeout) from None
        finally:
            os.close(fd)
        if size is not None and n != size:
            raise ChecksumError(f"{label}: the file downloaded from {url} has {n} bytes, expected {size} (a truncated "
                                "or different file; the download was deleted): run the fetch again, or check the "
                                "source")
        if got != expected:
            raise ChecksumError(f"{label}: sha256 mismatch for the file downloaded from {url}: expected {expected}, "
                                f"got {got} (the download was deleted); the source holds a different file: check "
                                "the source")
        _refuse_link(target, "the destination")
        os.replace(part, target)
        done = True
    finally:
        if not done:
            part.unlink(missing_ok=True)


def fetch(name: str, dest: str | os.PathLike, *, source: str | None = None, progress: bool = True,
          timeout: float = DEFAULT_TIMEOUT, max_bytes: int | None = None) -> Path:
    """Download dataset ``name``'s files into ``dest/name/``, verifying each file's size and sha256; returns that
    folder.

    ``source``: base URL (``https://...`` or ``file:///...``, or an existing local directory) under which the
    files lie at the paths the registry gives (e.g. ``<source>/images/images_190923.zip``); default: the
    dataset's ``"url"`` entry in the registry. ``timeout``: seconds any connect or read may wait. ``max_bytes``:
    size cap of a file whose registry entry records no size (default :data:`DEFAULT_MAX_BYTES`); a file with a
    recorded size may not exceed it.

    Raises :class:`FetchError` (a ``ValueError``, one-line message) for every failure: a refused source (not
    https:// or file://, a redirect away from https), no URL recorded, a timeout, a transfer error, a file larger
    than allowed, a symbolic link at a destination or temporary path, an unwritable destination; its subclass
    :class:`ChecksumError` when a file's size or sha256 differs from the registry's (the download is deleted);
    :class:`UnknownDatasetError` (also a ``KeyError``) for a name not in the registry; and
    :class:`~insilico.validation.ArgumentError` for a bad ``timeout`` or ``max_bytes``.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    timeout = check_positive("timeout", timeout)
    cap_default = DEFAULT_MAX_BYTES if max_bytes is None else check_count("max_bytes", max_bytes)
    if not isinstance(dest, (str, os.PathLike)):
        raise ArgumentError(f"dest must be a directory path; got {type(dest).__name__} {dest!r}")
    progress = check_choice("progress", progress, (False, True))
    entry = DATASETS[name]
    base = _base(name, entry, source)
    folder = Path(dest).expanduser() / name
    sizes = entry.get("sizes", {})
    todo = []
    for rel, expected in entry["files"].items():
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts:
            raise FetchError(f"dataset {name!r}: refusing file path {rel!r} outside the dataset folder "
                             "(a bad registry entry)")
        target = folder.joinpath(*parts)
        _refuse_link(target, "the destination")
        if _verified(target, expected):
            if progress:
                print(f"  {name}/{rel}: present, sha256 ok", file=sys.stderr)
            continue
        todo.append((rel, expected, target))
    if not todo:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create {folder} for dataset {name!r} ({_line(e.strerror or e)}); choose a "
                         "destination directory you can write") from None
    with _locked(folder, name, progress):
        for rel, expected, target in todo:
            label = f"{name}/{rel}"
            _refuse_link(target, "the destination")
            if _verified(target, expected):             # another fetch finished it while this one waited
                if progress:
                    print(f"  {label}: present, sha256 ok", file=sys.stderr)
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise FetchError(f"{label}: cannot create {target.parent} ({_line(e.strerror or e)}); choose a "
                                 "destination directory you can write") from None
            size = sizes.get(rel)
            _fetch_file(_url(base, rel), target, expected, size, cap_default if size is None else int(size),
                        timeout, progress, label)
    return folder
