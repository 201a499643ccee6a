"""Controversial stimuli: images that one classifier assigns to class i and another to class j
(:func:`controversial`), or image sets on which any two differentiable scores disagree
(:func:`controversial_scores`, with unit / channel / site scores built by :class:`ResponseScore`)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ...validation import (
    ArgumentError,
    check_count,
    check_finite,
    check_indices,
    check_key,
    check_number,
    check_positive,
)
from ._common import (
    _as_images,
    _check_bounds,
    _check_chunking,
    _check_flag,
    _check_loop,
    _check_site,
    _same_inputs,
    _subject_identity,
)
from ._contrast import _ClassPair, _contrast, _ScorePair

__all__ = ["controversial", "controversial_scores", "ResponseScore"]

def _check_pairs(subject_a, subject_b, class_pairs) -> np.ndarray:
    """(P, 2) int32 class pairs, each class an index of its subject's outputs (default: every ordered pair)."""
    n_a, n_b = subject_a.n_outputs, subject_b.n_outputs
    if class_pairs is None:
        class_pairs = [(i, j) for i in range(n_a) for j in range(n_b) if i != j]
    pairs = check_finite("class_pairs", class_pairs, ndim=(1, 2))
    if pairs.shape[-1] != 2 or (pairs.ndim == 1 and pairs.shape != (2,)):
        raise ArgumentError(f"class_pairs must be (class of subject_a, class of subject_b) pairs, shape (P, 2); got "
                            f"shape {pairs.shape}")
    pairs = pairs.reshape(-1, 2)
    return np.stack([check_indices(f"class_pairs[:, 0] (classes of {subject_a.name})", pairs[:, 0], n_a),
                     check_indices(f"class_pairs[:, 1] (classes of {subject_b.name})", pairs[:, 1], n_b)],
                    1).astype(np.int32)


def controversial(subject_a, subject_b, class_pairs=None, *, n_seeds: int = 1, steps: int = 300, lr: float = 0.05,
                  key, loop: str = "auto", progress: bool = False, store=None, chunk_size: int | None = None,
                  memory_budget: float = 2e9, overwrite: bool = False) -> xr.Dataset:
    """Controversial stimuli (Golan, Raju & Kriegeskorte 2020): for every ordered class pair (i, j) and seed, an
    image that ``subject_a`` assigns to class i and ``subject_b`` to class j. All pairs × seeds are batched
    (vmapped) into each compiled step (Adam on sigmoid-parameterized pixels, objective = soft minimum of
    log p_A(i) and log p_B(j)); the hard ``acceptance`` = min(p_A(i), p_B(j)) is measured on the 8-bit image.
    For any other pair of differentiable scores see :func:`controversial_scores`.

    ``class_pairs``: list of (i, j) (default: every ordered pair of distinct classes). Returns ``images`` (pair,
    seed, y, x, channel), ``p_a``, ``p_b``, ``acceptance`` (pair, seed), ``objective`` (pair, seed, step).

    store, chunk_size, memory_budget, overwrite: the class pairs (each with its seeds) run in chunks of
        ``chunk_size`` pairs × seeds (default: all of them up to 16, else as many as ``memory_budget`` bytes allow,
        at most 256), so memory stays that of one chunk however many there are. With ``store`` (a directory)
        every finished chunk is written there, and a rerun after a kill resumes from the finished chunks; a rerun
        with other settings, pairs, seeds or weights is refused naming what differs (``overwrite=True`` starts
        over). A pair's result does not depend on the chunk it is in, beyond float round-off (XLA may sum in
        another order for another batch size).
    Raises: ``FloatingPointError`` naming the step where the objective became NaN/inf."""
    el.validate(subject_a)
    el.validate(subject_b)
    n_seeds, steps, lr = check_count("n_seeds", n_seeds), check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    chunking = _check_chunking(store, chunk_size, memory_budget, overwrite)
    _same_inputs(subject_a, subject_b)
    pairs = _check_pairs(subject_a, subject_b, class_pairs)
    classes = np.repeat(pairs, n_seeds, axis=0)
    img, pa, pb, trace = _contrast(_ClassPair(), (subject_a, subject_b), classes, (1, *subject_a.input_spec.shape),
                                   subject_a.input_spec.bounds, steps, lr, key, loop, progress, "controversial",
                                   chunking, _subject_identity(subject_a, subject_b))
    shape = (len(pairs), n_seeds)
    pa, pb = pa.reshape(shape), pb.reshape(shape)
    return xr.Dataset({"images": (("pair", "seed", "y", "x", "channel"), img[:, 0].reshape(*shape, *img.shape[2:])),
                       "p_a": (("pair", "seed"), pa), "p_b": (("pair", "seed"), pb),
                       "acceptance": (("pair", "seed"), np.minimum(pa, pb)),
                       "objective": (("pair", "seed", "step"), trace.reshape(*shape, -1))},
                      coords={"class_a": ("pair", pairs[:, 0]), "class_b": ("pair", pairs[:, 1])},
                      attrs={"model_a": subject_a.name, "model_b": subject_b.name, "steps": steps, "lr": lr,
                             "quantized": "8-bit"})


