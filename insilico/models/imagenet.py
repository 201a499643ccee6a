"""ImageNet architectures with torchvision's layouts: AlexNet, VGG-16, ResNet-18 and ResNet-50 (NHWC, pixels in
[0, 1]); the Vision Transformer is in :mod:`insilico.models.vit`.

Same computation as ``torchvision.models.alexnet / vgg16 / resnet18 / resnet50`` — PyTorch's symmetric paddings,
pooling windows, adaptive average pooling and (C, H, W) flattening order — so a torchvision state dict loads
without touching the weights' meaning (:func:`insilico.interop.torch_import.load_state_dict`). The ImageNet
normalization is applied inside the model, as in every insilico model.

Sites (post-ReLU, before pooling): AlexNet ``conv1 … conv5``, ``fc6``, ``fc7``, ``logits``; VGG-16
``conv1_1 … conv5_3``, ``fc6``, ``fc7``, ``logits``; ResNet-18 and ResNet-50 ``conv1`` (stem, before max
pooling), ``layer{l}/block{b}`` (torchvision's ``layer{l}[b − 1]``; basic blocks in ResNet-18, bottleneck blocks
in ResNet-50), ``logits``.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from ._stage import ConvStage, DenseStage, Normalize, Readout, max_pool2
from .resnet import ResNetStage

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def adaptive_avg_pool(x, size: tuple[int, int]):
    """PyTorch's ``AdaptiveAvgPool2d``: output cell i averages input rows ⌊i·H/h⌋ … ⌈(i+1)·H/h⌉ − 1 (NHWC)."""
    h, w = x.shape[1:3]
    oh, ow = size
    if h == 0 or w == 0:            # PyTorch: "Output size is too small"; an empty mean would be NaN
        raise ValueError(f"the feature map before adaptive average pooling is {h}x{w}: the input image is too small "
                         f"for this network (each pooling halves it); use a larger input_shape")
    if (h, w) == (oh, ow):
        return x

    def bins(n, o):
        return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]

    rows = jnp.stack([x[:, a:b].mean(1) for a, b in bins(h, oh)], 1)                 # (N, oh, W, C)
    return jnp.stack([rows[:, :, a:b].mean(2) for a, b in bins(w, ow)], 2)          # (N, oh, ow, C)


def _max_pool3(x, padding: int = 0):
    """3x3 max pooling with stride 2 (PyTorch pads with −∞)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((padding, padding), (padding, padding)))


def _flatten_chw(x):
    """Flatten in PyTorch's (C, H, W) order, so torchvision's first dense layer loads as it is."""
    return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


class AlexNet(nn.Module):
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky et al. 2012; 61 M parameters at 1,000 classes).

    Example: ``AlexNet()(x)`` for x (N, 224, 224, 3) in [0, 1].
    """

    num_classes: int = 1000
    dropout: float = 0.5
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        convs = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
        for i, (c, k, s, p) in enumerate(convs, start=1):
            x = ConvStage(c, k, stride=s, norm=False, padding=p, name=f"conv{i}")(x, train)
            if i in (1, 2, 5):
                x = _max_pool3(x)
        x = _flatten_chw(adaptive_avg_pool(x, (6, 6)))
        x = DenseStage(4096, dropout=self.dropout, name="fc6")(x, train)
        x = DenseStage(4096, dropout=self.dropout, name="fc7")(x, train)
        return Readout(self.num_classes, name="logits")(x, train)


VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


class VGG16(nn.Module):
    """torchvision's VGG without batch norm (Simonyan & Zisserman 2015); the default ``blocks`` are VGG-16
    (configuration D, 138 M parameters), ``((64,), (128,), (256, 256), (512, 512), (512, 512))`` is VGG-11."""

    blocks: Sequence[Sequence[int]] = VGG16_BLOCKS
    num_classes: int = 1000
    dropout: float = 0.5
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        for b, block in enumerate(self.blocks, start=1):
            for i, c in enumerate(block, start=1):
                x = ConvStage(c, 3, norm=False, padding=1, name=f"conv{b}_{i}")(x, train)
            x = max_pool2(x)
        x = _flatten_chw(adaptive_avg_pool(x, (7, 7)))
        # torchvision: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear — dropout before fc7 and the readout
        x = DenseStage(4096, name="fc6")(x, train)
        x = DenseStage(4096, dropout=self.dropout, name="fc7")(x, train)
        return Readout(self.num_classes, dropout=self.dropout, name="logits")(x, train)


class ResNet18(nn.Module):
    """torchvision's ImageNet ResNet with basic blocks (He et al. 2016); the default ``layers`` are ResNet-18
    (11.7 M parameters), ``(3, 4, 6, 3)`` is ResNet-34. ``block``: "basic" or "bottleneck" (:class:`ResNet50`)."""

    layers: Sequence[int] = (2, 2, 2, 2)
    widths: Sequence[int] = (64, 128, 256, 512)
    num_classes: int = 1000
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    block: str = "basic"

    @nn.compact
    def __call__(self, x, train: bool = False):
        if len(self.layers) != len(self.widths) or not self.layers or min(self.layers) < 1:
            # zip would drop the stages of the longer one, and a stage of 0 blocks its downsampling
            raise ValueError(f"{type(self).__name__}: layers {tuple(self.layers)} and widths {tuple(self.widths)} "
                             f"must give one entry per stage (as many layers as widths, at least one stage, each of "
                             f"at least one block)")
        x = Normalize(self.mean, self.std, name="normalize")(x)
        x = ConvStage(self.widths[0], 7, stride=2, padding=3, name="conv1")(x, train)
        x = _max_pool3(x, padding=1)
        for i, (n, w) in enumerate(zip(self.layers, self.widths), start=1):
            x = ResNetStage(w, n, 1 if i == 1 else 2, padding=1, block=self.block, name=f"layer{i}")(x, train)
        return Readout(self.num_classes, name="logits")(jnp.mean(x, axis=(1, 2)), train)


class ResNet50(ResNet18):
    """torchvision's ImageNet ResNet with bottleneck blocks, v1.5 (the stride on the 3x3 convolution; He et al.
    2016); the default ``layers`` are ResNet-50 (25.6 M parameters), ``(3, 4, 23, 3)`` is ResNet-101 and
    ``(3, 8, 36, 3)`` ResNet-152. ``widths``: the blocks' inner widths (outputs are 4x wider)."""

    layers: Sequence[int] = (3, 4, 6, 3)
    block: str = "bottleneck"
