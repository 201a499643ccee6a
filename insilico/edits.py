"""Edits as data: an :class:`Edit` is a perturbation of one site as a pytree of five arrays of one shape,

    y = clamp_mask * clamp_value + (1 - clamp_mask) * (gain * x + bias) + noise_std * eps,  eps ~ N(0, 1)

broadcast over the site's unit axes, with the constructors of the usual manipulations (lesion, mean ablation,
clamp, gain, noise, one edit per unit). Applied by :mod:`insilico.electrode`.

>>> import jax.numpy as jnp
>>> e = lesion(jnp.array([0.0, 1.0, 0.0]))
>>> e.apply(jnp.ones((2, 3))).tolist()
[[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]
>>> unit_edits(4).shape
(4, 4)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import rng
from .types import Activations, PRNGKey, UnitMask, UnitValues
from .validation import ArgumentError, check_choice, check_count, check_finite, check_in_range, check_mask

__all__ = ["Edit", "identity", "lesion", "mean_ablation", "clamp", "gain", "noise", "unit_edits", "check_fields"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Edit:
    """A perturbation of one site, as a pytree of arrays with one common shape (broadcast over unit axes).

    ``has_noise`` is static (part of the tree structure): edits with noise need a PRNG ``key`` in
    :func:`run`. Stack edits along a leading axis with :meth:`stack` and ``jax.vmap`` over them.
    """

    clamp_mask: jax.Array
    clamp_value: jax.Array
    gain: jax.Array
    bias: jax.Array
    noise_std: jax.Array
    has_noise: bool = dataclasses.field(default=False, metadata=dict(static=True))

    @property
    def shape(self) -> tuple:
        return tuple(self.gain.shape)

    def apply(self, x: Activations, key: PRNGKey | None = None) -> Activations:
        """The edited activation ``y`` for activation ``x`` (N, *unit_shape)."""
        y = self.clamp_mask * self.clamp_value + (1.0 - self.clamp_mask) * (self.gain * x + self.bias)
        if self.has_noise:
            if key is None:
                raise ArgumentError("a noise edit needs a PRNG key (run(..., key=jax.random.key(0))); got key=None")
            y = y + self.noise_std * rng.normal(key, x.shape, x.dtype)
        return y

    @staticmethod
    def stack(edits: Sequence[Edit]) -> Edit:
        """Stack edits of one shape along a new leading axis (for ``jax.vmap``)."""
        edits = list(edits)
        if not edits or not all(isinstance(e, Edit) for e in edits):
            raise ArgumentError(f"Edit.stack needs one or more Edits; got {edits!r:.80}")
        return jax.tree.map(lambda *a: jnp.stack(a), *edits)


def _edit(clamp_mask=0.0, clamp_value=0.0, gain_=1.0, bias=0.0, noise_std=0.0, has_noise=False) -> Edit:
    mask, value, g, b, std = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float32)
                                                     for a in (clamp_mask, clamp_value, gain_, bias, noise_std)))
    return Edit(mask, value, g, b, std, has_noise=has_noise)


def _nonnegative(name: str, value):
    """``value`` finite with every entry ≥ 0 (a scale per unit); traced values pass unchecked."""
    return check_in_range(name, value, low=0)


def check_fields(name: str, e: Edit):
    """The value checks of the constructors, on the fields of a concrete ``Edit`` (however it was made)."""
    check_mask(f"clamp_mask of the edit for {name!r}", e.clamp_mask)
    for field in ("clamp_value", "gain", "bias"):
        check_finite(f"{field} of the edit for {name!r}", getattr(e, field))
    _nonnegative(f"noise_std of the edit for {name!r}", e.noise_std)


def identity(shape: tuple[int, ...] = ()) -> Edit:
    """The edit that changes nothing, with fields of ``shape`` (e.g. ``(C,)``)."""
    if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ArgumentError(f"shape must be a tuple of sizes ≥ 0, e.g. (C,); got {shape!r}")
    return _edit(jnp.zeros(shape))


def lesion(mask: UnitMask) -> Edit:
    """Silence (clamp to 0) the units where ``mask`` is 1. ``mask``: (C,), (H, W, C), ... or stacked; values in
    [0, 1] (fractions blend). A unit index is not a mask: ``jnp.zeros(C).at[index].set(1)``."""
    return _edit(check_mask("mask", mask), 0.0)


def mean_ablation(mask: UnitMask, mean: UnitValues) -> Edit:
    """Clamp the units where ``mask`` is 1 to ``mean`` (their mean over a reference set, see
    :func:`site_means`)."""
    return _edit(check_mask("mask", mask), check_finite("mean", mean))


def clamp(mask: UnitMask, value: UnitValues) -> Edit:
    """Clamp the units where ``mask`` is 1 to ``value`` (e.g. to drive a unit at a fixed rate)."""
    return _edit(check_mask("mask", mask), check_finite("value", value))


def gain(g: UnitValues, bias: UnitValues = 0.0) -> Edit:
    """Multiply the units by ``g`` (and add ``bias``). ``jax.grad`` w.r.t. ``g`` at 1 is an attribution."""
    return _edit(0.0, 0.0, check_finite("g", g), check_finite("bias", bias))


def noise(std: UnitValues) -> Edit:
    """Add Gaussian noise of standard deviation ``std`` (≥ 0, per unit); :func:`run` then needs ``key``."""
    return _edit(0.0, 0.0, 1.0, 0.0, _nonnegative("std", std), has_noise=True)


def unit_edits(n_units: int, kind: str = "lesion", value: UnitValues | None = None) -> Edit:
    """One edit per unit of an ``n_units``-channel site, stacked on a leading axis: shape (n_units, n_units).

    ``kind``: "lesion" (clamp to 0; no ``value``) or "clamp" (clamp to ``value``, a scalar or per-unit
    (n_units,), default 0).
    Example: ``jax.vmap(lambda e: run(s, x, {"conv3": e})[0])(unit_edits(128))`` runs all 128 lesions.
    """
    n_units = check_count("n_units", n_units)
    check_choice("kind", kind, ("lesion", "clamp"))
    if kind == "lesion" and value is not None:
        raise ArgumentError(f"value is for kind='clamp' (a lesion clamps to 0); got value={value!r:.40} with "
                            f"kind='lesion'")
    masks = jnp.eye(n_units, dtype=jnp.float32)
    if kind == "lesion":
        return lesion(masks)
    value = check_finite("value", 0.0 if value is None else value)
    if np.ndim(value) not in (0, 1) or np.size(value) not in (1, n_units):
        raise ArgumentError(f"value must be a scalar or one value per unit ({n_units},); got shape "
                            f"{np.shape(value)}")
    return clamp(masks, jnp.broadcast_to(jnp.asarray(value, jnp.float32).reshape(-1), (n_units,)))
