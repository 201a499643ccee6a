"""What a lesion is scored by: the metrics of lesioned logits against the intact model's, reduced inside the
compiled sweep (:func:`metrics`), and the same metrics of the intact model itself, on the host
(:func:`intact_metrics`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import logsumexp

from ..validation import ArgumentError

__all__ = ["metrics", "intact_metrics"]


def _check(logits, intact, target) -> None:
    """Shapes only (traced values have them): logits and the intact logits (N, classes), ``target`` a pair
    ``(labels (N,) or None, weight (N,) or None)``."""
    shape = tuple(np.shape(intact))
    if len(shape) != 2 or (logits is not None and tuple(np.shape(logits)) != shape):
        got = "" if logits is None else f"logits {tuple(np.shape(logits))}, "
        raise ArgumentError(f"lesion metrics need logits and intact logits of one shape (images, classes); got "
                            f"{got}intact {shape}")
    if not isinstance(target, tuple) or len(target) != 2:
        raise ArgumentError(f"target must be a pair (labels or None, weight or None); got {target!r:.80}")
    for name, v in zip(("labels", "weight"), target):
        if v is not None and tuple(np.shape(v)) != shape[:1]:
            raise ArgumentError(f"target's {name} must hold one value per image ({shape[0]}); got shape "
                                f"{tuple(np.shape(v))}")


def metrics(logits, intact, target):
    """Reduced inside the compiled sweep: agreement and |Δ logit| vs the intact model; with labels also
    accuracy, per-class accuracy (classes absent from ``labels`` give NaN-free 0/0 -> 0) and mean loss.
    ``target``: ``(labels or None, weight)`` — ``weight`` (N,) 1 for real images, 0 for the padding of a
    batch-size bucket (None: every image counts)."""
    _check(logits, intact, target)
    labels, weight = target
    pred, pred0 = jnp.argmax(logits, -1), jnp.argmax(intact, -1)
    w = jnp.ones(pred.shape, jnp.float32) if weight is None else weight

    def mean(v):
        return jnp.sum(w * v) / jnp.sum(w)
    out = {"agreement": mean(pred == pred0), "logit_change": mean(jnp.mean(jnp.abs(logits - intact), -1))}
    if labels is not None:
        correct = (pred == labels).astype(jnp.float32)
        onehot = jax.nn.one_hot(labels, logits.shape[-1]) * w[:, None]
        out["accuracy"] = mean(correct)
        # a sum, not the matrix-vector product onehot.T @ correct: the same (integer) counts, but XLA:CPU
        # compiles that product for 0.2 s more
        out["class_accuracy"] = jnp.sum(onehot * correct[:, None], 0) / jnp.maximum(onehot.sum(0), 1.0)
        out["loss"] = mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    return out


def intact_metrics(intact, target) -> dict:
    """:func:`metrics` of the intact model against itself, on the host in NumPy: agreement 1, no logit change
    and, with labels, accuracy, per-class accuracy and mean loss (summed in float64, divided in float32). A
    compiled program for these few numbers took XLA:CPU 0.17 s to compile, a sixth of a first sweep."""
    _check(None, intact, target)
    labels, weight = target
    logits = np.asarray(intact, np.float64)
    w = np.ones(len(logits)) if weight is None else np.asarray(weight, np.float64)

    def mean(v):       # divided in float32, as the compiled metrics are: equal counts give equal fractions
        return float(np.float32(np.sum(w * v)) / np.float32(np.sum(w)))
    out: dict = {"agreement": 1.0, "logit_change": 0.0}
    if labels is not None:
        labels, n_classes = np.asarray(labels), logits.shape[-1]
        correct = logits.argmax(-1) == labels
        counts = np.bincount(labels, weights=w, minlength=n_classes)
        hits = np.bincount(labels, weights=w * correct, minlength=n_classes)
        out["accuracy"] = mean(correct)
        out["class_accuracy"] = (hits / np.maximum(counts, 1.0)).astype(np.float32)
        out["loss"] = mean(logsumexp(logits, -1) - logits[np.arange(len(labels)), labels])
    return out
