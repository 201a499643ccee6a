"""The model organism: a model with its weights, its input specification and its recordable sites.

Any Flax model is a subject: a Linen module with the variables from ``model.init``, or a ``flax.nnx.Module``
(its state split from the graph, so that every probe stays pure). Sites are chosen by a selector
(:mod:`insilico.selectors`); insilico's own models default to their curated ``Stage`` sites, any other model to
every submodule whose ``__call__`` returns an array.

A :class:`Subject` is a pytree: the weights (``variables``) are its leaves, everything else — the model or graph,
name, sites, input spec, class names — is static. Compiled probes take the subject as an argument, so a new set
of weights of the same model (a synaptic lesion, a training snapshot, another seed) never retraces.

Example:

>>> import flax.linen as nn, jax, jax.numpy as jnp
>>> class CNN(nn.Module):
...     @nn.compact
...     def __call__(self, x):
...         x = nn.relu(nn.Conv(16, (3, 3), name="conv1")(x))
...         return nn.Dense(10, name="out")(x.mean((1, 2)))
>>> model = CNN()
>>> variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
>>> subject = make_subject("cnn", model, variables, InputSpec((32, 32, 3)))
>>> subject.sites
{'conv1': (32, 32, 16), 'out': (10,)}
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import selectors as sel
from .engine.fingerprint import stable_text
from .interception import NNXGraph, SubjectError, Tap, apply, inference_kwargs, is_nnx_module
from .types import SiteShapes
from .validation import check_number
from .variables import check_finite_variables, check_like

__all__ = ["InputSpec", "Subject", "make_subject", "SubjectError", "discover"]


@dataclass(frozen=True)
class InputSpec:
    """What a subject accepts: images of ``shape`` (H, W, C) with pixel values in ``bounds``.

    ``mean``/``std`` document the normalization the model applies *internally*; callers pass raw pixels.
    """

    shape: tuple[int, int, int]
    bounds: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)

    def __post_init__(self):
        if isinstance(self.shape, str) or not hasattr(self.shape, "__len__") or len(self.shape) != 3 or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1 for s in self.shape):
            raise ValueError(f"InputSpec shape must be (H, W, C) of positive integer sizes; got {self.shape!r}")
        shape = tuple(int(s) for s in self.shape)
        if isinstance(self.bounds, str) or not hasattr(self.bounds, "__len__") or len(self.bounds) != 2:
            raise ValueError(f"InputSpec bounds must be (low, high); got {self.bounds!r}")
        lo, hi = (check_number(f"InputSpec bounds[{i}]", b) for i, b in enumerate(self.bounds))
        if not lo < hi:
            raise ValueError(f"InputSpec bounds must be (low, high) with low < high; got {self.bounds!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "bounds", (lo, hi))


_STATIC = ("name", "model", "input_spec", "class_names", "sites", "meta", "selector", "api", "call_kwargs", "graph",
           "output_shape", "modules")


@dataclass(frozen=True, eq=False)
class Subject:
    """A ready-to-probe model.

    Fields: ``name``; ``model`` (the Linen module, or for NNX the graph definition); ``variables`` (plain nested
    dicts of arrays per collection: ``{"params", ["batch_stats"], ...}`` — the only dynamic part);
    ``input_spec``; ``class_names``; ``sites`` (ordered ``{name: unit shape}``, batch axis excluded); ``meta``;
    ``selector`` (how the sites were chosen); ``api`` ("linen" or "nnx"); ``call_kwargs`` (keyword arguments of
    every call, e.g. ``train=False``); ``graph`` (NNX: the :class:`~insilico.interception.NNXGraph`);
    ``output_shape`` (of one image's output); ``modules`` (``(name, class name)`` of every submodule call seen,
    selected or not).

    Build one with :func:`insilico.zoo.load` or :func:`make_subject`.
    """

    name: str
    model: Any
    variables: dict
    input_spec: InputSpec
    class_names: Sequence[str] = ()
    sites: SiteShapes = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    selector: Any = None
    api: str = "linen"
    call_kwargs: tuple = ()
    graph: Any = None
    output_shape: tuple[int, ...] = ()
    modules: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "_key", _static_key(self))

    @property
    def params(self) -> dict:
        """The trainable parameters (``variables["params"]``)."""
        return self.variables["params"]

    @property
    def architecture(self) -> str:
        """The model's class name."""
        return self.graph.class_name if self.graph is not None else type(self.model).__name__

    @property
    def n_outputs(self) -> int:
        """Size of the last axis of the model's output (the number of classes of a classifier)."""
        return int(self.output_shape[-1]) if self.output_shape else 0

    def module(self):
        """The model with these weights: a live ``nnx.Module`` (NNX) or the Linen module bound to its
        variables (``model.bind(variables)``)."""
        if self.api == "nnx":
            return self.graph.module(self.variables)
        return self.model.bind(self.variables)

    def replace(self, **changes) -> Subject:
        """A copy with some fields replaced (e.g. lesioned ``variables``). New ``variables`` must have the
        arrays and shapes of the old (:class:`SubjectError` names the first that differs): a Flax module would
        broadcast a batch-norm statistic or an NNX bias of another shape without a word."""
        if "variables" in changes:
            check_like(self.variables, changes["variables"], self.name)
        if set(changes) == {"variables"}:                       # the static part, and its key, are unchanged
            return _unflatten(_flatten(self)[1], (changes["variables"],))
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        sites = ", ".join(f"{k}{tuple(v)}" for k, v in self.sites.items())
        return (f"Subject({self.name!r}, {self.architecture} ({self.api}), input {self.input_spec.shape} in "
                f"{self.input_spec.bounds}, sites: {sites})")


