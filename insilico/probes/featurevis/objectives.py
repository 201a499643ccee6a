"""Objectives (Lucid's ``objectives``): what feature visualization maximizes, built from small pieces.

An :class:`Objective` maps the activations of the transformed images, the rendered images and the unit being
visualized to one value per image; objectives compose with ``+``, ``-``, ``*`` and ``/``. Pieces: a unit
(:func:`neuron`), a channel's mean (:func:`channel`), a direction in activation space (:func:`direction`),
:func:`deepdream`, a class logit (:func:`class_logit`); penalties on the image (:func:`total_variation`,
:func:`l1`, :func:`l2`); and batch-level terms over the seeds of one unit (:func:`diversity`, :func:`alignment`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from ...validation import ArgumentError, check_finite, check_indices, check_number, check_positive

__all__ = ["Objective", "neuron", "channel", "direction", "deepdream", "class_logit", "total_variation", "l1",
           "l2", "diversity", "alignment"]


@dataclass(frozen=True, eq=False)
class Objective:
    """A quantity to maximize: ``fn(acts, images, unit) -> (B,)`` per-image values, where ``acts`` maps site
    names to activations (B, ...) of the transformed images, ``images`` are the rendered images (B, H, W, C)
    and ``unit`` the index of the unit being visualized (traced). Objectives compose:
    ``channel("conv2") - 1e-3 * total_variation()``, ``neuron("fc1") * channel("conv3")``, ``-channel(...)``
    (inhibit). ``sites``: sites whose activations the objective reads; ``unit_sites``: sites whose last axis
    ``unit`` indexes (checked against the requested units). ``spec``: a hashable description; objectives
    with equal specs are equal, so repeated calls reuse the compiled probe (None: compare by identity).
    ``checks``: functions ``(subject, units) -> None`` that :func:`visualize` calls before compiling, raising
    :class:`~insilico.validation.ArgumentError` for an explicit index (a channel, a position, a direction's
    width) that the subject's site does not have."""

    fn: Callable
    name: str
    sites: frozenset = field(default_factory=frozenset)
    unit_sites: frozenset = field(default_factory=frozenset)
    spec: tuple | None = None
    checks: tuple = ()

    def __post_init__(self):
        if not callable(self.fn):
            raise ArgumentError(f"fn must be a function (acts, images, unit) -> (B,) values; got {self.fn!r}")
        for name in ("sites", "unit_sites"):
            value = getattr(self, name)
            names = (value,) if isinstance(value, str) else tuple(value)
            if not all(isinstance(n, str) for n in names):
                raise ArgumentError(f"{name} must be site names (strings); got {value!r}")
            object.__setattr__(self, name, frozenset(names))
        object.__setattr__(self, "checks", tuple(self.checks))

    def __call__(self, acts, images, unit):
        return self.fn(acts, images, unit)

    def __eq__(self, other):
        if not isinstance(other, Objective):
            return NotImplemented
        return self is other or (self.spec is not None and self.spec == other.spec)

    def __hash__(self):
        return hash(self.spec) if self.spec is not None else id(self)

    def _combine(self, other, op, sym):
        if isinstance(other, Objective):
            spec = None if self.spec is None or other.spec is None else (sym, self.spec, other.spec)
            return Objective(lambda a, i, u: op(self(a, i, u), other(a, i, u)), f"({self.name} {sym} {other.name})",
                             self.sites | other.sites, self.unit_sites | other.unit_sites, spec,
                             self.checks + other.checks)
        c = float(check_number(f"the number {sym} {self.name}", other))
        return Objective(lambda a, i, u: op(self(a, i, u), c), f"({self.name} {sym} {c:g})", self.sites,
                         self.unit_sites, _spec(sym, self.spec, c), self.checks)

    def __add__(self, other):
        return self._combine(other, jnp.add, "+")

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self._combine(other, jnp.subtract, "-")

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, Objective):
            return self._combine(other, jnp.multiply, "*")
        c = float(check_number(f"the weight of {self.name}", other))
        return Objective(lambda a, i, u: c * self(a, i, u), f"{c:g} * {self.name}", self.sites, self.unit_sites,
                         _spec("*", c, self.spec), self.checks)

    __rmul__ = __mul__

    def __truediv__(self, c):
        c = check_number(f"the divisor of {self.name}", c)
        if c == 0:
            raise ArgumentError(f"the divisor of {self.name} must be a non-zero number; got {c!r}")
        return self * (1.0 / c)

    def __neg__(self):
        return Objective(lambda a, i, u: -self(a, i, u), f"-{self.name}", self.sites, self.unit_sites,
                         _spec("neg", self.spec), self.checks)

    def __repr__(self):
        return f"Objective({self.name})"


