"""Adversarial attacks: FGSM, PGD (L∞ / L2, restarts, targeted) and accuracy under attack over a list of ε, every
(ε, restart, image) a row of one batch through the network in each compiled step; with early stopping an (ε,
image) pair leaves the batch once broken (:func:`insilico.engine.shrinking.run_shrinking`)."""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
import xarray as xr

from ...engine import on_host, resolve_loop, to_device
from ...validation import (
    ArgumentError,
    check_choice,
    check_count,
    check_finite,
    check_key,
    check_number,
    check_positive,
)
from ._common import _check_flag, _check_loop, _logits, _prepare
from ._pgd import _attack, _round_in_ball, _RowPGD, _run_rows, _unit_starts

__all__ = ["fgsm", "pgd", "accuracy_vs_eps"]


@jax.jit
def _predict(subject, x):
    return _logits(subject, x).argmax(-1)


def _result(subject, x, adv, labels, targeted, eps, attack: str, norm: str, extra=None) -> xr.Dataset:
    clean = np.asarray(_predict(subject, x))
    pred = np.asarray(_predict(subject, adv))
    labels = np.asarray(labels)
    success = pred == labels if targeted else pred != labels
    diff = (np.asarray(adv) - np.asarray(x)).reshape(len(labels), -1)
    return xr.Dataset({"images": (("image", "y", "x", "channel"), np.asarray(adv)),
                       "prediction": ("image", pred), "clean_prediction": ("image", clean),
                       "success": ("image", success),
                       "linf": ("image", np.abs(diff).max(1)), "l2": ("image", np.sqrt((diff ** 2).sum(1)))},
                      attrs={"subject": subject.name, "attack": attack, "norm": norm, "eps": float(eps),
                             "targeted": int(targeted), "accuracy": float(np.mean(pred == labels)) if not targeted
                             else float("nan"),          # labels are the targets then, not the true classes
                             "clean_accuracy": float(np.mean(clean == labels)) if not targeted else float("nan"),
                             "quantized": "8-bit", **(extra or {})})


def fgsm(subject, x, labels, eps: float, *, targeted: bool = False, loop: str = "auto") -> xr.Dataset:
    """Fast gradient sign method (Goodfellow et al. 2015): one L∞ step of size ``eps`` on the cross-entropy
    (away from ``labels``, or towards them when ``targeted``), clipped to the bounds and 8-bit quantized.
    Returns a Dataset with the adversarial ``images``, ``prediction``, ``success`` and L∞/L2 distances; the
    attribute ``accuracy`` is the accuracy on the attacked images (untargeted)."""
    eps = check_number("eps", eps, low=0)
    targeted, loop = _check_flag("targeted", targeted), _check_loop(loop)
    x, labels = _prepare(subject, x, labels)
    adv = to_device(_attack(subject, x, labels, eps, eps, None, norm="linf", steps=1, restarts=1,
                            targeted=targeted, rand_init=False, loop=loop)[0][0])
    return _result(subject, x, adv, labels, targeted, eps, "fgsm", "linf")


def pgd(subject, x, labels, eps: float, *, norm: str = "linf", steps: int = 40, step_size: float | None = None,
        restarts: int = 1, random_start: bool = True, targeted: bool = False, key=None,
        loop: str = "auto") -> xr.Dataset:
    """Projected gradient descent (Madry et al. 2018) in an L∞ or L2 ball of radius ``eps``, with ``restarts``
    random starts (every restart of every image one row of a single batch) keeping the best per image;
    ``step_size`` defaults to 2.5·eps/steps. Success is judged after 8-bit quantization. Same outputs as
    :func:`fgsm`. ``loop``: "scan" (one compiled loop), "host" (a compiled step per iteration, the batch cut into
    one slice per core; faster on CPU) or "auto" (host on CPU). ``eps``, ``step_size`` and ``steps`` are data of
    the compiled step: new values compile nothing.
    Raises: ``FloatingPointError`` naming the step where a gradient became NaN/inf."""
    eps = check_number("eps", eps, low=0)
    norm = check_choice("norm", norm, ("linf", "l2"))
    steps, restarts = check_count("steps", steps), check_count("restarts", restarts)
    step_size = 2.5 * eps / steps if step_size is None else check_positive("step_size", step_size)
    random_start, targeted = _check_flag("random_start", random_start), _check_flag("targeted", targeted)
    loop = _check_loop(loop)
    if restarts > 1 and not random_start:
        raise ArgumentError(f"restarts={restarts} needs random_start=True: from the clean image every restart is the "
                            f"same attack")
    if random_start or restarts > 1 or key is not None:
        check_key("key", key)                                    # random starts draw from it
    x, labels = _prepare(subject, x, labels)
    adv = to_device(_attack(subject, x, labels, eps, step_size, key, norm=norm, steps=steps, restarts=restarts,
                            targeted=targeted, rand_init=random_start, loop=loop)[0][0])
    return _result(subject, x, adv, labels, targeted, eps, "pgd", norm,
                   {"steps": steps, "restarts": restarts, "step_size": float(step_size)})


