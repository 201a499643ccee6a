"""Datasets (through ``INSILICO_DATA``) and stimulus generators."""
from ._paths import DataNotFoundError, cache_dir, data_dir, dataset_path
from .datasets import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    OBJECTS92_CATEGORIES,
    Dataset,
    cifar10,
    digits,
    mnist_test,
    objects92,
)
from .fetch import ChecksumError, FetchError, UnknownDatasetError, fetch

_NEURAL = ("COWLEY2023_SESSIONS", "Recording", "allen_v1", "cichy2014", "cowley2023", "cowley2023_images", "goris2015",
           "goris2015_trials", "kriegeskorte2008", "objects92_region_rdms", "read_nwb_units", "tang2018")


def __getattr__(name: str):
    """The neural-data loaders, imported on first use: they bring xarray and pandas, which a model load does not
    need (``from insilico.data import cichy2014`` works as before)."""
    if name in _NEURAL:
        from . import neural

        return getattr(neural, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Dataset", "cifar10", "mnist_test", "digits", "objects92", "goris2015", "CIFAR10_CLASSES",
           "DIGIT_CLASSES", "OBJECTS92_CATEGORIES", "DataNotFoundError", "data_dir", "dataset_path", "cache_dir",
           "goris2015_trials", "kriegeskorte2008", "cichy2014", "cowley2023", "cowley2023_images",
           "COWLEY2023_SESSIONS", "objects92_region_rdms", "tang2018", "allen_v1", "Recording", "read_nwb_units",
           "fetch", "FetchError", "ChecksumError", "UnknownDatasetError"]


def __dir__():
    return sorted(set(globals()) | set(_NEURAL))
