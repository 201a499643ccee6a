"""CORnet-Z, CORnet-RT and CORnet-S (Kubilius et al. 2019): four areas V1, V2, V4, IT and a decoder, with the
layouts of the official PyTorch code (NHWC, pixels in [0, 1], the ImageNet normalization applied inside).

- **CORnet-Z**: each area is conv (7x7/2 in V1, 3x3/1 above; PyTorch's padding k // 2, with bias) → ReLU →
  3x3/2 max pooling (padding 1). Sites ``V1``, ``V2``, ``V4``, ``IT`` (each area's pooled output), ``logits``.
- **CORnet-RT**: every area runs ``times`` steps. At step t an area takes the output of the area below at step
  t − 1 (the image for V1, at every step) through ``conv_input`` (7x7/4 in V1, 3x3/2 above) → GroupNorm(32) →
  ReLU, adds its own output at t − 1, and responds ReLU(GroupNorm(32)(conv1(·))). At step 0 only V1 has input:
  the areas above take zeros of the shape ``conv_input`` would give (so they respond ReLU of ``norm1``'s bias).
  Sites ``{area}/t0 … t{times − 1}``; the decoder reads IT's last step.
- **CORnet-S**: V1 (conv1 7x7/2, norm1, ReLU, 3x3/2 max pooling, conv2 3x3, norm2, ReLU) runs once (site
  ``V1``). V2, V4 and IT are bottleneck blocks run for 2, 4 and 2 steps: ``conv_input`` (1x1) once, then per step
  x ← ReLU(norm3_t(conv3(ReLU(norm2_t(conv2(ReLU(norm1_t(conv1(x))))))) + skip)) with conv1/2/3 shared over steps
  and a batch norm per step. Step 0 halves the resolution (conv2 at stride 2, skip = norm_skip(skip(x)) at
  stride 2); later steps keep it (stride 1, skip = x). Sites ``{area}/t{k}``.

An area name is a container (not a site); its response at step k is an :class:`AreaStep` stage named ``t{k}``, so
recording or editing ``V4/t1`` acts on exactly that step, and later steps see the edited response. The decoder
(global average pooling → linear) is the ``logits`` site. Submodule names follow the official state-dict keys
(:mod:`insilico.interop.cornet_import`).
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._stage import Normalize, Readout, Stage, relu
from .imagenet import IMAGENET_MEAN, IMAGENET_STD

AREAS = ("V1", "V2", "V4", "IT")
WIDTHS = (64, 128, 256, 512)


class Conv2d(nn.Module):
    """PyTorch's ``Conv2d``: square kernel, symmetric zero padding; the stride may be changed per call (CORnet-S
    runs the same conv2 weights at stride 2, then 1). Parameters as ``nn.Conv``: ``kernel`` (k, k, in, out) and
    ``bias``."""

    features: int
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    use_bias: bool = False

    @nn.compact
    def __call__(self, x, stride: int | None = None):
        k = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel, self.kernel, x.shape[-1],
                                                                   self.features))
        s = self.stride if stride is None else stride
        p = ((self.padding, self.padding), (self.padding, self.padding))
        y = jax.lax.conv_general_dilated(x, k, (s, s), p, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def conv_size(n: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling along one axis (PyTorch's formula)."""
    return (n + 2 * padding - kernel) // stride + 1


def max_pool3(x):
    """3x3 max pooling, stride 2, padding 1 (−∞ padding, as PyTorch)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))


def _group_norm(name: str):
    return nn.GroupNorm(num_groups=32, epsilon=1e-5, use_fast_variance=False, name=name)


def _batch_norm(name: str, train: bool):
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)


def _decoder(x, num_classes: int, train: bool):
    return Readout(num_classes, name="logits")(jnp.mean(x, axis=(1, 2)), train)


class AreaStep(Stage):
    """An area's response at one time step: the ReLU of its summed input (the site ``{area}/t{k}``)."""

    @nn.compact
    def __call__(self, z):
        return relu(z)


