"""Learning rules inside the layers: backpropagation, or feedback alignment (Lillicrap et al. 2016).

Under feedback alignment a layer computes y = x·W as usual, but the error it sends to the layer below is
g·Bᵀ with a fixed random feedback matrix B of W's shape instead of g·Wᵀ; W's own update is unchanged (xᵀg).
It is a custom VJP around the layer's linear map, so any optax optimizer works unchanged (the forward pass is the
same computation). The rule is a rule for *learning*: it is in force only while tracing inside
:func:`learning_rule_gradients` (the training loop does); probes that differentiate the network (feature
visualization, adversarial examples, metamers) get its true gradients. Dense layers (:class:`FADense`) and
convolutions (:class:`FAConv`, whose feedback is a fixed random kernel) are provided. B lives in the ``"feedback"``
variable collection, drawn at initialization from the ``"params"`` key; nothing ever updates it.
"""
from __future__ import annotations

import contextlib
import contextvars
from functools import cache

import flax.linen as nn
import jax
import jax.numpy as jnp

LEARNING_RULES = ("backprop", "feedback_alignment")

_LEARNING: contextvars.ContextVar = contextvars.ContextVar("learning_rule_gradients", default=False)


@contextlib.contextmanager
def learning_rule_gradients():
    """Trace-time context for learning: inside it, layers trained by feedback alignment send errors down through
    their feedback weights. Outside it — every probe: feature visualization, adversarial examples, metamers,
    gradients of responses — gradients are the network's true gradients (the forward pass is the same
    either way). The training loop and :func:`insilico.train.rules.gradient_alignment` trace inside it."""
    token = _LEARNING.set(True)
    try:
        yield
    finally:
        _LEARNING.reset(token)


def _rule_op(f):
    """f itself for true gradients; its feedback-aligned version while learning."""
    return feedback_aligned(f) if _LEARNING.get() else (lambda x, w, b: f(x, w))


def check_rule(rule: str) -> str:
    if rule not in LEARNING_RULES:
        raise ValueError(f"unknown learning rule {rule!r}; valid: {', '.join(LEARNING_RULES)}")
    return rule


@cache
def feedback_aligned(f):
    """``op(x, w, b) = f(x, w)`` for a map f linear in x, whose VJP sends the error to x through the feedback
    weights b (the VJP of f(·, b)) and to w as backpropagation would; b receives no gradient."""

    @jax.custom_vjp
    def op(x, w, b):
        return f(x, w)

    def fwd(x, w, b):
        return f(x, w), (x, w, b)

    def bwd(res, g):
        x, w, b = res
        gw = jax.vjp(lambda w_: f(x, w_), w)[1](g)[0]
        gx = jax.vjp(lambda x_: f(x_, b), x)[1](g)[0]
        return gx, gw, jnp.zeros_like(b)

    op.defvjp(fwd, bwd)
    return op


def _matmul(x, w):
    return x @ w


class FADense(nn.Module):
    """A dense layer trained by feedback alignment (same parameters and initialization as ``nn.Dense``)."""

    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        feedback = self.variable("feedback", "kernel", lambda: nn.initializers.lecun_normal()(
            self.make_rng("params"), kernel.shape)).value
        return _rule_op(_matmul)(x, kernel, feedback) + bias


@cache
def _conv(strides: tuple, padding):
    """``x ⋆ w`` (NHWC input, HWIO kernel) with the given strides and padding; one function per geometry, so
    :func:`feedback_aligned` builds one custom VJP for each."""

    def f(x, w):
        return jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return f


class FAConv(nn.Module):
    """A 2-D convolution trained by feedback alignment: the error reaches the input through a fixed random
    kernel B (a transposed convolution with B instead of W). Same parameter names, shapes and initialization as
    ``nn.Conv`` for the arguments used by the zoo (build it through :func:`conv`): batched NHWC input,
    ``kernel_size`` and ``strides`` pairs, ``padding`` "SAME", "VALID" or ((top, bottom), (left, right))."""

    features: int
    kernel_size: tuple
    strides: tuple = (1, 1)
    padding: str | tuple = "SAME"
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        feedback = self.variable("feedback", "kernel", lambda: nn.initializers.lecun_normal()(
            self.make_rng("params"), shape)).value
        padding = self.padding if isinstance(self.padding, str) else tuple(map(tuple, self.padding))
        y = _rule_op(_conv(tuple(self.strides), padding))(x, kernel, feedback)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


def conv(features: int, kernel: int, stride: int, padding, use_bias: bool, rule: str, name: str):
    """``nn.Conv`` for backpropagation, :class:`FAConv` for feedback alignment (same parameter names)."""
    cls = nn.Conv if check_rule(rule) == "backprop" else FAConv
    return cls(features, (kernel, kernel), strides=(stride, stride), padding=padding, use_bias=use_bias, name=name)


def dense(features: int, rule: str, name: str):
    """``nn.Dense`` for backpropagation, :class:`FADense` for feedback alignment (same parameter names)."""
    return nn.Dense(features, name=name) if check_rule(rule) == "backprop" else FADense(features, name=name)
