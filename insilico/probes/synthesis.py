"""Stimulus synthesis: adversarial examples (FGSM, PGD in L∞ and L2 with restarts and ε sweeps, DeepFool),
metamers, controversial stimuli (between two classifiers, or any two differentiable scores), MAD competition and
eigendistortions.

Every method is an iterative program (see :mod:`._loop`) whose batch — images, ε values, restarts, targets ×
seeds, class pairs — is vmapped into each compiled step; ``loop="scan"`` compiles the whole loop, ``"host"``
drives one compiled step from Python (faster on CPU, and stops early once every sample has converged), ``"auto"``
picks host on CPU and scan elsewhere. Images stay inside the subject's declared pixel bounds, and every image a
function returns is an 8-bit quantized image (what an experiment would show), with every number reported about it
— success, predictions, distances, representation errors, convergence, scores — measured on that 8-bit image,
not on the float image the optimizer produced: attacks (:func:`fgsm`, :func:`pgd`, :func:`accuracy_vs_eps`,
:func:`deepfool`, which also returns its float images as ``images_float``), :func:`metamers`,
:func:`controversial`, :func:`controversial_scores` and :func:`mad_competition`. :func:`eigendistortions`
returns directions (unit vectors in pixel space, the Fisher matrix's eigenvectors at the given image), not images,
and is not quantized.

Every argument is checked before anything is compiled; a bad one raises
:class:`~insilico.validation.ArgumentError` (a bad image batch :class:`~insilico.validation.InputError`) naming
it, its value and what is valid.

Example::

    from insilico.probes import synthesis as syn
    adv = syn.pgd(subject, x, y, eps=8 / 255, key=jax.random.PRNGKey(0))     # Dataset: images, success, ...
    curve = syn.accuracy_vs_eps(subject, x, y, [0, 1/255, 2/255, 4/255, 8/255], key=key)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import electrode as el
from ..validation import (ArgumentError, check_choice, check_count, check_finite, check_indices, check_key,
                          check_labels, check_number, check_positive)
from ._loop import LOOPS, drive, resolve_loop

__all__ = ["quantize", "check_images", "fgsm", "pgd", "accuracy_vs_eps", "deepfool", "eigendistortions", "metamers",
           "METAMER_LOSSES", "controversial", "controversial_scores", "ResponseScore", "mad_competition"]


def _quantize(x, bounds, levels: int = 256):
    lo, hi = bounds
    return lo + jnp.round((jnp.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1)) / (levels - 1) * (hi - lo)


def quantize(x, bounds=(0.0, 1.0), levels: int = 256):
    """Round pixels to ``levels`` steps inside ``bounds`` (8-bit by default), as a display would; values outside
    the bounds are clipped first. ``x`` must be finite, ``bounds`` two finite numbers lo < hi, ``levels`` ≥ 2."""
    levels = check_count("levels", levels, minimum=2)
    bounds = _check_bounds("bounds", bounds)
    check_finite("x", x, allow_empty=True)
    return _quantize(x, bounds, levels)


def _check_bounds(name: str, bounds) -> tuple:
    """Two finite numbers lo < hi."""
    b = check_finite(name, bounds, ndim=1)
    if b.shape != (2,) or not b[0] < b[1]:
        raise ArgumentError(f"{name} must be two numbers (lo, hi) with lo < hi; got {bounds!r}")
    return float(b[0]), float(b[1])


def _check_flag(name: str, value) -> bool:
    return bool(check_choice(name, value, (False, True)))


def _check_loop(loop) -> str:
    return check_choice("loop", loop, LOOPS)


def _check_site(subject, site, purpose: str):
    if not isinstance(site, str):
        raise ArgumentError(f"site must be a site name (a string) of {getattr(subject, 'name', 'the subject')}; "
                            f"got {site!r}")
    el.validate(subject, sites=(site,), purpose=purpose)


def _as_images(subject, x, what: str = "images"):
    """``x`` as a float32 batch, checked (subject, shape, dtype, finite, non-empty, inside the pixel bounds)."""
    el.validate(subject)
    x = jnp.asarray(x, jnp.float32) if not hasattr(x, "dtype") else x
    check_images(subject, x, what)
    return jnp.asarray(x, jnp.float32)


def check_images(subject, x, what: str = "images"):
    """Shape/dtype/NaN checks of the electrode plus the subject's pixel bounds (named, with the offending value)."""
    el.validate(subject, x, in_bounds=True, name=what)


def _logits(subject, x):
    return el.forward(subject, x)[0]


def _loss(subject, x, labels, targeted: bool):
    """Per-image cross-entropy; an attack ascends it (untargeted) or descends it towards ``labels`` (targeted)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(_logits(subject, x), labels)
    return -ce if targeted else ce


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


@dataclass(frozen=True)
class _PGD:
    """PGD for one batch at E values of ε × R random restarts (a :mod:`._loop` program).

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


def _round_in_ball(xa, x, eps, norm: str, bounds):
    """8-bit rounding of attacked images; in L∞, a pixel that rounding pushed out of the ε ball steps back one
    level (``eps`` broadcasts against the images)."""
    lo, hi = bounds
    xq = _quantize(xa, (lo, hi))
    if norm == "linf":
        level = (hi - lo) / 255.0
        xq = jnp.where(xq - x > eps + 1e-6, xq - level, jnp.where(x - xq > eps + 1e-6, xq + level, xq))
    return xq


@lru_cache(maxsize=32)
def _pair_fns(norm: str):
    """Jitted per-(ε, image) PGD pieces for the early-stopping sweep; every argument after the subject carries one
    row per pair. ``step(subject, xa, x, labels, eps, size) -> (new iterate, finite gradient)``,
    ``judge(subject, xa, x, labels, eps) -> (8-bit image, misclassified)``, and the random start ``init`` of
    :class:`_PGD`."""
    col = lambda v: v[:, None, None, None]  # noqa: E731

    def judge(subject, xa, x, labels, eps):
        xq = _round_in_ball(xa, x, col(eps), norm, subject.input_spec.bounds)
        return xq, _logits(subject, xq).argmax(-1) != labels

    def step(subject, xa, x, labels, eps, size):
        g = jax.grad(lambda xa: _loss(subject, xa, labels, False).sum())(xa)
        finite = jnp.all(jnp.isfinite(g), axis=(1, 2, 3))
        new = jnp.clip(x + _project(xa + _step_direction(jnp.nan_to_num(g), norm) * col(size) - x, col(eps), norm),
                       *subject.input_spec.bounds)
        return new, finite

    return jax.jit(step), jax.jit(judge), jax.jit(_PGD(norm, 1, 1, False, True).init)


