"""Selectivity of units and its relation to importance: class selectivity (Morcos et al. 2018), category d′,
lifetime and population sparseness (Vinje & Gallant 2000), and tie-aware Spearman correlation with a
bootstrap confidence interval — all pure JAX, vmappable.

Responses are (stimuli, units); use :func:`unit_responses` to reduce a conv site's (N, H, W, C) map to its
channels' spatial means. Concrete inputs are checked (NaN/inf, empty arrays, labels outside [0, n_classes) or of
the wrong length, counts and fractions out of range: :class:`~insilico.validation.ArgumentError`); inside
``jit``/``vmap`` traced values pass unchecked.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from .. import rng
from ..validation import ArgumentError, check_count, check_finite, check_fraction, check_key, check_labels, check_number
from . import stats

__all__ = ["unit_responses", "class_means", "class_selectivity", "category_dprime", "lifetime_sparseness",
           "population_sparseness", "rankdata", "spearman", "spearman_bootstrap"]


def _concrete(x) -> bool:
    """Whether ``x`` holds values (not a tracer inside jit/vmap/grad), so that they can be checked."""
    return not isinstance(x, jax.core.Tracer)


def _responses(responses, name: str = "responses"):
    """(stimuli, units) responses, checked when concrete (finite, 2-D, not empty)."""
    if _concrete(responses):
        check_finite(name, responses, ndim=2)
    return jnp.asarray(responses)


def _non_negative(responses, what: str):
    """Responses checked to be ≥ 0 when concrete (the index assumes rates: a negative one moves it out of its
    range)."""
    r = _responses(responses)
    if _concrete(responses) and (np.asarray(responses) < 0).any():
        raise ArgumentError(f"{what} needs non-negative responses (rates, or activations after a ReLU); got a minimum "
                            f"of {float(np.min(responses)):g}: shift or rectify them first")
    return r


def unit_responses(activation):
    """(N, H, W, C) -> (N, C) spatial mean per channel; (N, U) is returned unchanged."""
    if _concrete(activation):
        check_finite("activation", activation, ndim=(2, 3, 4))
    activation = jnp.asarray(activation)
    return activation.reshape(activation.shape[0], -1, activation.shape[-1]).mean(1) if activation.ndim > 2 \
        else activation


def class_means(responses, labels, n_classes: int):
    """(classes, units) mean response per class (0 for a class without stimuli). ``labels``: one integer in
    [0, ``n_classes``) per stimulus."""
    n_classes = check_count("n_classes", n_classes)
    responses = _responses(responses)
    if _concrete(labels):
        labels = check_labels("labels", labels, n_classes, responses.shape[0])
    elif jnp.shape(labels) != responses.shape[:1]:
        raise ArgumentError(f"labels must hold one label per stimulus ({responses.shape[0]}); got shape "
                            f"{jnp.shape(labels)}")
    onehot = jax.nn.one_hot(labels, n_classes)                                  # N x K
    counts = onehot.sum(0)
    return (onehot.T @ responses) / jnp.maximum(counts, 1)[:, None]


def class_selectivity(responses, labels, n_classes: int, eps: float = 1e-7):
    """Class selectivity index per unit (Morcos et al. 2018): (μ_max − μ_rest) / (μ_max + μ_rest), where
    μ_max is the largest class-conditional mean and μ_rest the mean of the other class means. 0 = equal
    responses to all classes, 1 = responds to one class only (non-negative responses). Shape (units,).
    ``n_classes`` ≥ 2, every class with stimuli; ``eps`` ≥ 0 guards the denominator."""
    n_classes = check_count("n_classes", n_classes, minimum=2)
    eps = check_number("eps", eps, low=0)
    if _concrete(labels):      # an empty class's mean of 0 would count as a class the unit ignores
        empty = np.setdiff1d(np.arange(n_classes), np.asarray(labels)).tolist()
        if empty:
            raise ArgumentError(f"labels hold no stimulus of class(es) {empty[:8]} of n_classes={n_classes}: the "
                                f"index needs every class's mean; pass the classes present (relabelled) or their "
                                f"number")
    mu = class_means(_non_negative(responses, "class_selectivity"), labels, n_classes)
    top = mu.max(0)
    rest = (mu.sum(0) - top) / (n_classes - 1)
    return (top - rest) / (top + rest + eps)


def category_dprime(responses, is_a):
    """d′ per unit between stimuli where ``is_a`` is True and the rest: (μ_a − μ_b) / sqrt((σ²_a + σ²_b)/2);
    ±inf for a unit whose classes differ without varying within either, NaN for one that does not vary at all."""
    responses = _responses(responses)
    if _concrete(is_a):
        mask = check_finite("is_a", is_a, ndim=1)
        if mask.shape[0] != responses.shape[0]:
            raise ArgumentError(f"is_a must hold one flag per stimulus ({responses.shape[0]}); got {mask.shape[0]}")
        if not (mask.dtype == bool or ((mask == 0) | (mask == 1)).all()):
            raise ArgumentError("is_a must be booleans (or 0/1), one per stimulus; got other values")
        if mask.astype(bool).all() or not mask.astype(bool).any():
            raise ArgumentError(f"is_a must mark at least one stimulus True and one False; got "
                                f"{int(mask.astype(bool).sum())} of {mask.shape[0]} True")
    is_a = jnp.asarray(is_a, bool)
    wa, wb = is_a / is_a.sum(), (~is_a) / (~is_a).sum()
    ma, mb = wa @ responses, wb @ responses
    va = wa @ (responses - ma) ** 2 * is_a.sum() / jnp.maximum(is_a.sum() - 1, 1)
    vb = wb @ (responses - mb) ** 2 * (~is_a).sum() / jnp.maximum((~is_a).sum() - 1, 1)
    return (ma - mb) / jnp.sqrt((va + vb) / 2)


def _sparseness(r, axis):
    """NaN where every response is 0 (a dead unit, a silent stimulus): sparseness is undefined there (the formula
    would give n/(n−1), read as maximally sparse)."""
    n = r.shape[axis]
    mean, meansq = r.mean(axis), (r ** 2).mean(axis)
    return jnp.where(meansq > 0, (1 - mean ** 2 / jnp.maximum(meansq, 1e-30)) / (1 - 1 / n), jnp.nan)


def lifetime_sparseness(responses):
    """Per unit, across stimuli (Vinje & Gallant 2000): (1 − (Σr/n)² / (Σr²/n)) / (1 − 1/n). Shape (units,);
    NaN for a unit that never responds (undefined: 0/0)."""
    return _sparseness(_non_negative(responses, "lifetime_sparseness"), 0)


def population_sparseness(responses):
    """Per stimulus, across units (same formula as :func:`lifetime_sparseness`). Shape (stimuli,); NaN for a
    stimulus no unit responds to."""
    return _sparseness(_non_negative(responses, "population_sparseness"), 1)


def rankdata(x):
    """Average ranks (1-based, ties get their mean rank) like ``scipy.stats.rankdata``, of a 1-D ``x``, in JAX
    (:func:`insilico.analysis.stats.rankdata`); vmappable. NaN would have no rank: concrete inputs with NaN/inf are
    an error."""
    if _concrete(x):                  # ranked in float64: distinct values that float32 would tie keep their order
        return jnp.asarray(scipy.stats.rankdata(check_finite("x", x, ndim=1).astype(np.float64)), jnp.float32)
    return stats.rankdata(jnp.asarray(x))


def _pair(x, y):
    """Two finite 1-D arrays of the same length (checked when concrete)."""
    if _concrete(x) and _concrete(y):
        a, b = check_finite("x", x, ndim=1), check_finite("y", y, ndim=1)
        if a.shape != b.shape:
            raise ArgumentError(f"x and y must have the same length; got {a.shape[0]} and {b.shape[0]}")
        if a.shape[0] < 2:
            raise ArgumentError(f"x and y need at least 2 items for a correlation; got {a.shape[0]}")


def spearman(x, y):
    """Spearman rank correlation with tie-aware ranks."""
    _pair(x, y)
    rx, ry = rankdata(x), rankdata(y)
    # all items tied on one side (a bootstrap resample of one item, say): no rank order to correlate, ρ = 0
    # where Pearson's r is undefined, so that bootstrap distributions hold no NaN
    tied = (rx.max() == rx.min()) | (ry.max() == ry.min())
    return jnp.where(tied, 0.0, stats.pearson(rx, ry))


def spearman_bootstrap(x, y, key, n_boot: int = 1000, ci: float = 0.95):
    """Spearman ρ with a percentile bootstrap CI over items (units), all resamples in one vmapped call.

    Returns ``(rho, (low, high), distribution (n_boot,))``. ``n_boot`` ≥ 1; ``ci`` in (0, 1).
    """
    n_boot = check_count("n_boot", n_boot)
    ci = check_fraction("ci", ci, open_low=True, open_high=True)
    check_key("key", key)
    _pair(x, y)
    if _concrete(x) and _concrete(y):        # the ranks (exact in float32) order every resample as the values do
        x, y = rankdata(x), rankdata(y)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    idx = rng.randint(key, (n_boot, x.shape[0]), 0, x.shape[0])
    dist = jax.vmap(lambda i: spearman(x[i], y[i]))(idx)
    alpha = (1 - ci) / 2
    lo, hi = jnp.nanquantile(dist, jnp.array([alpha, 1 - alpha]))
    return spearman(x, y), (lo, hi), dist
