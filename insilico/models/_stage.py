"""Building blocks shared by the model zoo.

A *site* is any submodule that subclasses :class:`Stage`. The electrode records and edits exactly these
modules: their ``__call__`` output is the post-nonlinearity activation a neuroscientist would record.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .. import rng
from .feedback import check_rule, conv, dense

_RELU_OVERRIDE: contextvars.ContextVar = contextvars.ContextVar("relu_override", default=None)


@jax.custom_vjp
def _redirected_relu(x, on):
    return jnp.maximum(x, 0)


def _redirected_fwd(x, on):
    return jnp.maximum(x, 0), (x, on)


def _redirected_bwd(res, g):
    x, on = res
    plain = jnp.where(x > 0, g, 0.0)
    # Where a sample's unit is dead (all ReLU gradients zero), pass the gradient components that would raise x
    # under gradient descent on the loss (g < 0), as Lucid's redirected ReLU does.
    redirected = jnp.where((x > 0) | (g < 0), g, 0.0)
    axes = tuple(range(1, x.ndim))
    dead = jnp.all(plain == 0, axis=axes, keepdims=True) if axes else plain == 0
    return jnp.where((on > 0) & dead, redirected, plain), jnp.zeros_like(on)


_redirected_relu.defvjp(_redirected_fwd, _redirected_bwd)


def relu(x):
    """ReLU used by every zoo model. Inside :func:`relu_gradient_override` its gradient is redirected."""
    on = _RELU_OVERRIDE.get()
    return jax.nn.relu(x) if on is None else _redirected_relu(x, on)


def relu_override_state():
    """The value set by the innermost :func:`relu_gradient_override` (a scalar array), or None outside one.
    Compiled functions that run a model take it as an argument, so the override is part of what keys them."""
    return _RELU_OVERRIDE.get()


@contextlib.contextmanager
def relu_gradient_override(on):
    """Trace-time context: while ``on`` (a scalar, may be traced) is > 0, ReLUs of zoo models pass gradients
    that would revive a dead unit (Olah et al. 2017's "redirected ReLU"); the forward pass is unchanged."""
    token = _RELU_OVERRIDE.set(jnp.asarray(on, jnp.float32))
    try:
        yield
    finally:
        _RELU_OVERRIDE.reset(token)


class Stage(nn.Module):
    """Marker base class: the output of a ``Stage`` submodule is a recordable, editable site."""


def check_sizes(module: nn.Module, **sizes) -> None:
    """Each of ``sizes`` (widths, kernels, strides, class counts) an integer ≥ 1: a zero width would fail deep
    in an initializer (a division by zero), a negative one in broadcasting."""
    for field, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{type(module).__name__} {module.name or ''}: {field} must be an integer ≥ 1; got "
                             f"{value!r}")


def check_dropout(module: nn.Module, rate) -> None:
    """A dropout rate in [0, 1): at 1 every unit is dropped, below 0 none (silently)."""
    if not 0 <= rate < 1:
        raise ValueError(f"{type(module).__name__} {module.name or ''}: dropout must be in [0, 1); got {rate!r}")


class Normalize(nn.Module):
    """Fixed per-channel input normalization ``(x - mean) / std`` (no parameters).

    Models take pixels in their declared bounds (e.g. [0, 1]) and normalize internally, so probes and
    synthesis never have to know the normalization.
    """

    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, x):
        c = x.shape[-1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, c):      # broadcasting would turn a 1-channel input into len(v) channels
                raise ValueError(f"Normalize: {name} has {len(v)} values for an input of {c} channel(s); give 1 "
                                 f"or {c}")
        if not all(v > 0 for v in self.std):                # 0 gives NaN, a negative one flips the input
            raise ValueError(f"Normalize: std must be > 0 for every channel; got {tuple(self.std)}")
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


def conv_padding(kernel: int, padding):
    """Flax padding for a square kernel: "SAME", or ``int`` p for PyTorch's symmetric zero padding."""
    return "SAME" if padding is None else ((padding, padding), (padding, padding))


def noisy(x, std: float, module: nn.Module):
    """x + std·ε with ε ~ N(0, 1) from the module's ``"noise"`` PRNG stream when one is given (the electrode
    passes it when ``run`` gets a key); without a key the stage responds noise-free (its deterministic mean
    drive), so every probe also works on stochastic models."""
    if std < 0:
        raise ValueError(f"{type(module).__name__} {module.name or ''}: noise must be a standard deviation ≥ 0; got "
                         f"{std!r}")
    if std == 0 or not module.has_rng("noise"):
        return x
    return x + std * rng.normal(module.make_rng("noise"), x.shape, x.dtype)


