"""Stimulus synthesis: adversarial examples (FGSM, PGD in L∞ and L2, with random restarts and ε sweeps).

Every attack is a pure function of one image batch, jit-compiled once per (subject, attack settings). Images stay
inside the subject's declared pixel bounds; success is always judged on the 8-bit quantized image (what an
experiment would show), not on the float image the optimizer produced.

Example::

    from insilico.probes import synthesis as syn
    adv = syn.pgd(subject, x, y, eps=8 / 255, key=jax.random.PRNGKey(0))     # Dataset: images, success, ...
    curve = syn.accuracy_vs_eps(subject, x, y, [0, 1/255, 2/255, 4/255, 8/255], key=key)
"""
from __future__ import annotations

from functools import lru_cache, partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr

from .. import electrode as el

__all__ = ["quantize", "fgsm", "pgd", "accuracy_vs_eps", "check_images"]


def quantize(x, bounds=(0.0, 1.0), levels: int = 256):
    """Round pixels to ``levels`` steps inside ``bounds`` (8-bit by default), as a display would."""
    lo, hi = bounds
    return lo + jnp.round((jnp.clip(x, lo, hi) - lo) / (hi - lo) * (levels - 1)) / (levels - 1) * (hi - lo)


def check_images(subject, x, what: str = "images"):
    """Shape/dtype/NaN checks of the electrode plus the subject's pixel bounds (named, with the offending value)."""
    el._check_input(subject, x)
    lo, hi = subject.input_spec.bounds
    xmin, xmax = float(jnp.min(x)), float(jnp.max(x))
    if xmin < lo - 1e-6 or xmax > hi + 1e-6:
        raise el.InputError(f"{what} must lie in {subject.name}'s pixel bounds [{lo}, {hi}]; got values in "
                            f"[{xmin:.4g}, {xmax:.4g}]")


def _logits(subject, x):
    out, _ = el._forward(subject.model, (), subject.variables, x, {}, None)
    return out


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


@partial(jax.jit, static_argnums=(0, 4, 5, 6, 7, 8))
def _pgd_core(subject, x, labels, eps, norm: str, steps: int, restarts: int, targeted: bool, rand_init: bool,
              step_size, key):
    """Best-of-restarts PGD for one batch at one ε: returns (adversarial images, per-image final loss, nan step)."""
    lo, hi = subject.input_spec.bounds
    grad = jax.grad(lambda xa: _loss(subject, xa, labels, targeted).sum())

    def attack(k):
        delta = _random_start(k, x.shape, eps, norm) if rand_init else jnp.zeros_like(x)
        xa = jnp.clip(x + delta, lo, hi)

        def body(carry, i):
            xa, nan_step = carry
            g = grad(xa)
            bad = ~jnp.all(jnp.isfinite(g))
            nan_step = jnp.where((nan_step < 0) & bad, i, nan_step)
            step = _step_direction(jnp.nan_to_num(g), norm) * step_size
            new = jnp.clip(x + _project(xa + step - x, eps, norm), lo, hi)
            return (jnp.where(nan_step >= 0, xa, new), nan_step), None

        (xa, nan_step), _ = jax.lax.scan(body, (xa, jnp.asarray(-1, jnp.int32)), jnp.arange(steps))
        xq = quantize(xa, (lo, hi))
        if norm == "linf":                      # rounding must not leave the ball: step back one level if it did
            level = (hi - lo) / 255.0
            xq = jnp.where(xq - x > eps + 1e-6, xq - level, jnp.where(x - xq > eps + 1e-6, xq + level, xq))
        fooled = _fooled(subject, xq, labels, targeted)
        return xq, _loss(subject, xq, labels, targeted), fooled, nan_step

    xs, losses, fooled, nan_steps = jax.vmap(attack)(jax.random.split(key, restarts))   # (R, N, ...)
    # best of restarts: a successful restart if any (highest loss among those), else the highest loss
    score = jnp.where(fooled, losses + 1e6, losses)
    best = jnp.argmax(score, axis=0)
    pick = jnp.take_along_axis(xs, best[None, :, None, None, None], 0)[0]
    return pick, jnp.take_along_axis(losses, best[None], 0)[0], jnp.max(nan_steps)


def _fooled(subject, x, labels, targeted: bool):
    pred = _logits(subject, x).argmax(-1)
    return pred == labels if targeted else pred != labels


