"""The regular files of an uncompressed tar archive held in memory: its 512-byte headers read directly, their
checksums summed in one NumPy operation (:mod:`tarfile`'s member objects took 0.13 s for the 10,000 CIFAR-10 test
images, this 0.02 s). Damage is an error, never a shorter list: a header whose checksum or numbers do not parse,
a file cut short, or data after what reads as the end of the archive (a zeroed header). Archives with long names,
pax records other than comments, sparse files or huge (base-256) sizes are listed by :mod:`tarfile`, with the same
check of what follows its last member.
"""
from __future__ import annotations

import io
import re
import tarfile

import numpy as np

__all__ = ["regular_files"]

BLOCK = 512
_ZEROS = bytes(BLOCK)
_OCTAL = re.compile(rb"[0-7]+")
_FOR_TARFILE = frozenset({b"L", b"K", b"x", b"X", b"g", b"S", b"N", b"M"})     # long names, pax, sparse, volumes
_NO_DATA = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})     # links, devices, folders, FIFOs (as tarfile skips)


def _damaged(name: str, at: int, what: str) -> ValueError:
    return ValueError(f"{name}: the tar archive is damaged at byte {at} ({what}); it cannot be read — restore "
                      f"the file from its source")


def _checksums(headers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unsigned and the signed (old tars) checksum of every 512-byte header (rows of uint8), the checksum
    field counted as spaces."""
    spaces = 8 * ord(" ")
    field = headers[:, 148:156]
    unsigned = headers.sum(1, dtype=np.int64) - field.sum(1, dtype=np.int64) + spaces
    signed = headers.view(np.int8).sum(1, dtype=np.int64) - field.view(np.int8).sum(1, dtype=np.int64) + spaces
    return unsigned, signed


def _check_headers(raw: bytes, heads: list, stored: list, name: str) -> None:
    if not heads:
        return
    blocks = np.frombuffer(raw, np.uint8, count=len(raw) // BLOCK * BLOCK).reshape(-1, BLOCK)
    unsigned, signed = _checksums(blocks[np.asarray(heads) // BLOCK])      # headers start on block boundaries
    bad = (unsigned != stored) & (signed != stored)
    if bad.any():
        raise _damaged(name, heads[int(np.argmax(bad))], "a header's checksum does not match")


def _only_comments(pax: bytes) -> bool:
    """Whether the pax header records ``pax`` (lines ``"<length> <key>=<value>\\n"``) are all comments."""
    lines = pax.rstrip(b"\0").splitlines()
    return bool(lines) and all(line.partition(b" ")[2].startswith(b"comment=") for line in lines)


def _by_tarfile(raw: bytes, name: str) -> dict[str, tuple[int, int]]:
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members, end = tar.getmembers(), tar.offset
    if raw[end:].strip(b"\0"):          # tarfile ends its list quietly at a damaged header after the first
        raise _damaged(name, end, "a header that does not parse")
    return {m.name: (m.offset_data, m.size) for m in members if m.isreg()}


def regular_files(raw: bytes, name: str = "archive") -> dict[str, tuple[int, int]]:
    """``path -> (offset, size)`` of every regular file of the uncompressed tar archive ``raw`` (what
    :mod:`tarfile` lists as ``isreg``, the last of repeated paths winning); ``name`` names the archive in errors."""
    files, heads, stored, at = {}, [], [], 0
    while at + BLOCK <= len(raw) and raw[at:at + BLOCK] != _ZEROS:          # up to the end-of-archive blocks
        check, size_field = raw[at + 148:at + 156].strip(b"\0 "), raw[at + 124:at + 136].strip(b"\0 ") or b"0"
        if not _OCTAL.fullmatch(check):
            raise _damaged(name, at, "a header's checksum field is not a number")
        kind, member = raw[at + 156:at + 157], raw[at:at + 100].split(b"\0", 1)[0]
        huge = not _OCTAL.fullmatch(size_field) and raw[at + 124] in (0x80, 0xFF)   # base-256: over 8 GiB
        if not (huge or _OCTAL.fullmatch(size_field)):
            raise _damaged(name, at, "a header's size field is not a number")
        size = 0 if huge else int(size_field, 8)
        comments = kind == b"g" and _only_comments(raw[at + BLOCK:at + BLOCK + size])   # git archive's commit id
        if huge or (kind in _FOR_TARFILE and not comments) or raw[at + 257:at + 262] not in (b"ustar", bytes(5)):
            _check_headers(raw, [at], [int(check, 8)], name)
            return _by_tarfile(raw, name)
        heads.append(at)
        stored.append(int(check, 8))
        folder = kind == b"\0" and member.endswith(b"/")
        if kind in (b"0", b"\0", b"7") and not folder:
            posix = raw[at + 257:at + 263] == b"ustar\0"                   # GNU headers keep times there
            prefix = raw[at + 345:at + 500].split(b"\0", 1)[0] if posix else b""
            path = (prefix + b"/" + member if prefix else member).decode("utf-8", "surrogateescape")
            files[path] = (at + BLOCK, size)
        data = 0 if kind in _NO_DATA or folder else -(-size // BLOCK) * BLOCK
        if at + BLOCK + data > len(raw):
            raise _damaged(name, at, f"its file of {size} bytes is cut short")
        at += BLOCK + data
    _check_headers(raw, heads, stored, name)
    if raw[at:].strip(b"\0"):
        raise _damaged(name, at, "data after a block of zeros: a zeroed header, or archives joined")
    return files