class _StaticKey:
    """The hashable static part of a subject (what a compiled probe is specialized on); hash computed once."""

    __slots__ = ("fields", "hash")

    def __init__(self, fields):
        self.fields = fields
        self.hash = hash(fields)

    def __eq__(self, other):
        return self is other or (isinstance(other, _StaticKey) and self.hash == other.hash
                                 and self.fields == other.fields)

    def __hash__(self):
        return self.hash


class _ById:
    """An unhashable static value (a Linen module with list attributes), compared by identity."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _ById) and self.value is other.value

    def __hash__(self):
        return id(self.value)

    def __repr__(self):             # the value, not "an object": a sweep store tells two such models apart by it
        return f"_ById({self.value!r})"


def _hashable(value):
    try:
        hash(value)
        return value
    except TypeError:
        return _ById(value)


def _static_key(s: Subject) -> _StaticKey:
    return _StaticKey(tuple(_hashable(v) for v in (
        s.name, s.model, s.input_spec, tuple(s.class_names), tuple(s.sites.items()), s.selector, s.api,
        s.call_kwargs, s.graph, s.output_shape, s.modules)))



class _Aux:
    """Pytree aux data of a subject: compares by its static key only (metadata rides along unhashed)."""

    __slots__ = ("key", "statics")

    def __init__(self, key, statics):
        self.key, self.statics = key, statics

    def __eq__(self, other):
        return isinstance(other, _Aux) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):             # what the static part is, without object addresses: sweep stores hash it
        return stable_text(f"Subject{self.key.fields!r}")


def _flatten(s: Subject):
    key = vars(s)["_key"]                 # set by __post_init__ and _unflatten; not a dataclass field
    return (s.variables,), _Aux(key, tuple(getattr(s, f) for f in _STATIC))


def _unflatten(aux: _Aux, children):
    s = object.__new__(Subject)
    for f, v in zip(_STATIC, aux.statics):
        object.__setattr__(s, f, v)
    object.__setattr__(s, "variables", children[0])
    object.__setattr__(s, "_key", aux.key)
    return s


def _flatten_with_keys(s: Subject):
    children, aux = _flatten(s)
    return ((jax.tree_util.GetAttrKey("variables"), children[0]),), aux


jax.tree_util.register_pytree_with_keys(Subject, _flatten_with_keys, _unflatten, _flatten)


# ----------------------------------------------------------------------------------------------------- discovery

def _trace_calls(subject_like, methods: frozenset):
    """One abstract forward pass noting every call: ``(tap, output struct)``; a failure names the module."""
    tap = Tap(methods=methods, discover=True)
    spec = subject_like.input_spec
    x = jax.ShapeDtypeStruct((1, *spec.shape), jnp.float32)
    try:
        out = jax.eval_shape(lambda v, x: apply(subject_like.replace(variables=v), x, tap),
                             subject_like.variables, x)
    except SubjectError:
        raise
    except Exception as err:
        where = ""
        if tap.failed_at is not None:
            path, cls, method = tap.failed_at
            where = f" in module {sel.site_name(path, method)} ({cls})"
        raise SubjectError(f"{subject_like.name}: calling the model on a batch of shape (N, "
                           f"{', '.join(map(str, spec.shape))}) (the input spec) failed{where}: "
                           f"{type(err).__name__}: {err}. Check InputSpec(shape=...) (H, W, C) and that the model "
                           "can run in inference mode with the given variables") from err
    return tap, out


def discover(subject_like, selector=None) -> tuple[SiteShapes, tuple[tuple[str, str], ...], tuple[int, ...]]:
    """Trace one forward pass of ``subject_like`` with ``jax.eval_shape`` (no FLOPs) and return ``(sites,
    modules, output_shape)``: the ordered ``{name: unit shape}`` of the calls ``selector`` selects (default:
    ``subject_like.selector``), ``(name, class name)`` of every call, and the shape of one image's output."""
    selector = subject_like.selector if selector is None else selector
    tap, out = _trace_calls(subject_like, frozenset(selector.methods))
    return _select(subject_like.name, tap, out, selector)


