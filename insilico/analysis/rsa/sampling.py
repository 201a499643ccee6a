"""Bootstrap samples as data. Sample b (0, 1, 2, …) draws its stimuli (or subjects) from ``fold_in(key, b)`` alone,
and samples run through one compiled function over a fixed-size block of sample numbers, called once per block
(the last block's extra samples dropped): a new sample count compiles nothing, and sample b is the same whatever
the number of samples or the block size.

A sample's stimulus counts k give pair (i, j) the weight kᵢkⱼ. The matrix products take the pairs in *cyclic
order* — (t, t + s mod n) for t = 0 … n − 1, shift s = 1, 2, …, ⌊(n − 1)/2⌋, and for even n the pairs (t, t + n/2),
t < n/2 — where the weights are k times k cyclically shifted: one broadcast, reshape and product inside the
compiled program (a gather into the condensed order there would make XLA:CPU's int8 products 20x slower, and
slicing the n − 1 diagonals apart compiles for seconds). The RDM vectors are permuted to that order once
(``pair_order``).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

BLOCK = 256                     # samples per compiled call on CPU
ACCELERATOR_BLOCK = 4096        # on an accelerator: wider products, fewer calls


def block_size() -> int:
    """Samples per compiled call on the default backend."""
    return BLOCK if jax.default_backend() == "cpu" else ACCELERATOR_BLOCK


def int8_products() -> bool:
    """Whether the weighted sums run as int8 products where the weights allow (``fits_int8``): on CPU, whose int8
    dot instructions make them several times faster than float32 ones (float32 products elsewhere)."""
    return jax.default_backend() == "cpu"


def draw_counts(key, start, size: int, n: int):
    """How often each of ``n`` items is drawn (``n`` draws with replacement) in samples ``start`` …
    ``start + size − 1``: (size, n) float32; sample b from ``fold_in(key, b)``."""
    draws = jax.vmap(lambda b: jax.random.randint(jax.random.fold_in(key, b), (n,), 0, n))(start + jnp.arange(size))
    return jnp.zeros((size, n), jnp.float32).at[jnp.arange(size)[:, None], draws].add(1.0)


def pair_order(n: int) -> np.ndarray:
    """The condensed index (``np.triu_indices(n, 1)`` order) of each pair in cyclic order."""
    h = (n - 1) // 2
    t, j = np.tile(np.arange(n), h), (np.tile(np.arange(n), h) + np.repeat(np.arange(1, h + 1), n)) % n
    i, j = np.minimum(t, j), np.maximum(t, j)
    if n % 2 == 0:
        i, j = np.r_[i, np.arange(n // 2)], np.r_[j, np.arange(n // 2) + n // 2]
    return i * (2 * n - i - 1) // 2 + j - i - 1


def cyclic_weights(counts, dtype=None):
    """Pair weights kᵢkⱼ (B, n(n − 1)/2) of counts (B, n) in cyclic order, computed in ``dtype`` (int8: exact where
    ``fits_int8``) and materialized (an optimization barrier: the products then read them as a plain array)."""
    c = counts if dtype is None else counts.astype(dtype)
    b, n = c.shape
    h = (n - 1) // 2
    shifted = jnp.tile(c, (1, n + 1)).reshape(b, n, n + 1)[:, 1:h + 1, :n]          # [b, s − 1, t] = k[(t + s) mod n]
    w = (shifted * c[:, None, :]).reshape(b, h * n)
    if n % 2 == 0:
        w = jnp.concatenate([w, c[:, :n // 2] * c[:, n // 2:]], 1)
    return jax.lax.optimization_barrier(w)


def pair_total(counts):
    """Σ_{i<j} kᵢkⱼ of each row of counts (B, n): ((Σk)² − Σk²) / 2."""
    return (jnp.sum(counts, 1) ** 2 - jnp.sum(counts * counts, 1)) / 2


def fits_int8(counts):
    """Whether the pair weights of counts (B, n) surely fit int8 products: no stimulus drawn more than 11 times
    (so every weight kᵢkⱼ ≤ 121; 12 draws of one stimulus are rare but possible) and every sample's total Σkᵢkⱼ ≤
    n(n − 1)/2 (true of a bootstrap sample, Σk = n), the bound the int32 sums rely on."""
    n = counts.shape[-1]
    return (jnp.max(counts) <= 11) & (jnp.max(pair_total(counts)) <= n * (n - 1) / 2)


@partial(jax.jit, static_argnums=(2, 3))
def counts_block(start, key, n: int, size: int):
    """Stimulus counts (size, n) of samples start … start + size − 1, and ``fits_int8`` of them (read on the host
    to choose the int8 or the float32 program)."""
    counts = draw_counts(key, start, size, n)
    return counts, fits_int8(counts)


def subject_mean(per, key, start, over: str):
    """The mean over subjects of per-subject scores (B, M, S): plain for a stimulus bootstrap, weighted by each
    sample's subject counts (drawn with ``key`` as for ``draw_counts``) when subjects are resampled."""
    if over == "stimuli":
        return per.mean(-1)
    w = draw_counts(key, start, per.shape[0], per.shape[-1])[:, None, :]
    return jnp.sum(per * w, -1) / jnp.sum(w, -1)


def run_blocks(block: Callable, n_samples: int, size: int):
    """``block(start)`` for start = 0, size, 2·size, …: outputs (a pytree of arrays with a leading axis of ``size``)
    joined on the host and cut to ``n_samples``."""
    outs = [block(np.int32(s)) for s in range(0, n_samples, size)]
    return jax.tree.map(lambda *x: np.concatenate(x)[:n_samples], *jax.device_get(outs))
