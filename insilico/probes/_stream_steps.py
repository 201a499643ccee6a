"""The compiled per-batch steps of the streaming reducers (:mod:`insilico.probes.streaming`): a batch's features at
every site (recorded, flattened, projected), and what each reducer adds from them — class-wise moments, the PCA
reference's products, the rows and blocks of a Gram matrix."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import electrode as el
from ..analysis import projection as proj

__all__ = ["features", "moments_step", "reference_step", "gram_rows", "gram_step"]


def features(x, subject, arrays, kinds):
    """{site: (batch, k) float32}: the recorded sites, flattened and projected, computed in float32 (also
    :func:`map_batches`'s function for kept rows)."""
    with jax.enable_x64(False):
        rec = el.forward(subject, x, record=tuple(s for s, _, _ in kinds))[1]
        return {s: proj.project(rec[s].reshape(len(x), -1).astype(jnp.float32), kind, d, arrays.get(s, ()))
                for s, kind, d in kinds}


def moments_step(acc, batch, subject, arrays, kinds, k):
    x, y, f = batch
    feats, w = features(x, subject, arrays, kinds), jax.nn.one_hot(f, k, dtype=jnp.float64)
    out = {}
    for s, (sx, sxx, sxy) in acc.items():
        p = feats[s].astype(jnp.float64)
        out[s] = (sx + w.T @ p, sxx + jnp.einsum("bk,bi,bj->kij", w, p, p), sxy + jnp.einsum("bk,bi,bq->kiq", w, p, y))
    return out


def reference_step(acc, batch, subject, kinds):
    x, q, valid = batch
    feats = {s: f.astype(jnp.float64) for s, f in features(x, subject, {}, kinds).items()}
    return {s: (b + feats[s].T @ q, m + valid @ feats[s]) for s, (b, m) in acc.items()}


def unit_rows(z):
    """Rows scaled to unit norm in float64 (a zero row stays 0)."""
    z = z.astype(jnp.float64)
    norm = jnp.linalg.norm(z, axis=1, keepdims=True)
    return z / jnp.where(norm > 0, norm, 1.0)


def gram_rows(x, subject, arrays, kinds, method):
    """{site: (batch, k) float32}: the rows whose dot products make the Gram. "correlation": each pattern centred
    and scaled to unit norm over its units before any projection (a random projection of the mean is not a
    constant, so centring after it would leave the mean in), and scaled to unit norm again after one;
    "euclidean": the (projected) pattern."""
    with jax.enable_x64(False):
        rec = el.forward(subject, x, record=tuple(s for s, _, _ in kinds))[1]
    out = {}
    for s, kind, d in kinds:
        r = rec[s].reshape(len(x), -1).astype(jnp.float32)
        if method == "correlation":
            r = unit_rows(r - r.astype(jnp.float64).mean(1, keepdims=True)).astype(jnp.float32)
        with jax.enable_x64(False):
            r = proj.project(r, kind, d, arrays.get(s, ()))
        out[s] = unit_rows(r).astype(jnp.float32) if method == "correlation" and kind != "none" else r
    return out


def gram_step(acc, batch, subject, arrays, kinds, a0, method):
    x, idx = batch
    feats, out = gram_rows(x, subject, arrays, kinds, method), {}
    for s, (buf, g) in acc.items():
        r = feats[s]
        buf = buf.at[idx - a0].set(r, mode="drop")
        g = g.at[:, idx].set(jnp.dot(buf, r.T, preferred_element_type=jnp.float64), mode="drop")
        out[s] = (buf, g)
    return out
