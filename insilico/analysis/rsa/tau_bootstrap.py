"""Kendall's τ-a of every bootstrap sample at once. A sample of stimuli with counts k gives the pairs multiplicities
w = kᵢkⱼ, and τ-a becomes the quadratic form Σ_{p<q} w_p S_pq w_q with S_pq = sign(a_p − a_q) sign(b_p − b_q): the
pair × pair matrix S is built in blocks and each block multiplied by all samples' weights in one matrix product.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ...engine import fold
from ..stats import rankdata
from .compare import _sample_weights


def _float32_ranks(v) -> jnp.ndarray:
    """Average ranks of each row, ranked in the values' own precision (float64 for the exact comparisons: float32
    would tie values that differ), as float32 — half-integers, exact below 2**23 entries: the signs of rank
    differences are the signs of the value differences, with no underflow however close two values are."""
    return jnp.asarray(rankdata(np.asarray(v), axis=-1), jnp.float32)


def _tau_blocks(out, ra, rb, w, rows, cols, factors):
    """Adds Σ_k factors_k · Σ_{p in block rows_k, q in block cols_k} w_p w_q sign(a_p − a_q) Σ_s sign(b_sp − b_sq)
    to ``out`` (B, M, G); ``ra`` (n_blocks, M, size), ``rb`` (n_blocks, G, S, size) and ``w`` (n_blocks, B, size)
    are cut into blocks of pairs. The blocks are unrolled in one program so that XLA:CPU overlaps one block's
    (single-threaded) sign matrices with another's matrix product."""
    n_groups, n_sub = rb.shape[1:3]
    for r, c, f in zip(rows, cols, factors):
        br, bc = rb[r], rb[c]
        # the subjects' sum is unrolled: an elementwise sum of S terms vectorizes on XLA:CPU, where a reduction
        # over a broadcast axis runs 40x slower
        bsum = jnp.stack([sum(jnp.sign(br[g, s, :, None] - bc[g, s, None, :]) for s in range(n_sub))
                          for g in range(n_groups)])                                             # (G, R, C)
        bsum = jax.lax.optimization_barrier(bsum)
        c_ = jnp.stack([jnp.where(x[:, None] > y[None, :], bsum, jnp.where(x[:, None] < y[None, :], -bsum, 0.0))
                        for x, y in zip(ra[r], ra[c])])                                          # (M, G, R, C)
        # samples in rows, so that the last reduction runs along memory
        prod = jax.lax.dot_general(w[c], c_.reshape(-1, c_.shape[-1]), (((1,), (1,)), ((), ())))
        prod = prod.reshape(w.shape[1], ra.shape[1], n_groups, -1)                              # (B, M, G, R)
        out = out + f * jnp.sum(prod * w[r][:, None, None, :], -1)
    return out


# static block indices when all blocks fit one call (XLA fuses the slices: 1.6x faster), traced otherwise
_tau_blocks_static = jax.jit(_tau_blocks, static_argnums=(4, 5, 6))


def _add_blocks(out, blocks, ra, rb, w):
    """One step of the engine's fold over the list of blocks: ``blocks`` = (rows, cols, factors) arrays."""
    return _tau_blocks(out, ra, rb, w, *blocks)


def _tau_forms(ra, rb, w, size: int, per_call: int = 36):
    """Σ_{p≠q} w_p w_q sign(a_p − a_q) Σ_s sign(b_sp − b_sq) for every sample (rows of ``w`` (B, m)), model (rows
    of ``ra``, ranks) and group of data RDMs (``rb`` (G, S, m) ranks; the sign matrices of a group are summed):
    (B, M, G). The pair × pair matrix is built in blocks of ``size`` pairs, only its upper block triangle (the
    form is symmetric), and each block is multiplied by all samples' weights at once — one dense matrix product
    per block; ``per_call`` blocks per compiled call."""
    m = w.shape[1]
    n_blocks = -(-m // size)
    pad = n_blocks * size - m                                                  # padding carries zero weight

    def cut(x):
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
        return jnp.moveaxis(x.reshape(*x.shape[:-1], n_blocks, size), -2, 0)

    ra, rb, w = cut(ra), cut(rb), cut(w)
    pairs = [(i, j, 1.0 if i == j else 2.0) for i in range(n_blocks) for j in range(i, n_blocks)]
    out = jnp.zeros((w.shape[1], ra.shape[1], rb.shape[1]), jnp.float32)
    if len(pairs) <= per_call:
        return _tau_blocks_static(out, ra, rb, w, *zip(*pairs))
    pairs += [(0, 0, 0.0)] * (-len(pairs) % per_call)                          # zero-factor filler
    blocks = tuple(np.asarray(v) for v in zip(*pairs))
    return fold(_add_blocks, out, (blocks[0].astype(np.int32), blocks[1].astype(np.int32),
                                   blocks[2].astype(np.float32)), ra, rb, w, batch_size=per_call)


@partial(jax.jit, static_argnums=(1,))
def _all_sample_weights(counts, n: int):
    return jax.vmap(lambda k: _sample_weights(k, n))(counts)


def _boot_tau_a(models, data, counts, n: int, pool_subjects: bool = False):
    """τ-a for every sample as quadratic forms in the pair multiplicities w = kᵢkⱼ: Σ_{p<q} w_p S_pq w_q with
    S_pq = sign(a_p − a_q) sign(b_p − b_q), one dense matrix product per block of S for all samples together.
    Returns (samples, models, data RDMs), or with ``pool_subjects`` the mean over the data RDMs (samples, models,
    1): τ-a's denominator depends on the sample only, so the mean over subjects is one form with the subjects'
    sign matrices summed — S times cheaper."""
    w = _all_sample_weights(counts, n)                                                   # (B, m)
    total = jnp.sum(w, 1)
    ra, rb = _float32_ranks(models), _float32_ranks(data)
    rb = rb[None] if pool_subjects else rb[:, None]                                      # (G, S_g, m)
    m = w.shape[1]
    # blocks of ≤ 530 pairs, near-even (the upper block triangle then skips most of the lower half); smaller when
    # one block of the (models × groups) pair matrices would pass ~200 MB
    size = min(530, int(np.sqrt(5e7 / (ra.shape[0] * rb.shape[0]))), m)
    size = -(-m // -(-m // size))
    forms = _tau_forms(ra, rb, w, size) / rb.shape[1]                                  # (B, M, G)
    return forms / (total * (total - 1))[:, None, None]                                  # Σ_{p≠q} = 2 Σ_{p<q}
