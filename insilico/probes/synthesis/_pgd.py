"""Projected gradient descent as a program: the ε-ball geometry (projection, step direction, random start), the
:class:`_PGD` program over ε values × restarts, and the 8-bit rounding that keeps an image inside its ball."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ...engine import drive
from ._common import _fooled, _loss, _quantize


def _project(delta, eps, norm: str):
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    n = jnp.sqrt(jnp.sum(delta ** 2, axis=(1, 2, 3), keepdims=True))
    return delta * jnp.minimum(1.0, eps / jnp.maximum(n, 1e-12))


def _step_direction(g, norm: str):
    if norm == "linf":
        return jnp.sign(g)
    return g / jnp.maximum(jnp.sqrt(jnp.sum(g ** 2, axis=(1, 2, 3), keepdims=True)), 1e-12)


def _random_start(key, shape, eps, norm: str):
    if norm == "linf":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0) * eps
    d = jax.random.normal(key, shape)                           # uniform direction, radius ~ eps * U^(1/dim)
    d = d / jnp.sqrt(jnp.sum(d ** 2, axis=(1, 2, 3), keepdims=True))
    r = jax.random.uniform(jax.random.fold_in(key, 1), (shape[0], 1, 1, 1)) ** (1.0 / np.prod(shape[1:]))
    return d * r * eps


def _round_in_ball(xa, x, eps, norm: str, bounds):
    """8-bit rounding of attacked images; in L∞, a pixel that rounding pushed out of the ε ball steps back one
    level (``eps`` broadcasts against the images)."""
    lo, hi = bounds
    xq = _quantize(xa, (lo, hi))
    if norm == "linf":
        level = (hi - lo) / 255.0
        xq = jnp.where(xq - x > eps + 1e-6, xq - level, jnp.where(x - xq > eps + 1e-6, xq + level, xq))
    return xq


@dataclass(frozen=True)
class _PGD:
    """PGD for one batch at E values of ε × R random restarts (a program for :func:`~insilico.engine.drive`).

    args: ``(subject, x (N, ...), labels (N,), eps (E,), step_size (E,), key)`` (``key`` None without random
    starts); the state holds the attacked images (E, R, N, ...) and the first non-finite gradient step per (ε,
    restart). ``finish`` returns the best restart per image and ε on the 8-bit image: (images (E, N, ...), loss
    (E, N), nan step (E,))."""
    norm: str
    steps: int
    restarts: int
    targeted: bool
    rand_init: bool

    def init(self, subject, x, labels, eps, step_size, key):
        lo, hi = subject.input_spec.bounds
        if not self.rand_init:
            xa = jnp.broadcast_to(jnp.clip(x, lo, hi), (eps.shape[0], self.restarts, *x.shape))
            return xa, jnp.full((eps.shape[0], self.restarts), -1, jnp.int32)
        keys = jax.random.split(key, self.restarts)

        def start(e, k):
            return jnp.clip(x + _random_start(k, x.shape, e, self.norm), lo, hi)
        xa = jax.vmap(lambda e: jax.vmap(lambda k: start(e, k))(keys))(eps)
        return xa, jnp.full((eps.shape[0], self.restarts), -1, jnp.int32)

    def step(self, state, i, subject, x, labels, eps, step_size, key):
        lo, hi = subject.input_spec.bounds
        grad = jax.grad(lambda xa: _loss(subject, xa, labels, self.targeted).sum())

        def one(xa, nan_step, e, size):
            g = grad(xa)
            nan_step = jnp.where((nan_step < 0) & ~jnp.all(jnp.isfinite(g)), i, nan_step)
            step = _step_direction(jnp.nan_to_num(g), self.norm) * size
            new = jnp.clip(x + _project(xa + step - x, e, self.norm), lo, hi)
            return jnp.where(nan_step >= 0, xa, new), nan_step

        over_restarts = jax.vmap(one, in_axes=(0, 0, None, None))
        return jax.vmap(over_restarts)(*state, eps, step_size), None

    def finish(self, state, subject, x, labels, eps, step_size, key):
        lo, hi = subject.input_spec.bounds

        def judge(xa, e):
            xq = _round_in_ball(xa, x, e, self.norm, (lo, hi))
            return xq, _loss(subject, xq, labels, self.targeted), _fooled(subject, xq, labels, self.targeted)

        def best(xs, e):                                                       # over restarts (R, N, ...)
            xs, losses, fooled = jax.vmap(judge, in_axes=(0, None))(xs, e)
            # a successful restart if any (highest loss among those), else the highest loss
            pick = jnp.argmax(jnp.where(fooled, losses + 1e6, losses), axis=0)
            return (jnp.take_along_axis(xs, pick[None, :, None, None, None], 0)[0],
                    jnp.take_along_axis(losses, pick[None], 0)[0])

        xa, nan_step = state
        images, losses = jax.vmap(best)(xa, eps)
        return images, losses, jnp.max(nan_step, axis=1)


def _attack(subject, x, labels, eps, step_size, key, *, norm: str, steps: int, restarts: int, targeted: bool,
            rand_init: bool, loop: str):
    """Run :class:`_PGD` for the ε values ``eps`` (E,); raises on a NaN gradient. Returns images (E, N, ...)."""
    program = _PGD(norm, int(steps), int(restarts), bool(targeted), bool(rand_init))
    eps = jnp.asarray(eps, jnp.float32).reshape(-1)
    size = jnp.broadcast_to(jnp.asarray(step_size, jnp.float32), eps.shape)
    (images, _, nan_step), _ = drive(program, subject, x, labels, eps, size, key, loop=loop)
    if int(jnp.max(nan_step)) >= 0:
        raise FloatingPointError(f"the loss gradient became NaN/inf at step {int(jnp.max(nan_step))} of the attack")
    return images