def _check_site_name(site):
    if not isinstance(site, str):
        raise ArgumentError(f"site must be a site name (a string); got {site!r}")
    return site


def _check_index(name: str, value):
    """None, or an integer ≥ 0 (its upper end is checked against the subject's site by :func:`visualize`)."""
    return None if value is None else check_number(name, value, low=0, integer=True)


def _spec(*parts):
    return None if any(p is None for p in parts) else parts


def _pick(index, unit):
    return unit if index is None else index


def _index_check(site: str, what: str, value, axis: int):
    """A check (subject, units) that ``value`` indexes axis ``axis`` of the unit shape of ``site`` (a
    convolutional site (H, W, C) for the spatial axes 0 and 1)."""
    def check(subject, units):
        shape = tuple(subject.sites[site])
        if axis >= 0 and len(shape) != 3:
            raise ArgumentError(f"{what} applies to convolutional sites (H, W, C); {site!r} of {subject.name} has "
                                f"units of shape {shape}")
        check_indices(f"{what} (of {site!r} of {subject.name}, which has {shape[axis]})", value, shape[axis])
    return check


def neuron(site: str, index: int | None = None, x: int | None = None, y: int | None = None) -> Objective:
    """One unit: channel ``index`` (default: the unit being visualized) at position (``y``, ``x``) (default:
    the centre) of a convolutional site, or unit ``index`` of a dense site."""
    _check_site_name(site)
    index, x, y = _check_index("index", index), _check_index("x", x), _check_index("y", y)
    checks = tuple(_index_check(site, name, v, axis) for name, v, axis in
                   (("index (channel)", index, -1), ("y", y, 0), ("x", x, 1)) if v is not None)

    def fn(acts, images, unit):
        a = acts[site]
        if a.ndim == 4:
            yy = a.shape[1] // 2 if y is None else y
            xx = a.shape[2] // 2 if x is None else x
            a = a[:, yy, xx, :]
        elif a.ndim > 2:                        # other unit shapes (e.g. (T, C)): the centre of every position axis
            a = a[(slice(None), *(n // 2 for n in a.shape[1:-1]))]
        return a[:, _pick(index, unit)]
    return Objective(fn, f"neuron({site}{'' if index is None else ':' + str(index)})", frozenset([site]),
                     frozenset([site]) if index is None else frozenset(), ("neuron", site, index, x, y), checks)


def _channels(a):
    """Activations (N, ..., C) averaged over every position axis: (N, C)."""
    return a.mean(axis=tuple(range(1, a.ndim - 1))) if a.ndim > 2 else a


def channel(site: str, index: int | None = None) -> Objective:
    """Mean activation of a channel over all positions (a dense site: the unit itself)."""
    _check_site_name(site)
    index = _check_index("index", index)
    checks = () if index is None else (_index_check(site, "index (channel)", index, -1),)

    def fn(acts, images, unit):
        a = acts[site]
        a = _channels(a)
        return a[:, _pick(index, unit)]
    return Objective(fn, f"channel({site}{'' if index is None else ':' + str(index)})", frozenset([site]),
                     frozenset([site]) if index is None else frozenset(), ("channel", site, index), checks)


def direction(site: str, vectors, cossim_pow: float = 0.0) -> Objective:
    """Projection of the (spatially averaged) activation vector onto ``vectors`` (C,), or, when ``vectors``
    is (U, C), onto row ``unit``. ``cossim_pow`` > 0 multiplies by cosine similarity^pow (Lucid)."""
    _check_site_name(site)
    arr = check_finite("vectors", vectors, ndim=(1, 2)).astype(np.float32)
    cossim_pow = check_number("cossim_pow", cossim_pow, low=0)
    v = jnp.asarray(arr)

    def check(subject, units):
        shape = tuple(subject.sites[site])
        if arr.shape[-1] != shape[-1]:
            raise ArgumentError(f"vectors must have {shape[-1]} entries per direction (the channels of {site!r} of "
                                f"{subject.name}); got shape {arr.shape}")
        if arr.ndim == 2:
            check_indices(f"units (rows of the {arr.shape[0]} direction vectors)", units, arr.shape[0])

    def fn(acts, images, unit):
        a = acts[site]
        a = _channels(a)
        d = v[unit] if v.ndim == 2 else v
        dot = a @ d
        if cossim_pow:
            cos = dot / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(d) + 1e-8)
            dot = dot * jnp.maximum(cos, 1e-3) ** cossim_pow
        return dot
    return Objective(fn, f"direction({site})", frozenset([site]), frozenset(),
                     ("direction", site, arr.shape, arr.tobytes(), float(cossim_pow)), (check,))


def deepdream(site: str) -> Objective:
    """Mean squared activation of the whole site (Mordvintsev et al.'s DeepDream)."""
    _check_site_name(site)

    def fn(acts, images, unit):
        a = acts[site]
        return (a.reshape(a.shape[0], -1) ** 2).mean(-1)
    return Objective(fn, f"deepdream({site})", frozenset([site]), spec=("deepdream", site))


def class_logit(site: str = "logits", index: int | None = None) -> Objective:
    """A class logit (default: the class with index = the unit being visualized)."""
    obj = neuron(site, index)
    index = _check_index("index", index)
    return Objective(obj.fn, f"class_logit({site}{'' if index is None else ':' + str(index)})", obj.sites,
                     obj.unit_sites, ("class_logit", site, index), obj.checks)


def total_variation() -> Objective:
    """Total variation of the rendered image (a penalty: subtract it)."""
    def fn(acts, images, unit):
        dy = jnp.abs(jnp.diff(images, axis=1)).sum(axis=(1, 2, 3))
        dx = jnp.abs(jnp.diff(images, axis=2)).sum(axis=(1, 2, 3))
        return dx + dy
    return Objective(fn, "total_variation", spec=("total_variation",))


def l1(constant: float = 0.5) -> Objective:
    """L1 distance of the image from ``constant`` (a penalty: subtract it)."""
    constant = check_number("constant", constant)
    return Objective(lambda a, img, u: jnp.abs(img - constant).sum(axis=(1, 2, 3)), "l1",
                     spec=("l1", float(constant)))


def l2(constant: float = 0.5, epsilon: float = 1e-6) -> Objective:
    """L2 distance of the image from ``constant`` (a penalty: subtract it)."""
    constant, epsilon = check_number("constant", constant), check_number("epsilon", epsilon, low=0)
    return Objective(lambda a, img, u: jnp.sqrt(epsilon + ((img - constant) ** 2).sum(axis=(1, 2, 3))), "l2",
                     spec=("l2", float(constant), float(epsilon)))


def _batch_share(total, b):
    return jnp.full((b,), total / b)


def diversity(site: str) -> Objective:
    """Negative mean pairwise cosine similarity of the images' Gram matrices at ``site`` (Olah et al. 2017):
    add ``w * diversity(site)`` so the seeds of one unit show different facets. A batch-level term, shared
    equally by the images."""
    _check_site_name(site)

    def fn(acts, images, unit):
        a = acts[site]
        b = a.shape[0]
        if b < 2:
            return jnp.zeros((b,))
        flat = a.reshape(b, -1, a.shape[-1])
        gram = jnp.einsum("bpc,bpd->bcd", flat, flat).reshape(b, -1)
        gram = gram / (jnp.linalg.norm(gram, axis=-1, keepdims=True) + 1e-8)
        sim = gram @ gram.T
        return _batch_share(-(sim.sum() - jnp.trace(sim)) / (b * (b - 1)), b)
    return Objective(fn, f"diversity({site})", frozenset([site]), spec=("diversity", site))


def alignment(site: str, decay_ratio: float = 2.0) -> Objective:
    """Penalty on differences between neighbouring images of the batch at ``site`` (weights decay as
    ``decay_ratio``^-distance), for smooth interpolations; subtract it."""
    _check_site_name(site)
    decay_ratio = check_positive("decay_ratio", decay_ratio)

    def fn(acts, images, unit):
        a = acts[site]
        b = a.shape[0]
        total = 0.0
        for d in range(1, b):
            total = total + ((a[d:] - a[:-d]) ** 2).mean() / decay_ratio ** d
        return _batch_share(total, b)
    return Objective(fn, f"alignment({site})", frozenset([site]), spec=("alignment", site, float(decay_ratio)))
