"""What a network is trained to do. An objective turns a batch into a loss and metrics through ``apply(x, key)``,
which runs the model in training mode (batch statistics updated, dropout on) and returns ``(output,
intermediates)`` — values a model ``sow``s, e.g. an autoencoder's code.

- :class:`Classification` — cross-entropy on labels (with label smoothing);
- :class:`SparseAutoencoder` — reconstruct the image, with an L1 penalty on the code (sparse activations);
- :class:`Contrastive` — SimCLR's NT-Xent (Chen et al. 2020): two augmented views of an image agree, other
  images' views disagree (self-supervised; labels unused);
- :class:`Slowness` — temporal stability (Wiskott & Sejnowski 2002; Földiák 1991): the response changes little
  between consecutive frames of a sequence of shifted crops, with unit variance and decorrelated outputs;
- :func:`sparse_coding` — Olshausen & Field's (1996) sparse coding of image patches, a dictionary learned by
  alternating ISTA inference and gradient steps.

Pass one to :func:`insilico.train.fit` as ``objective=``.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import rng
from ..validation import (
    ArgumentError,
    check_count,
    check_finite,
    check_fraction,
    check_key,
    check_number,
    check_positive,
)
from .augment import AUGMENTATIONS


@dataclass(frozen=True)
class Classification:
    """Softmax cross-entropy with ``label_smoothing`` (overrides the config's); metric ``acc`` (of the output).
    A model that sows ``step_logits`` (a recurrent network's readout at every time step) is trained on the
    cross-entropy averaged over its steps."""

    label_smoothing: float = 0.1
    uses_labels = True

    def __post_init__(self):
        check_fraction("label_smoothing", self.label_smoothing)

    def __call__(self, apply, x, y, key):
        logits, inter = apply(x, key)
        labels = optax.smooth_labels(jax.nn.one_hot(y, logits.shape[-1]), self.label_smoothing)
        steps = inter.get("step_logits", (logits,))
        loss = jnp.mean(jnp.stack([optax.softmax_cross_entropy(s, labels).mean() for s in steps]))
        return loss, {"acc": jnp.mean(jnp.argmax(logits, -1) == y)}


@dataclass(frozen=True)
class SparseAutoencoder:
    """Mean squared reconstruction error + ``l1`` × mean |code| (the model sows its code as
    ``"code_activity"``, e.g. :class:`insilico.models.Autoencoder`); metrics ``mse`` and ``active`` (fraction of
    non-zero code units)."""

    l1: float = 1e-3
    uses_labels = False

    def __post_init__(self):
        check_number("l1", self.l1, low=0)

    def __call__(self, apply, x, y, key):
        recon, inter = apply(x, key)
        code = inter["code_activity"][0]
        mse = jnp.mean((recon - x) ** 2)
        return mse + self.l1 * jnp.mean(jnp.abs(code)), {"mse": mse, "active": jnp.mean(code > 0)}


def nt_xent(z1, z2, temperature: float):
    """SimCLR's normalized-temperature cross-entropy for paired embeddings (N, D): each view must pick its
    partner among the other 2N − 1; returns (loss, top-1 accuracy of that choice)."""
    temperature = check_positive("temperature", temperature)         # ≤ 0 would train the opposite objective
    if jnp.ndim(z1) != 2 or jnp.shape(z1) != jnp.shape(z2):
        raise ArgumentError(f"z1 and z2 must be paired embeddings (N, D) of one shape; got {jnp.shape(z1)} and "
                            f"{jnp.shape(z2)}")
    z = jnp.concatenate([z1, z2])
    z = z / jnp.linalg.norm(z, axis=-1, keepdims=True).clip(1e-8)
    sim = z @ z.T / temperature
    n = z1.shape[0]
    sim = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, sim)
    target = jnp.concatenate([jnp.arange(n) + n, jnp.arange(n)])
    loss = optax.softmax_cross_entropy_with_integer_labels(sim, target).mean()
    return loss, jnp.mean(jnp.argmax(sim, -1) == target)


@dataclass(frozen=True)
class Contrastive:
    """NT-Xent between the model outputs (the embedding) for two augmented views of each image; ``augment`` names
    an augmentation of :mod:`insilico.train.augment`; metric ``pair_acc``."""

    temperature: float = 0.5
    augment: str = "flip_crop"
    uses_labels = False

    def __post_init__(self):
        # a temperature ≤ 0 would train the opposite objective with a finite loss
        check_positive("temperature", self.temperature)
        if AUGMENTATIONS.get(self.augment) is None:
            valid = [k for k, v in AUGMENTATIONS.items() if v is not None]
            raise ArgumentError(f"Contrastive needs an augmentation to make two views; got {self.augment!r}, "
                                f"valid: {', '.join(valid)}")

    def __call__(self, apply, x, y, key):
        aug = AUGMENTATIONS[self.augment]
        k1, k2, k3, k4 = jax.random.split(key, 4)
        z1, _ = apply(aug(k1, x), k3)
        z2, _ = apply(aug(k2, x), k4)
        loss, acc = nt_xent(z1, z2, self.temperature)
        return loss, {"pair_acc": acc}


def shifted_pair(key, x, shift: int):
    """Two consecutive frames of a translation sequence per image: a random crop (of the image reflected
    across its borders) and the same crop moved by ``shift`` pixels in a random one of four directions."""
    shift = check_count("shift", shift)
    n, h, w, c = x.shape
    pad = jnp.pad(x, ((0, 0), (2 * shift, 2 * shift), (2 * shift, 2 * shift), (0, 0)), mode="reflect")
    k1, k2 = jax.random.split(key)
    start = rng.randint(k1, (n, 2), shift, 3 * shift + 1)
    steps = jnp.array([[0, 1], [0, -1], [1, 0], [-1, 0]]) * shift
    move = steps[jax.random.randint(k2, (n,), 0, 4)]

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, c))

    return jax.vmap(crop)(pad, start), jax.vmap(crop)(pad, start + move)


@dataclass(frozen=True)
class Slowness:
    """Temporal stability on sequences of shifted crops: mean squared change of the standardized output between
    consecutive frames, plus ``decorrelation`` × the squared off-diagonal correlations (so that the outputs
    cannot all become one slow feature) and a unit-variance penalty (so that they cannot become constant).
    Metric ``slowness``: the change relative to that of two unrelated images (1 = not slow, 0 = invariant)."""

    shift: int = 2
    decorrelation: float = 1.0
    uses_labels = False

    def __post_init__(self):
        check_count("shift (pixels between frames)", self.shift)
        check_number("decorrelation", self.decorrelation, low=0)

    def __call__(self, apply, x, y, key):
        k1, k2 = jax.random.split(key)
        a, b = shifted_pair(k1, x, self.shift)
        za, _ = apply(a, k2)
        zb, _ = apply(b, k2)
        mu, sd = za.mean(0), za.std(0) + 1e-6
        na, nb = (za - mu) / sd, (zb - mu) / sd
        change = jnp.mean((na - nb) ** 2)
        corr = na.T @ na / za.shape[0]
        d = corr.shape[0]
        off = (jnp.sum(corr ** 2) - jnp.sum(jnp.diag(corr) ** 2)) / max(d * (d - 1), 1)
        var = jnp.mean((jnp.log(za.var(0) + 1e-6)) ** 2)
        unrelated = jnp.mean((na - jnp.roll(na, 1, 0)) ** 2)
        return change + self.decorrelation * off + var, {"slowness": change / (unrelated + 1e-8)}


# ------------------------------------------------------------------------------------------------ sparse coding

def _ista(x, d, lam: float, steps: int):
    """Codes minimizing ½‖x − a·D‖² + λ‖a‖₁ for rows of x (N, P) and dictionary D (K, P), by ISTA."""
    lip = jnp.linalg.norm(d @ d.T, 2)
    a = jnp.zeros((x.shape[0], d.shape[0]), x.dtype)

    def step(a, _):
        grad = (a @ d - x) @ d.T
        z = a - grad / lip
        return jnp.sign(z) * jnp.maximum(jnp.abs(z) - lam / lip, 0.0), None

    return jax.lax.scan(step, a, None, steps)[0]


@jax.jit
def _sc_update(d, x, lam, lr):
    a = _ista(x, d, lam, 100)
    resid = x - a @ d
    d = d + lr * a.T @ resid / x.shape[0]
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True).clip(1e-8)
    return d, jnp.mean(resid ** 2), jnp.mean(a != 0)


def sparse_coding(patches, n_atoms: int, *, key, lam: float = 0.1, steps: int = 300, batch_size: int = 256,
                  lr: float = 1.0) -> dict:
    """Learn a dictionary for ``patches`` (N, P) — rows zero-mean, e.g. whitened image patches — by Olshausen &
    Field's alternation: sparse codes by ISTA (λ = ``lam``), then a gradient step on the unit-norm atoms.
    Returns ``{"dictionary": (n_atoms, P), "mse": per-step reconstruction error, "active": per-step fraction of
    non-zero coefficients}``."""
    n_atoms, steps, batch_size = (check_count(name, v) for name, v in
                                  (("n_atoms", n_atoms), ("steps", steps), ("batch_size", batch_size)))
    lam, lr = check_number("lam", lam, low=0), check_positive("lr", lr)
    check_key("key", key)
    x = jnp.asarray(check_finite("patches", patches), jnp.float32)
    if x.ndim != 2 or x.shape[0] < n_atoms:
        raise ValueError(f"sparse_coding needs patches (N, P) with N ≥ n_atoms; got shape {tuple(x.shape)}")
    k0, key = jax.random.split(key)
    d = x[jax.random.choice(k0, x.shape[0], (n_atoms,), replace=False)]
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True).clip(1e-8)
    mse, active = [], []
    for s in range(steps):
        idx = jax.random.choice(jax.random.fold_in(key, s), x.shape[0], (min(batch_size, x.shape[0]),),
                                replace=False)
        d, e, a = _sc_update(d, x[idx], lam, lr)
        mse.append(float(e))
        active.append(float(a))
    return {"dictionary": np.asarray(d), "mse": np.array(mse), "active": np.array(active)}