def _prepare(subject, x, labels, eps, norm):
    x = jnp.asarray(x, jnp.float32) if not hasattr(x, "dtype") else x
    check_images(subject, x)
    labels = jnp.asarray(labels, jnp.int32)
    if labels.shape != (x.shape[0],):
        raise el.InputError(f"labels must have shape ({x.shape[0]},) to match the images; got {labels.shape}")
    n_classes = subject.sites[list(subject.sites)[-1]][-1]
    if int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise el.InputError(f"labels must be class indices in 0..{n_classes - 1}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    if np.any(np.asarray(eps) < 0):
        raise ValueError(f"eps must be >= 0, got {eps}")
    return jnp.asarray(x, jnp.float32), labels


def _result(subject, x, adv, labels, targeted, eps, attack: str, norm: str, extra=None) -> xr.Dataset:
    clean = np.asarray(_pred_fn(subject)(x))
    pred = np.asarray(_pred_fn(subject)(adv))
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


@lru_cache(maxsize=32)
def _pred_fn(subject):
    return jax.jit(lambda x: _logits(subject, x).argmax(-1))


def fgsm(subject, x, labels, eps: float, *, targeted: bool = False) -> xr.Dataset:
    """Fast gradient sign method (Goodfellow et al. 2015): one L∞ step of size ``eps`` on the cross-entropy
    (away from ``labels``, or towards them when ``targeted``), clipped to the bounds and 8-bit quantized.
    Returns a Dataset with the adversarial ``images``, ``prediction``, ``success`` and L∞/L2 distances; the
    attribute ``accuracy`` is the accuracy on the attacked images (untargeted)."""
    x, labels = _prepare(subject, x, labels, eps, "linf")
    adv, _, _ = _pgd_core(subject, x, labels, jnp.float32(eps), "linf", 1, 1, targeted, False, jnp.float32(eps),
                          jax.random.PRNGKey(0))
    return _result(subject, x, adv, labels, targeted, eps, "fgsm", "linf")


def pgd(subject, x, labels, eps: float, *, norm: str = "linf", steps: int = 40, step_size: float | None = None,
        restarts: int = 1, random_start: bool = True, targeted: bool = False, key=None) -> xr.Dataset:
    """Projected gradient descent (Madry et al. 2018) in an L∞ or L2 ball of radius ``eps``, with ``restarts``
    random starts (vmapped) keeping the best per image; ``step_size`` defaults to 2.5·eps/steps. Success is
    judged after 8-bit quantization. Same outputs as :func:`fgsm`.
    Raises: ``FloatingPointError`` naming the step where a gradient became NaN/inf."""
    x, labels = _prepare(subject, x, labels, eps, norm)
    if (random_start or restarts > 1) and key is None:
        raise ValueError("random starts need a PRNG key: pgd(..., key=jax.random.PRNGKey(0))")
    step_size = 2.5 * eps / steps if step_size is None else step_size
    adv, _, nan_step = _pgd_core(subject, x, labels, jnp.float32(eps), norm, int(steps), int(restarts), targeted,
                                 bool(random_start), jnp.float32(step_size),
                                 jax.random.PRNGKey(0) if key is None else key)
    if int(nan_step) >= 0:
        raise FloatingPointError(f"the loss gradient became NaN/inf at step {int(nan_step)} of the attack")
    return _result(subject, x, adv, labels, targeted, eps, "pgd", norm,
                   {"steps": steps, "restarts": restarts, "step_size": float(step_size)})


@lru_cache(maxsize=32)
def _eps_sweep_fn(subject, attack: str, norm: str, steps: int, restarts: int):
    """Jitted ``(x, labels, eps_values, key) -> (accuracy, mean L∞, mean L2, nan step)`` per ε, vmapped over ε;
    cached so repeated sweeps with the same settings do not recompile."""
    rand = attack != "fgsm"

    def one(x, labels, eps, key):
        size = eps if attack == "fgsm" else 2.5 * eps / steps
        adv, _, nan_step = _pgd_core(subject, x, labels, eps, norm, steps, restarts, False, rand, size, key)
        pred = _logits(subject, adv).argmax(-1)
        d = (adv - x).reshape(x.shape[0], -1)
        return (jnp.mean(pred == labels), jnp.abs(d).max(1).mean(), jnp.sqrt((d ** 2).sum(1)).mean(), nan_step)

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0, None)))


