"""Evaluation: the top-1 accuracy of a model on labelled images (:func:`evaluate`), batch by batch through one
compiled predictor per model."""
from __future__ import annotations

from functools import lru_cache

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..engine import fold
from ..validation import ArgumentError, check_count, check_finite
from ._checks import _check_images, _check_labels, _check_model, _n_outputs


def evaluate(model: nn.Module, variables: dict, x, y, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on images ``x`` (N, H, W, C) with labels ``y`` (N,) in its class range."""
    _check_model(model)
    if not hasattr(variables, "items") or "params" not in variables:
        raise ArgumentError(f"variables must be the model's variables (a mapping with 'params'); got "
                            f"{type(variables).__name__}")
    batch_size = check_count("batch_size", batch_size)
    x = _check_images("x", x)
    y = _check_labels("y", y, len(x), _n_outputs(model, variables, x))
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:    # NaN logits would all be class 0
        check_finite(f"variables{jax.tree_util.keystr(path)}", leaf, allow_empty=True)
    return _accuracy(model, variables, x, y, batch_size)


def _accuracy(model, variables, x, y, batch_size: int = 500) -> float:
    """The fraction of images ``x`` the model classifies as ``y`` (checked arguments)."""
    return _count_correct(_predictor(model), variables, x, y, batch_size) / len(y)


def _count_correct(predict, variables, x, y, batch_size: int) -> int:
    """How many of the images ``x`` ``predict`` labels as ``y``, streamed ``batch_size`` images a step."""
    return int(fold(_add_correct, jnp.int32(0), (x, y), predict, variables, batch_size=batch_size))


def _add_correct(count, batch, predict, variables):
    x, y = batch
    return count + jnp.sum(predict(variables, x) == y)


PREDICTOR_CACHE_SIZE = 32    # models whose compiled predictor is kept (least recently used one dropped beyond)


@lru_cache(maxsize=PREDICTOR_CACHE_SIZE)
def _predictor(model):
    """``(variables, images) -> predicted class`` of ``model``, one function per model, so the engine's fold
    compiles it once per model (and batch shape); kept for the :data:`PREDICTOR_CACHE_SIZE` most recently
    evaluated models."""
    return lambda v, x: jnp.argmax(model.apply(v, x), -1)
