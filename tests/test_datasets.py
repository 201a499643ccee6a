import numpy as np
import pytest

from insilico.data import DataNotFoundError, cifar10, digits, mnist_test


def test_cifar10_test_set(data_dir):
    d = cifar10("test")
    assert d.x.shape == (10000, 32, 32, 3) and d.x.dtype == np.float32
    assert np.bincount(d.y).tolist() == [1000] * 10
    assert 0.4 < d.x.mean() < 0.55 and d.class_names[3] == "cat"


def test_mnist_splits(data_dir):
    full, train, held = mnist_test("all"), mnist_test("train"), mnist_test("heldout")
    assert full.x.shape == (10000, 28, 28, 1) and len(train) == 8000 and len(held) == 2000
    assert np.bincount(full.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.array_equal(held.x, full.x[8000:])


def test_digits_offline():
    d = digits()
    assert d.x.shape == (1797, 8, 8, 1) and d.x.max() == 1.0 and set(np.unique(d.y)) == set(range(10))


def test_bad_split_and_missing_data(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="split must be one of 'train', 'test'; got 'val'"):
        cifar10("val")
    monkeypatch.delenv("INSILICO_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="INSILICO_DATA is not set"):
        mnist_test()
    monkeypatch.setenv("INSILICO_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="mnist_test is missing"):
        mnist_test()


def test_objects92(data_dir):
    from insilico.data import OBJECTS92_CATEGORIES, objects92

    full = objects92()
    assert full.x.shape == (92, 175, 175, 3) and full.x.dtype == np.float32
    assert np.bincount(full.y).tolist() == [12, 12, 12, 12, 23, 21]       # the published category sizes
    assert OBJECTS92_CATEGORIES[full.y[12]] == "human face"
    small = objects92(32, channels=1)
    assert small.x.shape == (92, 32, 32, 1) and 0 <= small.x.min() and small.x.max() <= 1
    assert abs(small.x.mean() - full.x.mean()) < 0.01                         # resizing keeps the mean


def test_decoded_cache_is_reused_follows_its_source_and_works_without_a_writable_cache(tmp_path, monkeypatch):
    import os

    from insilico.data import datasets

    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    calls = []

    def build(src):                                                  # each build's arrays hold its number
        calls.append(src)
        return np.full((2, 3), len(calls), np.float32), np.array([0, 1])

    assert datasets._cached("toy", source, None) is None and not calls            # only read: nothing there
    x, y = datasets._cached("toy", source, build)
    x2, y2 = datasets._cached("toy", source, build)
    assert len(calls) == 1 and np.array_equal(x, x2) and np.array_equal(y, y2)
    (cached,) = (tmp_path / "cache").glob("toy-*.npz")
    assert not list((tmp_path / "cache").glob("*.tmp.npz"))         # no temporary file left behind
    cached.write_bytes(cached.read_bytes()[:40])                     # truncated (e.g. an interrupted copy)
    assert datasets._cached("toy", source, build)[0][0, 0] == 2 and len(calls) == 2
    os.utime(source, ns=(1, 1))                                                  # the source changed
    assert datasets._cached("toy", source, None) is None
    assert datasets._cached("toy", source, build)[0][0, 0] == 3 and len(calls) == 3
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("INSILICO_CACHE", str(blocker / "cache"))                # under a file: cannot be made
    x4, _ = datasets._cached("toy", source, build)
    assert len(calls) == 4 and x4[0, 0] == 4 and datasets._cached("toy", source, None) is None


def test_a_cached_entry_without_its_arrays_is_rebuilt_and_a_read_only_cache_is_read(tmp_path, monkeypatch):
    from insilico.data import _paths

    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path))
    identity = {"source": "s"}
    build = lambda: {"x": np.arange(3), "y": np.arange(2)}
    _paths.cached_arrays("toy", identity, build, keys=("x", "y"))
    (entry,) = tmp_path.glob("toy-*.npz")
    np.savez(entry.with_suffix(""), x=np.arange(3))                     # an entry that lacks y
    assert _paths.cached_arrays("toy", identity, None, keys=("x", "y")) is None and not entry.exists()
    got = _paths.cached_arrays("toy", identity, build, keys=("x", "y"))
    assert sorted(got) == ["x", "y"] and entry.exists()

    def refuse(*a, **k):                                                 # a cache that cannot be written
        raise PermissionError("read-only")
    entry.write_bytes(b"damaged")
    monkeypatch.setattr(type(entry), "unlink", refuse)                   # (root ignores file permissions)
    monkeypatch.setattr(_paths, "_keep", lambda path, save: None)
    again = _paths.cached_arrays("toy", identity, build, keys=("x", "y"))
    assert np.array_equal(again["x"], np.arange(3)) and entry.read_bytes() == b"damaged"


def test_8_bit_pixels_scale_to_the_unit_interval_as_astype_then_divide_does():
    from insilico.data.datasets import _unit

    x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    got = _unit(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(got, x.astype(np.float32) / 255.0)
    assert got.min() == 0.0 and got.max() == 1.0


def test_photos_are_kept_in_the_cache_under_what_made_them(tmp_path, monkeypatch):
    """photos() is computed once, then read from INSILICO_CACHE: the same array; another size or channel count is
    another entry, and a damaged entry is rebuilt."""
    from insilico.data import stimuli

    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path))
    fresh = stimuli._resized_photos(16, 3, stimuli.PHOTOS[:3])
    first = stimuli.photos(16, names=stimuli.PHOTOS[:3])
    files = sorted(tmp_path.glob("photos-*.npy"))
    assert len(files) == 1 and np.array_equal(first, fresh) and first.dtype == np.float32
    calls = []
    monkeypatch.setattr(stimuli, "_resized_photos", lambda *a: calls.append(a) or fresh)
    assert np.array_equal(stimuli.photos(16, names=stimuli.PHOTOS[:3]), fresh) and not calls      # read back
    stimuli.photos(16, channels=1, names=stimuli.PHOTOS[:3])
    assert len(calls) == 1 and len(list(tmp_path.glob("photos-*.npy"))) == 2                      # a new entry
    files[0].write_bytes(b"damaged")
    assert np.array_equal(stimuli.photos(16, names=stimuli.PHOTOS[:3]), fresh) and len(calls) == 2   # rebuilt