def accuracy_vs_eps(subject, x, labels, eps_values: Sequence[float], *, attack: str = "pgd", norm: str = "linf",
                    steps: int = 40, restarts: int = 1, key=None) -> xr.Dataset:
    """Accuracy on attacked (8-bit quantized) images for each ε — all ε values in one compiled call (vmapped).

    Returns a Dataset over ``eps`` with ``accuracy`` and the mean L∞ / L2 size of the perturbations."""
    eps_values = np.asarray(list(eps_values), np.float32)
    x, labels = _prepare(subject, x, labels, eps_values, norm)
    if attack not in ("pgd", "fgsm"):
        raise ValueError(f"attack must be 'pgd' or 'fgsm', got {attack!r}")
    key = jax.random.PRNGKey(0) if key is None else key
    if attack == "fgsm":
        steps, restarts = 1, 1
    acc, linf, l2, nan = _eps_sweep_fn(subject, attack, norm, int(steps), int(restarts))(
        x, labels, jnp.asarray(eps_values), key)
    if int(jnp.max(nan)) >= 0:
        raise FloatingPointError(f"the loss gradient became NaN/inf at step {int(jnp.max(nan))} of the attack")
    return xr.Dataset({"accuracy": ("eps", np.asarray(acc)), "linf": ("eps", np.asarray(linf)),
                       "l2": ("eps", np.asarray(l2))}, coords={"eps": eps_values},
                      attrs={"subject": subject.name, "attack": attack, "norm": norm, "steps": steps,
                             "restarts": restarts, "n_images": int(x.shape[0]), "quantized": "8-bit"})


# ------------------------------------------------------------------------------------------ eigendistortions

@partial(jax.jit, static_argnums=(0, 1, 3))
def _eigen_core(subject, site: str, x, n_iter: int, key):
    """Largest and smallest eigenpairs of the Fisher matrix JᵀJ of ``site`` at one image, by power iteration
    with matrix-free products JᵀJ v = vjp(jvp(v))."""
    def rep(img):
        _, rec = el._forward(subject.model, (site,), subject.variables, img[None], {}, None)
        return rec[site][0]

    _, vjp = jax.vjp(rep, x)
    fisher = lambda v: vjp(jax.jvp(rep, (x,), (v,))[1])[0]  # noqa: E731

    def power(matvec, v0):
        def body(v, _):
            w = matvec(v)
            return w / jnp.maximum(jnp.linalg.norm(w), 1e-30), None
        v, _ = jax.lax.scan(body, v0 / jnp.linalg.norm(v0), None, length=n_iter)
        return v, jnp.vdot(v, matvec(v))

    k1, k2 = jax.random.split(key)
    v_max, lam_max = power(fisher, jax.random.normal(k1, x.shape))
    v_min, shifted = power(lambda v: lam_max * v - fisher(v), jax.random.normal(k2, x.shape))
    return v_max, lam_max, v_min, lam_max - shifted


def eigendistortions(subject, site: str, images, *, n_iter: int = 100, key) -> xr.Dataset:
    """Most and least noticeable distortions of each image for ``site`` (Berardino et al. 2017): the unit
    eigenvectors of the Fisher information JᵀJ (J = d site / d image) with the largest and smallest eigenvalue,
    by power iteration (the smallest on λ_max·I − JᵀJ), vmapped over images. Returns ``distortion`` (image,
    which ∈ {max, min}, y, x, channel) and ``eigenvalue`` (image, which): the squared change of the
    representation per unit squared pixel change along that direction."""
    x = jnp.asarray(images, jnp.float32) if not hasattr(images, "dtype") else images
    check_images(subject, x)
    el._check_sites(subject, (site,), "eigendistortions")
    keys = jax.random.split(key, x.shape[0])
    v_max, l_max, v_min, l_min = jax.vmap(lambda img, k: _eigen_core(subject, site, img, int(n_iter), k))(x, keys)
    return xr.Dataset({"distortion": (("image", "which", "y", "x", "channel"),
                                      np.stack([np.asarray(v_max), np.asarray(v_min)], 1)),
                       "eigenvalue": (("image", "which"), np.stack([np.asarray(l_max), np.asarray(l_min)], 1))},
                      coords={"which": ["max", "min"]},
                      attrs={"subject": subject.name, "site": site, "n_iter": n_iter})


# ----------------------------------------------------------------------------------------------------- metamers