def _bucket(n: int) -> int:
    """Batch size for ``n`` active pairs: the next of 8, 12, 16, 24, 32, 48, ... (at most 1/3 padding)."""
    b = 8
    while b < n:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3
    return b


def _padded(idx: np.ndarray) -> np.ndarray:
    return np.concatenate([idx, np.repeat(idx[:1], _bucket(len(idx)) - len(idx))])


def _sweep_early_stop(subject, x, labels, eps_values, size, key, *, norm: str, steps: int, progress: bool):
    """PGD for every (ε, image) pair with early stopping: every iterate (the start included) is rounded to 8 bits
    and classified inside the compiled step, and a pair leaves the batch as soon as that image is misclassified;
    the remaining pairs are compacted into a batch padded to a bucket size (one compiled step per size).
    Trajectories are those of :func:`pgd` until a pair stops, so the accuracy is at most PGD's last-iterate
    accuracy. Returns the 8-bit images (E, N, ...) and whether each is misclassified (E, N)."""
    from tqdm.auto import tqdm

    step, judge, init = _pair_fns(norm)
    e_n, n = len(eps_values), x.shape[0]
    xa0 = init(subject, x, labels, jnp.asarray(eps_values), jnp.asarray(size), key)[0][:, 0].reshape(
        e_n * n, *x.shape[1:])
    pair_eps, pair_size = np.repeat(eps_values, n), np.repeat(np.asarray(size, np.float32), n)
    pair_img = np.tile(np.arange(n), e_n)
    out = np.asarray(jnp.broadcast_to(x[None], (e_n, *x.shape))).reshape(e_n * n, *x.shape[1:]).copy()
    broken = np.tile(np.asarray(_predict(subject, x)) != np.asarray(labels), e_n)   # ε = 0: the clean image
    ids = np.flatnonzero(pair_eps > 0)
    if not len(ids):
        return jnp.asarray(out.reshape(e_n, n, *x.shape[1:])), broken.reshape(e_n, n)
    lab = np.asarray(labels)
    sel = _padded(ids)                   # the active batch (padded): iterate; clean image, label, ε, step size
    xa = jnp.take(xa0, jnp.asarray(sel), axis=0)
    batch = [x[pair_img[sel]], jnp.asarray(lab[pair_img[sel]]), jnp.asarray(pair_eps[sel]),
             jnp.asarray(pair_size[sel])]
    xq, fooled = judge(subject, xa, *batch[:3])            # the random start
    with tqdm(total=steps, desc="accuracy_vs_eps", disable=not progress, unit="step") as bar:
        for i in range(steps + 1):
            fooled = np.asarray(fooled)[:len(ids)]
            stop = fooled if i < steps else np.ones(len(ids), bool)
            if stop.any():
                out[ids[stop]] = np.asarray(xq)[:len(ids)][stop]
                broken[ids[stop]] = fooled[stop]
                keep = np.flatnonzero(~stop)
                ids = ids[keep]
                if not len(ids):
                    break
                sel = jnp.asarray(_padded(keep))
                xa, batch = jnp.take(xa, sel, axis=0), [jnp.take(b, sel, axis=0) for b in batch]
            xa, finite = step(subject, xa, *batch)
            xq, fooled = judge(subject, xa, *batch[:3])     # a separate call: fused into the step it runs 2x slower
            if not bool(jnp.all(finite)):
                raise FloatingPointError(f"the loss gradient became NaN/inf at step {i} of the attack")
            bar.update()
    return jnp.asarray(out.reshape(e_n, n, *x.shape[1:])), broken.reshape(e_n, n)


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


def _fooled(subject, x, labels, targeted: bool):
    pred = _logits(subject, x).argmax(-1)
    return pred == labels if targeted else pred != labels


def _prepare(subject, x, labels):
    """The checked images (float32, in bounds) and labels (one class index per image, int32)."""
    x = _as_images(subject, x)
    return x, jnp.asarray(check_labels("labels", labels, subject.n_outputs, x.shape[0]))


def _check_eps_list(eps_values) -> np.ndarray:
    if not hasattr(eps_values, "shape") and not isinstance(eps_values, (str, bytes)):
        try:
            eps_values = list(eps_values)
        except TypeError:
            pass
    eps = check_finite("eps_values", eps_values, ndim=1)
    if eps.min() < 0:
        raise ArgumentError(f"eps_values must be radii ≥ 0; got {eps[eps < 0].tolist()[:6]}")
    return eps.astype(np.float32)


def _result(subject, x, adv, labels, targeted, eps, attack: str, norm: str, extra=None) -> xr.Dataset:
    clean = np.asarray(_predict(subject, x))
    pred = np.asarray(_predict(subject, adv))
    labels = np.asarray(labels)
    success = pred == labels if targeted else pred != labels
    diff = np.asarray(adv - x).reshape(len(labels), -1)
    ds = xr.Dataset({"images": (("image", "y", "x", "channel"), np.asarray(adv)),
                     "prediction": ("image", pred), "clean_prediction": ("image", clean),
                     "success": ("image", success),
                     "linf": ("image", np.abs(diff).max(1)), "l2": ("image", np.sqrt((diff ** 2).sum(1)))},
                    attrs={"subject": subject.name, "attack": attack, "norm": norm, "eps": float(eps),
                           "targeted": int(targeted), "accuracy": float(np.mean(pred == labels)) if not targeted
                           else float("nan"), "clean_accuracy": float(np.mean(clean == labels)),
                           "quantized": "8-bit", **(extra or {})})
    return ds


