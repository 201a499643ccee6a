"""Eigendistortions: the most and least noticeable distortions of an image for a site, the extreme eigenvectors
of the Fisher information matrix JᵀJ by matrix-free power iteration, over many images in resumable chunks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ... import rng
from ...validation import check_count, check_key
from ._common import _as_images, _check_chunking, _check_flag, _check_loop, _check_site, _run, _subject_identity

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


def _finite(mode: str):
    def check(result, trace, start):
        bad = ~np.isfinite(result[1]) | ~np.isfinite(result[0].reshape(len(result[0]), -1)).all(1)
        if bad.any():
            raise FloatingPointError(f"the power iteration for the {mode}imal eigenvalue became NaN/inf for image "
                                     f"{start + int(np.flatnonzero(bad)[0])}")
    return check


def eigendistortions(subject, site: str, images, *, n_iter: int = 100, key, loop: str = "auto",
                     progress: bool = False, store=None, chunk_size: int | None = None, memory_budget: float = 2e9,
                     overwrite: bool = False) -> xr.Dataset:
    """Most and least noticeable distortions of each image for ``site`` (Berardino et al. 2017): the unit
    eigenvectors of the Fisher information JᵀJ (J = d site / d image) with the largest and smallest eigenvalue,
    by power iteration (the smallest on λ_max·I − JᵀJ), vmapped over images. Returns ``distortion`` (image,
    which ∈ {max, min}, y, x, channel) and ``eigenvalue`` (image, which): the squared change of the
    representation per unit squared pixel change along that direction. The directions are not images and are
    not quantized (an 8-bit image moved along one by less than a level rounds back to itself).

    store, chunk_size, memory_budget, overwrite: the images run in chunks of ``chunk_size`` (default: all of them
        up to 16, else as many as ``memory_budget`` bytes allow, at most 256), so memory stays that of one chunk
        however many images there are. With ``store`` (a directory) each finished chunk is written to its
        ``max/`` and ``min/`` subdirectories (the two power iterations), and a rerun after a kill resumes from
        the finished chunks; a rerun with other settings, images or weights is refused naming what differs
        (``overwrite=True`` starts over). An image's result does not depend on the chunk it is in, beyond float
        round-off (XLA may sum in another order for another batch size).
    Raises: ``FloatingPointError`` naming the image whose iteration became NaN/inf."""
    n_iter, loop = check_count("n_iter", n_iter), _check_loop(loop)
    check_key("key", key)
    progress = _check_flag("progress", progress)
    chunking = _check_chunking(store, chunk_size, memory_budget, overwrite)
    el.validate(subject)
    _check_site(subject, site, "eigendistortions")
    x = _as_images(subject, images)
    k1, k2 = jax.random.split(key)
    identity = {**_subject_identity(subject), "n_iter": n_iter, "key": key}
    lam = jnp.zeros(x.shape[0], jnp.float32)
    results = {}
    for mode, k in (("max", k1), ("min", k2)):
        where = dict(chunking, store=None if store is None else Path(store) / mode)
        results[mode], _ = _run(_Power(site, int(n_iter), mode), (x, rng.normal(k, x.shape), lam), (subject,),
                                where, tag=f"eigendistortions ({mode})", identity=identity, check=_finite(mode),
                                loop=loop, progress=progress)
        lam = jnp.asarray(results["max"][1])
    (v_max, l_max), (v_min, l_min) = results["max"], results["min"]
    return xr.Dataset({"distortion": (("image", "which", "y", "x", "channel"), np.stack([v_max, v_min], 1)),
                       "eigenvalue": (("image", "which"), np.stack([l_max, l_min], 1))},
                      coords={"which": ["max", "min"]},
                      attrs={"subject": subject.name, "site": site, "n_iter": n_iter})
