"""The direct tar listing behind the CIFAR-10 loader (insilico.data._tar): what tarfile lists, read faster, and
damage refused where tarfile would end its list quietly."""
import gzip
import io
import tarfile

import pytest

from insilico.data import _tar
from insilico.data._tar import regular_files


def _raw(fmt, entries, comment=None) -> bytes:
    """An uncompressed tar of ``entries`` (name -> bytes, None for a folder, ("link", target) for a symlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers={"comment": comment} if comment else None) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tarfile_listing(raw):
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isreg()}


SHORT = {"test/": None, "test/cat/a.jpg": b"\xff\xd8" * 700, "test/cat/empty.jpg": b"", "test/dog/ü.jpg": b"u" * 511,
         "test/dog/link.jpg": ("link", "ü.jpg")}
LONG = {**SHORT, "test/" + "long-folder-name/" * 6 + "b.jpg": b"b" * 513}        # 100+ characters


@pytest.mark.parametrize("fmt", ["ustar", "gnu", "pax"])
@pytest.mark.parametrize("comment", [None, "d7d05618061fe37d830fb0419063d113c575ccbc"])
def test_listed_as_tarfile_lists_them(monkeypatch, fmt, comment):
    def listed(entries):
        raw = _raw(getattr(tarfile, f"{fmt.upper()}_FORMAT"), entries, comment)
        got = regular_files(raw)
        assert got == _tarfile_listing(raw) and len(got) == sum(isinstance(v, bytes) for v in entries.values())
        assert sorted(raw[a:a + n] for a, n in got.values()) == sorted(v for v in entries.values()
                                                                      if isinstance(v, bytes))

    listed(LONG)
    if fmt != "pax":                        # GNU and ustar headers are read directly, not handed to tarfile
        monkeypatch.setattr(_tar, "_by_tarfile", None)
        listed(SHORT if fmt == "gnu" else LONG)              # GNU writes a long name as an extra entry


def test_the_cifar10_archive_is_listed_directly_as_tarfile_lists_it(data_dir, monkeypatch):
    from pathlib import Path

    with gzip.open(Path(data_dir) / "cifar10_jpeg" / "cifar10_test_10000_jpg.tar.gz") as f:
        raw = f.read()
    want = _tarfile_listing(raw)
    monkeypatch.setattr(_tar, "_by_tarfile", None)                  # its git-archive comment header included
    assert regular_files(raw) == want and len(want) == 10000


def _damage(raw: bytes, at: int, value: bytes) -> bytes:
    return raw[:at] + value + raw[at + len(value):]


THREE = _raw(tarfile.USTAR_FORMAT, {"a.jpg": b"a" * 600, "b.jpg": b"b" * 10, "c.jpg": b"c" * 10})
SECOND = 1536                                  # a.jpg's header, then its 600 bytes in two blocks


@pytest.mark.parametrize("what, at, value, message", [
    ("a bit of the name", SECOND + 3, bytes([THREE[SECOND + 3] ^ 1]), "checksum does not match"),
    ("a size digit made a letter", SECOND + 130, b"p", "size field is not a number"),
    ("a size digit made 8", SECOND + 130, b"8", "size field is not a number"),
    ("the checksum field", SECOND + 150, b"x", "checksum field is not a number"),
    ("the magic", SECOND + 258, b"X", "checksum does not match"),
    ("the whole header zeroed", SECOND, bytes(512), "data after a block of zeros"),
])
def test_damage_is_an_error_not_a_shorter_archive(what, at, value, message):
    assert len(_tarfile_listing(THREE)) == 3
    with pytest.raises(ValueError, match=f"archive is damaged at byte {SECOND} .*{message}"):
        regular_files(_damage(THREE, at, value))


def test_a_file_cut_short_is_an_error():
    third = SECOND + 1024
    with pytest.raises(ValueError, match=f"damaged at byte {third} .*cut short"):
        regular_files(THREE[:third + 512 + 5], "x.tar")
    with pytest.raises(ValueError, match=r"x\.tar: the tar archive is damaged"):
        regular_files(THREE[:third + 512 + 5] + b"\x01" * 600, "x.tar")


def test_an_archive_tarfile_reads_is_checked_after_its_last_member_too():
    raw = _raw(tarfile.PAX_FORMAT, {"ü-" + "x" * 120 + ".jpg": b"a" * 10, "b.jpg": b"b" * 10, "c.jpg": b"c"})
    assert len(regular_files(raw)) == 3                                # pax records: listed by tarfile
    c_header = raw.index(b"c.jpg")
    with pytest.raises(ValueError, match="damaged at byte"):
        regular_files(_damage(raw, c_header, bytes(512)))            # tarfile alone would list two files