# ------------------------------------------------------------------------------------------------ ε sweeps

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


def _sweep_early_stop(subject, x, labels, eps_values, size, key, *, norm: str, steps: int, progress: bool):
    """PGD for every (ε, image) pair with early stopping: a pair leaves the batch at its first 8-bit iterate
    that is misclassified (:class:`~._pgd._RowPGD` on the host loop). Trajectories are those of :func:`pgd`
    until a pair stops, so the accuracy is at most PGD's last-iterate accuracy. Returns the 8-bit images
    (E, N, ...) and whether each is misclassified (E, N), NumPy; ε = 0 pairs are the clean images."""
    e_n, n = len(eps_values), x.shape[0]
    # ε = 0: the clean image rounded into its ball as every attacked image is (the plain path's rows of ε = 0)
    xn = np.asarray(x)              # in NumPy: nothing to compile for these few operations
    clean = _round_in_ball(xn, xn, np.float32(0.0), norm, subject.input_spec.bounds, xp=np).astype(np.float32)
    out = np.broadcast_to(np.asarray(clean)[None], (e_n, *x.shape)).reshape(e_n * n, *x.shape[1:]).copy()
    broken = np.tile(np.asarray(_predict(subject, clean)) != np.asarray(labels), e_n)
    ids = np.flatnonzero(np.repeat(eps_values, n) > 0)              # the pairs to attack, ε-major
    if len(ids):
        image, per_eps = ids % n, ids // n
        start, x_, labels_ = _unit_starts(key, x, restarts=1, norm=norm), x, labels
        if on_host():                            # gathered in NumPy: no small programs to compile (engine.host)
            start, x_, labels_ = np.asarray(start), np.asarray(x_), np.asarray(labels_)
        items = (start[0][image], x_[image], labels_[image], eps_values[per_eps],
                 np.asarray(size, np.float32)[per_eps])
        images, _, fooled = _run_rows(_RowPGD(norm, False), subject, items, steps, loop="host", stop_early=True,
                                      buckets=True, progress=progress, desc="accuracy_vs_eps")
        out[ids], broken[ids] = images, fooled
    return out.reshape(e_n, n, *x.shape[1:]), broken.reshape(e_n, n)


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
    eps = _check_eps_list(eps_values)
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
    size = eps if attack == "fgsm" else 2.5 * eps / steps
    early = early_stop and attack == "pgd" and restarts == 1 and resolve_loop(loop) == "host"
    if early:
        adv, broken = _sweep_early_stop(subject, x, labels, eps, size, key, norm=norm, steps=int(steps),
                                        progress=progress)
    else:
        adv, broken = _attack(subject, x, labels, eps, size, key, norm=norm, steps=steps, restarts=restarts,
                              targeted=False, rand_init=attack != "fgsm", loop=loop, buckets=True)
    acc = 1 - broken.mean(1)
    d = (adv - np.asarray(x)[None]).reshape(len(eps), x.shape[0], -1)
    linf, l2 = np.abs(d).max(2).mean(1), np.sqrt((d ** 2).sum(2)).mean(1)
    return xr.Dataset({"accuracy": ("eps", np.asarray(acc)), "linf": ("eps", np.asarray(linf)),
                       "l2": ("eps", np.asarray(l2))}, coords={"eps": eps},
                      attrs={"subject": subject.name, "attack": attack, "norm": norm, "steps": steps,
                             "restarts": restarts, "n_images": int(x.shape[0]), "quantized": "8-bit",
                             "early_stop": int(early)})