def _select(name_of_subject: str, tap: Tap, out, selector
            ) -> tuple[SiteShapes, tuple[tuple[str, str], ...], tuple[int, ...]]:
    """Sites, modules and output shape from the calls a discovery pass noted."""
    counts: dict = {}
    for path, _module, method, _y, k in tap.calls:
        counts[sel.site_name(path, method)] = k + 1
    sites: SiteShapes = {}
    modules: dict[str, str] = {}
    for path, module, method, y, k in tap.calls:
        base = sel.site_name(path, method)
        call = sel.Call(path, module, method, y, k if counts[base] > 1 else None)
        name = call.site
        modules.setdefault(name, type(module).__name__)
        if not selector(call):
            continue
        if not call.is_array:
            if selector.silent_non_arrays:
                continue
            raise SubjectError(f"{name_of_subject}: module {name} ({type(module).__name__}) is selected as a site "
                               f"by {selector.description} but its {method} returns a {type(y).__name__}, not an "
                               "array; sites must be arrays: select the submodules that produce the parts (or wrap "
                               "the part you want in a module)")
        if name in sites:
            continue
        if not y.shape or y.shape[0] != 1:
            raise SubjectError(f"{name_of_subject}: module {name} ({type(module).__name__}) returns shape "
                               f"{tuple(y.shape)} for a batch of 1 image; a site's leading axis must be the batch")
        sites[name] = tuple(int(d) for d in y.shape[1:])
    if not hasattr(out, "shape"):
        raise SubjectError(f"{name_of_subject}: the model returns a {type(out).__name__}; probes need a model "
                           "whose output is one array (N, ...) (e.g. class logits)")
    if not sites:
        lifted = sorted(tap.lifted)
        raise SubjectError(f"{name_of_subject}: the selector {selector.description} matches no module call; the "
                           f"model's modules: {', '.join(f'{n} ({c})' for n, c in modules.items()) or 'none'}"
                           + (f"; calls inside Flax lifted transforms (nn.scan, nn.remat, nn.vmap, ...) are not "
                              f"sites: {', '.join(lifted[:8])}" if lifted else ""))
    return sites, tuple(modules.items()), tuple(int(d) for d in out.shape[1:])