@partial(jax.jit, static_argnums=(0, 1, 4, 5, 6, 7))
def _metamer_core(subject, sites: tuple, target, start, steps: int, lr: float, tol: float, coarse_to_fine: bool):
    """Adam on the pixels of one image (projected onto the bounds) to match ``target``'s representation at
    ``sites``; updates stop once the relative error is below ``tol`` (per-sample convergence). With
    ``coarse_to_fine`` the k-th site joins the loss at step k·steps/len(sites)."""
    lo, hi = subject.input_spec.bounds

    def reps(img):
        _, rec = el._forward(subject.model, sites, subject.variables, img[None], {}, None)
        return [rec[s][0] for s in sites]

    goal = reps(target)
    norm = sum(jnp.sum(g ** 2) for g in goal)

    def rel_error(img, on=None):
        on = [1.0] * len(sites) if on is None else on
        return sum(w * jnp.sum((r - g) ** 2) for w, r, g in zip(on, reps(img), goal)) / jnp.maximum(norm, 1e-12)

    opt = optax.adam(lr)
    starts = [k * steps // len(sites) if coarse_to_fine else 0 for k in range(len(sites))]

    def body(carry, i):
        x, s, done_at, nan_step = carry
        on = [(i >= st).astype(jnp.float32) for st in starts]
        err, g = jax.value_and_grad(rel_error)(x, on)
        bad = ~(jnp.isfinite(err) & jnp.all(jnp.isfinite(g)))
        nan_step = jnp.where((nan_step < 0) & bad, i, nan_step)
        done_at = jnp.where((done_at < 0) & (err <= tol) & (i >= starts[-1]), i, done_at)
        upd, s_new = opt.update(jnp.nan_to_num(g), s, x)
        x_new = jnp.clip(optax.apply_updates(x, upd), lo, hi)
        stop = (done_at >= 0) | (nan_step >= 0)
        x = jnp.where(stop, x, x_new)
        s = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), s, s_new)
        return (x, s, done_at, nan_step), err

    init = (start, opt.init(start), jnp.asarray(-1, jnp.int32), jnp.asarray(-1, jnp.int32))
    (x, _, done_at, nan_step), trace = jax.lax.scan(body, init, jnp.arange(steps))
    return x, rel_error(x), trace, done_at, nan_step


def metamers(subject, sites: Sequence[str] | str, targets, *, n_seeds: int = 1, steps: int = 1000,
             lr: float = 0.01, tol: float = 1e-3, start=None, coarse_to_fine: bool = False,
             key=None) -> xr.Dataset:
    """Images whose representation at ``sites`` matches each target's, from different starts (Freeman &
    Simoncelli 2011; Feather et al. 2019): Adam on the pixels, projected onto the bounds, minimizing the
    relative squared error Σ‖f(x) − f(t)‖² / Σ‖f(t)‖² over ``sites``; each sample stops once it is below
    ``tol``. Starts: uniform white noise from ``key`` (``n_seeds`` per target), or ``start`` images
    (n_targets, n_seeds, H, W, C). Targets × seeds are vmapped in one call. ``coarse_to_fine``: the sites
    join the loss one after another in the given order (list the deepest first), evenly over the steps.

    Returns ``images`` (target, seed, y, x, channel), ``rel_error`` (final), ``converged_at`` (step, −1 if not),
    ``error_trace`` (target, seed, step), and pixel distances to the target (``pixel_rmse``) and to the start.
    Raises ``FloatingPointError`` naming the step where the loss became NaN/inf."""
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    el._check_sites(subject, sites, "metamers")
    t = jnp.asarray(targets, jnp.float32) if not hasattr(targets, "dtype") else targets
    check_images(subject, t, "targets")
    n, shape = t.shape[0], tuple(t.shape[1:])
    lo, hi = subject.input_spec.bounds
    if start is None:
        if key is None:
            raise ValueError("noise starts need a PRNG key: metamers(..., key=jax.random.PRNGKey(0))")
        start = jax.random.uniform(key, (n, n_seeds, *shape), minval=lo, maxval=hi)
    start = jnp.asarray(start, jnp.float32)
    if start.shape != (n, n_seeds, *shape):
        raise el.InputError(f"start must have shape {(n, n_seeds, *shape)} (target, seed, H, W, C); got "
                            f"{tuple(start.shape)}")
    check_images(subject, start.reshape(-1, *shape), "start images")
    one = lambda tgt, st: _metamer_core(subject, sites, tgt, st, int(steps), float(lr), float(tol),  # noqa: E731
                                        bool(coarse_to_fine))
    x, err, trace, done_at, nan_step = jax.vmap(lambda tgt, sts: jax.vmap(lambda st: one(tgt, st))(sts))(t, start)
    if int(jnp.max(nan_step)) >= 0:
        raise FloatingPointError(f"the metamer loss became NaN/inf at step {int(jnp.max(nan_step))}")
    x, tn_ = np.asarray(x), np.asarray(t)
    rmse = np.sqrt(((x - tn_[:, None]) ** 2).mean(axis=(2, 3, 4)))
    from_start = np.sqrt(((x - np.asarray(start)) ** 2).mean(axis=(2, 3, 4)))
    return xr.Dataset({"images": (("target", "seed", "y", "x", "channel"), x),
                       "rel_error": (("target", "seed"), np.asarray(err)),
                       "converged_at": (("target", "seed"), np.asarray(done_at)),
                       "error_trace": (("target", "seed", "step"), np.asarray(trace)),
                       "pixel_rmse": (("target", "seed"), rmse), "rmse_from_start": (("target", "seed"), from_start)},
                      attrs={"subject": subject.name, "sites": ", ".join(sites), "steps": steps, "lr": lr, "tol": tol})


