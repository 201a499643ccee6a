"""Unit importance scores and ablation orders: L1 weight norm (Molchanov et al. 2017 baseline), first-order
Taylor importance (Molchanov et al. 2017), random orders; single-unit impact comes from
:func:`insilico.probes.lesion.single_unit_sweep` and class selectivity from
:mod:`insilico.analysis.selectivity`.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import electrode as el
from ..validation import ArgumentError, check_count, check_finite, check_key, check_labels

# a site's own kernel ("conv1/kernel" of an nn.Conv site), an insilico stage's, a residual block's second conv
_KERNELS = ("kernel", "conv/kernel", "dense/kernel", "conv2/kernel")


def l1_weight_norm(subject, site: str, param: str | None = None):
    """L1 norm of the weights that produce each channel of ``site``. Shape (C,).

    ``param``: the parameter path (as in :func:`insilico.electrode.synapse_paths`); default: the site's own
    kernel (``site/kernel``), an insilico stage's conv/dense kernel or a residual block's second conv, else the
    only kernel inside the site whose last axis has C entries."""
    el.validate(subject, sites=(site,), purpose="l1_weight_norm")
    n = subject.sites[site][-1]
    every = el.synapse_paths(subject)
    paths = [p for p in every if p.startswith(site + "/")]           # may be none: a time step's weights are shared
    if param is not None and param not in every:
        raise ArgumentError(f"param must be a parameter path of {subject.name}; got {param!r}. Inside {site!r}: "
                            f"{', '.join(paths) or '(none)'}")
    if param is None:
        known = [f"{site}/{s}" for s in _KERNELS if f"{site}/{s}" in paths]
        fits = [p for p in paths
                if p.rsplit("/", 1)[-1] == "kernel" and np.shape(el.parameter(subject, p))[-1] == n]
        if known:
            param = known[0]
        elif len(fits) == 1:
            param = fits[0]
        else:
            raise ValueError(f"site {site!r}: no unique kernel with {n} output channels among its parameters "
                             f"{paths or '(none)'}; name one with param=")
    leaf = el.parameter(subject, param)
    if np.shape(leaf)[-1] != n:
        raise ValueError(f"parameter {param!r} has shape {np.shape(leaf)}; its last axis must have the {n} channels "
                         f"of {site!r}")
    return jnp.abs(leaf).reshape(-1, leaf.shape[-1]).sum(0)


@partial(jax.jit, static_argnums=0)
def _taylor_gradients(site: str, subject, x, labels):
    """Per-image gradients of the loss w.r.t. the channel gains of ``site`` at 1: (N, C)."""
    def loss(g, xi, yi):
        out, _ = el.forward(subject, xi[None], {site: el.gain(g)})
        return optax.softmax_cross_entropy_with_integer_labels(out, yi[None]).sum()

    return jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(jnp.ones(subject.sites[site][-1]), x, labels)


def taylor_importance(subject, x, site: str, labels):
    """First-order Taylor importance per channel (Molchanov et al. 2017): for each image, |mean over
    positions of a · ∂L/∂a| (the loss change from removing the channel to first order), averaged over
    images. Computed as per-image gradients w.r.t. the channel gains at 1. Shape (C,). ``labels``: one class
    index in [0, subject.n_outputs) per image."""
    x = jnp.asarray(x) if hasattr(x, "dtype") else np.asarray(x)
    el.validate(subject, x, sites=(site,), in_bounds=True, purpose="taylor_importance")
    labels = jnp.asarray(check_labels("labels", labels, subject.n_outputs, n=x.shape[0]))
    positions = int(np.prod(subject.sites[site][:-1]))
    grads = _taylor_gradients(site, subject, x, labels)
    return jnp.abs(grads / positions).mean(0)


def random_orders(key, n_orders: int, n_units: int):
    """``n_orders`` independent random permutations of the units, (n_orders, n_units)."""
    check_key("key", key)
    n_orders, n_units = check_count("n_orders", n_orders), check_count("n_units", n_units)
    return jax.vmap(lambda k: jax.random.permutation(k, n_units))(jax.random.split(key, n_orders))


def order_by(scores, descending: bool = True):
    """Units sorted by ``scores`` (one finite score per unit; most important first when ``descending``)."""
    scores = jnp.asarray(check_finite("scores", scores, ndim=1))
    return jnp.argsort(-scores if descending else scores)
