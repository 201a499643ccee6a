"""Residual blocks and the CIFAR ResNets (He et al. 2016, section 4.2: depth 6n+2, three stages of n basic blocks).

The blocks — :class:`BasicBlock` (two 3x3 convolutions) and :class:`Bottleneck` (1x1, 3x3, 1x1 with a 4x wider
output) — are sites; :class:`ResNetStage` chains one kind of them (torchvision's ImageNet ResNets are built from the
same blocks in :mod:`insilico.models.imagenet`).
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from ._stage import ConvStage, Normalize, Readout, Stage, conv_padding, relu


class BasicBlock(Stage):
    """conv-bn-relu-conv-bn + shortcut, then ReLU. Output: the post-ReLU block output.

    The shortcut is the identity, or a strided 1x1 conv + bn when the shape changes (option B).
    ``padding``: None for "SAME", 1 for PyTorch's symmetric padding (torchvision's ResNets).
    """

    features: int
    stride: int = 1
    padding: int | None = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
        s = (self.stride, self.stride)
        pad = conv_padding(3, self.padding)
        y = nn.Conv(self.features, (3, 3), strides=s, padding=pad, use_bias=False, name="conv1")(x)
        y = relu(bn("bn1")(y))
        y = nn.Conv(self.features, (3, 3), padding=pad, use_bias=False, name="conv2")(y)
        y = bn("bn2")(y)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1, 1), strides=s, use_bias=False, name="shortcut")(x)
            x = bn("bn_shortcut")(x)
        return relu(x + y)


class Bottleneck(Stage):
    """torchvision's ResNet-50 block (v1.5): 1x1 conv-bn-relu, 3x3 conv-bn-relu carrying the stride, 1x1 conv-bn
    to ``expansion · features`` channels, + shortcut, then ReLU. Output: the post-ReLU block output
    (N, H', W', expansion · features).

    The shortcut is the identity, or a strided 1x1 conv + bn when the shape changes. ``padding`` of the 3x3 conv
    as in :class:`BasicBlock`.
    """

    features: int
    stride: int = 1
    padding: int | None = None
    expansion: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
        s = (self.stride, self.stride)
        out = self.features * self.expansion
        y = relu(bn("bn1")(nn.Conv(self.features, (1, 1), use_bias=False, name="conv1")(x)))
        y = nn.Conv(self.features, (3, 3), strides=s, padding=conv_padding(3, self.padding), use_bias=False,
                    name="conv2")(y)
        y = relu(bn("bn2")(y))
        y = bn("bn3")(nn.Conv(out, (1, 1), use_bias=False, name="conv3")(y))
        if self.stride != 1 or x.shape[-1] != out:
            x = nn.Conv(out, (1, 1), strides=s, use_bias=False, name="shortcut")(x)
            x = bn("bn_shortcut")(x)
        return relu(x + y)


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetStage(nn.Module):
    """A stage of ``blocks`` residual blocks named ``block1 …`` (not itself a site): ``block`` "basic"
    (:class:`BasicBlock`) or "bottleneck" (:class:`Bottleneck`, ``features`` its inner width); ``padding`` as in
    :class:`BasicBlock`. The first block carries the stride."""

    features: int
    blocks: int
    stride: int
    padding: int | None = None
    block: str = "basic"

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.block not in BLOCKS:
            raise ValueError(f"ResNetStage block must be one of {', '.join(BLOCKS)}; got {self.block!r}")
        cls = BLOCKS[self.block]
        for i in range(1, self.blocks + 1):
            x = cls(self.features, self.stride if i == 1 else 1, self.padding, name=f"block{i}")(x, train)
        return x


class ResNet(nn.Module):
    """CIFAR ResNet-(6n+2). ``ResNet(depth=20)`` is ResNet-20 (0.27 M parameters).

    Sites: ``conv1`` (stem), ``stage{s}/block{b}`` for s = 1..3, b = 1..n, and ``logits``.

    Args: depth = 6n + 2; widths: channels of the three stages; mean/std: input normalization.
    """

    depth: int = 20
    widths: Sequence[int] = (16, 32, 64)
    num_classes: int = 10
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        if (self.depth - 2) % 6 or self.depth < 8:
            raise ValueError(f"ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, ...); got {self.depth}")
        n = (self.depth - 2) // 6
        x = Normalize(self.mean, self.std, name="normalize")(x)
        x = ConvStage(self.widths[0], 3, name="conv1")(x, train)
        for s, w in enumerate(self.widths, start=1):
            x = ResNetStage(w, n, 1 if s == 1 else 2, name=f"stage{s}")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return Readout(self.num_classes, name="logits")(x, train)