# ---------------------------------------------------------------------------------------- controversial stimuli

def _same_inputs(a, b):
    if tuple(a.input_spec.shape) != tuple(b.input_spec.shape) or tuple(a.input_spec.bounds) != tuple(
            b.input_spec.bounds):
        raise el.InputError(f"{a.name} takes {a.input_spec.shape} in {a.input_spec.bounds} but {b.name} takes "
                            f"{b.input_spec.shape} in {b.input_spec.bounds}; controversial stimuli need one input "
                            "space")


@partial(jax.jit, static_argnums=(0, 1, 4, 5))
def _controversial_core(subject_a, subject_b, classes, keys, steps: int, lr: float):
    """For each (class_a, class_b, key): Adam on sigmoid-parameterized pixels maximizing the soft minimum of
    log p_A(class_a) and log p_B(class_b); returns quantized images, acceptance and the objective trace."""
    lo, hi = subject_a.input_spec.bounds
    shape = subject_a.input_spec.shape
    opt = optax.adam(lr)

    def logp(subject, img):
        return jax.nn.log_softmax(_logits(subject, img[None])[0])

    def objective(z, ca, cb):
        img = lo + (hi - lo) * jax.nn.sigmoid(z)
        la, lb = logp(subject_a, img)[ca], logp(subject_b, img)[cb]
        return -jax.nn.logsumexp(-jnp.stack([la, lb]))                  # soft minimum of the two log-probs

    def one(c, key):
        z = 0.5 * jax.random.normal(key, shape)

        def body(carry, i):
            z, s, nan_step = carry
            val, g = jax.value_and_grad(objective)(z, c[0], c[1])
            bad = ~(jnp.isfinite(val) & jnp.all(jnp.isfinite(g)))
            nan_step = jnp.where((nan_step < 0) & bad, i, nan_step)
            upd, s_new = opt.update(-jnp.nan_to_num(g), s, z)
            stop = nan_step >= 0
            z = jnp.where(stop, z, optax.apply_updates(z, upd))
            s = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), s, s_new)
            return (z, s, nan_step), val

        (z, _, nan_step), trace = jax.lax.scan(body, (z, opt.init(z), jnp.asarray(-1, jnp.int32)),
                                               jnp.arange(steps))
        img = quantize(lo + (hi - lo) * jax.nn.sigmoid(z), (lo, hi))
        pa, pb = jnp.exp(logp(subject_a, img))[c[0]], jnp.exp(logp(subject_b, img))[c[1]]
        return img, pa, pb, trace, nan_step

    return jax.vmap(one)(classes, keys)


