"""Image datasets: CIFAR-10 (JPEG tarballs), the MNIST test set (IDX) and scikit-learn's digits.

Every loader returns a :class:`Dataset` of float32 images in [0, 1], NHWC, and int32 labels.
"""
from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..validation import ArgumentError, check_choice, check_count, check_finite, check_indices
from ._paths import cached_arrays, dataset_path
from ._tar import regular_files

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class Dataset:
    """Images ``x`` (N, H, W, C) float32 in [0, 1], labels ``y`` (N,) int32, and class names."""

    x: np.ndarray
    y: np.ndarray
    class_names: Sequence[str]
    name: str

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> Dataset:
        """A dataset of the selected rows: a slice, integer indices in [0, N) or a boolean mask of length N.
        Raises :class:`~insilico.validation.ArgumentError` for indices out of range or not integers, a mask of
        another length, or a selection of no rows."""
        n = len(self)
        if not isinstance(index, slice):
            a = np.asarray(index) if not hasattr(index, "dtype") else index
            if getattr(a, "dtype", None) == np.bool_:
                a = check_finite("index", a, ndim=1, allow_empty=True)
                if a.shape[0] != n:
                    raise ArgumentError(f"index as a boolean mask must have one value per image ({n}); "
                                        f"got {a.shape[0]}")
                index = a
            else:
                index = check_indices("index", index, n, allow_empty=True)       # a scalar keeps the batch axis
        x, y = self.x[index], self.y[index]
        if len(y) == 0:
            raise ArgumentError(f"index selects no images of {self.name} ({n} images); select at least one")
        return Dataset(x, y, self.class_names, self.name)


def _unit(x: np.ndarray) -> np.ndarray:
    """8-bit pixels as float32 in [0, 1]: ``x.astype(np.float32) / 255``'s numbers in one pass and one array
    (the two passes and two arrays of that form took 0.5 s for the 10,000 CIFAR-10 test images, this 0.04 s)."""
    return np.divide(x, np.float32(255), dtype=np.float32)


def _decode_jpeg_tar(path, indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The archive's JPEGs sorted by name (all of them, or those at ``indices`` of that order) and their labels,
    the names of their folders."""
    from PIL import Image

    with gzip.open(path) as f:
        raw = f.read()
    files = regular_files(raw, str(path))
    names = sorted(n for n in files if n.endswith(".jpg"))
    if indices is not None:
        names = [names[i] for i in check_indices("indices", indices, len(names))]
    images = []
    for name in names:
        at, size = files[name]
        images.append(np.asarray(Image.open(io.BytesIO(raw[at:at + size])).convert("RGB")))
    return np.stack(images), np.asarray([CIFAR10_CLASSES.index(n.split("/")[-2]) for n in names], np.int32)


def _cached(key: str, source, build):
    """``build(source)``'s ``(x, y)``, decoded once and kept in the cache while the source file's path, size and
    modification time are unchanged (:func:`~._paths.cached_arrays`); ``build`` None: what the cache holds, or
    None."""
    import PIL

    stat = source.stat()
    # the decoder is part of what made the arrays: another Pillow (libjpeg) may decode other pixels
    identity = {"source": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "decoder": f"Pillow {PIL.__version__}"}
    decode = None if build is None else lambda: dict(zip("xy", build(source)))
    got = cached_arrays(key, identity, decode, keys=("x", "y"))
    return None if got is None else (got["x"], got["y"])


def cifar10(split: str = "test", indices=None) -> Dataset:
    """CIFAR-10 (Krizhevsky 2009) from ``$INSILICO_DATA/cifar10_jpeg``: 50,000 train or 10,000 test images.

    Images are 32x32 RGB JPEGs (quality ~75), returned in [0, 1], sorted by class then file name. The whole split
    is decoded once and kept in the cache (:func:`~insilico.data.cache_dir`). ``indices`` (integers in [0, N), any
    order, repeats allowed): only those images, in that order, as ``cifar10(split).subset(indices)``; before the
    split is in the cache only their JPEGs are decoded (256 test images: 0.1 s instead of a second).
    Example: ``test = cifar10("test"); test.x.shape == (10000, 32, 32, 3)``.
    """
    files = {"train": "cifar10_train_50000_jpg.tar.gz", "test": "cifar10_test_10000_jpg.tar.gz"}
    check_choice("split", split, files)
    if indices is not None:
        indices = check_indices("indices", indices, None, allow_empty=False)
    source = dataset_path("cifar10_jpeg", files[split]) / files[split]
    name = f"cifar10-{split}"
    if indices is None:
        x, y = _cached(name, source, _decode_jpeg_tar)
        return Dataset(_unit(x), y, CIFAR10_CLASSES, name)
    whole = _cached(name, source, None)
    if whole is None:
        x, y = _decode_jpeg_tar(source, indices)
    else:
        indices = check_indices("indices", indices, len(whole[1]))
        x, y = whole[0][indices], whole[1][indices]
    return Dataset(_unit(x), y, CIFAR10_CLASSES, name)


def _read_idx(path) -> np.ndarray:
    raw = gzip.open(path).read()
    ndim = raw[3]
    dims = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_test(split: str = "all") -> Dataset:
    """The MNIST test set (LeCun et al. 1998) from ``$INSILICO_DATA/mnist_test``, 28x28x1 in [0, 1].

    ``split``: "all" (10,000), "train" (the first 8,000, used to train the zoo's MNIST model) or
    "heldout" (the last 2,000, never trained on).
    """
    splits = {"all": slice(None), "train": slice(0, 8000), "heldout": slice(8000, None)}
    check_choice("split", split, splits)
    folder = dataset_path("mnist_test", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    x = _unit(_read_idx(folder / "t10k-images-idx3-ubyte.gz")[..., None])
    y = _read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int32)
    return Dataset(x, y, DIGIT_CLASSES, f"mnist-{split}").subset(splits[split])


def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits (8x8x1, in [0, 1]); bundled with scikit-learn, no download."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    return Dataset(x, d.target.astype(np.int32), DIGIT_CLASSES, "digits")


OBJECTS92_CATEGORIES = ("human bodypart", "human face", "nonhuman bodypart", "nonhuman face", "natural inanimate",
                        "artificial inanimate")


def objects92(size: int | None = None, channels: int = 3) -> Dataset:
    """The 92 object photos of Kriegeskorte et al. 2008 (isolated objects on grey, 175x175 RGB) from
    ``$INSILICO_DATA/kriegeskorte2008_92images``, in the order of the published RDMs; labels index
    :data:`OBJECTS92_CATEGORIES`. ``size`` resizes (anti-aliased); ``channels=1`` averages the colours."""
    from scipy.io import loadmat

    if size is not None:
        size = check_count("size", size)
    check_choice("channels", channels, (1, 3))
    name = "Kriegeskorte_Neuron2008_supplementalData.mat"
    folder = dataset_path("kriegeskorte2008_92images", name)
    stim = loadmat(folder / name, simplify_cells=True)["stimuli_92objs"]
    x = _unit(np.stack([s["image"] for s in stim]))
    y = np.asarray([OBJECTS92_CATEGORIES.index(s["category"]) for s in stim], np.int32)
    if size is not None and size != x.shape[1]:
        from skimage.transform import resize

        x = np.stack([resize(im, (size, size), anti_aliasing=True) for im in x]).astype(np.float32)
    if channels == 1:
        x = x.mean(-1, keepdims=True)
    return Dataset(x, y, OBJECTS92_CATEGORIES, "objects92")
