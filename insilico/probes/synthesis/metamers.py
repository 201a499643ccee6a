"""Model metamers: images whose representation at some sites matches a target's, from different starts, for
many targets × seeds in memory-bounded, resumable chunks; the losses they may minimize (:data:`METAMER_LOSSES`)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from ... import electrode as el
from ... import rng
from ...validation import ArgumentError, check_choice, check_count, check_key, check_number, check_positive
from ._common import (
    _as_images,
    _check_chunking,
    _check_flag,
    _check_loop,
    _quantize,
    _run,
    _subject_identity,
    check_images,
)

__all__ = ["METAMER_LOSSES", "metamers"]


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
    "cosine": lambda reps, goals: sum(1 - jnp.vdot(r, g) / jnp.maximum(_norm(r) * _norm(g), 1e-12)
                                      for r, g in zip(reps, goals)) / len(goals),
}


def _norm(v):
    """The Euclidean norm with a gradient of 0, not NaN, at 0 (a site not yet switched on by coarse-to-fine)."""
    return jnp.sqrt(jnp.maximum(jnp.sum(v ** 2), 1e-30))


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
    args: ``(subject, lr, targets (T, ...), start (T, S, ...))`` — the learning rate an argument, so a new one
    compiles nothing. ``finish`` returns the 8-bit images, their errors,
    the convergence step (``steps`` for a sample whose last image meets ``tol``; −1: none) and the NaN step.
    Every sample's iterates and convergence are its own: a batch of other targets changes nothing it sees."""
    sites: tuple
    steps: int
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

    def init(self, subject, lr, targets, start):
        goal = jax.vmap(lambda t: self._reps(subject, t))(targets)
        opt = jax.vmap(jax.vmap(optax.adam(lr).init))(start)
        minus = jnp.full(start.shape[:2], -1, jnp.int32)
        return start, opt, minus, minus, goal

    def step(self, state, i, subject, lr, targets, start):
        x, s, done_at, nan_step, goal = state
        loss_fn, starts, opt = self._loss_fn(), self._starts(), optax.adam(lr)

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

    def finish(self, state, subject, lr, targets, start):
        x, _, done_at, nan_step, goal = state
        err = self.errors_8bit(subject, x, goal)
        done_at = jnp.where((done_at < 0) & (nan_step < 0) & (err <= self.tol), self.steps, done_at)
        return _quantize(x, subject.input_spec.bounds), err, done_at, nan_step


def _no_nan_step(result, trace, start):
    """Raise naming the step where a chunk's loss became NaN/inf (of its first target where it did)."""
    nan_step = np.asarray(result[3]).max(1)
    if nan_step.max() >= 0:
        first = int(np.argmax(nan_step >= 0))
        raise FloatingPointError(f"the metamer loss became NaN/inf at step {int(nan_step[first])} (target "
                                 f"{start + first})")


def _check_sites(subject, sites) -> tuple:
    try:
        names = (sites,) if isinstance(sites, str) else tuple(sites)
    except TypeError:
        names = ()
    if not names or not all(isinstance(name, str) for name in names):
        raise ArgumentError(f"sites must be a site name or a non-empty sequence of site names; got {sites!r}")
    el.validate(subject, sites=names, purpose="metamers")
    return names


