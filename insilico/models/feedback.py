"""Learning rules inside the layers: backpropagation, or feedback alignment (Lillicrap et al. 2016).

Under feedback alignment a layer computes y = x·W as usual, but the error it sends to the layer below is
g·Bᵀ with a fixed random feedback matrix B of W's shape instead of g·Wᵀ; W's own update is unchanged (xᵀg).
It is a custom VJP around the layer's linear map, so any optax optimizer and every probe work unchanged (the
forward pass is the same computation). B lives in the ``"feedback"`` variable collection, drawn at
initialization from the ``"params"`` key; nothing ever updates it.
"""
from __future__ import annotations

from functools import lru_cache

import flax.linen as nn
import jax
import jax.numpy as jnp

LEARNING_RULES = ("backprop", "feedback_alignment")


def check_rule(rule: str) -> str:
    if rule not in LEARNING_RULES:
        raise ValueError(f"unknown learning rule {rule!r}; valid: {', '.join(LEARNING_RULES)}")
    return rule


@lru_cache(maxsize=None)
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
        return feedback_aligned(_matmul)(x, kernel, feedback) + bias


def dense(features: int, rule: str, name: str):
    """``nn.Dense`` for backpropagation, :class:`FADense` for feedback alignment (same parameter names)."""
    return nn.Dense(features, name=name) if check_rule(rule) == "backprop" else FADense(features, name=name)