@jax.jit
def _predict(subject, x):
    return _logits(subject, x).argmax(-1)


def fgsm(subject, x, labels, eps: float, *, targeted: bool = False, loop: str = "auto") -> xr.Dataset:
    """Fast gradient sign method (Goodfellow et al. 2015): one L∞ step of size ``eps`` on the cross-entropy
    (away from ``labels``, or towards them when ``targeted``), clipped to the bounds and 8-bit quantized.
    Returns a Dataset with the adversarial ``images``, ``prediction``, ``success`` and L∞/L2 distances; the
    attribute ``accuracy`` is the accuracy on the attacked images (untargeted)."""
    eps = check_number("eps", eps, low=0)
    targeted, loop = _check_flag("targeted", targeted), _check_loop(loop)
    x, labels = _prepare(subject, x, labels)
    adv = _attack(subject, x, labels, eps, eps, None, norm="linf", steps=1, restarts=1, targeted=targeted,
                  rand_init=False, loop=loop)[0]
    return _result(subject, x, adv, labels, targeted, eps, "fgsm", "linf")


def pgd(subject, x, labels, eps: float, *, norm: str = "linf", steps: int = 40, step_size: float | None = None,
        restarts: int = 1, random_start: bool = True, targeted: bool = False, key=None,
        loop: str = "auto") -> xr.Dataset:
    """Projected gradient descent (Madry et al. 2018) in an L∞ or L2 ball of radius ``eps``, with ``restarts``
    random starts (vmapped) keeping the best per image; ``step_size`` defaults to 2.5·eps/steps. Success is
    judged after 8-bit quantization. Same outputs as :func:`fgsm`. ``loop``: "scan" (one compiled loop),
    "host" (a compiled step per iteration; faster on CPU) or "auto" (host on CPU).
    Raises: ``FloatingPointError`` naming the step where a gradient became NaN/inf."""
    eps = check_number("eps", eps, low=0)
    norm = check_choice("norm", norm, ("linf", "l2"))
    steps, restarts = check_count("steps", steps), check_count("restarts", restarts)
    step_size = 2.5 * eps / steps if step_size is None else check_positive("step_size", step_size)
    random_start, targeted = _check_flag("random_start", random_start), _check_flag("targeted", targeted)
    loop = _check_loop(loop)
    if random_start or restarts > 1 or key is not None:
        check_key("key", key)                                    # random starts draw from it
    x, labels = _prepare(subject, x, labels)
    adv = _attack(subject, x, labels, eps, step_size, key, norm=norm, steps=steps, restarts=restarts,
                  targeted=targeted, rand_init=random_start, loop=loop)[0]
    return _result(subject, x, adv, labels, targeted, eps, "pgd", norm,
                   {"steps": steps, "restarts": restarts, "step_size": float(step_size)})


@jax.jit
def _sweep_stats(subject, x, labels, adv):
    """``adv (E, N, ...) -> (accuracy, mean L∞, mean L2)`` per ε."""
    def one(adv):
        d = (adv - x).reshape(x.shape[0], -1)
        return (jnp.mean(_logits(subject, adv).argmax(-1) == labels), jnp.abs(d).max(1).mean(),
                jnp.sqrt((d ** 2).sum(1)).mean())
    return jax.vmap(one)(adv)


def accuracy_vs_eps(subject, x, labels, eps_values: Sequence[float], *, attack: str = "pgd", norm: str = "linf",
                    steps: int = 40, restarts: int = 1, early_stop: bool = True, key=None, loop: str = "auto",
                    progress: bool = False) -> xr.Dataset:
    """Accuracy on attacked (8-bit quantized) images for each ε, every ε batched into each compiled step.

    early_stop: an (ε, image) pair counts as broken, and leaves the batch, as soon as a PGD iterate rounded to 8
        bits is misclassified; the rest continue in a smaller batch. The attack is then at least as strong as
        last-iterate PGD (the same trajectories until a pair stops) and the sweep costs a fraction of E separate
        attacks, since large ε break most images in a few steps. Used with ``loop`` "host" (the default on CPU)
        and one restart; otherwise (or with ``early_stop=False``) every pair runs all ``steps`` and is judged on
        its last iterate, like :func:`pgd`.

    Returns a Dataset over ``eps`` with ``accuracy`` and the mean L∞ / L2 size of the perturbations."""
    eps_values = _check_eps_list(eps_values)
    attack = check_choice("attack", attack, ("pgd", "fgsm"))
    norm = check_choice("norm", norm, ("linf", "l2"))
    steps, restarts = check_count("steps", steps), check_count("restarts", restarts)
    early_stop, progress = _check_flag("early_stop", early_stop), _check_flag("progress", progress)
    loop = _check_loop(loop)
    if attack == "pgd" or key is not None:
        check_key("key", key)                                    # PGD's random starts draw from it
    x, labels = _prepare(subject, x, labels)
    if attack == "fgsm":
        steps, restarts = 1, 1
    size = eps_values if attack == "fgsm" else 2.5 * eps_values / steps
    early = early_stop and attack == "pgd" and restarts == 1 and resolve_loop(loop) == "host"
    if early:
        adv, broken = _sweep_early_stop(subject, x, labels, eps_values, size, key, norm=norm, steps=int(steps),
                                        progress=progress)
        d = np.asarray(adv - x[None]).reshape(len(eps_values), x.shape[0], -1)
        acc, linf, l2 = 1 - broken.mean(1), np.abs(d).max(2).mean(1), np.sqrt((d ** 2).sum(2)).mean(1)
    else:
        adv = _attack(subject, x, labels, eps_values, size, key, norm=norm, steps=steps, restarts=restarts,
                      targeted=False, rand_init=attack != "fgsm", loop=loop)
        acc, linf, l2 = _sweep_stats(subject, x, labels, adv)
    return xr.Dataset({"accuracy": ("eps", np.asarray(acc)), "linf": ("eps", np.asarray(linf)),
                       "l2": ("eps", np.asarray(l2))}, coords={"eps": eps_values},
                      attrs={"subject": subject.name, "attack": attack, "norm": norm, "steps": steps,
                             "restarts": restarts, "n_images": int(x.shape[0]), "quantized": "8-bit",
                             "early_stop": int(early)})


