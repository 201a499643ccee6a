"""Kendall's τ-a of every bootstrap sample. A sample of stimuli with counts k gives the pairs multiplicities
w = kᵢkⱼ, and τ-a's numerator becomes the quadratic form Σ_{p<q} w_p S_pq w_q with S_pq = sign(a_p − a_q)
sign(b_p − b_q) (the mean over subjects: one form with the subjects' sign matrices summed, τ-a's denominator
depending on the sample only). S does not depend on the sample: its upper triangle (pairs in the cyclic order of
``sampling``) is built once, in int8 (exact: sums of at most 127 signs), its row sums give τ-a on all data (exact),
and each block of samples multiplies it in int8 matrix products with int32 sums (exact). Where the matrices would
not fit in ``MATRIX_BUDGET``, the pair × pair matrix is built in blocks with every block of samples instead
(``_tau_forms``).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...engine import fold
from ..stats import rankdata
from .sampling import counts_block, cyclic_weights, fits_int8, int8_products, pair_order, pair_total, subject_mean

MATRIX_BUDGET = 400 * 2 ** 20           # bytes of int8 sign matrices built once per bootstrap
_ROWS = 512                             # pairs per row block of the sign matrices (at most 16 blocks)


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


def _int_ranks(v) -> np.ndarray:
    """Twice the average ranks of each row as int32 (exact; ranked in the values' own precision, float64)."""
    return np.rint(2 * rankdata(np.asarray(v), axis=-1)).astype(np.int32)


def _sign_rows(ra, rb, r0: int, r1: int):
    """Rows r0 … r1 − 1 of the strict upper triangle (q > p) of S_pq = sign(a_p − a_q) Σ_{s∈g} sign(b_sp − b_sq),
    columns r0 … m − 1: int8 (M, G, r1 − r0, m − r0) for ranks ``ra`` (M, m) and ``rb`` (G, S_g, m)."""
    # the subjects' sum unrolled: an elementwise sum vectorizes on XLA:CPU, a reduction over a broadcast axis not
    bsum = jnp.stack([sum(jnp.sign(x[r0:r1, None] - x[None, r0:]) for x in group) for group in rb])
    sa = jnp.sign(ra[:, r0:r1, None] - ra[:, None, r0:])
    upper = jnp.arange(r0, ra.shape[1])[None, :] > jnp.arange(r0, r1)[:, None]
    return jnp.where(upper, sa[:, None] * bsum[None], 0).astype(jnp.int8)


@partial(jax.jit, static_argnums=(2,))
def _sign_matrices(ra, rb, edges: tuple):
    return tuple(_sign_rows(ra, rb, r0, r1) for r0, r1 in edges)


@jax.jit
def _row_sums(mats):
    """Each row's sum (M, G, m), int32: int8 products with rows of ones — XLA:CPU's int8 → int32 sums (or any
    reduction in the program that builds the matrices) run 10x slower."""
    def one(s):
        ones = jnp.ones((8, s.shape[-1]), jnp.int8)
        p = jax.lax.dot_general(ones, s.reshape(-1, s.shape[-1]), (((1,), (1,)), ((), ())),
                                preferred_element_type=jnp.int32)
        return p[0].reshape(s.shape[:3])

    return jnp.concatenate([one(s) for s in mats], -1)


def _matrix_forms(mats, w, edges: tuple, group: int, small: bool):
    """Σ_{p<q} w_p w_q S_pq for every sample (rows of ``w`` (B, m), float32): (B, M, G). Row block r of S holds
    columns r0 … m − 1; one matrix product per row block for all samples. ``small`` (``sampling.fits_int8``): int8
    products with int32 sums, exact, and the forms summed in int32 where they cannot overflow (|form| ≤ group ·
    (Σw)², Σw ≤ m); otherwise float32 products, as exact."""
    n_b, m = w.shape
    small = small and group * m < 2 ** 31                       # int32 sums of the products: ≤ group · Σw ≤ group · m
    dtype, acc = (jnp.int8, jnp.int32) if small else (jnp.float32, None)
    parts = []
    for (r0, r1), s in zip(edges, mats):
        p = jax.lax.dot_general(w[:, r0:].astype(dtype), s.reshape(-1, s.shape[-1]).astype(dtype),
                                (((1,), (1,)), ((), ())), preferred_element_type=acc)
        p = p.reshape(n_b, -1, r1 - r0)
        if small and group * float(m) ** 2 < 2 ** 31:
            parts.append(jnp.sum(p * w[:, None, r0:r1].astype(jnp.int32), -1))
        else:
            parts.append(jnp.einsum("bgr,br->bg", p.astype(jnp.float32), w[:, r0:r1]))
    return jnp.asarray(sum(parts), jnp.float32).reshape(n_b, *mats[0].shape[:2])


class TauPlan(NamedTuple):
    """What τ-a's bootstrap keeps for all samples, pairs in cyclic order (``sampling``): the sign matrices
    (``mats``, row blocks ``edges``, and their row sums ``sums``) or, beyond the budget, float32 ranks for
    ``_tau_forms``; ``group``: subjects per group (the forms are their sum)."""
    mats: tuple | None
    edges: tuple
    sums: jnp.ndarray | None
    ranks: tuple
    group: int


def tau_plan(models, data, pool_subjects: bool) -> TauPlan:
    """Sign matrices of models (M, m) against data (S, m) — pooled over subjects (one group) or per subject."""
    (n_models, m), n_sub = models.shape, data.shape[0]
    order = pair_order(int(round((1 + np.sqrt(1 + 8 * m)) / 2)))
    groups, group = (1, n_sub) if pool_subjects else (n_sub, 1)
    if group <= 127 and n_models * groups * m * m / 2 <= MATRIX_BUDGET:
        n_blocks = min(16, -(-m // _ROWS))
        size = -(-m // n_blocks)
        edges = tuple((r0, min(m, r0 + size)) for r0 in range(0, m, size))
        rb = jnp.asarray(_int_ranks(data)[:, order].reshape(groups, group, m))
        mats = _sign_matrices(jnp.asarray(_int_ranks(models)[:, order]), rb, edges)
        return TauPlan(mats, edges, _row_sums(mats), (), group)
    ra, rb = _float32_ranks(models[:, order]), _float32_ranks(data[:, order])
    return TauPlan(None, (), None, (ra, rb.reshape(groups, group, m)), group)


def plan_scores(plan: TauPlan) -> np.ndarray | None:
    """τ-a on all data (every weight 1) from the sign matrices, exact: (M, G), each group's mean (None without
    matrices)."""
    if plan.sums is None:
        return None
    m = plan.sums.shape[-1]
    return np.asarray(plan.sums, np.int64).sum(-1) / (m * (m - 1) / 2) / plan.group


@partial(jax.jit, static_argnames=("edges", "group", "small"))
def _matrix_tau(mats, counts, *, edges: tuple, group: int, small: bool):
    """τ-a (B, M, G) of the samples with stimulus counts (B, n) from the sign matrices."""
    w = cyclic_weights(counts, jnp.int8 if small else None)
    total = pair_total(counts)
    return _matrix_forms(mats, w, edges, group, small) / (total * (total - 1) / 2)[:, None, None] / group


_weights = jax.jit(cyclic_weights)


def tau_scores(plan: TauPlan, counts, small: bool):
    """τ-a of every sample (rows of stimulus counts (B, n)) and group: (B, M, G), the mean over each group."""
    if plan.mats is not None:
        return _matrix_tau(plan.mats, counts, edges=plan.edges, group=plan.group, small=small)
    ra, rb = plan.ranks
    w = _weights(counts)
    m = w.shape[1]
    # blocks of ≤ 530 pairs, near-even (the upper block triangle then skips most of the lower half); smaller when
    # one block of the (models × groups) pair matrices would pass ~200 MB
    size = min(530, int(np.sqrt(5e7 / (ra.shape[0] * rb.shape[0]))), m)
    size = -(-m // -(-m // size))
    total = jnp.sum(w, 1)
    return _tau_forms(ra, rb, w, size) / rb.shape[1] / (total * (total - 1))[:, None, None]   # Σ_{p≠q} = 2 Σ_{p<q}


@partial(jax.jit, static_argnames=("edges", "group", "over", "small"))
def _matrix_block(counts, start, kj, mats, *, edges, group, over, small):
    return subject_mean(_matrix_tau(mats, counts, edges=edges, group=group, small=small), kj, start, over)


_mean_block = jax.jit(subject_mean, static_argnums=(3,))


def tau_block(plan: TauPlan, ks, kj, n: int, over: str, size: int):
    """``block(start)`` of a stimulus bootstrap of τ-a ("stimuli": scores pooled over subjects; "both": per
    subject, then the subjects resampled): (size, M) per block. The int8 program serves every block whose weights
    fit int8 (the host reads ``fits_int8``); the float32 one is compiled only for a block that needs it."""
    def block(start):
        counts, small = counts_block(start, ks, n, size)
        if plan.mats is None:
            return _mean_block(tau_scores(plan, counts, False), kj, start, over)
        return _matrix_block(counts, start, kj, plan.mats, edges=plan.edges, group=plan.group, over=over,
                             small=bool(small) and int8_products())

    return block


def _boot_tau_a(models, data, counts, n: int, pool_subjects: bool = False):
    """τ-a of the samples with stimulus counts ``counts`` (B, n): (samples, models, data RDMs), or with
    ``pool_subjects`` the mean over the data RDMs (samples, models, 1) — one form with the subjects' sign matrices
    summed, S times cheaper."""
    plan = tau_plan(np.asarray(models, np.float64), np.asarray(data, np.float64), pool_subjects)
    counts = jnp.asarray(counts, jnp.float32)
    return tau_scores(plan, counts, bool(fits_int8(counts)) and int8_products())
