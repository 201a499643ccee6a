"""Datasets (through ``INSILICO_DATA``) and stimulus generators."""
from ._paths import DataNotFoundError, cache_dir, data_dir, dataset_path
from .datasets import CIFAR10_CLASSES, DIGIT_CLASSES, Dataset, cifar10, digits, mnist_test

__all__ = ["Dataset", "cifar10", "mnist_test", "digits", "CIFAR10_CLASSES", "DIGIT_CLASSES",
           "DataNotFoundError", "data_dir", "dataset_path", "cache_dir"]