def test_photos_take_numpy_integers_and_work_without_a_writable_cache(tmp_path, monkeypatch):
    from insilico.data import stimuli

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("INSILICO_CACHE", str(blocker / "cache"))        # under a file: cannot be made
    a = stimuli.photos(np.int64(8), channels=np.int64(1), names=stimuli.PHOTOS[:2])
    assert a.shape == (2, 8, 8, 1) and np.array_equal(a, stimuli._resized_photos(8, 1, stimuli.PHOTOS[:2]))


def test_cifar10_indices_decode_only_those_images_equal_to_the_subset(data_dir, tmp_path, monkeypatch):
    from insilico.data import datasets
    from insilico.validation import ArgumentError

    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path))                # nothing decoded yet
    pick = np.array([9999, 3, 3, 5000, 0])
    few = cifar10("test", pick)
    assert not list(tmp_path.glob("cifar10-*"))                        # only those images were decoded, none kept
    full = cifar10("test")
    assert few.x.dtype == np.float32 and np.array_equal(few.x, full.x[pick]) and np.array_equal(few.y, full.y[pick])
    cached = cifar10("test", pick.tolist())                            # now read from the decoded split
    assert np.array_equal(cached.x, few.x) and np.array_equal(cached.y, few.y)
    assert list(few.y[[1, 4]]) == [0, 0] and few.y[0] == 9 and few.class_names == datasets.CIFAR10_CLASSES
    with pytest.raises(ArgumentError, match=r"indices must be indices in \[0, 10000\); got \[10000\]"):
        cifar10("test", [1, 10000])
    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path / "empty"))
    with pytest.raises(ArgumentError, match=r"indices must be indices in \[0, 10000\); got \[-1\]"):
        cifar10("test", [-1])
    with pytest.raises(ArgumentError, match="indices must be integer"):
        cifar10("test", [0.5])
    with pytest.raises(ArgumentError, match="indices"):
        cifar10("test", [])