def controversial_scores(score_a, score_b, shape, *, bounds=(0.0, 1.0), n_images: int = 1, n_seeds: int = 1,
                         scale=(1.0, 1.0), steps: int = 300, lr: float = 0.05, key, loop: str = "auto",
                         progress: bool = False, store=None, chunk_size: int | None = None,
                         memory_budget: float = 2e9, overwrite: bool = False) -> xr.Dataset:
    """Controversial stimuli for any two differentiable scores: image sets on which ``score_a`` is high while
    ``score_b`` is low, and the reverse — two units, two sites, two models, or two models' fits to a brain RDM.

    score_a, score_b: functions ``images (n_images, H, W, C) -> scalar``, differentiable in JAX (a score of one
        image uses ``n_images=1``; a score of a stimulus *set*, such as an RDM correlation, takes the whole set).
        :class:`ResponseScore` builds unit, channel and site scores, z-scored against reference images. Pass the
        same function objects again to reuse the compiled program.
    scale: each score is divided by its scale before the two are combined, so they should be on comparable
        scales (z-scores, log-probabilities, correlations).
    store, chunk_size, memory_budget, overwrite: the directions × seeds run in chunks of ``chunk_size`` (default:
        all of them up to 16, else as many as ``memory_budget`` bytes allow, at most 256); with ``store`` (a
        directory) every finished chunk is written there, a rerun after a kill resumes from the finished chunks
        and a rerun with other settings is refused naming what differs (``overwrite=True`` starts over). A store
        knows a :class:`ResponseScore` by its name, weights and standardization, and a plain function by its
        module, name and simple closure values (not by a model it closes over: use a new store for new weights).

    Objective: the soft minimum of s·A/scale_A and −s·B/scale_B (s = +1: "A high, B low"; s = −1: "A low, B
    high"); both directions × ``n_seeds`` are batched into each compiled step (Adam on sigmoid-parameterized
    pixels from noise). ``margin`` = min(s·A/scale_A, −s·B/scale_B) is measured on the 8-bit images: positive
    when both scores moved the required way. Returns ``images`` (direction, seed, image, y, x, channel),
    ``score_a``, ``score_b``, ``margin`` (direction, seed) and ``objective`` (direction, seed, step)."""
    if not (callable(score_a) and callable(score_b)):
        raise TypeError("score_a and score_b must be functions of an image batch returning a scalar")
    dims = check_finite("shape", shape, ndim=1)
    if dims.shape != (3,):
        raise el.InputError(f"shape must be (H, W, C) of one image; got {tuple(dims.tolist())}")
    shape = tuple(check_count(f"shape[{k}]", d) for k, d in enumerate(dims))
    bounds = _check_bounds("bounds", bounds)
    for name, score in (("score_a", score_a), ("score_b", score_b)):      # a model's own input, where it has one
        spec = getattr(getattr(score, "subject", None), "input_spec", None)
        if isinstance(score, ResponseScore) and spec is not None:
            if shape != tuple(spec.shape):
                raise el.InputError(f"shape {shape} is not the input of {name}'s subject {score.subject.name} "
                                    f"({tuple(spec.shape)})")
            if bounds[0] < spec.bounds[0] or bounds[1] > spec.bounds[1]:
                raise el.InputError(f"bounds {tuple(bounds)} leave the pixel range of {name}'s subject "
                                    f"{score.subject.name} ({spec.bounds})")
    n_images, n_seeds = check_count("n_images", n_images), check_count("n_seeds", n_seeds)
    sc = check_finite("scale", scale, ndim=1)
    if sc.shape != (2,):
        raise ArgumentError(f"scale must be two positive numbers (scale of score_a, scale of score_b); got {scale!r}")
    scale = (check_positive("scale[0]", sc[0]), check_positive("scale[1]", sc[1]))
    steps, lr = check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    chunking = _check_chunking(store, chunk_size, memory_budget, overwrite)
    probe = jax.eval_shape(score_a, jax.ShapeDtypeStruct((n_images, *shape), jnp.float32)), jax.eval_shape(
        score_b, jax.ShapeDtypeStruct((n_images, *shape), jnp.float32))
    if any(p.shape != () for p in probe):
        raise el.InputError(f"scores must return a scalar; got shapes {[p.shape for p in probe]}")
    signs = np.repeat(np.asarray([1.0, -1.0], np.float32), n_seeds)
    img, sa, sb, trace = _contrast(_ScorePair(), (score_a, score_b, jnp.asarray(scale, jnp.float32)), signs,
                                   (n_images, *shape), bounds, steps, lr, key, loop, progress,
                                   "controversial_scores", chunking,
                                   {**_score_identity("score_a", score_a), **_score_identity("score_b", score_b)})
    dims = (2, n_seeds)
    za, zb = sa / scale[0], sb / scale[1]
    margin = np.minimum(signs * za, -signs * zb)
    img = img.reshape(*dims, *img.shape[1:])
    return xr.Dataset({"images": (("direction", "seed", "image", "y", "x", "channel"), img),
                       "score_a": (("direction", "seed"), sa.reshape(dims)),
                       "score_b": (("direction", "seed"), sb.reshape(dims)),
                       "margin": (("direction", "seed"), margin.reshape(dims)),
                       "objective": (("direction", "seed", "step"), trace.reshape(*dims, -1))},
                      coords={"direction": ["A high, B low", "A low, B high"]},
                      attrs={"score_a": _name(score_a), "score_b": _name(score_b), "scale_a": scale[0],
                             "scale_b": scale[1], "steps": steps, "lr": lr, "quantized": "8-bit"})