def metamers(subject, sites: Sequence[str] | str, targets, *, n_seeds: int = 1, steps: int = 1000,
             lr: float = 0.01, tol: float = 1e-3, loss="relative", start=None, coarse_to_fine=None,
             scales: Sequence[int] = (4, 2, 1), key=None, loop: str = "auto", progress: bool = False, store=None,
             chunk_size: int | None = None, memory_budget: float = 2e9, overwrite: bool = False) -> xr.Dataset:
    """Images whose representation at ``sites`` matches each target's, from different starts (Freeman &
    Simoncelli 2011; Feather et al. 2019): Adam on the pixels, projected onto the bounds; each sample stops once
    the relative squared error Σ‖f(x) − f(t)‖² / Σ‖f(t)‖² over ``sites`` of its 8-bit image is at most ``tol``
    (the host loop stops when every sample of a chunk has). Targets × seeds are vmapped in one call per chunk.

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
    store, chunk_size, memory_budget, overwrite: the targets (each with its seeds' starts) run in chunks of
        ``chunk_size`` targets (default: all of them up to 16, else as many as ``memory_budget`` bytes allow, at
        most 256), so memory stays that of one chunk however many targets there are. With ``store`` (a
        directory) every finished chunk is written there, and a rerun after a kill resumes from the finished
        chunks; a rerun with other settings, targets, starts or weights is refused naming what differs
        (``overwrite=True`` starts over). A sample's iterates and convergence do not depend on the chunk it is
        in, beyond float round-off (XLA may sum in another order for another batch size).

    Returns the 8-bit ``images`` (target, seed, y, x, channel) and, measured on them, ``rel_error`` and
    ``converged_at`` (the step whose image met ``tol`` and was kept; ``steps`` when only the last image does;
    −1 if none: ``converged_at ≥ 0`` exactly when ``rel_error ≤ tol``), pixel distances to the target
    (``pixel_rmse``) and to the start; ``error_trace`` (target, seed, step) is the error of the float iterate at
    each step (over the sites active at that step). Raises ``FloatingPointError`` naming the step where the loss
    became NaN/inf."""
    el.validate(subject)
    sites = _check_sites(subject, sites)
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
    chunking = _check_chunking(store, chunk_size, memory_budget, overwrite)
    if start is None or key is not None:
        check_key("key", key)                                         # noise starts draw from it
    t = _as_images(subject, targets, "targets")
    n, shape = t.shape[0], tuple(t.shape[1:])
    if coarse_to_fine == "scales" and any(shape[0] % f or shape[1] % f for f in scales):
        raise ArgumentError(f"every scale must divide the image size {shape[:2]}; got scales {scales}")
    lo, hi = subject.input_spec.bounds
    if start is None:
        start = rng.uniform(key, (n, n_seeds, *shape), minval=lo, maxval=hi)
    start = jnp.asarray(start, jnp.float32)
    if start.shape != (n, n_seeds, *shape):
        raise el.InputError(f"start must have shape {(n, n_seeds, *shape)} (target, seed, H, W, C); got "
                            f"{tuple(start.shape)}")
    check_images(subject, start.reshape(-1, *shape), "start images")
    program = _Metamer(sites, steps, float(tol), coarse_to_fine, loss, scales)
    if callable(loss):                 # a function of the sites' responses and goals to one number: checked here
        reps = jax.eval_shape(lambda img: program._reps(subject, img), jax.ShapeDtypeStruct(shape, jnp.float32))
        out = jax.eval_shape(loss, reps, reps)
        if getattr(out, "shape", None) != ():
            raise ArgumentError(f"loss must return one number for (reps, goals); got "
                                f"{getattr(out, 'shape', type(out).__name__)}")
    (x, err, done_at, _), trace = _run(program, (t, start), (subject, jnp.float32(lr)), chunking, tag="metamers",
                                       identity={**_subject_identity(subject), "key": key, "lr": float(lr)},
                                       check=_no_nan_step, loop=loop, progress=progress)
    tn_ = np.asarray(t)
    rmse = np.sqrt(((x - tn_[:, None]) ** 2).mean(axis=(2, 3, 4)))
    from_start = np.sqrt(((x - np.asarray(start)) ** 2).mean(axis=(2, 3, 4)))
    return xr.Dataset({"images": (("target", "seed", "y", "x", "channel"), x),
                       "rel_error": (("target", "seed"), err), "converged_at": (("target", "seed"), done_at),
                       "error_trace": (("target", "seed", "step"), np.moveaxis(trace, 0, -1)),
                       "pixel_rmse": (("target", "seed"), rmse), "rmse_from_start": (("target", "seed"), from_start)},
                      attrs={"subject": subject.name, "sites": ", ".join(sites), "steps": steps, "lr": lr, "tol": tol,
                             "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "custom"),
                             "coarse_to_fine": coarse_to_fine or "none", "quantized": "8-bit"})
