"""Bootstrap samples as data. Sample b (0, 1, 2, …) draws its stimuli (or subjects) from ``fold_in(key, b)`` alone,
and samples run through one compiled function over a fixed-size block of sample numbers, called once per block
(the last block's extra samples dropped): a new sample count compiles nothing, and sample b is the same whatever
the number of samples or the block size.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

BLOCK = 256                     # samples per compiled call


def draw_counts(key, start, size: int, n: int):
    """How often each of ``n`` items is drawn (``n`` draws with replacement) in samples ``start`` …
    ``start + size − 1``: (size, n) float32; sample b from ``fold_in(key, b)``."""
    draws = jax.vmap(lambda b: jax.random.randint(jax.random.fold_in(key, b), (n,), 0, n))(start + jnp.arange(size))
    return jnp.zeros((size, n), jnp.float32).at[jnp.arange(size)[:, None], draws].add(1.0)


def pair_weights(counts):
    """Pair multiplicities kᵢkⱼ (i < j, condensed order) of stimulus counts (B, n): (B, n(n − 1)/2)."""
    i, j = np.triu_indices(counts.shape[-1], 1)
    return counts[:, i] * counts[:, j]


def subject_mean(per, key, start, over: str):
    """The mean over subjects of per-subject scores (B, M, S): plain for a stimulus bootstrap, weighted by each
    sample's subject counts (drawn with ``key`` as for ``draw_counts``) when subjects are resampled."""
    if over == "stimuli":
        return per.mean(-1)
    w = draw_counts(key, start, per.shape[0], per.shape[-1])[:, None, :]
    return jnp.sum(per * w, -1) / jnp.sum(w, -1)


def run_blocks(block: Callable, n_samples: int, size: int = BLOCK):
    """``block(start)`` for start = 0, size, 2·size, …: outputs (a pytree of arrays with a leading axis of ``size``)
    joined on the host and cut to ``n_samples``. The calls are dispatched before any result is read."""
    outs = [block(np.int32(s)) for s in range(0, n_samples, size)]
    return jax.tree.map(lambda *x: np.concatenate(x)[:n_samples], *jax.device_get(outs))
