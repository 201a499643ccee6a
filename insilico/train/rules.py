"""Measurements of learning rules: how far feedback alignment's weights and gradients are from backpropagation's.

Lillicrap et al. (2016): under feedback alignment the forward weights W come to align with the fixed feedback
weights B, so the error signals the network sends approach backpropagation's. Both angles are in degrees
(90° = orthogonal; an untrained network starts near 90°).
"""
from __future__ import annotations

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from ..models.feedback import learning_rule_gradients
from ._checks import _check_images, _check_labels, _n_outputs


def _angle(a, b) -> float:
    """Angle in degrees; NaN when either is zero (no direction)."""
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0:
        return float("nan")
    c = a @ b / norm
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def weight_alignment(variables: dict) -> dict[str, float]:
    """Angle between each feedback-aligned layer's forward kernel W and its feedback matrix B, by layer path
    (e.g. ``"fc1/dense"``)."""
    fb = traverse_util.flatten_dict(variables.get("feedback", {}), sep="/")
    if not fb:
        raise ValueError("no feedback matrices in these variables: the model is not trained by feedback alignment")
    params = traverse_util.flatten_dict(variables["params"], sep="/")
    return {path.rsplit("/", 1)[0]: _angle(params[path], b) for path, b in fb.items()}


def gradient_alignment(model: nn.Module, variables: dict, x, y, *, key=None) -> dict[str, float]:
    """Angle between the kernel gradients of the cross-entropy loss on (x, y) under the model's learning rule
    and under backpropagation (``model.clone(learning_rule="backprop")`` on the same parameters), by layer path.
    The readout's gradient is the same under both rules (0°); the layers below show how well the feedback
    signal approximates the true gradient.

    The model runs as it does while learning (``train=True``: batch norm on the batch's statistics; dropout and
    noise, if any, drawn from ``key`` — the same draws under both rules), so the angle is that of the gradients
    training computes (of its updates too under plain SGD; Adam rescales them). A model with dropout or
    stochastic units needs ``key``."""
    if not hasattr(model, "learning_rule"):
        raise ValueError(f"{type(model).__name__} has no learning_rule field to compare with backpropagation")
    x = _check_images("x", x)
    labels = jnp.asarray(_check_labels("y", y, len(x), _n_outputs(model, variables, x)))
    bp = model.clone(learning_rule="backprop")
    rngs = {} if key is None else {"dropout": key, "noise": jax.random.fold_in(key, 1)}

    def grads(m, v):
        def loss(params):
            with learning_rule_gradients():
                logits, _ = m.apply({**v, "params": params}, jnp.asarray(x), train=True,
                                    mutable=["batch_stats", "intermediates"], rngs=rngs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return traverse_util.flatten_dict(jax.grad(loss)(v["params"]), sep="/")

    try:
        g_rule = grads(model, variables)
    except flax.errors.InvalidRngError as err:
        raise ValueError(f"{type(model).__name__} draws random numbers in training mode (dropout or noise): pass "
                         "gradient_alignment(..., key=jax.random.key(0))") from err
    g_bp = grads(bp, {k: v for k, v in variables.items() if k != "feedback"})
    return {path.rsplit("/", 1)[0]: _angle(g_rule[path], g_bp[path]) for path in g_rule if path.endswith("kernel")}
