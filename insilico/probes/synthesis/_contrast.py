"""The optimization under controversial stimuli: Adam on sigmoid-parameterized pixels of one image set per
condition (a class pair, or a direction between two scores), maximizing a soft minimum of two objectives, run
over the conditions × seeds in memory-bounded, resumable chunks."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ... import rng
from ._common import _logits, _quantize, _run


@dataclass(frozen=True)
class _Contrast:
    """Adam on sigmoid-parameterized pixels of P image sets (shape ``shape`` = (n_images, H, W, C)), one per
    condition, maximizing ``objective(models, images, cond) -> (smooth value, (score_a, score_b))``. ``finish``
    rounds the images to 8 bits and scores them again. args: ``(models, lr, conds (P, ...), keys (P,))`` —
    ``models`` is what the objective scores with (two subjects, or two score functions and their scales); the
    learning rate ``lr`` is an argument, so a new one compiles nothing."""
    objective: object
    shape: tuple
    bounds: tuple
    steps: int

    def _images(self, z):
        lo, hi = self.bounds
        return lo + (hi - lo) * jax.nn.sigmoid(z)

    def init(self, models, lr, conds, keys):
        z = jax.vmap(lambda k: 0.5 * rng.normal(k, self.shape))(keys)
        return z, jax.vmap(optax.adam(lr).init)(z), jnp.full(keys.shape[:1], -1, jnp.int32)

    def step(self, state, i, models, lr, conds, keys):
        opt = optax.adam(lr)

        def one(z, s, nan_step, cond):
            (val, _), g = jax.value_and_grad(lambda z: self.objective(models, self._images(z), cond),
                                             has_aux=True)(z)
            nan_step = jnp.where((nan_step < 0) & ~(jnp.isfinite(val) & jnp.all(jnp.isfinite(g))), i, nan_step)
            upd, s_new = opt.update(-jnp.nan_to_num(g), s, z)
            stop = nan_step >= 0
            return (jnp.where(stop, z, optax.apply_updates(z, upd)),
                    jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), s, s_new), nan_step, val)

        z, s, nan_step, val = jax.vmap(one)(*state, conds)
        return (z, s, nan_step), val

    def finish(self, state, models, lr, conds, keys):
        z, _, nan_step = state
        imgs = _quantize(self._images(z), self.bounds)
        _, (sa, sb) = jax.vmap(lambda im, c: self.objective(models, im, c))(imgs, conds)
        return imgs, sa, sb, nan_step


def _softmin(a, b):
    return -jax.nn.logsumexp(-jnp.stack([a, b]))


@dataclass(frozen=True)
class _ClassPair:
    """Objective of :func:`controversial`: soft minimum of log p_A(class_a) and log p_B(class_b); scores are the
    two probabilities. ``models`` = (subject_a, subject_b), ``cond`` = (class_a, class_b)."""

    def __call__(self, models, imgs, cond):
        la = jax.nn.log_softmax(_logits(models[0], imgs))[0, cond[0]]
        lb = jax.nn.log_softmax(_logits(models[1], imgs))[0, cond[1]]
        return _softmin(la, lb), (jnp.exp(la), jnp.exp(lb))


@dataclass(frozen=True)
class _ScorePair:
    """Objective of :func:`controversial_scores`: ``models`` = (score_a, score_b, scales (2,)); ``cond`` = +1
    drives score A up and B down, −1 the reverse; soft minimum of the two scaled, signed scores."""

    def __call__(self, models, imgs, sign):
        score_a, score_b, scale = models
        a, b = score_a(imgs), score_b(imgs)
        return _softmin(sign * a / scale[0], -sign * b / scale[1]), (a, b)


def _finite(what: str):
    """The check of a chunk: its objective stayed finite (else a FloatingPointError naming the step)."""
    def check(result, trace, start):
        nan_step = np.asarray(result[3])
        if nan_step.max() >= 0:
            first = int(np.argmax(nan_step >= 0))
            raise FloatingPointError(f"the {what} objective became NaN/inf at step {int(nan_step[first])} "
                                     f"(condition {start + first})")
    return check


def _contrast(objective, models, conds, shape, bounds, steps, lr, key, loop, progress, what, chunking,
              identity: dict):
    """Run :class:`_Contrast` for every condition (item axis: the conditions with their keys); returns the 8-bit
    images (P, n_images, H, W, C), both scores (P,) and the objective trace (P, steps) as NumPy arrays."""
    conds = jax.tree_util.tree_map(jnp.asarray, conds)
    n = jax.tree_util.tree_leaves(conds)[0].shape[0]
    program = _Contrast(objective, tuple(shape), tuple(bounds), int(steps))
    (img, sa, sb, _), trace = _run(program, (conds, jax.random.split(key, n)), (models, jnp.float32(lr)), chunking,
                                   tag=what, identity={**identity, "key": key, "lr": float(lr)},
                                   check=_finite(what), loop=loop, progress=progress)
    return img, sa, sb, trace.T
