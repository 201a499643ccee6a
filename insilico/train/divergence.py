"""Divergence of training: :class:`TrainingDivergedError`, the on-device check that a training state holds only
finite values, and the "a/b/c" paths of the leaves that do not."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training produced a non-finite loss or non-finite weights. ``epoch`` (1-based), ``step`` (1-based, in the
    epoch), ``global_step`` and ``batch`` (the batch's 0-based number in the epoch) locate the first bad step;
    ``indices`` are the training images of that batch (None when the weights, not a loss, went bad)."""

    def __init__(self, message, *, epoch, step, global_step, batch=None, indices=None):
        super().__init__(message)
        self.epoch, self.step, self.global_step, self.batch, self.indices = epoch, step, global_step, batch, indices


@jax.jit
def _tree_finite(tree):
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _nonfinite_paths(tree) -> list[str]:
    """The "a/b/c" paths of the leaves of ``tree`` (params, batch statistics or an optimizer state) that hold
    NaN or inf."""
    flat = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    return [jax.tree_util.keystr(path, simple=True, separator="/")
            for path, leaf in flat if not np.isfinite(np.asarray(leaf, np.float64)).all()]
