"""Eigendistortions: the most and least noticeable distortions of an image for a site, the extreme eigenvectors
of the Fisher information matrix JᵀJ by matrix-free power iteration (the largest) and Lanczos iteration (the
smallest), over many images in resumable chunks."""
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
    """Power iteration on the Fisher matrix JᵀJ of ``site`` (J = d site / d image) for its largest eigenvector,
    one image per vmapped lane, with matrix-free products JᵀJ v = vjp(jvp(v)). args: ``(subject, x (N, ...),
    v0 (N, ...))``; ``finish`` returns the unit eigenvectors (N, ...), their eigenvalues (N,) and residuals
    ‖JᵀJv − λv‖ (N,)."""
    site: str
    steps: int

    def _fisher(self, subject, x, v):
        def rep(img):
            return el.forward(subject, img[None], record=(self.site,))[1][self.site][0]
        _, vjp = jax.vjp(rep, x)
        return vjp(jax.jvp(rep, (x,), (v,))[1])[0]

    def init(self, subject, x, v0):
        return jax.vmap(lambda v: v / jnp.linalg.norm(v))(v0)

    def step(self, v, i, subject, x, v0):
        def one(x, v):
            w = self._fisher(subject, x, v)
            return w / jnp.maximum(jnp.linalg.norm(w), 1e-30)
        return jax.vmap(one)(x, v), None

    def _result(self, subject, x, v):
        """The unit vector ``v``, its Rayleigh quotient vᵀJᵀJv and the residual ‖JᵀJv − (vᵀJᵀJv)·v‖."""
        fv = self._fisher(subject, x, v)
        rayleigh = jnp.vdot(v, fv)
        return v, rayleigh, jnp.linalg.norm(fv - rayleigh * v)

    def finish(self, v, subject, x, v0):
        return jax.vmap(lambda x, v: self._result(subject, x, v))(x, v)


@dataclass(frozen=True)
class _Lanczos(_Power):
    """The least eigenvector of JᵀJ by the Lanczos iteration with full reorthogonalization, one image per vmapped
    lane: ``steps`` products JᵀJ q build an orthonormal Krylov basis Q and the tridiagonal T = QᵀJᵀJQ, whose
    least Ritz vector ``Qᵀy`` is returned. Power iteration on λ_max·I − JᵀJ converges at the rate
    (λ_max − λ₂)/(λ_max − λ_min), which for an image is close to 1 (after 100 steps its vector was nearly
    orthogonal to the true one); Lanczos converges at both ends of the spectrum at once. A basis that stops
    growing (JᵀJ q in its span already: an invariant subspace) keeps its Ritz values."""

    def init(self, subject, x, v0):
        n, size = v0.shape[0], int(np.prod(v0.shape[1:]))
        q = v0.reshape(n, size)
        return {"q": q / jnp.linalg.norm(q, axis=1, keepdims=True), "basis": jnp.zeros((n, self.steps, size)),
                "alpha": jnp.zeros((n, self.steps)), "beta": jnp.zeros((n, self.steps)),
                "valid": jnp.zeros((n, self.steps), bool), "alive": jnp.ones(n, bool)}

    def step(self, state, i, subject, x, v0):
        def one(x, q, basis, alpha, beta, valid, alive):
            w = self._fisher(subject, x, q.reshape(x.shape)).reshape(-1)
            a, size = jnp.vdot(q, w), jnp.linalg.norm(w)
            basis = basis.at[i].set(jnp.where(alive, q, 0.0))
            for _ in range(2):                                     # twice: float32 Gram-Schmidt loses orthogonality
                w = w - basis.T @ (basis @ w)
            b = jnp.linalg.norm(w)
            # what is left after removing the basis is float noise (about 1e-6 of JᵀJq) once the basis spans an
            # invariant subspace, or the whole space: the basis stops growing there
            grows = alive & (b > 1e-4 * size)
            return (jnp.where(grows, w / jnp.maximum(b, 1e-30), 0.0), basis, alpha.at[i].set(jnp.where(alive, a, 0.0)),
                    beta.at[i].set(jnp.where(grows, b, 0.0)), valid.at[i].set(alive), grows)
        keys = ("q", "basis", "alpha", "beta", "valid", "alive")
        return dict(zip(keys, jax.vmap(one)(x, *(state[k] for k in keys)))), None

    def finish(self, state, subject, x, v0):
        def one(x, basis, alpha, beta, valid):
            big = 10 * (jnp.max(jnp.abs(alpha)) + jnp.max(beta)) + 1   # steps past the end: never the least
            off = jnp.where(valid[1:] & valid[:-1], beta[:-1], 0.0)
            _, vecs = jnp.linalg.eigh(jnp.diag(jnp.where(valid, alpha, big)) + jnp.diag(off, 1) + jnp.diag(off, -1))
            v = basis.T @ vecs[:, 0]
            return self._result(subject, x, (v / jnp.linalg.norm(v)).reshape(x.shape))
        return jax.vmap(one)(x, state["basis"], state["alpha"], state["beta"], state["valid"])


