"""Datasets (through ``INSILICO_DATA``) and stimulus generators."""
from ._paths import DataNotFoundError, cache_dir, data_dir, dataset_path
from .datasets import (CIFAR10_CLASSES, DIGIT_CLASSES, OBJECTS92_CATEGORIES, Dataset, cifar10, digits, mnist_test,
                       objects92)
from .neural import goris2015

__all__ = ["Dataset", "cifar10", "mnist_test", "digits", "objects92", "goris2015", "CIFAR10_CLASSES",
           "DIGIT_CLASSES", "OBJECTS92_CATEGORIES", "DataNotFoundError", "data_dir", "dataset_path", "cache_dir"]