def make_subject(name: str, model, variables: dict | None, input_spec: InputSpec, class_names: Sequence[str] = (),
                 meta: dict | None = None, sites=None, call_kwargs: dict | None = None) -> Subject:
    """Bundle any Flax model into a :class:`Subject`, discovering its sites and their shapes (free: ``eval_shape``).

    Args:
        model: a Linen module (``variables`` from ``model.init``), or a ``flax.nnx.Module`` (``variables=None``;
            its state is split from the graph and the module runs in inference mode: ``deterministic=True`` and
            ``use_running_average=True`` wherever a submodule has them; the module you pass is not changed).
        input_spec: :class:`InputSpec` — the (H, W, C) images the model takes and their pixel bounds.
        sites: which calls are sites — a :class:`~insilico.selectors.Selector`, a path pattern or a list of them
            (``["conv*", "blocks/*"]``); default: insilico's own ``Stage`` sites for the zoo's models, otherwise
            every submodule whose ``__call__`` returns an array.
        call_kwargs: keyword arguments of every call of the model; default: inference mode read from the
            signature of its ``__call__`` (``train=False``, ``deterministic=True``, ... where present).
    Raises: :class:`SubjectError` naming the module path when the model cannot run on the input spec, a selected
    call does not return an array, the selector matches nothing, or an NNX call changes state.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string; got {name!r}")
    if not isinstance(input_spec, InputSpec):
        raise TypeError(f"input_spec must be an insilico.subject.InputSpec; got {type(input_spec).__name__}")
    if is_nnx_module(model):
        if variables is not None:
            raise TypeError(f"{name}: an NNX module carries its own state; pass variables=None (got "
                            f"{type(variables).__name__})")
        graph, variables = NNXGraph.from_module(model)
        api, fn, model = "nnx", type(model).__call__, graph.graphdef
    else:
        import flax.linen as nn

        if not isinstance(model, nn.Module):
            raise TypeError(f"{name}: model must be a flax.linen.Module (with its variables) or a flax.nnx.Module; "
                            f"got {type(model).__name__}")
        if variables is None or not hasattr(variables, "keys") or "params" not in variables:
            raise TypeError(f"{name}: a Linen model needs its variables, a mapping with 'params' (from "
                            f"model.init(key, x)); got {type(variables).__name__}")
        graph, api, fn = None, "linen", type(model).__call__
        variables = _plain(variables)
    if call_kwargs is not None and not (hasattr(call_kwargs, "items") and all(isinstance(k, str) for k in call_kwargs)):
        raise TypeError(f"{name}: call_kwargs must be a mapping of keyword names to values (e.g. {{'train': False}}); "
                        f"got {call_kwargs!r}")
    check_finite_variables(variables, name)
    kwargs = inference_kwargs(fn) if call_kwargs is None else dict(call_kwargs)
    if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
        raise TypeError(f"{name}: class_names must be a sequence of names (str), one per output unit; got "
                        f"{class_names!r:.80}")
    draft = Subject(name, model, variables, input_spec, tuple(class_names), {}, dict(meta or {}),
                    sel.everything(), api, tuple(sorted(kwargs.items())), graph)
    if sites is None:                      # insilico's Stage sites when the model has any, else every array
        from .models import Stage

        tap, out = _trace_calls(draft, frozenset())
        selector = sel.stages() if any(isinstance(m, Stage) for _, m, _, _, _ in tap.calls) else sel.arrays()
        found, modules, out_shape = _select(name, tap, out, selector)
    else:
        selector = sel.as_selector(sites)
        found, modules, out_shape = discover(draft, selector)
    if class_names and out_shape and len(class_names) != out_shape[-1]:
        raise ValueError(f"{name}: {len(class_names)} class names for an output of {out_shape[-1]} units")
    return dataclasses.replace(draft, sites=found, selector=selector, modules=modules, output_shape=out_shape)


def _plain(variables) -> dict:
    """Plain nested dicts (FrozenDict unfrozen) with the same leaves."""
    if hasattr(variables, "items"):
        return {k: _plain(v) for k, v in variables.items()}
    return variables
