"""AlexNet-style convolutional networks and a small VGG-style network (NHWC)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import flax.linen as nn

from ._stage import POOLS, ConvStage, Normalize, classifier_head


class ConvNet(nn.Module):
    """AlexNet-style family: a stack of conv stages, then dense stages and a linear readout.

    Sites: ``conv1 … convK`` (post-ReLU maps, before pooling), ``fc1 … fcM`` and ``logits``.

    Args:
        widths: channels per conv stage. kernels: kernel size per stage (one int for all).
        pools: pooling after each conv stage: "max", "avg" or None (one value for all).
        fc: widths of the dense stages. norm: batch norm in conv stages. dropout: before dense layers.
        mean/std: input normalization applied inside the model (inputs are pixels in the subject's bounds).
        local: locally connected conv stages (no weight sharing). noise: Gaussian noise (std) before every conv
        stage's ReLU when a "noise" PRNG is given (stochastic units). divisive: divisive normalization after
        every conv stage. learning_rule: "backprop" or "feedback_alignment" (every conv and dense layer).

    Example: ``ConvNet(widths=(32, 64, 128), kernels=(5, 3, 3), fc=(256,), num_classes=10)``.
    """

    widths: Sequence[int] = (32, 64, 128)
    kernels: Sequence[int] | int = 3
    pools: Sequence[str | None] | str | None = "max"
    fc: Sequence[int] = (256,)
    num_classes: int = 10
    norm: bool = True
    dropout: float = 0.0
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)
    local: bool = False
    noise: float = 0.0
    divisive: bool = False
    learning_rule: str = "backprop"

    @nn.compact
    def __call__(self, x, train: bool = False):
        n = len(self.widths)
        kernels = [self.kernels] * n if isinstance(self.kernels, int) else list(self.kernels)
        pools = list(self.pools) if isinstance(self.pools, (list, tuple)) else [cast("str | None", self.pools)] * n
        if len(kernels) != n or len(pools) != n:
            raise ValueError(f"ConvNet: widths ({n}), kernels ({len(kernels)}) and pools ({len(pools)}) "
                             "must have the same length")
        bad = [p for p in pools if p not in POOLS]
        if bad:
            raise ValueError(f"ConvNet: pools must be 'max', 'avg' or None (one value or one per stage); got {bad}")
        x = Normalize(self.mean, self.std, name="normalize")(x)
        for i, (w, k, p) in enumerate(zip(self.widths, kernels, pools), start=1):
            x = ConvStage(w, k, norm=self.norm, local=self.local, noise=self.noise, divisive=self.divisive,
                          learning_rule=self.learning_rule, name=f"conv{i}")(x, train)
            x = POOLS[p](x)
        return classifier_head(x, self.fc, self.num_classes, self.dropout, train, self.learning_rule)


class VGG(nn.Module):
    """Small VGG-style network: blocks of 3x3 conv stages, each block followed by 2x2 max pooling.

    Sites: ``conv{b}_{i}`` (block b, stage i), ``fc1 …`` and ``logits``.

    Example: ``VGG(blocks=((32, 32), (64, 64), (128, 128)), fc=(256,))``.
    """

    blocks: Sequence[Sequence[int]] = ((32, 32), (64, 64), (128, 128))
    fc: Sequence[int] = (256,)
    num_classes: int = 10
    norm: bool = True
    dropout: float = 0.0
    mean: Sequence[float] = (0.5,)
    std: Sequence[float] = (0.25,)

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        for b, block in enumerate(self.blocks, start=1):
            for i, w in enumerate(block, start=1):
                x = ConvStage(w, 3, norm=self.norm, name=f"conv{b}_{i}")(x, train)
            x = POOLS["max"](x)
        return classifier_head(x, self.fc, self.num_classes, self.dropout, train)
