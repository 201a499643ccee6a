"""Selectivity of units and its relation to importance: class selectivity (Morcos et al. 2018), category d′,
lifetime and population sparseness (Vinje & Gallant 2000), and tie-aware Spearman correlation with a
bootstrap confidence interval — all pure JAX, vmappable.

Responses are (stimuli, units); use :func:`unit_responses` to reduce a conv site's (N, H, W, C) map to its
channels' spatial means.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def unit_responses(activation):
    """(N, H, W, C) -> (N, C) spatial mean per channel; (N, U) is returned unchanged."""
    activation = jnp.asarray(activation)
    return activation.reshape(activation.shape[0], -1, activation.shape[-1]).mean(1) if activation.ndim > 2 \
        else activation


def class_means(responses, labels, n_classes: int):
    """(classes, units) mean response per class."""
    onehot = jax.nn.one_hot(labels, n_classes)                                  # N x K
    counts = onehot.sum(0)
    return (onehot.T @ responses) / jnp.maximum(counts, 1)[:, None]


def class_selectivity(responses, labels, n_classes: int, eps: float = 1e-7):
    """Class selectivity index per unit (Morcos et al. 2018): (μ_max − μ_rest) / (μ_max + μ_rest), where
    μ_max is the largest class-conditional mean and μ_rest the mean of the other class means. 0 = equal
    responses to all classes, 1 = responds to one class only (non-negative responses). Shape (units,)."""
    mu = class_means(responses, labels, n_classes)
    top = mu.max(0)
    rest = (mu.sum(0) - top) / (n_classes - 1)
    return (top - rest) / (top + rest + eps)


def category_dprime(responses, is_a):
    """d′ per unit between stimuli where ``is_a`` is True and the rest: (μ_a − μ_b) / sqrt((σ²_a + σ²_b)/2)."""
    is_a = jnp.asarray(is_a, bool)
    wa, wb = is_a / is_a.sum(), (~is_a) / (~is_a).sum()
    ma, mb = wa @ responses, wb @ responses
    va = wa @ (responses - ma) ** 2 * is_a.sum() / jnp.maximum(is_a.sum() - 1, 1)
    vb = wb @ (responses - mb) ** 2 * (~is_a).sum() / jnp.maximum((~is_a).sum() - 1, 1)
    return (ma - mb) / jnp.sqrt(jnp.maximum((va + vb) / 2, 1e-12))


def _sparseness(r, axis):
    n = r.shape[axis]
    mean, meansq = r.mean(axis), (r ** 2).mean(axis)
    return (1 - mean ** 2 / jnp.maximum(meansq, 1e-12)) / (1 - 1 / n)


def lifetime_sparseness(responses):
    """Per unit, across stimuli (Vinje & Gallant 2000): (1 − (Σr/n)² / (Σr²/n)) / (1 − 1/n). Shape (units,)."""
    return _sparseness(jnp.asarray(responses), 0)


def population_sparseness(responses):
    """Per stimulus, across units (same formula as :func:`lifetime_sparseness`). Shape (stimuli,)."""
    return _sparseness(jnp.asarray(responses), 1)


def rankdata(x):
    """Average ranks (1-based, ties get their mean rank) like ``scipy.stats.rankdata``; vmappable."""
    s = jnp.sort(x)
    lo = jnp.searchsorted(s, x, side="left")
    hi = jnp.searchsorted(s, x, side="right")
    return (lo + hi + 1) / 2.0


def _pearson(x, y):
    x, y = x - x.mean(), y - y.mean()
    return (x @ y) / jnp.sqrt(jnp.maximum((x @ x) * (y @ y), 1e-30))


def spearman(x, y):
    """Spearman rank correlation with tie-aware ranks."""
    return _pearson(rankdata(x), rankdata(y))


def spearman_bootstrap(x, y, key, n_boot: int = 1000, ci: float = 0.95):
    """Spearman ρ with a percentile bootstrap CI over items (units), all resamples in one vmapped call.

    Returns ``(rho, (low, high), distribution (n_boot,))``.
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    idx = jax.random.randint(key, (n_boot, x.shape[0]), 0, x.shape[0])
    dist = jax.vmap(lambda i: spearman(x[i], y[i]))(idx)
    alpha = (1 - ci) / 2
    lo, hi = jnp.nanquantile(dist, jnp.array([alpha, 1 - alpha]))
    return spearman(x, y), (lo, hi), dist