# ------------------------------------------------------------------------------------------ eigendistortions

@dataclass(frozen=True)
class _Power:
    """Power iteration on the Fisher matrix JᵀJ of ``site`` (J = d site / d image), one image per vmapped lane,
    with matrix-free products JᵀJ v = vjp(jvp(v)). ``mode="min"`` iterates λ·I − JᵀJ (args carry λ = λ_max per
    image), whose top eigenvector is JᵀJ's least. args: ``(subject, x (N, ...), v0 (N, ...), lam (N,))``."""
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


# ----------------------------------------------------------------------------------------------------- metamers

def _sse(r, g):
    return jnp.sum((r - g) ** 2)


METAMER_LOSSES = {
    # pooled relative squared error Σ_s ‖f_s(x) − f_s(t)‖² / Σ_s ‖f_s(t)‖²
    "relative": lambda reps, goals: sum(_sse(r, g) for r, g in zip(reps, goals)) / jnp.maximum(
        sum(jnp.sum(g ** 2) for g in goals), 1e-12),
    # each site's relative squared error, averaged over sites (sites of different magnitude count equally)
    "relative_per_site": lambda reps, goals: sum(_sse(r, g) / jnp.maximum(jnp.sum(g ** 2), 1e-12)
                                                 for r, g in zip(reps, goals)) / len(goals),
    # mean squared error over all units (plenoptic's default)
    "mse": lambda reps, goals: sum(_sse(r, g) for r, g in zip(reps, goals)) / sum(g.size for g in goals),
    # mean absolute error over all units
    "l1": lambda reps, goals: sum(jnp.sum(jnp.abs(r - g)) for r, g in zip(reps, goals)) / sum(
        g.size for g in goals),
    # 1 − cosine similarity per site, averaged (matches the pattern, ignores its gain)
    "cosine": lambda reps, goals: sum(1 - jnp.vdot(r, g) / jnp.maximum(jnp.linalg.norm(r) * jnp.linalg.norm(g),
                                                                        1e-12) for r, g in zip(reps, goals)) / len(
        goals),
}