def _finite(mode: str):
    def check(result, trace, start):
        bad = ~np.isfinite(result[1]) | ~np.isfinite(result[0].reshape(len(result[0]), -1)).all(1)
        if bad.any():
            raise FloatingPointError(f"the iteration for the {mode}imal eigenvalue became NaN/inf for image "
                                     f"{start + int(np.flatnonzero(bad)[0])}")
    return check


def eigendistortions(subject, site: str, images, *, n_iter: int = 100, key, loop: str = "auto",
                     progress: bool = False, store=None, chunk_size: int | None = None, memory_budget: float = 2e9,
                     overwrite: bool = False) -> xr.Dataset:
    """Most and least noticeable distortions of each image for ``site`` (Berardino et al. 2017): the unit
    eigenvectors of the Fisher information JᵀJ (J = d site / d image) with the largest and smallest eigenvalue:
    the largest by ``n_iter`` steps of power iteration, the smallest by ``n_iter`` Lanczos steps (one JᵀJ product
    each; power iteration converges far too slowly at that end), vmapped over images. Returns ``distortion``
    (image, which ∈ {max, min}, y, x, channel), ``eigenvalue`` (image, which): the squared change of the
    representation per unit squared pixel change along that direction, and ``residual`` (image, which):
    ‖JᵀJv − λv‖ / λ_max, near 0 for an eigenvector (a cluster of nearly equal least eigenvalues converges
    slowest: raise ``n_iter``). The directions are not images and are not quantized (an 8-bit image moved along
    one by less than a level rounds back to itself).

    store, chunk_size, memory_budget, overwrite: the images run in chunks of ``chunk_size`` (default: all of them
        up to 16, else as many as ``memory_budget`` bytes allow, at most 256), so memory stays that of one chunk
        however many images there are. With ``store`` (a directory) each finished chunk is written to its
        ``max/`` and ``min/`` subdirectories (the two iterations), and a rerun after a kill resumes from
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
    results = {}
    for mode, k, program in (("max", k1, _Power(site, int(n_iter))), ("min", k2, _Lanczos(site, int(n_iter)))):
        where = dict(chunking, store=None if store is None else Path(store) / mode)
        results[mode], _ = _run(program, (x, rng.normal(k, x.shape)), (subject,), where,
                                tag=f"eigendistortions ({mode})", identity=identity, check=_finite(mode), loop=loop,
                                progress=progress)
    (v_max, l_max, r_max), (v_min, l_min, r_min) = results["max"], results["min"]
    scale = np.maximum(np.asarray(l_max), 1e-30)[:, None]
    return xr.Dataset({"distortion": (("image", "which", "y", "x", "channel"), np.stack([v_max, v_min], 1)),
                       "eigenvalue": (("image", "which"), np.stack([l_max, l_min], 1)),
                       "residual": (("image", "which"), np.stack([r_max, r_min], 1) / scale)},
                      coords={"which": ["max", "min"]},
                      attrs={"subject": subject.name, "site": site, "n_iter": n_iter})