def controversial(subject_a, subject_b, class_pairs=None, *, n_seeds: int = 1, steps: int = 300, lr: float = 0.05,
                  key) -> xr.Dataset:
    """Controversial stimuli (Golan, Raju & Kriegeskorte 2020): for every ordered class pair (i, j) and seed, an
    image that ``subject_a`` assigns to class i and ``subject_b`` to class j. All pairs × seeds are one compiled,
    vmapped optimization (Adam on sigmoid-parameterized pixels, objective = soft minimum of log p_A(i) and
    log p_B(j)); the hard ``acceptance`` = min(p_A(i), p_B(j)) is measured on the 8-bit quantized image.

    ``class_pairs``: list of (i, j) (default: every ordered pair of distinct classes). Returns ``images`` (pair,
    seed, y, x, channel), ``p_a``, ``p_b``, ``acceptance`` (pair, seed), ``objective`` (pair, seed, step)."""
    _same_inputs(subject_a, subject_b)
    n_classes = subject_a.sites[list(subject_a.sites)[-1]][-1]
    if class_pairs is None:
        class_pairs = [(i, j) for i in range(n_classes) for j in range(n_classes) if i != j]
    pairs = np.asarray(class_pairs, np.int32).reshape(-1, 2)
    n_b = subject_b.sites[list(subject_b.sites)[-1]][-1]
    if pairs[:, 0].max() >= n_classes or pairs[:, 1].max() >= n_b or pairs.min() < 0:
        raise el.InputError(f"class pairs must index {subject_a.name}'s {n_classes} and {subject_b.name}'s {n_b} "
                            "classes")
    classes = jnp.asarray(np.repeat(pairs, n_seeds, axis=0))
    keys = jax.random.split(key, len(classes))
    img, pa, pb, trace, nan_step = _controversial_core(subject_a, subject_b, classes, keys, int(steps), float(lr))
    if int(jnp.max(nan_step)) >= 0:
        raise FloatingPointError(f"the controversial objective became NaN/inf at step {int(jnp.max(nan_step))}")
    shape = (len(pairs), n_seeds)
    pa, pb = np.asarray(pa).reshape(shape), np.asarray(pb).reshape(shape)
    img = np.asarray(img).reshape(*shape, *img.shape[1:])
    return xr.Dataset({"images": (("pair", "seed", "y", "x", "channel"), img),
                       "p_a": (("pair", "seed"), pa), "p_b": (("pair", "seed"), pb),
                       "acceptance": (("pair", "seed"), np.minimum(pa, pb)),
                       "objective": (("pair", "seed", "step"), np.asarray(trace).reshape(*shape, -1))},
                      coords={"class_a": ("pair", pairs[:, 0]), "class_b": ("pair", pairs[:, 1])},
                      attrs={"model_a": subject_a.name, "model_b": subject_b.name, "steps": steps, "lr": lr,
                             "quantized": "8-bit"})


# ---------------------------------------------------------------------------------------------- MAD competition

def _rep_distance(subject, site):
    def d(x, ref):
        _, rec = el._forward(subject.model, (site,), subject.variables, jnp.stack([x, ref]), {}, None)
        return jnp.sum((rec[site][0] - rec[site][1]) ** 2)
    return d


@partial(jax.jit, static_argnums=(0, 1, 2, 3, 6, 7))
def _mad_core(subject_a, site_a, subject_b, site_b, ref, start, steps: int, lr: float):
    """The four MAD images from one start: maximize / minimize distance A while holding distance B at its
    start value (gradient of A projected orthogonally to the gradient of B, then B restored by a Newton step),
    and the same with the roles swapped. Pixel L2 distance to the reference is held fixed (the start lies on
    a sphere around ``ref``) by projecting onto that sphere."""
    lo, hi = subject_a.input_spec.bounds
    da, db = _rep_distance(subject_a, site_a), _rep_distance(subject_b, site_b)
    radius = jnp.linalg.norm(start - ref)

    def run(primary, fixed, sign):
        target = fixed(start, ref)

        def body(x, _):
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
            return jnp.clip(x, lo, hi), primary(x, ref)

        x, trace = jax.lax.scan(body, start, None, length=steps)
        return x, trace

    out = [run(da, db, 1.0), run(da, db, -1.0), run(db, da, 1.0), run(db, da, -1.0)]
    return jnp.stack([o[0] for o in out]), jnp.stack([o[1] for o in out])


