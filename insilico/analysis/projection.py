"""Projections of a site's units to fewer components, traceable so that they run inside a compiled forward pass:
a random Gaussian projection drawn from a key block by block (never stored: any number of units in bounded
memory), and PCA components from the rotated reference moments of :func:`insilico.analysis.sufficient.
pca_from_rotated`.

A projection is named by a static ``kind`` — "none" (the units as they are), "random" (arrays: the site's key; the
matrix drawn inside every step), "matrix" (arrays: the same matrix drawn once and held, when memory allows: drawing
costs more than the product on a CPU) or "pca" (arrays: the reference mean and the components) — so the same
compiled step serves every key and every fit.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import rng
from ..validation import check_choice, check_count
from .sufficient import pca_from_rotated

__all__ = ["CHUNK", "random_matrix", "project", "pca_components"]

CHUNK = 8192                      # units per block of a random projection drawn inside the step


def random_matrix(key, index: int, units: int, dims: int) -> np.ndarray:
    """The (units, dims) Gaussian projection of site number ``index`` (its position in ``subject.sites``), scaled
    by 1/√dims: the matrix :func:`project` draws block by block (of :data:`CHUNK` units) from
    ``fold_in(key, index)``."""
    index, units, dims = (check_count(n, v, minimum=m) for n, v, m in (("index", index, 0), ("units", units, 1),
                                                                        ("dims", dims, 1)))
    k, blocks = jax.random.fold_in(key, index), -(-units // CHUNK)
    rows = CHUNK if units > CHUNK else units
    w = [np.asarray(rng.normal(jax.random.fold_in(k, c), (rows, dims), jnp.float32)) for c in range(blocks)]
    return np.concatenate(w)[:units] / np.float32(np.sqrt(dims))


def project(f, kind: str, dims: int, arrays):
    """Features ``f`` (batch, units) float32 projected as ``kind`` says: (batch, dims) (traceable)."""
    check_choice("kind", kind, ("none", "pca", "matrix", "random"))
    if kind == "none":
        return f
    if kind == "pca":
        mean, comps = arrays
        return (f - mean) @ comps
    if kind == "matrix":                                             # a random matrix drawn once and held
        return f @ arrays[0]
    (key,) = arrays
    units = f.shape[1]
    if units <= CHUNK:
        return f @ rng.normal(jax.random.fold_in(key, 0), (units, dims), jnp.float32) / np.sqrt(dims)
    blocks = -(-units // CHUNK)
    f = jnp.pad(f, ((0, 0), (0, blocks * CHUNK - units))).reshape(f.shape[0], blocks, CHUNK)

    def body(acc, c):
        w = rng.normal(jax.random.fold_in(key, c), (CHUNK, dims), jnp.float32)
        return acc + jax.lax.dynamic_index_in_dim(f, c, 1, keepdims=False) @ w, None
    acc, _ = jax.lax.scan(body, jnp.zeros((f.shape[0], dims), jnp.float32), jnp.arange(blocks))
    return acc / np.sqrt(dims)


def pca_components(b, k: int) -> np.ndarray:
    """(units, ≤ k) float32 principal axes of the reference from ``b = Xᵀ Q`` (units, n_ref − 1): ``b P Σ⁻¹``, the
    largest-variance first, zero-variance axes dropped, each axis's largest entry positive."""
    comps = np.array(b @ pca_from_rotated(np.asarray(b.T @ b), k)[0])
    comps *= np.sign(comps[np.abs(comps).argmax(0), np.arange(comps.shape[1])])
    return comps.astype(np.float32)
