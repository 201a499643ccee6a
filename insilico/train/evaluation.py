"""Evaluation: the top-1 accuracy of a model on labelled images (:func:`evaluate`), batch by batch through one
compiled predictor per model."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..validation import check_count
from ._checks import _check_images, _check_labels, _check_model, _n_outputs


def evaluate(model: nn.Module, variables: dict, x, y, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,) in its class range."""
    _check_model(model)
    batch_size = check_count("batch_size", batch_size)
    x = _check_images("x", x)
    y = _check_labels("y", y, len(x), _n_outputs(model, variables, x))
    return _accuracy(model, variables, x, y, batch_size)


def _accuracy(model, variables, x, y, batch_size: int = 500) -> float:
    predict = _predictor(model)
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int(jnp.sum(predict(variables, jnp.asarray(x[i:i + batch_size])) == jnp.asarray(y[i:i + batch_size])))
    return correct / len(y)


_PREDICTORS: dict = {}


def _predictor(model):
    if model not in _PREDICTORS:
        _PREDICTORS[model] = jax.jit(lambda v, x: jnp.argmax(model.apply(v, x), -1))
    return _PREDICTORS[model]