class ZArea(Stage):
    """A CORnet-Z area: conv → ReLU → 3x3/2 max pooling. Output: the pooled map (the area's output)."""

    features: int
    kernel: int = 3
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        x = Conv2d(self.features, self.kernel, self.stride, self.kernel // 2, use_bias=True, name="conv")(x)
        return max_pool3(relu(x))


class CORnetZ(nn.Module):
    """CORnet-Z (the feed-forward CORnet; 2.1 M parameters at 1,000 classes). Example: ``CORnetZ()(x)`` for x
    (N, 224, 224, 3) in [0, 1]; sites ``V1``, ``V2``, ``V4``, ``IT``, ``logits``."""

    num_classes: int = 1000
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = Normalize(self.mean, self.std, name="normalize")(x)
        for area, w in zip(AREAS, WIDTHS):
            x = ZArea(w, 7 if area == "V1" else 3, 2 if area == "V1" else 1, name=area)(x)
        return _decoder(x, self.num_classes, train)


class RTArea(nn.Module):
    """A CORnet-RT area (container): call it once per step; its convolutions and group norms are shared over
    steps, its response at step t is the stage ``t{t}``."""

    features: int
    kernel: int = 3
    stride: int = 2

    @nn.compact
    def __call__(self, t: int, below, state, bottom_up: bool = True):
        """``below``: the input (the image, or the area below's output at t − 1); with ``bottom_up`` False (step 0
        above V1) only its shape is used, the input being zeros. ``state``: own output at t − 1, or None."""
        pad = self.kernel // 2
        if bottom_up:
            x = Conv2d(self.features, self.kernel, self.stride, pad, use_bias=True, name="conv_input")(below)
            x = relu(_group_norm("norm_input")(x))
        else:
            n, h, w, _ = below.shape
            size = (conv_size(h, self.kernel, self.stride, pad), conv_size(w, self.kernel, self.stride, pad))
            x = jnp.zeros((n, *size, self.features), below.dtype)
        if state is not None:
            x = x + state
        z = _group_norm("norm1")(Conv2d(self.features, 3, 1, 1, name="conv1")(x))
        return AreaStep(name=f"t{t}")(z)


class CORnetRT(nn.Module):
    """CORnet-RT (recurrent, 5 steps by default; 5.2 M parameters at 1,000 classes). Each area at step t reads
    the area below at t − 1 and itself at t − 1, so the image reaches IT at step 3. Sites
    ``V1/t0 … IT/t{times − 1}``, ``logits`` (IT's last step)."""

    num_classes: int = 1000
    times: int = 5
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.times < 1:
            raise ValueError(f"CORnetRT needs at least one time step; got times={self.times}")
        x = Normalize(self.mean, self.std, name="normalize")(x)
        areas = [RTArea(w, 7 if a == "V1" else 3, 4 if a == "V1" else 2, name=a) for a, w in zip(AREAS, WIDTHS)]
        outputs: list = [None] * len(areas)
        for t in range(self.times):
            new: list = []
            for i, area in enumerate(areas):
                if i == 0:
                    new.append(area(t, x, outputs[0]))
                elif t == 0:                                   # no input yet above V1: zeros of the right shape
                    new.append(area(t, new[i - 1], None, bottom_up=False))
                else:
                    new.append(area(t, outputs[i - 1], outputs[i]))
            outputs = new
        return _decoder(outputs[-1], self.num_classes, train)


class SV1(Stage):
    """CORnet-S's V1 (not recurrent): conv1 7x7/2 → norm1 → ReLU → 3x3/2 max pooling → conv2 3x3 → norm2 → ReLU."""

    features: int = 64

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = relu(_batch_norm("norm1", train)(Conv2d(self.features, 7, 2, 3, name="conv1")(x)))
        x = max_pool3(x)
        return relu(_batch_norm("norm2", train)(Conv2d(self.features, 3, 1, 1, name="conv2")(x)))


class SArea(nn.Module):
    """A CORnet-S recurrent bottleneck area (container) run for ``times`` steps; responses are stages ``t{k}``."""

    features: int
    times: int
    scale: int = 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        wide = self.features * self.scale
        x = Conv2d(self.features, 1, name="conv_input")(x)
        conv1, conv2 = Conv2d(wide, 1, name="conv1"), Conv2d(wide, 3, 1, 1, name="conv2")
        conv3 = Conv2d(self.features, 1, name="conv3")
        for t in range(self.times):
            if t == 0:
                skip = _batch_norm("norm_skip", train)(Conv2d(self.features, 1, 2, name="skip")(x))
            else:
                skip = x
            h = relu(_batch_norm(f"norm1_{t}", train)(conv1(x)))
            h = relu(_batch_norm(f"norm2_{t}", train)(conv2(h, stride=2 if t == 0 else 1)))
            x = AreaStep(name=f"t{t}")(_batch_norm(f"norm3_{t}", train)(conv3(h)) + skip)
        return x


class CORnetS(nn.Module):
    """CORnet-S (53 M parameters at 1,000 classes). Example: ``CORnetS()(x)``; sites ``V1``, ``V2/t0``, ``V2/t1``,
    ``V4/t0 … V4/t3``, ``IT/t0``, ``IT/t1``, ``logits``. ``times``: the steps of V2, V4 and IT."""

    num_classes: int = 1000
    times: Sequence[int] = (2, 4, 2)
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD

    @nn.compact
    def __call__(self, x, train: bool = False):
        if len(self.times) != 3 or min(self.times) < 1:
            raise ValueError(f"CORnetS needs a step count of at least 1 for each of V2, V4, IT; got "
                             f"times={tuple(self.times)}")
        x = Normalize(self.mean, self.std, name="normalize")(x)
        x = SV1(WIDTHS[0], name="V1")(x, train)
        for area, w, n in zip(AREAS[1:], WIDTHS[1:], self.times):
            x = SArea(w, n, name=area)(x, train)
        return _decoder(x, self.num_classes, train)
