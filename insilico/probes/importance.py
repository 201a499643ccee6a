"""Unit importance scores and ablation orders: L1 weight norm (Molchanov et al. 2017 baseline), first-order
Taylor importance (Molchanov et al. 2017), random orders; single-unit impact comes from
:func:`insilico.probes.lesion.single_unit_sweep` and class selectivity from
:mod:`insilico.analysis.selectivity`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .. import electrode as el

_KERNELS = ("conv/kernel", "dense/kernel", "conv2/kernel")


def l1_weight_norm(subject, site: str):
    """L1 norm of the weights that produce each channel of ``site`` (the stage's conv/dense kernel; a
    residual block's second conv). Shape (C,)."""
    paths = el.synapse_paths(subject, site)
    for suffix in _KERNELS:
        path = f"{site}/{suffix}"
        if path in paths:
            leaf = subject.params
            for k in path.split("/"):
                leaf = leaf[k]
            return jnp.abs(leaf).reshape(-1, leaf.shape[-1]).sum(0)
    raise ValueError(f"site {site!r} has no kernel among {', '.join(_KERNELS)}; its parameters: {paths}")


def taylor_importance(subject, x, site: str, labels):
    """First-order Taylor importance per channel (Molchanov et al. 2017): for each image, |mean over
    positions of a · ∂L/∂a| (the loss change from removing the channel to first order), averaged over
    images. Computed as per-image gradients w.r.t. the channel gains at 1. Shape (C,)."""
    n_units = subject.sites[site][-1]
    labels = jnp.asarray(labels, jnp.int32)
    positions = 1
    for d in subject.sites[site][:-1]:
        positions *= d

    def loss(g, xi, yi):
        out, _ = el.run(subject, xi[None], {site: el.gain(g)})
        return optax.softmax_cross_entropy_with_integer_labels(out, yi[None]).sum()

    grads = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(jnp.ones(n_units), jnp.asarray(x), labels)
    return jnp.abs(grads / positions).mean(0)


def random_orders(key, n_orders: int, n_units: int):
    """``n_orders`` independent random permutations of the units, (n_orders, n_units)."""
    return jax.vmap(lambda k: jax.random.permutation(k, n_units))(jax.random.split(key, n_orders))


def order_by(scores, descending: bool = True):
    """Units sorted by ``scores`` (most important first when ``descending``)."""
    scores = jnp.asarray(scores)
    return jnp.argsort(-scores if descending else scores)
