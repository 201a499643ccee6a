"""Projected gradient descent on one flat batch: the ε-ball geometry (projection, step direction, random start),
the :class:`_RowPGD` program whose every row is one (ε, restart, image) triple, its runs (a host loop that may
stop rows early, or one compiled loop) and the 8-bit rounding that keeps an image inside its ball.

Every row carries its own ε and step size, so ε values, step sizes and the number of steps are data of the
compiled step, never part of it; a sweep over ε runs the network once per step on all rows at once."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ... import rng
from ...engine import filter_jit, on_host, resolve_loop, to_device
from ...engine.shrinking import bucket, run_shrinking
from ._common import _logits, _loss, _quantize


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
        return rng.uniform(key, shape, minval=-1.0, maxval=1.0) * eps
    d = rng.normal(key, shape)                           # uniform direction, radius ~ eps * U^(1/dim)
    d = d / jnp.sqrt(jnp.sum(d ** 2, axis=(1, 2, 3), keepdims=True))
    r = rng.uniform(jax.random.fold_in(key, 1), (shape[0], 1, 1, 1)) ** (1.0 / np.prod(shape[1:]))
    return d * r * eps


@partial(jax.jit, static_argnames=("restarts", "norm"))
def _unit_starts(key, x, *, restarts: int, norm: str):
    """The random starts of ε = 1 for each restart (R, N, ...): a row at radius ε starts at ``x + ε·start``."""
    return jax.vmap(lambda k: _random_start(k, x.shape, 1.0, norm))(jax.random.split(key, restarts))


def _round_in_ball(xa, x, eps, norm: str, bounds, xp=jnp):
    """8-bit rounding of attacked images that keeps them in their ε ball (``eps`` broadcasts against the images):
    in L∞ a pixel that rounding pushed out of the ball steps back one level; in L2 an image that nearest rounding
    pushed out is rounded toward the clean image instead, pixel by pixel, which for an 8-bit clean image never
    moves a pixel further from it than the attack did (clean images off the 8-bit grid may still end up to half a
    level outside, as may an L∞ ball narrower than half a level). ``xp``: NumPy for images on the host."""
    lo, hi = bounds
    xq = _quantize(xa, (lo, hi), xp=xp)
    level = (hi - lo) / 255.0
    if norm == "linf":                          # the step back stays inside the bounds (a float step above hi)
        back = xp.where(xq - x > eps + 1e-6, xq - level, xp.where(x - xq > eps + 1e-6, xq + level, xq))
        return xp.clip(back, lo, hi)
    t = (xp.clip(xa, lo, hi) - lo) / level                        # in levels; a hair's tolerance for float error
    xc = _quantize(x, (lo, hi), xp=xp)          # toward the clean image's level: half a level from it at most
    toward = lo + xp.where(xa >= xc, xp.floor(t + 1e-4), xp.ceil(t - 1e-4)) * level
    outside = xp.sqrt(xp.sum((xq - x) ** 2, axis=(1, 2, 3), keepdims=True)) > eps + 1e-6
    return xp.where(outside, toward, xq)


_col = lambda v: v[:, None, None, None]


@dataclass(frozen=True)
class _RowPGD:
    """PGD of independent rows (a program for :func:`~insilico.engine.shrinking.run_shrinking`). items:
    ``(start, x, labels, eps, step size)``, one row each: the random start at ε = 1 (zero for none), the clean
    image, its label and the row's ε and step size; shared: the subject. ``step``'s out says whether the row's
    gradient was finite; ``judge`` rounds the iterate to 8 bits and keeps ``(image, loss, fooled)``, done once
    the rounded image fools the network (misclassified, or the target class when ``targeted``)."""
    norm: str
    targeted: bool

    def init(self, subject, start, x, labels, eps, size):
        lo, hi = subject.input_spec.bounds
        return jnp.clip(x + start * _col(eps), lo, hi)

    def step(self, xa, i, subject, start, x, labels, eps, size):
        g = jax.grad(lambda xa: _loss(subject, xa, labels, self.targeted).sum())(xa)
        finite = jnp.all(jnp.isfinite(g), axis=(1, 2, 3))
        step = _step_direction(jnp.nan_to_num(g), self.norm) * _col(size)
        new = jnp.clip(x + _project(xa + step - x, _col(eps), self.norm), *subject.input_spec.bounds)
        return new, finite

    def judge(self, xa, subject, start, x, labels, eps, size):
        xq = _round_in_ball(xa, x, _col(eps), self.norm, subject.input_spec.bounds)
        logits = _logits(subject, xq)
        pred = logits.argmax(-1)
        fooled = pred == labels if self.targeted else pred != labels
        return (xq, _loss_of(logits, labels, self.targeted), fooled), fooled


def _loss_of(logits, labels, targeted: bool):
    """:func:`~._common._loss` from the logits."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return -ce if targeted else ce


