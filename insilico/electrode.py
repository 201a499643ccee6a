"""The electrode: record from any named site of a pure Flax model and perturb any unit, with edits as data.

A *site* is the output of a :class:`~insilico.models.Stage` submodule, named by its module path joined by
``/`` (``conv2``, ``stage2/block1``, ``logits``). Recording and editing happen in a Linen method interceptor
that is entered *inside* the traced function, so :func:`run` is pure, jit-able, vmappable over a leading edit
axis and differentiable. It compiles once per (model, recorded sites, edited sites, shapes): changing edit
*values* never retraces.

An :class:`Edit` acts on a site's activation ``x`` as::

    y = clamp_mask * clamp_value + (1 - clamp_mask) * (gain * x + bias) + noise_std * eps,  eps ~ N(0, 1)

with every field broadcast over the site's unit axes (``(C,)`` edits channels of an (H, W, C) map;
``(H, W, C)`` edits single units). For a 0/1 mask this is ``where(mask, value, gain * x + bias)``; a dense
blend keeps it differentiable w.r.t. every field and vmap-friendly (no scatter).

Example::

    subject = insilico.zoo.load("cifar_convnet")
    logits, rec = record(subject, images, ["conv2", "fc1"])
    mask = jnp.zeros(128).at[7].set(1)                       # unit 7 of conv3
    logits, rec = run(subject, images, edits={"conv3": lesion(mask)}, record=["conv3"])
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .models import Stage

__all__ = ["Edit", "identity", "lesion", "mean_ablation", "clamp", "gain", "noise", "unit_edits",
           "run", "record", "sample", "list_sites", "site_means", "lesion_synapses", "synapse_paths", "trace_count",
           "SiteError", "InputError"]


class SiteError(KeyError):
    """An unknown site name; the message lists the valid ones."""

    def __str__(self):  # KeyError would print the repr of the message
        return str(self.args[0])


class InputError(ValueError):
    """A stimulus batch with the wrong shape, dtype or non-finite values."""


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

    def apply(self, x, key=None):
        """The edited activation ``y`` for activation ``x`` (N, *unit_shape)."""
        y = self.clamp_mask * self.clamp_value + (1.0 - self.clamp_mask) * (self.gain * x + self.bias)
        if self.has_noise:
            y = y + self.noise_std * jax.random.normal(key, x.shape, x.dtype)
        return y

    @staticmethod
    def stack(edits: Sequence["Edit"]) -> "Edit":
        """Stack edits of one shape along a new leading axis (for ``jax.vmap``)."""
        return jax.tree.map(lambda *a: jnp.stack(a), *edits)


def _edit(clamp_mask=0.0, clamp_value=0.0, gain_=1.0, bias=0.0, noise_std=0.0, has_noise=False) -> Edit:
    fields = jnp.broadcast_arrays(*(jnp.asarray(a, jnp.float32)
                                    for a in (clamp_mask, clamp_value, gain_, bias, noise_std)))
    return Edit(*fields, has_noise=has_noise)


def identity(shape=()) -> Edit:
    """The edit that changes nothing, with fields of ``shape`` (e.g. ``(C,)``)."""
    return _edit(jnp.zeros(shape))


def lesion(mask) -> Edit:
    """Silence (clamp to 0) the units where ``mask`` is 1. ``mask``: (C,), (H, W, C), ... or stacked."""
    return _edit(mask, 0.0)


def mean_ablation(mask, mean) -> Edit:
    """Clamp the units where ``mask`` is 1 to ``mean`` (their mean over a reference set, see
    :func:`site_means`)."""
    return _edit(mask, mean)


def clamp(mask, value) -> Edit:
    """Clamp the units where ``mask`` is 1 to ``value`` (e.g. to drive a unit at a fixed rate)."""
    return _edit(mask, value)


def gain(g, bias=0.0) -> Edit:
    """Multiply the units by ``g`` (and add ``bias``). ``jax.grad`` w.r.t. ``g`` at 1 is an attribution."""
    return _edit(0.0, 0.0, g, bias)


def noise(std) -> Edit:
    """Add Gaussian noise of standard deviation ``std`` (per unit); :func:`run` then needs ``key``."""
    return _edit(0.0, 0.0, 1.0, 0.0, std, has_noise=True)


def unit_edits(n_units: int, kind: str = "lesion", value=0.0) -> Edit:
    """One edit per unit of an ``n_units``-channel site, stacked on a leading axis: shape (n_units, n_units).

    ``kind``: "lesion" (clamp to 0) or "clamp" (clamp to ``value``, a scalar or per-unit (n_units,)).
    Example: ``jax.vmap(lambda e: run(s, x, {"conv3": e})[0])(unit_edits(128))`` runs all 128 lesions.
    """
    masks = jnp.eye(n_units, dtype=jnp.float32)
    if kind == "lesion":
        return lesion(masks)
    if kind == "clamp":
        return clamp(masks, jnp.broadcast_to(jnp.asarray(value, jnp.float32), (n_units,)))
    raise ValueError(f"unknown unit edit kind {kind!r}; valid: lesion, clamp")


_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the electrode's forward function has been traced (for retrace tests)."""
    return _TRACES["count"]


