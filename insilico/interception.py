"""Flax call interception: run a Linen or NNX model purely and see — and replace — the output of every
submodule call.

This module and :mod:`insilico.electrode` are the only code that touches Flax's interception machinery.

* **Linen**: ``flax.linen.intercept_methods`` is entered *inside* the traced function, around
  ``model.apply(variables, x)``.
* **NNX**: the model is kept as a graph definition plus plain nested dicts of arrays (``variables``, one dict
  per collection: ``params``, ``batch_stats``, ``state``; random-stream keys are static constants). Inside the traced
  function the module is rebuilt with ``nnx.merge``; while it runs, the ``__call__`` (and any selected method) of
  each class in its graph is wrapped at class level so that calls of modules of *this* graph go through the
  :class:`Tap`; calls of any other instance pass straight through. Afterwards the state is split again and compared
  with what went in: a model that changes its state (batch statistics, counters) outside inference mode is refused
  with the module path of the change. Random-number streams may advance (they are discarded).

A :class:`Tap` is the per-forward-pass state: it names each call (module path, ``.method`` for methods other than
``__call__``, ``@k`` for the k-th call of a module called more than once), applies ``on_site(name, y)`` to the
calls that are sites, and while discovering notes every call.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .selectors import site_name

__all__ = ["Tap", "SubjectError", "apply", "apply_linen", "NNXGraph", "is_nnx_module", "inference_kwargs"]


class SubjectError(ValueError):
    """A model that cannot be probed as given: a failing call, a non-array site, state changed by a forward
    pass, a selector that matches nothing. The message names the module path and what is valid."""


class Tap:
    """What happens at each submodule call of one forward pass.

    ``sites``: names of the calls to pass to ``on_site`` (None: none); ``repeated``: base names of modules
    called more than once (named ``base@k``); ``methods``: method names other than ``__call__`` to look at;
    ``discover``: note every call in ``calls`` as ``(path, module, method, output, k)``."""

    def __init__(self, sites=frozenset(), repeated=frozenset(), methods=frozenset(), on_site: Callable | None = None,
                 discover: bool = False):
        self.sites, self.repeated, self.methods = sites, repeated, methods
        self.on_site, self.discover = on_site, discover
        self.counts: dict = {}
        self.calls: list = []
        self.stack: list = []
        self.failed_at: tuple | None = None
        self.root_trace = None                  # a Linen model's trace at its own call (apply_linen)
        self.lifted: set = set()                # calls inside a Flax lifted transform: not sites

    def wrap(self, module, path: tuple, method: str, call: Callable):
        """Run ``call()`` (the module's method) and return its output, edited when it is a site."""
        if not path or (method != "__call__" and method not in self.methods):
            return call()
        key = (id(module), method)
        if self.stack and self.stack[-1] == key:          # super().__call__ inside the same call
            return call()
        self.stack.append(key)
        try:
            y = call()
        except Exception:
            if self.failed_at is None:
                self.failed_at = (tuple(path), type(module).__name__, method)
            raise
        finally:
            self.stack.pop()
        base = site_name(path, method)
        k = self.counts.get(base, 0)
        self.counts[base] = k + 1
        if self.discover:
            self.calls.append((tuple(path), module, method, y, k))
            return y
        name = f"{base}@{k}" if base in self.repeated else base
        if self.on_site is not None and name in self.sites:
            y = self.on_site(name, y)
        return y


# ------------------------------------------------------------------------------------------------------ Linen

def apply_linen(model, variables, x, tap: Tap, rngs: dict, call_kwargs: dict):
    """``model.apply(variables, x, rngs=rngs, **call_kwargs)`` with every submodule call going through ``tap``."""
    import flax.linen as nn

    def interceptor(next_fun, args, kwargs, context):
        module, path = context.module, tuple(context.module.path)
        if trace is not None:
            now = trace()
            if not path and tap.root_trace is None:
                tap.root_trace = now
            elif path and now != tap.root_trace:
                # inside nn.scan, nn.remat, nn.vmap, ...: Flax traces the body apart (nn.scan twice, neither call a
                # time step), so an edit there may change nothing and a recording escapes its trace — not a site
                tap.lifted.add(site_name(path, context.method_name))
                return next_fun(*args, **kwargs)
        return tap.wrap(module, path, context.method_name, lambda: next_fun(*args, **kwargs))

    trace = getattr(_flax_tracers(), "current_trace", None)

    with nn.intercept_methods(interceptor):
        return model.apply(variables, x, rngs=rngs, **call_kwargs)


def _flax_tracers():
    try:
        from flax.core import tracers
    except ImportError:                                       # a Flax without it: no lifted calls are told apart
        return None
    return tracers


def apply(subject, x, tap: Tap, key=None):
    """Run ``subject``'s model (Linen or NNX) on ``x`` with every submodule call going through ``tap``. With
    ``key``, stochastic units draw from it: Linen models get a ``"noise"`` stream ``fold_in(key, 2**31 - 1)``,
    NNX models have every random stream reseeded from it."""
    kwargs = dict(subject.call_kwargs)
    if subject.api == "nnx":
        return subject.graph.apply(subject.variables, x, tap, key, kwargs)
    rngs = {} if key is None else {"noise": jax.random.fold_in(key, 0x7FFFFFFF)}
    return apply_linen(subject.model, subject.variables, x, tap, rngs, kwargs)


def inference_kwargs(fn) -> dict:
    """Keyword arguments that put a model's ``__call__`` in inference mode, read from its signature:
    ``train``/``training``/``is_training`` = False, ``deterministic``/``use_running_average`` = True."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    values = {"train": False, "training": False, "is_training": False, "deterministic": True,
              "use_running_average": True}
    return {k: v for k, v in values.items() if k in params}


# -------------------------------------------------------------------------------------------------------- NNX

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("insilico_nnx_tap", default=None)
_PATCH_LOCK = threading.RLock()
_PATCHED: dict = {}                 # (class, method) -> [original attribute or None, reference count]
_MISSING = object()
_ORIGINAL = "__insilico_original__"  # the attribute of a wrapper that holds the method it wraps


def _original(cls, method: str):
    """The method ``cls`` would run, unwrapped (never one of our wrappers)."""
    for klass in cls.__mro__:
        if method in klass.__dict__:
            f = klass.__dict__[method]
            return getattr(f, _ORIGINAL, f)
    return None


def _wrapper(original, method: str):
    @functools.wraps(original)
    def wrapped(self, *args, **kwargs):
        active = _ACTIVE.get()
        path = None if active is None else active[1].get(id(self))
        if path is None:
            return original(self, *args, **kwargs)
        return active[0].wrap(self, path, method, lambda: original(self, *args, **kwargs))
    setattr(wrapped, _ORIGINAL, original)
    return wrapped


@contextlib.contextmanager
def _patched(classes, methods):
    """Wrap ``methods`` of ``classes`` at class level for the duration (reference-counted, thread-safe)."""
    done = []
    with _PATCH_LOCK:
        originals = {(c, m): _original(c, m) for c in classes for m in methods}
        for (cls, m), orig in originals.items():
            if orig is None:
                continue
            entry = _PATCHED.get((cls, m))
            if entry is None:
                _PATCHED[(cls, m)] = [cls.__dict__.get(m, _MISSING), 1]
                setattr(cls, m, _wrapper(orig, m))
            else:
                entry[1] += 1
            done.append((cls, m))
    try:
        yield
    finally:
        with _PATCH_LOCK:
            for cls, m in done:
                entry = _PATCHED[(cls, m)]
                entry[1] -= 1
                if entry[1] == 0:
                    del _PATCHED[(cls, m)]
                    if entry[0] is _MISSING:
                        delattr(cls, m)
                    else:
                        setattr(cls, m, entry[0])


def is_nnx_module(model) -> bool:
    """Whether ``model`` is a ``flax.nnx.Module`` instance."""
    try:
        from flax import nnx
    except ImportError:                                              # pragma: no cover
        return False
    return isinstance(model, nnx.Module)


def _collections():
    from flax import nnx

    return (("params", nnx.Param), ("batch_stats", nnx.BatchStat), ("state", ...))


def _path_name(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


@dataclass(frozen=True)
class NNXGraph:
    """The static part of an NNX model: its graph definition, the tree structure of each state collection, and
    its random-number streams (keys and counts, kept here as hashable constants rather than in ``variables``,
    so that arithmetic over the weights — ``jax.tree.map(lambda w: w * m, variables)`` — never meets a key)."""

    graphdef: object
    collections: tuple            # names of the variable collections, in split order (some may be empty)
    treedefs: tuple               # treedef of each collection's State
    rng_treedef: object           # treedef of the random-stream State
    rng_leaves: tuple             # ("key", impl, key data as a tuple) or ("count", value, dtype name) per leaf
    class_name: str
    shapes: tuple = ()            # per collection, each variable's (path, shape): replacements are checked

    @staticmethod
    def from_module(module) -> tuple[NNXGraph, dict]:
        """Split ``module`` (in inference mode: ``deterministic=True``, ``use_running_average=True`` wherever a
        submodule has them; the caller's module is not changed) into an :class:`NNXGraph` and ``variables``
        ``{collection: nested dict of arrays}`` (empty collections left out)."""
        from flax import nnx

        view = getattr(nnx, "view", None)
        if view is not None:
            module = view(module, deterministic=True, use_running_average=True, raise_if_not_found=False)
        else:                                                            # older Flax: evaluate a copy
            g, s = nnx.split(module)
            module = nnx.merge(g, s)
            module.eval()
        names, filters = zip(*_collections())
        graphdef, rng_state, *states = nnx.split(module, nnx.RngState, *filters)
        treedefs, variables, shapes = [], {}, []
        for name, state in zip(names, states):
            leaves, treedef = jax.tree.flatten(state)
            treedefs.append(treedef)
            shapes.append(tuple((_path_name(p), tuple(np.shape(a)))
                                for p, a in jax.tree_util.tree_flatten_with_path(state)[0]))
            if leaves:
                pure = _to_dict(nnx.to_pure_dict(state) if hasattr(nnx, "to_pure_dict") else state.to_pure_dict())
                if [id(a) for a in jax.tree.leaves(pure)] != [id(a) for a in leaves]:
                    raise SubjectError(f"{type(module).__name__}: the {name!r} state of this NNX model does not "
                                       "flatten in a stable order (its variable names cannot be sorted)")
                variables[name] = pure
        rng_leaves, rng_treedef = jax.tree.flatten(rng_state)
        consts = tuple(("key", str(jax.random.key_impl(a)), tuple(int(v) for v in
                                                                  jax.numpy.ravel(jax.random.key_data(a))))
                       if _is_key(a) else ("count", int(a), str(a.dtype)) for a in rng_leaves)
        return NNXGraph(graphdef, tuple(names), tuple(treedefs), rng_treedef, consts,
                        type(module).__name__, tuple(shapes)), variables

    def states(self, variables: dict, key=None) -> list:
        """The random-stream State and the State of each collection from ``variables``; with ``key``, every
        random stream is reseeded (``fold_in(key, i)`` for the i-th stream key)."""
        rng, n_keys = [], 0
        for kind, a, b in self.rng_leaves:
            if kind == "count":
                rng.append(jnp.asarray(a, b))
            elif key is not None:
                typed = key if _is_key(key) else jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
                folded = jax.random.fold_in(typed, n_keys)
                if str(jax.random.key_impl(folded)) != a:      # another key type: the stream's own, drawn from it
                    size = jax.random.key_data(jax.random.key(0, impl=a)).shape
                    rng.append(jax.random.wrap_key_data(jax.random.bits(folded, size, jnp.uint32), impl=a))
                else:
                    rng.append(jax.random.wrap_key_data(jax.random.key_data(folded), impl=a))
                n_keys += 1
            else:
                rng.append(jax.random.wrap_key_data(jnp.asarray(b, jnp.uint32), impl=a))
        out = [jax.tree.unflatten(self.rng_treedef, rng)]
        for name, treedef in zip(self.collections, self.treedefs):
            leaves = list(jax.tree.leaves(variables.get(name, {})))
            if len(leaves) != treedef.num_leaves:
                raise SubjectError(f"{self.class_name}: variables[{name!r}] has {len(leaves)} arrays; the model has "
                                   f"{treedef.num_leaves}")
            for (path, shape), a in zip(dict(zip(self.collections, self.shapes)).get(name, ()), leaves):
                if tuple(np.shape(a)) != shape:                 # nnx.merge would take it and broadcast
                    raise SubjectError(f"{self.class_name}: variables[{name!r}] {path} has shape "
                                       f"{tuple(np.shape(a))}; the model's is {shape}")
            out.append(jax.tree.unflatten(treedef, leaves))
        return out

    def merge(self, states):
        from flax import nnx

        return nnx.merge(self.graphdef, *states)

    def check_unchanged(self, module, before: list):
        """Raise :class:`SubjectError` naming the first variable the forward pass changed (random streams
        excepted); ``before``: the leaves of each collection's State, taken before the call (merged modules share
        the State's Variable objects, so the States themselves change with the module)."""
        from flax import nnx

        _, _, *states_out = nnx.split(module, nnx.RngState, *(f for _, f in _collections()))
        for name, a, after in zip(self.collections, before, states_out):
            b = jax.tree_util.tree_flatten_with_path(after)[0]
            if len(a) != len(b):
                raise SubjectError(f"{self.class_name}: a forward pass created or removed {name!r} variables "
                                   f"({len(a)} before, {len(b)} after); probes need a pure call in inference mode")
            for x, (path, y) in zip(a, b):
                if x is not y:
                    raise SubjectError(
                        f"{self.class_name}: the forward pass changes the {name!r} variable "
                        f"{_path_name(path).removesuffix('/value')} (outside inference mode). Probes run models "
                        "purely in inference mode: give such modules deterministic=True / "
                        "use_running_average=True attributes (nnx.Dropout, nnx.BatchNorm have them) or do not "
                        "update state in __call__")

    def apply(self, variables, x, tap: Tap, key, call_kwargs: dict):
        """Run the model rebuilt from ``variables`` on ``x`` with every submodule call going through ``tap``."""
        from flax import nnx

        states = self.states(variables, key)
        before = [list(jax.tree.leaves(s)) for s in states[1:]]
        module = self.merge(states)
        modules = list(nnx.iter_modules(module))
        paths = {id(m): tuple(p) for p, m in modules}
        classes = {type(m) for _, m in modules}
        token = _ACTIVE.set((tap, paths))
        try:
            with _patched(classes, {"__call__"} | set(tap.methods)):
                out = module(x, **call_kwargs)
        finally:
            _ACTIVE.reset(token)
        self.check_unchanged(module, before)
        return out

    def module(self, variables):
        """A live ``nnx.Module`` with these variables (for inspection; probes never need it)."""
        return self.merge(self.states(variables))


def _to_dict(tree):
    """Plain nested ``dict`` copies of (possibly frozen / State) mappings."""
    if hasattr(tree, "items"):
        return {k: _to_dict(v) for k, v in tree.items()}
    return tree
