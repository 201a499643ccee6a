"""Maximum differentiation (MAD) competition between two representations: from each noisy start image, the four
images at the same pixel distance that push one representation's distance up or down while the other's is held,
over many start images in memory-bounded, resumable chunks."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ... import rng
from ...validation import check_count, check_key, check_positive
from ._common import (
    _as_images,
    _check_chunking,
    _check_flag,
    _check_loop,
    _check_site,
    _quantize,
    _run,
    _same_inputs,
    _subject_identity,
)

__all__ = ["mad_competition"]


def _rep_distance(subject, site):
    """``(x, ref) -> ‖f(x) − f(ref)‖²`` at ``site`` (call inside a traced function)."""
    def d(x, ref):
        _, rec = el.forward(subject, jnp.stack([x, ref]), record=(site,))
        return jnp.sum((rec[site][0] - rec[site][1]) ** 2)
    return d


@dataclass(frozen=True)
class _MAD:
    """The four MAD images per start (a program for :func:`~insilico.engine.run_programs`): maximize / minimize
    distance A while holding distance B at its start value (gradient of A projected orthogonally to the gradient
    of B, then B restored by a Newton step), and the same with the roles swapped. The pixel L2 distance to the
    reference is held by projecting onto the sphere around it. args: ``(subject_a, subject_b, lr, ref (N, ...),
    start (N, ...))`` — the step length ``lr`` an argument, so a new one compiles nothing; state (4, N, ...).
    ``finish`` returns, per start, the four 8-bit images (N, 4, ...), their
    distances under A and B to the reference (N, 4, 2) and the start's (N, 2)."""
    site_a: str
    site_b: str
    steps: int

    def _runs(self, subject_a, subject_b):
        da, db = _rep_distance(subject_a, self.site_a), _rep_distance(subject_b, self.site_b)
        return ((da, db, 1.0), (da, db, -1.0), (db, da, 1.0), (db, da, -1.0))       # (primary, held, sign)

    def init(self, subject_a, subject_b, lr, ref, start):
        held = jnp.stack([jax.vmap(fixed)(start, ref) for _, fixed, _ in self._runs(subject_a, subject_b)])
        return jnp.stack([start] * 4), held

    def step(self, state, i, subject_a, subject_b, lr, ref, start):
        xs, held = state
        lo, hi = subject_a.input_spec.bounds

        def move(primary, fixed, sign, x, ref, start, target):
            radius = jnp.linalg.norm(start - ref)
            gp = jax.grad(primary)(x, ref)
            gf = jax.grad(fixed)(x, ref)
            gf_u = gf / jnp.maximum(jnp.linalg.norm(gf), 1e-12)
            d = x - ref
            d_u = d / jnp.maximum(jnp.linalg.norm(d), 1e-12)
            step = gp - jnp.vdot(gp, gf_u) * gf_u                    # keep the other model's distance
            step = step - jnp.vdot(step, d_u) * d_u                   # and the pixel distance (tangent move)
            x = x + sign * lr * step / jnp.maximum(jnp.linalg.norm(step), 1e-12)
            gf = jax.grad(fixed)(x, ref)                              # restore the held distance (Newton)
            x = x - (fixed(x, ref) - target) * gf / jnp.maximum(jnp.vdot(gf, gf), 1e-12)
            x = ref + (x - ref) * radius / jnp.maximum(jnp.linalg.norm(x - ref), 1e-12)
            return jnp.clip(x, lo, hi)

        out = [jax.vmap(partial(move, p, f, s))(xs[k], ref, start, held[k])
               for k, (p, f, s) in enumerate(self._runs(subject_a, subject_b))]
        return (jnp.stack(out), held), None

    def finish(self, state, subject_a, subject_b, lr, ref, start):
        imgs = _quantize(jnp.moveaxis(state[0], 0, 1), subject_a.input_spec.bounds)      # (N, 4, ...)
        da, db = _rep_distance(subject_a, self.site_a), _rep_distance(subject_b, self.site_b)
        both = lambda im, r: jnp.stack([da(im, r), db(im, r)])
        d = jax.vmap(jax.vmap(both, in_axes=(0, None)))(imgs, ref)
        return imgs, d, jax.vmap(both)(start, ref)