def _site_name(module: nn.Module) -> str:
    return "/".join(str(p) for p in module.path)


def _forward(model, record_sites, variables, x, edits, key, order=None):
    """Apply ``model`` with edits and recording. ``record_sites``: tuple of names, or None for all.
    ``order``, if a list, receives the site names in call order (at trace time)."""
    _TRACES["count"] += 1
    recorded = {}
    keys = {}
    if key is not None:
        for i, name in enumerate(sorted(edits)):
            keys[name] = jax.random.fold_in(key, i)

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__" or not isinstance(context.module, Stage):
            return next_fun(*args, **kwargs)
        y = next_fun(*args, **kwargs)
        name = _site_name(context.module)
        if order is not None:
            order.append(name)
        if name in edits:
            y = edits[name].apply(y, keys.get(name))
        if record_sites is None or name in record_sites:
            recorded[name] = y
        return y

    # stochastic units draw from a "noise" stream of the key (noise-free without a key)
    rngs = {} if key is None else {"noise": jax.random.fold_in(key, 0x7FFFFFFF)}
    with nn.intercept_methods(interceptor):
        out = model.apply(variables, x, rngs=rngs)
    return out, recorded


_jit_forward = jax.jit(_forward, static_argnums=(0, 1))


def list_sites(model: nn.Module, variables: dict, input_shape) -> dict:
    """Ordered ``{site: unit shape}`` of ``model`` for inputs of shape (H, W, C), without computing anything."""
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    order: list = []
    _, rec = jax.eval_shape(lambda v, x: _forward(model, None, v, x, {}, None, order), variables, x)
    return {name: tuple(rec[name].shape[1:]) for name in dict.fromkeys(order)}


def _valid(subject) -> str:
    return ", ".join(subject.sites)


def _check_sites(subject, names: Iterable[str], what: str):
    for name in names:
        if name not in subject.sites:
            steps = [s for s in subject.sites if s.startswith(f"{name}/t") and s[len(name) + 2:].isdigit()]
            if steps:
                raise SiteError(f"{name!r} on {subject.name} is recurrent: name one of its time steps for {what} "
                                f"({', '.join(steps)})")
            raise SiteError(f"unknown site {name!r} for {what} on {subject.name}; valid: {_valid(subject)}")


def _all_finite(x) -> bool | None:
    """Whether every value of ``x`` is finite (reduced on the device); None while ``x`` is being traced."""
    try:
        return bool(jnp.isfinite(x).all()) if isinstance(x, jax.Array) else bool(np.isfinite(x).all())
    except (jax.errors.TracerBoolConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_input(subject, x):
    spec = subject.input_spec
    shape = tuple(getattr(x, "shape", ()))
    dtype = getattr(x, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        hint = " (divide uint8 images by 255)" if dtype is not None and jnp.issubdtype(dtype, jnp.integer) else ""
        raise InputError(f"input must be a floating-point array of pixels in {spec.bounds}; got dtype "
                         f"{dtype}{hint}")
    if shape == tuple(spec.shape):
        raise InputError(f"input must be a batch of shape (N, {', '.join(map(str, spec.shape))}); got a single "
                         f"image of shape {shape}: add a leading axis (x[None])")
    if len(shape) != 4 or shape[1:] != tuple(spec.shape):
        raise InputError(f"input shape {shape} does not match {subject.name}'s input (N, "
                         f"{', '.join(map(str, spec.shape))}) (NHWC)")
    if _all_finite(x) is False:
        bad = ~np.isfinite(np.asarray(x))
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"input contains {int(bad.sum())} NaN/inf value(s), the first at index {first}")


def _check_edits(subject, edits: Mapping):
    _check_sites(subject, edits, "an edit")
    for name, e in edits.items():
        if not isinstance(e, Edit):
            raise TypeError(f"edit for site {name!r} must be an insilico.electrode.Edit; got {type(e).__name__}")
        site_shape = tuple(subject.sites[name])
        try:
            ok = jnp.broadcast_shapes(e.shape, site_shape) == site_shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"edit for site {name!r} has shape {e.shape}, which does not broadcast over the "
                             f"site's unit shape {site_shape}; use (C,) = ({site_shape[-1]},) for channels, "
                             f"{site_shape} for single units, and jax.vmap for a leading sweep axis")


