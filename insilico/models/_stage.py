"""Building blocks shared by the model zoo.

A *site* is any submodule that subclasses :class:`Stage`. The electrode records and edits exactly these
modules: their ``__call__`` output is the post-nonlinearity activation a neuroscientist would record.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class Stage(nn.Module):
    """Marker base class: the output of a ``Stage`` submodule is a recordable, editable site."""


class Normalize(nn.Module):
    """Fixed per-channel input normalization ``(x - mean) / std`` (no parameters).

    Models take pixels in their declared bounds (e.g. [0, 1]) and normalize internally, so probes and
    synthesis never have to know the normalization.
    """

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, x):
        mean = jnp.asarray(self.mean, x.dtype)
        std = jnp.asarray(self.std, x.dtype)
        return (x - mean) / std


def max_pool2(x):
    """2x2 max pooling, stride 2, via reshape-and-max (NHWC; odd borders are cropped).

    Cheaper than ``nn.max_pool`` under differentiation on CPU (no select-and-scatter).
    """
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2, :]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def avg_pool2(x):
    """2x2 average pooling, stride 2 (NHWC)."""
    n, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2, :]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


POOLS = {"max": max_pool2, "avg": avg_pool2, None: lambda x: x}


class ConvStage(Stage):
    """Convolution -> optional batch norm -> ReLU. Output: post-ReLU feature map (N, H', W', features)."""

    features: int
    kernel: int = 3
    stride: int = 1
    norm: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(self.features, (self.kernel, self.kernel), strides=(self.stride, self.stride),
                    padding="SAME", use_bias=not self.norm, name="conv")(x)
        if self.norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x)
        return nn.relu(x)


class DenseStage(Stage):
    """Dense -> ReLU (optionally dropout before the dense layer). Output: post-ReLU units (N, features)."""

    features: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.relu(nn.Dense(self.features, name="dense")(x))


class Readout(Stage):
    """Linear readout to class logits. Output: logits (N, num_classes); the model's output."""

    num_classes: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="dense")(x)


def classifier_head(x, fc, num_classes: int, dropout: float, train: bool):
    """Flatten, dense stages ``fc1 … fcM`` and the ``logits`` readout; call inside a compact ``__call__``."""
    x = x.reshape(x.shape[0], -1)
    for j, w in enumerate(fc, start=1):
        x = DenseStage(w, dropout=dropout, name=f"fc{j}")(x, train)
    return Readout(num_classes, dropout=dropout, name="logits")(x, train)