def _finite(result, trace, start):
    bad = ~np.isfinite(np.asarray(result[1])).reshape(len(result[1]), -1).all(1)
    if bad.any():
        raise FloatingPointError(f"MAD competition produced NaN/inf distances (start image "
                                 f"{start + int(np.flatnonzero(bad)[0])})")


def mad_competition(subject_a, site_a: str, subject_b, site_b: str, images, *, noise: float = 0.1, steps: int = 100,
                    lr: float = 0.01, key, loop: str = "auto", progress: bool = False, store=None,
                    chunk_size: int | None = None, memory_budget: float = 2e9, overwrite: bool = False) -> xr.Dataset:
    """Maximum differentiation (MAD) competition (Wang & Simoncelli 2008) between two representations (a site of
    each of two subjects, or two sites of one): from each reference image plus white noise of pixel std ``noise``,
    four images at the same pixel distance — distance under A maximized / minimized with B's held, and the same
    with A and B swapped. A model whose "held" distance stays constant while the other one swings is the one a
    human observer should judge. Returns ``images`` (image, which, y, x, channel) with which ∈ {A max, A min,
    B max, B min}, the representation distances ``distance_a`` / ``distance_b`` of each to its reference, and
    the start's distances. Vmapped over images.

    The start and the four images are 8-bit images (rounding moves them off the exact sphere and the exact held
    distance by up to half a level per pixel), and every distance is measured on them.

    store, chunk_size, memory_budget, overwrite: the start images run in chunks of ``chunk_size`` (default: all of
        them up to 16, else as many as ``memory_budget`` bytes allow, at most 256), so memory stays that of one
        chunk however many images there are. With ``store`` (a directory) every finished chunk is written there,
        and a rerun after a kill resumes from the finished chunks; a rerun with other settings, images or
        weights is refused naming what differs (``overwrite=True`` starts over). An image's result does not
        depend on the chunk it is in, beyond float round-off (XLA may sum in another order for another batch size).
    Raises: ``FloatingPointError`` naming the start image whose distances became NaN/inf."""
    for sub, site in ((subject_a, site_a), (subject_b, site_b)):
        el.validate(sub)
        _check_site(sub, site, "MAD competition")
    noise, steps, lr = check_positive("noise", noise), check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    chunking = _check_chunking(store, chunk_size, memory_budget, overwrite)
    _same_inputs(subject_a, subject_b)
    x = _as_images(subject_a, images)
    lo, hi = subject_a.input_spec.bounds
    start = _quantize(x + noise * (hi - lo) * rng.normal(key, x.shape), (lo, hi))
    (imgs, d, d0), _ = _run(_MAD(site_a, site_b, steps), (x, start), (subject_a, subject_b, jnp.float32(lr)),
                            chunking, tag="mad_competition", identity={**_subject_identity(subject_a, subject_b),
                                                                       "noise": noise, "key": key, "lr": float(lr)},
                            check=_finite, loop=loop, progress=progress)
    x, start = np.asarray(x), np.asarray(start)
    return xr.Dataset({"images": (("image", "which", "y", "x", "channel"), imgs),
                       "distance_a": (("image", "which"), d[..., 0]), "distance_b": (("image", "which"), d[..., 1]),
                       "start_distance_a": ("image", d0[:, 0]), "start_distance_b": ("image", d0[:, 1]),
                       "start_pixel_distance": ("image", np.sqrt(((start - x) ** 2).sum(axis=(1, 2, 3)))),
                       "pixel_distance": (("image", "which"), np.sqrt(((imgs - x[:, None]) ** 2).sum(axis=(2, 3, 4))))},
                      coords={"which": ["A max", "A min", "B max", "B min"]},
                      attrs={"model_a": f"{subject_a.name}/{site_a}", "model_b": f"{subject_b.name}/{site_b}",
                             "noise": noise, "steps": steps, "lr": lr, "quantized": "8-bit"})