def mad_competition(subject_a, site_a: str, subject_b, site_b: str, images, *, noise: float = 0.1, steps: int = 100,
                    lr: float = 0.01, key) -> xr.Dataset:
    """Maximum differentiation (MAD) competition (Wang & Simoncelli 2008) between two representations (a site of
    each of two subjects, or two sites of one): from each reference image plus white noise of pixel std ``noise``,
    four images at the same pixel distance — distance under A maximized / minimized with B's held, and the same
    with A and B swapped. A model whose "held" distance stays constant while the other one swings is the one a
    human observer should judge. Returns ``images`` (image, which, y, x, channel) with which ∈ {A max, A min,
    B max, B min}, the representation distances ``distance_a`` / ``distance_b`` of each to its reference, and
    the start's distances. Vmapped over images."""
    _same_inputs(subject_a, subject_b)
    for sub, site in ((subject_a, site_a), (subject_b, site_b)):
        el._check_sites(sub, (site,), "MAD competition")
    x = jnp.asarray(images, jnp.float32) if not hasattr(images, "dtype") else images
    check_images(subject_a, x)
    lo, hi = subject_a.input_spec.bounds
    start = jnp.clip(x + noise * (hi - lo) * jax.random.normal(key, x.shape), lo, hi)
    imgs, _ = jax.vmap(lambda r, s: _mad_core(subject_a, site_a, subject_b, site_b, r, s, int(steps), float(lr)))(
        x, start)
    da, db = _rep_distance(subject_a, site_a), _rep_distance(subject_b, site_b)
    dist = jax.jit(jax.vmap(jax.vmap(lambda im, r: jnp.stack([da(im, r), db(im, r)]), in_axes=(0, None))))
    d = np.asarray(dist(imgs, x))                                          # (image, which, 2)
    d0 = np.asarray(jax.vmap(lambda s, r: jnp.stack([da(s, r), db(s, r)]))(start, x))
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
                             "noise": noise, "steps": steps, "lr": lr})


# ------------------------------------------------------------------------------------------ minimal-norm attack

@partial(jax.jit, static_argnums=(0, 3, 4))
def _deepfool_core(subject, x, labels, max_iter: int, overshoot: float):
    """Multi-class DeepFool (Moosavi-Dezfooli et al. 2016), L2, one image per vmapped call."""
    lo, hi = subject.input_spec.bounds
    logits_of = lambda img: _logits(subject, img[None])[0]  # noqa: E731

    def one(x0, label):
        def body(carry, _):
            r_total, done = carry
            xa = jnp.clip(x0 + (1 + overshoot) * r_total, lo, hi)
            f = logits_of(xa)
            jac = jax.jacrev(logits_of)(xa).reshape(f.shape[0], -1)         # (classes, D)
            w = jac - jac[label]
            df = f - f[label]
            dist = jnp.abs(df) / jnp.maximum(jnp.linalg.norm(w, axis=1), 1e-12)
            dist = dist.at[label].set(jnp.inf)
            k = jnp.argmin(dist)
            step = (jnp.abs(df[k]) + 1e-4) / jnp.maximum(jnp.sum(w[k] ** 2), 1e-12) * w[k]
            done = done | (f.argmax() != label)
            r_total = jnp.where(done, r_total, r_total + step.reshape(x0.shape))
            return (r_total, done), None

        (r, done), _ = jax.lax.scan(body, (jnp.zeros_like(x0), jnp.asarray(False)), None, length=max_iter)
        return jnp.clip(x0 + (1 + overshoot) * r, lo, hi)

    return jax.vmap(one)(x, labels)


def deepfool(subject, x, labels, *, max_iter: int = 50, overshoot: float = 0.02) -> xr.Dataset:
    """Minimal-L2 untargeted attack (DeepFool): repeatedly step to the nearest linearized decision boundary
    until the prediction changes (each image stops on its own), overshooting by ``overshoot``. The float images
    and their perturbation norms are ``images_float`` / ``l2_float``; ``success`` and the other fields are judged
    on the 8-bit image (minimal perturbations below one 8-bit level do not survive rounding)."""
    x, labels = _prepare(subject, x, labels, 0.0, "l2")
    adv = _deepfool_core(subject, x, labels, int(max_iter), float(overshoot))
    l2_float = np.sqrt(np.asarray(((adv - x) ** 2).sum(axis=(1, 2, 3))))
    ds = _result(subject, x, quantize(adv, subject.input_spec.bounds), labels, False, 0.0, "deepfool", "l2",
                 {"max_iter": max_iter, "overshoot": overshoot})
    ds["l2_float"] = ("image", l2_float)
    ds["images_float"] = (("image", "y", "x", "channel"), np.asarray(adv))
    return ds
