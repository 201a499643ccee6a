"""Pearson and cosine comparisons of every bootstrap sample from weighted moments: with pair weights w (a sample's
multiplicities kᵢkⱼ), each comparison and the noise ceiling of the sample are functions of Σw, Σw·a, Σw·a², Σw·a·b
and the subjects' Σw·bₛ·bₜ — all of them, for a block of samples, one matrix product (samples × pairs) @ (pairs ×
moment columns).

The RDM vectors are standardized first (centred and scaled for Pearson, scaled for cosine — neither comparison
changes), so the moments carry no large common offset and no cancellation. The product runs in int8 (int32 sums,
exact): the weights are small integers, and each column is written in fixed point, 27 bits relative to its
largest entry, as four base-128 digits — four int8 products, cheaper on CPUs with int8 dot instructions than one
float32 product, and about as accurate as float32 columns.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MOMENT_METHODS = ("corr", "cosine")


def standardized(v: np.ndarray, method: str) -> np.ndarray:
    """Rows of ``v`` centred and scaled to unit RMS (Pearson) or scaled to unit RMS (cosine), float64."""
    if method == "corr":
        v = v - v.mean(1, keepdims=True)
    return v / np.sqrt(np.mean(v * v, 1, keepdims=True))


def _column_list(a, b, xp):
    s, t = np.triu_indices(b.shape[0])
    return [xp.ones((1, a.shape[1]), a.dtype), a, a * a, b, b[s] * b[t], (a[:, None] * b[None]).reshape(-1, a.shape[1])]


DIGITS = 4                    # base-128 digits of the fixed-point moment columns


@jax.jit
def _columns(a, b):
    """The columns in fixed point: digits int8 (DIGITS, K, m), d₀ + 128 d₁ + 128² d₂ + 128³ d₃ = x / scale, and the
    scales (K,): each column's largest |x| / 2²⁶ (digits d₀ … d₂ in [−64, 63], d₃ in [−32, 32])."""
    x = jnp.concatenate(_column_list(a, b, jnp))                                        # (K, m)
    scale = jnp.max(jnp.abs(x), 1) / 2.0 ** 26
    scale = jnp.where(scale > 0, scale, 1.0)
    q = jnp.round(x / scale[:, None]).astype(jnp.int32)
    digits = []
    for _ in range(DIGITS - 1):
        d = ((q + 64) & 127) - 64
        digits.append(d)
        q = (q - d) >> 7
    return jnp.stack([*digits, q]).astype(jnp.int8), scale


def moment_columns(a: np.ndarray, b: np.ndarray):
    """The moment columns 1, a, a², b, bₛbₜ (s ≤ t), a·b (K = 1 + 2M + S + S(S+1)/2 + MS of them) of standardized
    models a (M, m) and data b (S, m), multiplied in float32 and written in fixed point: (digits int8 (DIGITS, K,
    m), scales (K,))."""
    return _columns(jnp.asarray(a.astype(np.float32)), jnp.asarray(b.astype(np.float32)))


def weighted_moments(w, columns, small: bool):
    """The moments (B, K), float32, of pair weights ``w`` (B, m): one int8 product for all digits where ``small``
    (``sampling.fits_int8``: its int32 sums are then at most 64·Σw ≤ 64·m), float32 products of the columns
    otherwise."""
    digits, scale = columns
    n_d, k, m = digits.shape
    if small and 64 * m < 2 ** 31:
        p = jax.lax.dot_general(w.astype(jnp.int8), digits.reshape(-1, m), (((1,), (1,)), ((), ())),
                                preferred_element_type=jnp.int32).reshape(-1, n_d, k).astype(jnp.float32)
        return jnp.sum(p * (128.0 ** jnp.arange(n_d))[:, None], 1) * scale
    x = jnp.einsum("dkm,d->mk", digits.astype(jnp.float32), 128.0 ** jnp.arange(n_d)) * scale
    return w @ x


def full_moments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The moments of standardized a, b on all data (every pair weight 1), float64: (1, K)."""
    s, t = np.triu_indices(b.shape[0])
    gram = b @ b.T
    return np.concatenate([[a.shape[1]], a.sum(1), (a * a).sum(1), b.sum(1), gram[s, t], (a @ b.T).ravel()])[None]


def _split(mom, n_models: int, n_subjects: int):
    """The moments (B, K) cut into Σw (B,), Σwa, Σwa² (B, M), Σwb (B, S), Σwbb (B, S, S), Σwab (B, M, S)."""
    m_, s_ = n_models, n_subjects
    s, t = np.triu_indices(s_)
    sym = np.zeros((s_, s_), np.int32)
    sym[s, t] = sym[t, s] = np.arange(len(s))
    o = 1 + 2 * m_ + s_
    return (mom[:, 0], mom[:, 1:1 + m_], mom[:, 1 + m_:1 + 2 * m_], mom[:, 1 + 2 * m_:o],
            mom[:, o + sym], mom[:, o + len(s):].reshape(mom.shape[0], m_, s_))


def _ratio(num, var_x, var_y, scale_x, scale_y, xp):
    """num / √(var_x var_y), NaN where a side has no spread in the sample: its variance not above float32
    rounding of its second moment (``scale``)."""
    ok = (var_x > 1e-5 * scale_x) & (var_y > 1e-5 * scale_y)
    return xp.where(ok, num / xp.sqrt(xp.where(ok, var_x * var_y, 1.0)), xp.nan)


def moment_scores(mom, n_models: int, n_subjects: int, method: str, xp=jnp):
    """From the moments (B, K) of ``moment_columns``: each model against each subject (B, M, S), and the noise
    ceiling (lower, upper) of every sample (B,), (B,) — the bounds of ``ceiling._ceiling_core``, through the
    subjects' correlation (or cosine) matrix R: upper = meanₜ Σₛ Rₛₜ / √ΣR, lower = meanₜ (Σₛ Rₛₜ − 1) /
    √(ΣR − 2 Σₛ Rₛₜ + 1). ``xp``: jax.numpy (traced, float32) or numpy (float64, all data)."""
    n_w, sa, saa, sb, sbb, sab = _split(mom, n_models, n_subjects)
    n_w = n_w[:, None]
    ea, eaa, eb, ebb, eab = sa / n_w, saa / n_w, sb / n_w, sbb / n_w[..., None], sab / n_w[..., None]
    if method == "corr":                                           # centred moments; cosine keeps the raw ones
        eab = eab - ea[:, :, None] * eb[:, None, :]
        ebb = ebb - eb[:, :, None] * eb[:, None, :]
        var_a, var_b = eaa - ea * ea, xp.diagonal(ebb, axis1=1, axis2=2)
    else:
        var_a, var_b = eaa, xp.diagonal(ebb, axis1=1, axis2=2)
    bdiag = xp.diagonal(sbb, axis1=1, axis2=2) / n_w
    scores = _ratio(eab, var_a[:, :, None], var_b[:, None, :], eaa[:, :, None], bdiag[:, None, :], xp)
    r = _ratio(ebb, var_b[:, :, None], var_b[:, None, :], bdiag[:, :, None], bdiag[:, None, :], xp)
    rows = r.sum(-1)
    total = rows.sum(-1, keepdims=True)
    upper = xp.mean(rows / xp.sqrt(total), -1)
    lower = xp.mean((rows - 1) / xp.sqrt(total - 2 * rows + 1), -1)
    return scores, lower, upper