def run(subject, x, edits: Mapping[str, Edit] | None = None, record: Sequence[str] | str | None = (),
        key=None, variables=None):
    """Run ``subject`` on images ``x`` (N, H, W, C) with ``edits`` applied, recording ``record`` sites.

    Args:
        edits: ``{site: Edit}``. record: site names to keep (a name, a list, or None for every site).
        key: PRNG key, required when an edit adds noise. variables: override ``subject.variables`` (e.g.
        synaptic lesions from :func:`lesion_synapses`, vmappable).
    Returns: ``(output, {site: activation (N, *unit_shape)})``; only requested sites are returned.
    Pure and jit-able; vmap over a leading axis of ``edits``, ``key`` or ``variables``.
    """
    edits = dict(edits or {})
    if isinstance(record, str):
        record = (record,)
    record_sites = None if record is None else tuple(record)
    _check_sites(subject, record_sites or (), "recording")
    _check_edits(subject, edits)
    _check_input(subject, x)
    if key is None and any(e.has_noise for e in edits.values()):
        raise ValueError(f"noise edits at {[n for n, e in edits.items() if e.has_noise]} need a PRNG key: "
                         "run(..., key=jax.random.PRNGKey(0))")
    out, rec = _jit_forward(subject.model, record_sites, subject.variables if variables is None else variables,
                            x, edits, key)
    if record_sites is None:
        return out, {name: rec[name] for name in subject.sites}
    return out, {name: rec[name] for name in record_sites}


def record(subject, x, sites: Sequence[str] | str | None = None):
    """Record ``sites`` (a name, a list, or None for all) of an intact subject: ``(output, {site: act})``."""
    return run(subject, x, record=sites)


def sample(subject, x, sites: Sequence[str] | str | None = None, *, n_samples: int, key,
           edits: Mapping[str, Edit] | None = None, variables=None):
    """Monte-Carlo responses of a stochastic subject (units with ``noise``, or noise edits): ``n_samples``
    independent draws in one vmapped call, ``(outputs (S, N, ...), {site: (S, N, *unit_shape)})``. A
    deterministic subject gives ``n_samples`` identical copies. Same checks as :func:`run`."""
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be ≥ 1; got {n_samples}")
    edits = dict(edits or {})
    record_sites = None if sites is None else ((sites,) if isinstance(sites, str) else tuple(sites))
    _check_sites(subject, record_sites or (), "recording")
    _check_edits(subject, edits)
    _check_input(subject, x)
    v = subject.variables if variables is None else variables
    keys = jax.random.split(key, int(n_samples))
    out, rec = jax.vmap(lambda k: _jit_forward(subject.model, record_sites, v, x, edits, k))(keys)
    return out, {name: rec[name] for name in (subject.sites if record_sites is None else record_sites)}


def site_means(subject, x, sites: Sequence[str] | str, over: str = "images", batch_size: int = 256) -> dict:
    """Mean activation per site over a reference set ``x``, for :func:`mean_ablation`.

    ``over="images"``: mean over images, shape = unit shape. ``over="space"``: also over spatial positions,
    shape (C,) — one mean per channel.
    """
    if over not in ("images", "space"):
        raise ValueError(f"over must be 'images' or 'space'; got {over!r}")
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    sums, n = None, 0
    for i in range(0, len(x), batch_size):
        _, rec = record(subject, x[i:i + batch_size], sites)
        part = {s: jnp.sum(a, axis=0) for s, a in rec.items()}
        sums = part if sums is None else jax.tree.map(jnp.add, sums, part)
        n += len(x[i:i + batch_size])
    means = {s: v / n for s, v in sums.items()}
    if over == "space":
        means = {s: v.reshape(-1, v.shape[-1]).mean(0) for s, v in means.items()}
    return means


def synapse_paths(subject, site: str | None = None) -> list[str]:
    """Parameter paths (``"conv2/conv/kernel"``) of ``subject``, optionally only those inside ``site``."""
    if site is not None:
        _check_sites(subject, [site], "synapses")
    flat = jax.tree_util.tree_flatten_with_path(subject.params)[0]
    paths = ["/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat]
    return [p for p in paths if site is None or p.startswith(site + "/")]


def lesion_synapses(variables: dict, masks: Mapping[str, jax.Array]) -> dict:
    """Weight (synaptic) lesions: multiply parameters by masks; pure and vmappable over the masks.

    ``masks``: ``{param path: multiplicative mask broadcast to the parameter}``, paths as in
    :func:`synapse_paths`. E.g. zero the connections from input channel 3 to every conv2 unit:
    ``lesion_synapses(v, {"conv2/conv/kernel": jnp.ones((3, 3, 32, 1)).at[:, :, 3].set(0)})``.
    """
    flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    paths = {"/".join(str(getattr(k, "key", k)) for k in path) for path, _ in flat}
    unknown = [m for m in masks if m not in paths]
    if unknown:
        raise KeyError(f"unknown parameter path(s) {unknown}; valid: {', '.join(sorted(paths))}")

    def apply(path, leaf):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        return leaf * jnp.asarray(masks[name], leaf.dtype) if name in masks else leaf

    return {**variables, "params": jax.tree_util.tree_map_with_path(apply, variables["params"])}
