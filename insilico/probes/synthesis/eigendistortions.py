"""Eigendistortions: the most and least noticeable distortions of an image for a site, the extreme eigenvectors
of the Fisher information matrix JᵀJ by matrix-free power iteration, vmapped over images."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ...engine import drive
from ...validation import check_count, check_key
from ._common import _as_images, _check_loop, _check_site

__all__ = ["eigendistortions"]


@dataclass(frozen=True)
class _Power:
    """Power iteration on the Fisher matrix JᵀJ of ``site`` (J = d site / d image), one image per vmapped lane,
    with matrix-free products JᵀJ v = vjp(jvp(v)). ``mode="min"`` iterates λ·I − JᵀJ (args carry λ = λ_max per
    image), whose top eigenvector is JᵀJ's least. args: ``(subject, x (N, ...), v0 (N, ...), lam (N,))``;
    ``finish`` returns the unit eigenvectors (N, ...) and their eigenvalues (N,)."""
    site: str
    steps: int
    mode: str

    def _fisher(self, subject, x, v):
        def rep(img):
            return el.forward(subject, img[None], record=(self.site,))[1][self.site][0]
        _, vjp = jax.vjp(rep, x)
        return vjp(jax.jvp(rep, (x,), (v,))[1])[0]

    def _matvec(self, subject, x, v, lam):
        fv = self._fisher(subject, x, v)
        return lam * v - fv if self.mode == "min" else fv

    def init(self, subject, x, v0, lam):
        return jax.vmap(lambda v: v / jnp.linalg.norm(v))(v0)

    def step(self, v, i, subject, x, v0, lam):
        def one(x, v, lam):
            w = self._matvec(subject, x, v, lam)
            return w / jnp.maximum(jnp.linalg.norm(w), 1e-30)
        return jax.vmap(one)(x, v, lam), None

    def finish(self, v, subject, x, v0, lam):
        rayleigh = jax.vmap(lambda x, v, lam: jnp.vdot(v, self._matvec(subject, x, v, lam)))(x, v, lam)
        return v, (lam - rayleigh if self.mode == "min" else rayleigh)


def eigendistortions(subject, site: str, images, *, n_iter: int = 100, key, loop: str = "auto") -> xr.Dataset:
    """Most and least noticeable distortions of each image for ``site`` (Berardino et al. 2017): the unit
    eigenvectors of the Fisher information JᵀJ (J = d site / d image) with the largest and smallest eigenvalue,
    by power iteration (the smallest on λ_max·I − JᵀJ), vmapped over images. Returns ``distortion`` (image,
    which ∈ {max, min}, y, x, channel) and ``eigenvalue`` (image, which): the squared change of the
    representation per unit squared pixel change along that direction. The directions are not images and are
    not quantized (an 8-bit image moved along one by less than a level rounds back to itself)."""
    n_iter, loop = check_count("n_iter", n_iter), _check_loop(loop)
    check_key("key", key)
    el.validate(subject)
    _check_site(subject, site, "eigendistortions")
    x = _as_images(subject, images)
    k1, k2 = jax.random.split(key)
    zeros = jnp.zeros(x.shape[0], jnp.float32)
    (v_max, l_max), _ = drive(_Power(site, int(n_iter), "max"), subject, x, jax.random.normal(k1, x.shape), zeros,
                              loop=loop)
    (v_min, l_min), _ = drive(_Power(site, int(n_iter), "min"), subject, x, jax.random.normal(k2, x.shape), l_max,
                              loop=loop)
    return xr.Dataset({"distortion": (("image", "which", "y", "x", "channel"),
                                      np.stack([np.asarray(v_max), np.asarray(v_min)], 1)),
                       "eigenvalue": (("image", "which"), np.stack([np.asarray(l_max), np.asarray(l_min)], 1))},
                      coords={"which": ["max", "min"]},
                      attrs={"subject": subject.name, "site": site, "n_iter": n_iter})