def _finite_gradients(finite, i):
    if not np.all(finite):
        raise FloatingPointError(f"the loss gradient became NaN/inf at step {i} of the attack")


def _rows(x, labels, eps, size, starts):
    """The items of :class:`_RowPGD` for every (ε, restart, image) triple, ε-major; ``starts`` (R, N, ...)."""
    e_n, n, r_n = len(eps), x.shape[0], starts.shape[0]
    xp = np if on_host() else jnp                # on CPU in NumPy: no small programs to compile (engine.host)
    x, labels, starts = (np.asarray(a) if xp is np else a for a in (x, labels, starts))
    tile = lambda a: xp.tile(a, (e_n * r_n,) + (1,) * (a.ndim - 1))
    start = xp.tile(starts.reshape(r_n * n, *x.shape[1:]), (e_n, 1, 1, 1))
    per_row = lambda v: xp.asarray(np.repeat(np.asarray(v, np.float32), r_n * n))
    return start, tile(x), tile(labels), per_row(eps), per_row(size)


@lru_cache(maxsize=8)
def _compiled_loop(program: _RowPGD):
    """``(steps, subject, *items) -> (judge's kept, first non-finite step per row)`` as one compiled loop; the
    step count is an argument, so a new count compiles nothing."""
    def run(steps, subject, *items):
        def body(i, carry):
            xa, bad = carry
            xa, finite = program.step(xa, i, subject, *items)
            return xa, jnp.where((bad < 0) & ~finite, i, bad)
        xa = program.init(subject, *items)
        xa, bad = jax.lax.fori_loop(0, steps, body, (xa, jnp.full(xa.shape[0], -1, jnp.int32)))
        return program.judge(xa, subject, *items)[0], bad
    return filter_jit(run)


def _run_rows(program: _RowPGD, subject, items: tuple, steps: int, *, loop: str, stop_early: bool,
              buckets: bool, progress: bool = False, desc: str = ""):
    """``judge``'s kept values of every row after ``steps`` steps (or at its first fooling 8-bit iterate when
    ``stop_early``, which needs the host loop), as NumPy arrays; raises on a NaN/inf gradient, naming the step."""
    if resolve_loop(loop) == "host":
        kept, _ = run_shrinking(program, items, (subject,), steps=steps, stop_early=stop_early, buckets=buckets,
                                check=_finite_gradients, progress=progress, desc=desc)
        return kept
    n = len(items[1])
    size = bucket(n) if buckets else n
    pad = jnp.asarray(np.concatenate([np.arange(n), np.zeros(size - n, int)]))
    padded = jax.tree.map(lambda a: jnp.take(a, pad, axis=0), items)
    kept, bad = _compiled_loop(program)(jnp.int32(steps), subject, *padded)
    bad = np.asarray(bad)[:n]
    if (bad >= 0).any():
        _finite_gradients(np.zeros(1, bool), int(bad[bad >= 0].min()))
    return jax.tree.map(lambda a: np.asarray(a)[:n], kept)


def _attack(subject, x, labels, eps, step_size, key, *, norm: str, steps: int, restarts: int, targeted: bool,
            rand_init: bool, loop: str, buckets: bool = False):
    """PGD at every ε of ``eps`` (E,) from ``restarts`` random starts (or none), all (ε, restart, image) rows in
    one batch, keeping per ε and image the best restart of the 8-bit images: a fooling one if any (the highest
    loss among those), else the highest loss. Returns images (E, N, ...) and whether each fools (E, N), NumPy."""
    eps = np.asarray(eps, np.float32).reshape(-1)
    size = np.broadcast_to(np.asarray(step_size, np.float32), eps.shape)
    # without random starts every restart is the same: one, from a zero start (x + 0·ε is x, and the program
    # compiled for random starts serves it)
    starts = (_unit_starts(key, x, restarts=int(restarts), norm=norm) if rand_init
              else to_device(np.zeros((1, *x.shape), np.float32)))       # transferred: nothing to compile
    r_n = starts.shape[0]
    xq, loss, fooled = _run_rows(_RowPGD(norm, bool(targeted)), subject, _rows(x, labels, eps, size, starts),
                                 int(steps), loop=loop, stop_early=False, buckets=buckets)
    e_n, n = len(eps), x.shape[0]
    xq = xq.reshape(e_n, r_n, n, *x.shape[1:])
    loss, fooled = loss.reshape(e_n, r_n, n), fooled.reshape(e_n, r_n, n)
    pick = np.argmax(np.where(fooled, loss + np.float32(1e6), loss), axis=1)            # (E, N)
    images = np.take_along_axis(xq, pick[:, None, :, None, None, None], 1)[:, 0]
    return images, np.take_along_axis(fooled, pick[:, None], 1)[:, 0]