def _coarse(g, factor: int):
    """The gradient averaged over ``factor``×``factor`` blocks (an update with no finer structure)."""
    if factor == 1:
        return g
    h, w, c = g.shape
    return jnp.repeat(jnp.repeat(g.reshape(h // factor, factor, w // factor, factor, c).mean((1, 3)), factor, 0),
                      factor, 1)


@dataclass(frozen=True)
class _Metamer:
    """Adam on the pixels of (target × seed) images, projected onto the bounds, minimizing ``loss`` between the
    representations at ``sites`` and the target's; each sample stops once the pooled relative error of its 8-bit
    image is at most ``tol``. That error costs a forward pass of the rounded images, run only at steps where some
    running sample's float iterate is within ``tol`` (rounding rarely lowers the error). ``coarse_to_fine``:
    "sites" — the k-th site joins the loss at step k·steps/len(sites); "scales" — the update is block-averaged
    over ``scales[k]`` pixels during the k-th of len(scales) equal stages.
    args: ``(subject, targets (T, ...), start (T, S, ...))``. ``finish`` returns the 8-bit images, their errors,
    the convergence step (``steps`` for a sample whose last image meets ``tol``; −1: none) and the NaN step."""
    sites: tuple
    steps: int
    lr: float
    tol: float
    coarse_to_fine: str | None
    loss: object
    scales: tuple

    def _reps(self, subject, img):
        _, rec = el.forward(subject, img[None], record=self.sites)
        return [rec[s][0] for s in self.sites]

    def _starts(self):
        n = len(self.sites)
        return [k * self.steps // n if self.coarse_to_fine == "sites" else 0 for k in range(n)]

    def _loss_fn(self):
        return METAMER_LOSSES[self.loss] if isinstance(self.loss, str) else self.loss

    def rel_error(self, subject, img, goal):
        return METAMER_LOSSES["relative"](self._reps(subject, img), goal)

    def errors_8bit(self, subject, x, goal):
        """Pooled relative errors of the 8-bit images of ``x`` (T, S, ...): (T, S)."""
        xq = _quantize(x, subject.input_spec.bounds)
        return jax.vmap(lambda xs, g: jax.vmap(lambda im: self.rel_error(subject, im, g))(xs))(xq, goal)

    def init(self, subject, targets, start):
        goal = jax.vmap(lambda t: self._reps(subject, t))(targets)
        opt = jax.vmap(jax.vmap(optax.adam(self.lr).init))(start)
        minus = jnp.full(start.shape[:2], -1, jnp.int32)
        return start, opt, minus, minus, goal

    def step(self, state, i, subject, targets, start):
        x, s, done_at, nan_step, goal = state
        loss_fn, starts, opt = self._loss_fn(), self._starts(), optax.adam(self.lr)

        def objective(img, goal):
            on = [(i >= st).astype(jnp.float32) for st in starts]
            reps = [r * w for r, w in zip(self._reps(subject, img), on)]
            goals = [g * w for g, w in zip(goal, on)]
            return loss_fn(reps, goals), jax.lax.stop_gradient(METAMER_LOSSES["relative"](reps, goals))

        def gradient(x, goal):
            (_, err), g = jax.value_and_grad(objective, has_aux=True)(x, goal)
            if self.coarse_to_fine == "scales":
                stage = jnp.minimum(i * len(self.scales) // self.steps, len(self.scales) - 1)
                g = jnp.select([stage == k for k in range(len(self.scales))], [_coarse(g, f) for f in self.scales])
            return g, err, ~(jnp.isfinite(err) & jnp.all(jnp.isfinite(g)))

        g, err, bad = jax.vmap(jax.vmap(gradient, in_axes=(0, None)))(x, goal)
        nan_step = jnp.where((nan_step < 0) & bad, i, nan_step)
        # converged: the 8-bit image of the current iterate meets the tolerance (checked where the float one does)
        candidate = (done_at < 0) & (nan_step < 0) & (err <= self.tol) & (i >= starts[-1])
        err_8bit = jax.lax.cond(jnp.any(candidate), lambda: self.errors_8bit(subject, x, goal),
                                lambda: jnp.full(err.shape, jnp.inf, err.dtype))
        done_at = jnp.where(candidate & (err_8bit <= self.tol), i, done_at)
        stop = (done_at >= 0) | (nan_step >= 0)

        def update(x, s, g, stop):
            upd, s_new = opt.update(jnp.nan_to_num(g), s, x)
            x_new = jnp.clip(optax.apply_updates(x, upd), *subject.input_spec.bounds)
            return jnp.where(stop, x, x_new), jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), s, s_new)

        x, s = jax.vmap(jax.vmap(update))(x, s, g, stop)
        return (x, s, done_at, nan_step, goal), err

    def done(self, state):
        return jnp.all((state[2] >= 0) | (state[3] >= 0))

    def finish(self, state, subject, targets, start):
        x, _, done_at, nan_step, goal = state
        err = self.errors_8bit(subject, x, goal)
        done_at = jnp.where((done_at < 0) & (nan_step < 0) & (err <= self.tol), self.steps, done_at)
        return _quantize(x, subject.input_spec.bounds), err, done_at, nan_step


def metamers(subject, sites: Sequence[str] | str, targets, *, n_seeds: int = 1, steps: int = 1000,
             lr: float = 0.01, tol: float = 1e-3, loss="relative", start=None, coarse_to_fine=None,
             scales: Sequence[int] = (4, 2, 1), key=None, loop: str = "auto", progress: bool = False) -> xr.Dataset:
    """Images whose representation at ``sites`` matches each target's, from different starts (Freeman &
    Simoncelli 2011; Feather et al. 2019): Adam on the pixels, projected onto the bounds; each sample stops once
    the relative squared error Σ‖f(x) − f(t)‖² / Σ‖f(t)‖² over ``sites`` of its 8-bit image is at most ``tol``
    (the host loop stops when every sample has). Targets × seeds are vmapped in one call.

    loss: what the optimizer minimizes — "relative" (the pooled relative squared error above), "relative_per_site"
        (each site's relative error, averaged: sites of different magnitude count equally), "mse" (mean squared
        error over all units), "l1" (mean absolute error), "cosine" (1 − cosine similarity per site, averaged:
        ignores gain), or a function ``(reps, goals) -> scalar`` of two lists of arrays (one per site). The
        convergence test and the reported ``rel_error`` are always the pooled relative squared error.
    tol: the tolerance on that error (≥ 0; 0 runs every step).
    start: start images (n_targets, n_seeds, H, W, C); default uniform white noise from ``key``.
    coarse_to_fine: None; "sites" (or True) — the sites join the loss one after another in the given order (list
        the deepest first), evenly over the steps; "scales" — updates are block-averaged over ``scales[k]``
        pixels during the k-th of ``len(scales)`` equal stages (coarse structure first).

    Returns the 8-bit ``images`` (target, seed, y, x, channel) and, measured on them, ``rel_error`` and
    ``converged_at`` (the step whose image met ``tol`` and was kept; ``steps`` when only the last image does;
    −1 if none: ``converged_at ≥ 0`` exactly when ``rel_error ≤ tol``), pixel distances to the target
    (``pixel_rmse``) and to the start; ``error_trace`` (target, seed, step) is the error of the float iterate at
    each step (over the sites active at that step). Raises ``FloatingPointError`` naming the step where the loss
    became NaN/inf."""
    el.validate(subject)
    try:
        names = (sites,) if isinstance(sites, str) else tuple(sites)
    except TypeError:
        names = ()
    if not names or not all(isinstance(name, str) for name in names):
        raise ArgumentError(f"sites must be a site name or a non-empty sequence of site names; got {sites!r}")
    sites = names
    el.validate(subject, sites=sites, purpose="metamers")
    n_seeds, steps = check_count("n_seeds", n_seeds), check_count("steps", steps)
    lr, tol = check_positive("lr", lr), check_number("tol", tol, low=0)
    if not callable(loss):
        try:
            check_choice("loss", loss, sorted(METAMER_LOSSES))
        except ArgumentError as e:
            raise ArgumentError(f"{e} (or a function (reps, goals) -> scalar)") from None
    coarse_to_fine = check_choice("coarse_to_fine", coarse_to_fine, (None, False, True, "sites", "scales"))
    coarse_to_fine = {None: None, False: None, True: "sites"}.get(coarse_to_fine, coarse_to_fine)
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not len(scales):
        raise ArgumentError(f"scales must be a non-empty sequence of block sizes (integers ≥ 1); got {scales!r}")
    scales = tuple(check_count(f"scales[{k}]", f) for k, f in enumerate(scales))
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    if start is None or key is not None:
        check_key("key", key)                                         # noise starts draw from it
    t = _as_images(subject, targets, "targets")
    n, shape = t.shape[0], tuple(t.shape[1:])
    if coarse_to_fine == "scales" and any(shape[0] % f or shape[1] % f for f in scales):
        raise ArgumentError(f"every scale must divide the image size {shape[:2]}; got scales {scales}")
    lo, hi = subject.input_spec.bounds
    if start is None:
        start = jax.random.uniform(key, (n, n_seeds, *shape), minval=lo, maxval=hi)
    start = jnp.asarray(start, jnp.float32)
    if start.shape != (n, n_seeds, *shape):
        raise el.InputError(f"start must have shape {(n, n_seeds, *shape)} (target, seed, H, W, C); got "
                            f"{tuple(start.shape)}")
    check_images(subject, start.reshape(-1, *shape), "start images")
    program = _Metamer(sites, steps, float(lr), float(tol), coarse_to_fine, loss, scales)
    (x, err, done_at, nan_step), trace = drive(program, subject, t, start, loop=loop, progress=progress,
                                               desc="metamers")
    if int(jnp.max(nan_step)) >= 0:
        raise FloatingPointError(f"the metamer loss became NaN/inf at step {int(jnp.max(nan_step))}")
    x, tn_ = np.asarray(x), np.asarray(t)
    rmse = np.sqrt(((x - tn_[:, None]) ** 2).mean(axis=(2, 3, 4)))
    from_start = np.sqrt(((x - np.asarray(start)) ** 2).mean(axis=(2, 3, 4)))
    return xr.Dataset({"images": (("target", "seed", "y", "x", "channel"), x),
                       "rel_error": (("target", "seed"), np.asarray(err)),
                       "converged_at": (("target", "seed"), np.asarray(done_at)),
                       "error_trace": (("target", "seed", "step"), np.moveaxis(np.asarray(trace), 0, -1)),
                       "pixel_rmse": (("target", "seed"), rmse), "rmse_from_start": (("target", "seed"), from_start)},
                      attrs={"subject": subject.name, "sites": ", ".join(sites), "steps": steps, "lr": lr, "tol": tol,
                             "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "custom"),
                             "coarse_to_fine": coarse_to_fine or "none", "quantized": "8-bit"})


# ---------------------------------------------------------------------------------------- controversial stimuli

def _same_inputs(a, b):
    if tuple(a.input_spec.shape) != tuple(b.input_spec.shape) or tuple(a.input_spec.bounds) != tuple(
            b.input_spec.bounds):
        raise el.InputError(f"{a.name} takes {a.input_spec.shape} in {a.input_spec.bounds} but {b.name} takes "
                            f"{b.input_spec.shape} in {b.input_spec.bounds}; controversial stimuli need one input "
                            "space")


@dataclass(frozen=True)
class _Contrast:
    """Adam on sigmoid-parameterized pixels of P image sets (shape ``shape`` = (n_images, H, W, C)), one per
    condition, maximizing ``objective(models, images, cond) -> (smooth value, (score_a, score_b))``. ``finish``
    rounds the images to 8 bits and scores them again. args: ``(models, conds (P, ...), keys (P,))`` — ``models``
    is what the objective scores with (two subjects, or two score functions and their scales)."""
    objective: object
    shape: tuple
    bounds: tuple
    steps: int
    lr: float

    def _images(self, z):
        lo, hi = self.bounds
        return lo + (hi - lo) * jax.nn.sigmoid(z)

    def init(self, models, conds, keys):
        z = jax.vmap(lambda k: 0.5 * jax.random.normal(k, self.shape))(keys)
        return z, jax.vmap(optax.adam(self.lr).init)(z), jnp.full(keys.shape[:1], -1, jnp.int32)

    def step(self, state, i, models, conds, keys):
        opt = optax.adam(self.lr)

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

    def finish(self, state, models, conds, keys):
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


def _contrast(objective, models, conds, shape, bounds, steps, lr, key, loop, progress, what):
    conds = jax.tree_util.tree_map(jnp.asarray, conds)
    n = jax.tree_util.tree_leaves(conds)[0].shape[0]
    program = _Contrast(objective, tuple(shape), tuple(bounds), int(steps), float(lr))
    (img, sa, sb, nan_step), trace = drive(program, models, conds, jax.random.split(key, n), loop=loop,
                                           progress=progress, desc=what)
    if int(jnp.max(nan_step)) >= 0:
        raise FloatingPointError(f"the {what} objective became NaN/inf at step {int(jnp.max(nan_step))}")
    return np.asarray(img), np.asarray(sa), np.asarray(sb), np.asarray(trace).T


def controversial(subject_a, subject_b, class_pairs=None, *, n_seeds: int = 1, steps: int = 300, lr: float = 0.05,
                  key, loop: str = "auto", progress: bool = False) -> xr.Dataset:
    """Controversial stimuli (Golan, Raju & Kriegeskorte 2020): for every ordered class pair (i, j) and seed, an
    image that ``subject_a`` assigns to class i and ``subject_b`` to class j. All pairs × seeds are batched
    (vmapped) into each compiled step (Adam on sigmoid-parameterized pixels, objective = soft minimum of
    log p_A(i) and log p_B(j)); the hard ``acceptance`` = min(p_A(i), p_B(j)) is measured on the 8-bit image.
    For any other pair of differentiable scores see :func:`controversial_scores`.

    ``class_pairs``: list of (i, j) (default: every ordered pair of distinct classes). Returns ``images`` (pair,
    seed, y, x, channel), ``p_a``, ``p_b``, ``acceptance`` (pair, seed), ``objective`` (pair, seed, step)."""
    el.validate(subject_a)
    el.validate(subject_b)
    n_seeds, steps, lr = check_count("n_seeds", n_seeds), check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    _same_inputs(subject_a, subject_b)
    n_classes, n_b = subject_a.n_outputs, subject_b.n_outputs
    if class_pairs is None:
        class_pairs = [(i, j) for i in range(n_classes) for j in range(n_b) if i != j]
    pairs = check_finite("class_pairs", class_pairs, ndim=(1, 2))
    if pairs.shape[-1] != 2 or (pairs.ndim == 1 and pairs.shape != (2,)):
        raise ArgumentError(f"class_pairs must be (class of subject_a, class of subject_b) pairs, shape (P, 2); got "
                            f"shape {pairs.shape}")
    pairs = pairs.reshape(-1, 2)
    pairs = np.stack([check_indices(f"class_pairs[:, 0] (classes of {subject_a.name})", pairs[:, 0], n_classes),
                      check_indices(f"class_pairs[:, 1] (classes of {subject_b.name})", pairs[:, 1], n_b)],
                     1).astype(np.int32)
    classes = np.repeat(pairs, n_seeds, axis=0)
    img, pa, pb, trace = _contrast(_ClassPair(), (subject_a, subject_b), classes, (1, *subject_a.input_spec.shape),
                                   subject_a.input_spec.bounds, steps, lr, key, loop, progress, "controversial")
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
                         progress: bool = False) -> xr.Dataset:
    """Controversial stimuli for any two differentiable scores: image sets on which ``score_a`` is high while
    ``score_b`` is low, and the reverse — two units, two sites, two models, or two models' fits to a brain RDM.

    score_a, score_b: functions ``images (n_images, H, W, C) -> scalar``, differentiable in JAX (a score of one
        image uses ``n_images=1``; a score of a stimulus *set*, such as an RDM correlation, takes the whole set).
        :class:`ResponseScore` builds unit, channel and site scores, z-scored against reference images. Pass the
        same function objects again to reuse the compiled program.
    scale: each score is divided by its scale before the two are combined, so they should be on comparable
        scales (z-scores, log-probabilities, correlations).

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
    n_images, n_seeds = check_count("n_images", n_images), check_count("n_seeds", n_seeds)
    sc = check_finite("scale", scale, ndim=1)
    if sc.shape != (2,):
        raise ArgumentError(f"scale must be two positive numbers (scale of score_a, scale of score_b); got {scale!r}")
    scale = (check_positive("scale[0]", sc[0]), check_positive("scale[1]", sc[1]))
    steps, lr = check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    progress, loop = _check_flag("progress", progress), _check_loop(loop)
    probe = jax.eval_shape(score_a, jax.ShapeDtypeStruct((n_images, *shape), jnp.float32)), jax.eval_shape(
        score_b, jax.ShapeDtypeStruct((n_images, *shape), jnp.float32))
    if any(p.shape != () for p in probe):
        raise el.InputError(f"scores must return a scalar; got shapes {[p.shape for p in probe]}")
    signs = np.repeat(np.asarray([1.0, -1.0], np.float32), n_seeds)
    img, sa, sb, trace = _contrast(_ScorePair(), (score_a, score_b, jnp.asarray(scale, jnp.float32)), signs,
                                   (n_images, *shape), bounds, steps, lr, key, loop, progress,
                                   "controversial_scores")
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


@dataclass(frozen=True, eq=False)
class ResponseScore:
    """A differentiable score for :func:`controversial_scores`: the mean response of ``unit`` at ``site`` over the
    images of a set, z-scored with ``mean`` / ``std``. ``unit``: an index into the site's flattened units, a
    channel (``channel=True``: averaged over space), or None (the mean over every unit of the site).
    Build it with :meth:`standardized` to take mean and std from reference images (natural images, say).
    A pytree: the subject's weights, ``mean`` and ``std`` are its leaves, so compiled programs take it as an
    argument (a new standardization or new weights never retrace)."""
    subject: object
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

    def standardized(self, reference) -> "ResponseScore":
        """The same score z-scored against the responses to ``reference`` images."""
        reference = _as_images(self.subject, reference, "reference images")
        r = np.asarray(_raw_responses(self, reference))
        if not np.isfinite(r).all() or r.std() <= 1e-8 * max(1.0, abs(float(r.mean()))):
            raise el.InputError(f"{self.name} responds with a constant {float(r.mean()):.4g} to all "
                                f"{len(r)} reference images (a dead unit?); it cannot be z-scored")
        from dataclasses import replace

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


# ---------------------------------------------------------------------------------------------- MAD competition

def _rep_distance(subject, site):
    """``(x, ref) -> ‖f(x) − f(ref)‖²`` at ``site`` (call inside a traced function)."""
    def d(x, ref):
        _, rec = el.forward(subject, jnp.stack([x, ref]), record=(site,))
        return jnp.sum((rec[site][0] - rec[site][1]) ** 2)
    return d


@dataclass(frozen=True)
class _MAD:
    """The four MAD images per start (a :mod:`._loop` program): maximize / minimize distance A while holding
    distance B at its start value (gradient of A projected orthogonally to the gradient of B, then B restored by
    a Newton step), and the same with the roles swapped. The pixel L2 distance to the reference is held by
    projecting onto the sphere around it. args: ``(subject_a, subject_b, ref (N, ...), start (N, ...))``; state
    (4, N, ...)."""
    site_a: str
    site_b: str
    steps: int
    lr: float

    def _runs(self, subject_a, subject_b):
        da, db = _rep_distance(subject_a, self.site_a), _rep_distance(subject_b, self.site_b)
        return ((da, db, 1.0), (da, db, -1.0), (db, da, 1.0), (db, da, -1.0))       # (primary, held, sign)

    def init(self, subject_a, subject_b, ref, start):
        held = jnp.stack([jax.vmap(fixed)(start, ref) for _, fixed, _ in self._runs(subject_a, subject_b)])
        return jnp.stack([start] * 4), held

    def step(self, state, i, subject_a, subject_b, ref, start):
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
            x = x + sign * self.lr * step / jnp.maximum(jnp.linalg.norm(step), 1e-12)
            gf = jax.grad(fixed)(x, ref)                              # restore the held distance (Newton)
            x = x - (fixed(x, ref) - target) * gf / jnp.maximum(jnp.vdot(gf, gf), 1e-12)
            x = ref + (x - ref) * radius / jnp.maximum(jnp.linalg.norm(x - ref), 1e-12)
            return jnp.clip(x, lo, hi), primary(x, ref)

        out = [jax.vmap(partial(move, p, f, s))(xs[k], ref, start, held[k])
               for k, (p, f, s) in enumerate(self._runs(subject_a, subject_b))]
        return (jnp.stack([o[0] for o in out]), held), jnp.stack([o[1] for o in out])

    def finish(self, state, subject_a, subject_b, ref, start):
        return state[0]


@partial(jax.jit, static_argnums=(2, 3))
def _mad_distances(subject_a, subject_b, site_a, site_b, images, ref):
    """Distances under A and B of ``images`` (N, K, ...) to their references (N, ...): (N, K, 2)."""
    da, db = _rep_distance(subject_a, site_a), _rep_distance(subject_b, site_b)
    return jax.vmap(jax.vmap(lambda im, r: jnp.stack([da(im, r), db(im, r)]), in_axes=(0, None)))(images, ref)


def mad_competition(subject_a, site_a: str, subject_b, site_b: str, images, *, noise: float = 0.1, steps: int = 100,
                    lr: float = 0.01, key, loop: str = "auto") -> xr.Dataset:
    """Maximum differentiation (MAD) competition (Wang & Simoncelli 2008) between two representations (a site of
    each of two subjects, or two sites of one): from each reference image plus white noise of pixel std ``noise``,
    four images at the same pixel distance — distance under A maximized / minimized with B's held, and the same
    with A and B swapped. A model whose "held" distance stays constant while the other one swings is the one a
    human observer should judge. Returns ``images`` (image, which, y, x, channel) with which ∈ {A max, A min,
    B max, B min}, the representation distances ``distance_a`` / ``distance_b`` of each to its reference, and
    the start's distances. Vmapped over images.

    The start and the four images are 8-bit images (rounding moves them off the exact sphere and the exact held
    distance by up to half a level per pixel), and every distance is measured on them."""
    for sub, site in ((subject_a, site_a), (subject_b, site_b)):
        el.validate(sub)
        _check_site(sub, site, "MAD competition")
    noise, steps, lr = check_positive("noise", noise), check_count("steps", steps), check_positive("lr", lr)
    check_key("key", key)
    loop = _check_loop(loop)
    _same_inputs(subject_a, subject_b)
    x = _as_images(subject_a, images)
    lo, hi = subject_a.input_spec.bounds
    start = _quantize(x + noise * (hi - lo) * jax.random.normal(key, x.shape), (lo, hi))
    imgs, _ = drive(_MAD(site_a, site_b, steps, float(lr)), subject_a, subject_b, x, start, loop=loop)
    imgs = _quantize(jnp.moveaxis(imgs, 0, 1), (lo, hi))                   # (image, which, ...)
    d = np.asarray(_mad_distances(subject_a, subject_b, site_a, site_b, imgs, x))      # (image, which, 2)
    d0 = np.asarray(_mad_distances(subject_a, subject_b, site_a, site_b, start[:, None], x))[:, 0]
    if not np.isfinite(d).all():
        raise FloatingPointError("MAD competition produced NaN/inf distances")
    return xr.Dataset({"images": (("image", "which", "y", "x", "channel"), np.asarray(imgs)),
                       "distance_a": (("image", "which"), d[..., 0]), "distance_b": (("image", "which"), d[..., 1]),
                       "start_distance_a": ("image", d0[:, 0]), "start_distance_b": ("image", d0[:, 1]),
                       "start_pixel_distance": ("image", np.sqrt(((np.asarray(start) - np.asarray(x)) ** 2)
                                                                 .sum(axis=(1, 2, 3)))),
                       "pixel_distance": (("image", "which"),
                                          np.sqrt(((np.asarray(imgs) - np.asarray(x)[:, None]) ** 2)
                                                  .sum(axis=(2, 3, 4))))},
                      coords={"which": ["A max", "A min", "B max", "B min"]},
                      attrs={"model_a": f"{subject_a.name}/{site_a}", "model_b": f"{subject_b.name}/{site_b}",
                             "noise": noise, "steps": steps, "lr": lr, "quantized": "8-bit"})


# ------------------------------------------------------------------------------------------ minimal-norm attack

@dataclass(frozen=True)
class _DeepFool:
    """Multi-class DeepFool (Moosavi-Dezfooli et al. 2016), L2, vmapped over images; each image stops once its
    prediction changes (the host loop stops when all have). args: ``(subject, x (N, ...), labels (N,))``."""
    steps: int
    overshoot: float

    def init(self, subject, x, labels):
        return jnp.zeros_like(x), jnp.zeros(x.shape[0], bool)

    def step(self, state, i, subject, x, labels):
        lo, hi = subject.input_spec.bounds
        logits_of = lambda img: _logits(subject, img[None])[0]  # noqa: E731

        def one(r_total, done, x0, label):
            xa = jnp.clip(x0 + (1 + self.overshoot) * r_total, lo, hi)
            f = logits_of(xa)
            jac = jax.jacrev(logits_of)(xa).reshape(f.shape[0], -1)         # (classes, D)
            w = jac - jac[label]
            df = f - f[label]
            dist = jnp.abs(df) / jnp.maximum(jnp.linalg.norm(w, axis=1), 1e-12)
            k = jnp.argmin(dist.at[label].set(jnp.inf))
            step = (jnp.abs(df[k]) + 1e-4) / jnp.maximum(jnp.sum(w[k] ** 2), 1e-12) * w[k]
            done = done | (f.argmax() != label)
            return jnp.where(done, r_total, r_total + step.reshape(x0.shape)), done

        return jax.vmap(one)(*state, x, labels), None

    def done(self, state):
        return jnp.all(state[1])

    def finish(self, state, subject, x, labels):
        lo, hi = subject.input_spec.bounds
        return jnp.clip(x + (1 + self.overshoot) * state[0], lo, hi)


def deepfool(subject, x, labels, *, max_iter: int = 50, overshoot: float = 0.02,
             loop: str = "auto") -> xr.Dataset:
    """Minimal-L2 untargeted attack (DeepFool): repeatedly step to the nearest linearized decision boundary
    until the prediction changes (each image stops on its own), overshooting by ``overshoot``. The float images
    and their perturbation norms are ``images_float`` / ``l2_float``; ``success`` and the other fields are judged
    on the 8-bit image (minimal perturbations below one 8-bit level do not survive rounding)."""
    max_iter = check_count("max_iter", max_iter)
    overshoot = check_number("overshoot", overshoot, low=0)
    loop = _check_loop(loop)
    x, labels = _prepare(subject, x, labels)
    adv, _ = drive(_DeepFool(int(max_iter), float(overshoot)), subject, x, labels, loop=loop)
    l2_float = np.sqrt(np.asarray(((adv - x) ** 2).sum(axis=(1, 2, 3))))
    ds = _result(subject, x, _quantize(adv, subject.input_spec.bounds), labels, False, 0.0, "deepfool", "l2",
                 {"max_iter": max_iter, "overshoot": overshoot})
    ds["l2_float"] = ("image", l2_float)
    ds["images_float"] = (("image", "y", "x", "channel"), np.asarray(adv))
    return ds