def _name(fn) -> str:
    return getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _score_identity(which: str, score) -> dict:
    """A score as a store names it: its name and the arrays it holds (a :class:`ResponseScore`'s weights and
    standardization; none for a plain function, which the store knows by module, name and closure values)."""
    arrays = tuple(leaf for leaf in jax.tree.leaves(score) if isinstance(leaf, (jax.Array, np.ndarray)))
    return {which: _name(score), f"{which} arrays": arrays}


@dataclass(frozen=True, eq=False)
class ResponseScore:
    """A differentiable score for :func:`controversial_scores`: the mean response of ``unit`` at ``site`` over the
    images of a set, z-scored with ``mean`` / ``std``. ``unit``: an index into the site's flattened units, a
    channel (``channel=True``: averaged over space), or None (the mean over every unit of the site).
    Build it with :meth:`standardized` to take mean and std from reference images (natural images, say).
    A pytree: the subject's weights, ``mean`` and ``std`` are its leaves, so compiled programs take it as an
    argument (a new standardization or new weights never retrace)."""
    subject: Any
    site: str
    unit: int | None = None
    channel: bool = False
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        el.validate(self.subject)
        _check_site(self.subject, self.site, "ResponseScore")
        channel = _check_flag("channel", self.channel)
        shape = self.subject.sites[self.site]
        n = shape[-1] if channel else int(np.prod(shape))
        if self.unit is not None:
            what = "channels" if channel else "units"
            check_number(f"unit (an index into the {n} {what} of {self.site}, or None)", self.unit, low=0,
                         high=n - 1, integer=True)
        check_number("mean", self.mean)
        check_positive("std", self.std)
        object.__setattr__(self, "mean", jnp.asarray(self.mean, jnp.float32))
        object.__setattr__(self, "std", jnp.asarray(self.std, jnp.float32))

    @property
    def name(self) -> str:
        what = "all units" if self.unit is None else f"{'channel' if self.channel else 'unit'} {self.unit}"
        return f"{self.subject.name}/{self.site} {what}"

    def raw(self, images):
        """Per-image responses (before z-scoring)."""
        _, rec = el.forward(self.subject, images, record=(self.site,))
        r = rec[self.site]
        if self.channel:
            r = r.reshape(r.shape[0], -1, r.shape[-1]).mean(1)
        else:
            r = r.reshape(r.shape[0], -1)
        return r.mean(1) if self.unit is None else r[:, self.unit]

    def __call__(self, images):
        return (self.raw(images).mean() - self.mean) / self.std

    def standardized(self, reference) -> ResponseScore:
        """The same score z-scored against the responses to ``reference`` images."""
        reference = _as_images(self.subject, reference, "reference images")
        r = np.asarray(_raw_responses(self, reference))
        if not np.isfinite(r).all() or r.std() <= 1e-8 * max(1.0, abs(float(r.mean()))):
            raise el.InputError(f"{self.name} responds with a constant {float(r.mean()):.4g} to all "
                                f"{len(r)} reference images (a dead unit?); it cannot be z-scored")
        return replace(self, mean=float(r.mean()), std=float(r.std()))


def _score_flatten(score: ResponseScore):
    return (score.subject, score.mean, score.std), (score.site, score.unit, score.channel)


def _score_unflatten(aux, children):
    score = object.__new__(ResponseScore)
    for name, value in zip(("subject", "mean", "std", "site", "unit", "channel"), (*children, *aux)):
        object.__setattr__(score, name, value)
    return score


jax.tree_util.register_pytree_node(ResponseScore, _score_flatten, _score_unflatten)


@jax.jit
def _raw_responses(score, images):
    return score.raw(images)