class DivisiveNorm(nn.Module):
    """Divisive normalization across channels (Carandini & Heeger 2012; the GDN of Ballé et al. 2016):
    yᵢ = xᵢ / sqrt(βᵢ + Σⱼ γᵢⱼ xⱼ²) with learned β > 0 and γ ≥ 0 (initialized β = 1, γ = 0.1·I)."""

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        beta = jax.nn.softplus(self.param("beta", nn.initializers.constant(0.5413), (c,)))   # softplus⁻¹(1)
        gamma = jax.nn.relu(self.param("gamma", lambda k, s: 0.1 * jnp.eye(s[0]), (c, c)))
        return x / jnp.sqrt(beta + (x * x) @ gamma.T)                          # Σⱼ γᵢⱼ xⱼ²


class ConvStage(Stage):
    """Convolution -> optional batch norm -> ReLU [-> divisive normalization]. Output: the post-nonlinearity
    feature map (N, H', W', features).

    ``padding``: None for "SAME", or an int for PyTorch-style symmetric padding. ``local``: a locally connected
    layer (a separate filter at every position, no weight sharing; "SAME" padding). ``noise``: standard deviation
    of Gaussian noise added before the ReLU when a ``"noise"`` PRNG is given (:func:`noisy`). ``divisive``:
    divisive normalization across channels after the ReLU. ``learning_rule``: "backprop" or "feedback_alignment"
    (the error reaches the input through a fixed random kernel; not for locally connected layers).
    """

    features: int
    kernel: int = 3
    stride: int = 1
    norm: bool = True
    padding: int | None = None
    local: bool = False
    noise: float = 0.0
    divisive: bool = False
    learning_rule: str = "backprop"

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_sizes(self, features=self.features, kernel=self.kernel, stride=self.stride)
        if self.local:
            if self.padding is not None:
                raise ValueError(f"{self.name}: a locally connected stage (local=True) pads 'SAME'; padding="
                                 f"{self.padding} is for convolutions")
            if check_rule(self.learning_rule) != "backprop":
                raise ValueError(f"{self.name}: feedback alignment is implemented for convolutions and dense "
                                 "layers, not for locally connected layers (local=True)")
            x = nn.ConvLocal(self.features, (self.kernel, self.kernel), strides=(self.stride, self.stride),
                             padding="SAME", use_bias=not self.norm, name="conv")(x)
        else:
            x = conv(self.features, self.kernel, self.stride, conv_padding(self.kernel, self.padding),
                     not self.norm, self.learning_rule, "conv")(x)
        if self.norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(x)
        x = relu(noisy(x, self.noise, self))
        return DivisiveNorm(name="divnorm")(x) if self.divisive else x


class DenseStage(Stage):
    """Dense -> ReLU (optionally dropout before the dense layer). Output: post-ReLU units (N, features).
    ``learning_rule``: "backprop" or "feedback_alignment" (:mod:`insilico.models.feedback`)."""

    features: int
    dropout: float = 0.0
    learning_rule: str = "backprop"

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_sizes(self, features=self.features)
        check_dropout(self, self.dropout)
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return relu(dense(self.features, self.learning_rule, "dense")(x))


class Readout(Stage):
    """Linear readout to class logits. Output: logits (N, num_classes); the model's output."""

    num_classes: int
    dropout: float = 0.0
    learning_rule: str = "backprop"

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_sizes(self, num_classes=self.num_classes)
        check_dropout(self, self.dropout)
        if self.dropout > 0:
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return dense(self.num_classes, self.learning_rule, "dense")(x)


def classifier_head(x, fc, num_classes: int, dropout: float, train: bool, learning_rule: str = "backprop"):
    """Flatten, dense stages ``fc1 … fcM`` and the ``logits`` readout; call inside a compact ``__call__``."""
    x = x.reshape(x.shape[0], -1)
    for j, w in enumerate(fc, start=1):
        x = DenseStage(w, dropout=dropout, learning_rule=learning_rule, name=f"fc{j}")(x, train)
    return Readout(num_classes, dropout=dropout, learning_rule=learning_rule, name="logits")(x, train)
