"""DeepFool: the minimal-L2 untargeted attack, stepping each image to its nearest linearized decision boundary
until its prediction changes."""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ...engine import drive
from ...validation import check_count, check_number
from ._common import _check_loop, _logits, _prepare, _quantize
from .attacks import _result

__all__ = ["deepfool"]


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
        logits_of = lambda img: _logits(subject, img[None])[0]

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
