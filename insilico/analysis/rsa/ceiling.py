"""Noise ceilings (Nili et al. 2014) of a set of subject RDMs: what the true model could score given the
between-subject variability — each subject's RDM against the pooled RDM of the other subjects (lower bound) and of
all subjects (upper bound). ``_ceiling_core`` takes pair weights, so the resampling evaluates the ceiling of every
bootstrap sample with the same code.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ...validation import ArgumentError
from ..stats import rankdata
from .compare import _WEIGHTED_METHODS, _tau_a_exact, _weighted_score
from .rdm import _as_vectors

CEILING_METHODS = _WEIGHTED_METHODS          # pooling (rsatoolbox's pool_rdm) is defined for these comparators


def noise_ceiling(data_rdms, method: str = "corr") -> tuple[float, float]:
    """Lower and upper bounds of the noise ceiling (Nili et al. 2014) of a set of subject RDMs: the mean
    similarity of each subject's RDM to the pooled RDM of the *other* subjects (lower) and of all subjects
    (upper) — what the true model could score given the between-subject variability. The pooled RDM is
    rsatoolbox's ``pool_rdm``: the mean of z-scored (Pearson), RMS-scaled (cosine) or ranked RDMs."""
    if method not in CEILING_METHODS:
        raise ArgumentError(f"noise ceilings support {CEILING_METHODS}; got {method!r}")
    v, _ = _as_vectors(data_rdms, "noise_ceiling")
    if v.shape[0] < 2:
        raise ValueError("noise_ceiling needs RDMs of at least 2 subjects")
    if method == "tau-a":                                      # exact merge counts on the pooled ranks
        t = rankdata(v, axis=1)
        rest = (t.sum(0)[None] - t) / (v.shape[0] - 1)
        pooled = t.mean(0)
        return (float(np.mean([_tau_a_exact(r, x) for r, x in zip(rest, v)])),
                float(np.mean([_tau_a_exact(pooled, x) for x in v])))
    with jax.enable_x64(True):                       # exact, as compare(); resampling stays float32
        lo, hi = (float(t) for t in _ceiling(jnp.asarray(v), method))
    return lo, hi


@partial(jax.jit, static_argnums=(1,))
def _ceiling(v, method: str):
    return _ceiling_core(v, jnp.ones(v.shape[1], v.dtype), method)


def _wpool_rows(v, w, method: str):
    """Per-subject transforms whose mean is rsatoolbox's ``pool_rdm`` of weighted vectors (rows of v); the
    constant shift ``pool_rdm`` adds for Pearson changes no comparison and is left out."""
    if method == "cosine":
        return v / jnp.sqrt(jnp.sum(w * v ** 2, 1, keepdims=True) / jnp.sum(w))
    if method == "corr":
        mu = jnp.sum(w * v, 1, keepdims=True) / jnp.sum(w)
        sd = jnp.sqrt(jnp.sum(w * (v - mu) ** 2, 1, keepdims=True) / jnp.sum(w))
        return (v - mu) / sd
    return jax.vmap(lambda r: rankdata(r, weights=w))(v)                     # rank methods: mean ranks


def _ceiling_core(data, w, method: str):
    """Noise ceiling (lower, upper) for pair weights w: each subject against the pooled RDM of the others and
    of all subjects, averaged over subjects."""
    t = _wpool_rows(data, w, method)                                         # (S, m)
    pooled = t.mean(0)
    rest = (t.sum(0)[None] - t) / (data.shape[0] - 1)
    od = jnp.argsort(data, axis=1)
    hi = jax.vmap(lambda b, ob: _weighted_score(pooled, b, w, method, jnp.argsort(pooled), ob))(data, od)
    lo = jax.vmap(lambda a, b, ob: _weighted_score(a, b, w, method, jnp.argsort(a), ob))(rest, data, od)
    return lo.mean(), hi.mean()
