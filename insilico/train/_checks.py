"""The argument checks of training and evaluation: the model, images, labels and datasets passed to
:func:`~insilico.train.fit` and :func:`~insilico.train.evaluate`, each error naming the argument, the bad value and
what is valid."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..validation import ArgumentError, check_finite, check_labels


def _check_model(model):
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a flax.linen Module (e.g. insilico.models.ConvNet()); got "
                            f"{type(model).__name__}")


def _n_outputs(model, variables, x) -> int | None:
    """The width of the model's output for images like ``x`` (classes of a classifier); None when the output is
    not a (N, K) array."""
    try:
        out = jax.eval_shape(lambda v, a: model.apply(v, a), variables, jax.ShapeDtypeStruct((1, *x.shape[1:]),
                                                                                            jnp.float32))
    except Exception:            # a model that needs more than images to run: its own error comes later
        return None
    return out.shape[-1] if hasattr(out, "shape") and len(out.shape) == 2 else None


def _check_images(name: str, x) -> np.ndarray:
    a = check_finite(name, x)
    if a.ndim < 2:
        raise ArgumentError(f"{name} must be a batch of images (N, H, W, C); got shape {a.shape}")
    return np.asarray(a, np.float32)


def _check_labels(name: str, y, n: int, n_classes: int | None) -> np.ndarray:
    if n_classes is None:             # the class range is unknown: integers, one per image
        a = check_finite(name, y, ndim=1)
        if a.shape[0] != n:
            raise ArgumentError(f"{name} must hold one label per image ({n}); got {a.shape[0]}")
        if not (np.issubdtype(a.dtype, np.integer) or np.all(a == np.round(a))):
            raise ArgumentError(f"{name} must be integer class labels; got dtype {a.dtype}")
        return a.astype(np.int32)
    return check_labels(name, y, n_classes, n=n)


def _dataset_images(name: str, data) -> np.ndarray:
    """The checked images of ``data`` (a Dataset, or anything with images ``x`` and labels ``y``)."""
    if not (hasattr(data, "x") and hasattr(data, "y")):
        raise ArgumentError(f"{name} must be an insilico.data.Dataset (images .x, labels .y); got "
                            f"{type(data).__name__}")
    return _check_images(f"{name}.x", data.x)


def _dataset_labels(name: str, data, n: int, *, labelled: bool, n_classes: int | None) -> np.ndarray:
    """Labels checked when the objective uses them (one integer per image, in the class range); otherwise the
    labels as given (or zeros), which the objective ignores."""
    if labelled:
        return _check_labels(f"{name}.y", data.y, n, n_classes)
    y = data.y
    return np.asarray(y, np.int32) if y is not None and np.shape(y) == (n,) else np.zeros(n, np.int32)
