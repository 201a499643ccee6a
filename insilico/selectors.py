"""Which module calls of a model are *sites*: selectors over (module path, module type, method, output).

A selector is a predicate on one :class:`Call` — a submodule's method call seen during one forward pass — and
selectors compose like sets: ``a | b`` (either), ``a & b`` (both), ``a - b`` (a but not b), ``~a`` (not a).
``make_subject(..., sites=selector)`` keeps the calls it selects, in call order, each named by its module path
(``conv2``, ``stage2/block1``, ``blocks/0``):

    from insilico import selectors as sel
    sel.of_type(nn.Conv, nn.Dense)                 # every convolution and dense layer
    sel.at_path("features/*") - sel.at_path("*/bn")  # glob patterns over site names
    sel.where(lambda call: call.output.ndim == 4)  # any predicate on the call
    sel.arrays()                                   # every submodule whose __call__ returns an array
    sel.stages()                                   # insilico's own Stage marker (the zoo's curated sites)

By default a selector sees ``__call__`` only. Other methods become sites when a selector names them
(``sel.method("encode")``); their sites are named ``path.method`` (``encoder.encode``). A module called more
than once in a forward pass (shared weights) gives one site per call, ``path@0``, ``path@1``, ...

A selected call whose output is not an array (a tuple, a dict) is an error naming the module path; only
:func:`arrays` (the default for models built without insilico's classes) passes over such calls silently,
because it selects array outputs by definition.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import jax

__all__ = ["Call", "Selector", "of_type", "at_path", "where", "method", "arrays", "stages", "everything",
           "as_selector", "site_name"]


def site_name(path: tuple, method: str = "__call__") -> str:
    """The site name of a call: the module path joined by ``/`` (``path.method`` for methods other than
    ``__call__``)."""
    base = "/".join(str(p) for p in path)
    return base if method == "__call__" else f"{base}.{method}"


@dataclass(frozen=True)
class Call:
    """One submodule method call seen while discovering sites: ``path`` (tuple of names), ``module`` (the
    Linen or NNX module object), ``method`` name and ``output`` (a ``jax.ShapeDtypeStruct`` for arrays, else the
    returned object)."""

    path: tuple
    module: object
    method: str
    output: object
    index: int | None = None      # k of a module called several times in one forward pass (None: called once)

    @property
    def name(self) -> str:
        """The module path joined by ``/`` (``path.method`` for other methods than ``__call__``)."""
        return site_name(self.path, self.method)

    @property
    def site(self) -> str:
        """The site's name: :attr:`name`, with ``@k`` for the k-th call of a module called several times."""
        return self.name if self.index is None else f"{self.name}@{self.index}"

    @property
    def type_name(self) -> str:
        return type(self.module).__name__

    @property
    def is_array(self) -> bool:
        return is_array(self.output)


def is_array(x) -> bool:
    """Whether ``x`` is an array (a JAX array, tracer or shape struct with a shape and a dtype)."""
    return isinstance(x, (jax.Array, jax.ShapeDtypeStruct)) or (hasattr(x, "shape") and hasattr(x, "dtype")
                                                               and not isinstance(x, (tuple, dict, list)))


@dataclass(frozen=True, eq=False)
class Selector:
    """A predicate on :class:`Call` with the set of method names it may select (``__call__`` by default).

    ``description`` is shown in error messages. Selectors are hashable (by identity unless built from
    hashable parts), so a subject's selector can be part of what keys a compiled function."""

    predicate: Callable
    methods: frozenset = field(default_factory=lambda: frozenset({"__call__"}))
    description: str = "selector"
    key: tuple | None = None            # a hashable description: selectors with equal keys are equal
    silent_non_arrays: bool = False     # pass over non-array outputs instead of raising (arrays() only)

    def __call__(self, call: Call) -> bool:
        return bool(self.predicate(call))

    def __eq__(self, other):
        if not isinstance(other, Selector):
            return NotImplemented
        return self is other or (self.key is not None and self.key == other.key)

    def __hash__(self):
        return hash(self.key) if self.key is not None else id(self)

    def __or__(self, other: Selector) -> Selector:
        other = as_selector(other)
        return Selector(lambda c: self(c) or other(c), self.methods | other.methods,
                        f"({self.description} | {other.description})", _key("|", self.key, other.key),
                        self.silent_non_arrays and other.silent_non_arrays)

    def __and__(self, other: Selector) -> Selector:
        other = as_selector(other)
        return Selector(lambda c: self(c) and other(c), self.methods | other.methods,
                        f"({self.description} & {other.description})", _key("&", self.key, other.key),
                        self.silent_non_arrays or other.silent_non_arrays)

    def __sub__(self, other: Selector) -> Selector:
        other = as_selector(other)
        return Selector(lambda c: self(c) and not other(c), self.methods,
                        f"({self.description} - {other.description})", _key("-", self.key, other.key),
                        self.silent_non_arrays)

    def __invert__(self) -> Selector:
        return Selector(lambda c: not self(c), self.methods, f"~{self.description}", _key("~", self.key))

    def __repr__(self) -> str:
        return f"Selector({self.description})"


def _key(*parts):
    return None if any(p is None for p in parts[1:]) else parts


def _call_only(c: Call) -> bool:
    return c.method == "__call__"


def of_type(*types: type) -> Selector:
    """Calls of modules that are instances of any of ``types`` (Linen or NNX classes)."""
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f"of_type needs one or more classes; got {types!r}")
    return Selector(lambda c: _call_only(c) and isinstance(c.module, types), description=
                    "of_type(" + ", ".join(t.__name__ for t in types) + ")", key=("of_type", types))


def at_path(*patterns: str) -> Selector:
    """Calls whose site name matches any of the glob ``patterns`` (``"conv*"``, ``"stage2/*"``, ``"blocks/0"``).
    ``*`` also matches ``/``, so ``"features/*"`` selects everything inside ``features``. A module called several
    times gives sites ``name@0``, ``name@1``, ...: ``"name"`` selects every call, ``"name@1"`` the second."""
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise TypeError(f"at_path needs one or more non-empty path patterns; got {patterns!r}")
    methods = {"__call__"}
    for p in patterns:
        last = p.rsplit("/", 1)[-1]
        if "." in last:                                  # "path.method" or "path.method@k": the method's name
            name = re.sub(r"@\d+$", "", last.rsplit(".", 1)[1])
            if not name.isidentifier():
                raise TypeError(f"at_path: the method in {p!r} must be a method's name (no glob; '@k' may follow); "
                                f"got {name!r}")
            methods.add(name)
    return Selector(lambda c: any(fnmatch.fnmatchcase(c.name, p) or fnmatch.fnmatchcase(c.site, p)
                                  for p in patterns),
                    frozenset(methods), "at_path(" + ", ".join(repr(p) for p in patterns) + ")", ("at_path", patterns))


def where(predicate: Callable[[Call], bool], *, methods=("__call__",), description: str | None = None) -> Selector:
    """Calls for which ``predicate(call)`` is true (see :class:`Call`); ``methods``: the method names it may
    select."""
    if not callable(predicate):
        raise TypeError(f"where needs a function of a Call; got {predicate!r}")
    if isinstance(methods, str) or not all(isinstance(m, str) for m in methods):
        raise TypeError(f"where's methods must be a sequence of method names, e.g. ('__call__', 'encode'); got "
                        f"{methods!r}")
    return Selector(lambda c: c.method in methods and predicate(c), frozenset(methods),
                    description or f"where({getattr(predicate, '__name__', 'predicate')})")


def method(*names: str) -> Selector:
    """Calls of the methods ``names`` (e.g. ``method("encode") & at_path("encoder")``); sites of methods other
    than ``__call__`` are named ``path.method``."""
    if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise TypeError(f"method needs method names; got {names!r}")
    return Selector(lambda c: c.method in names, frozenset(names), "method(" + ", ".join(names) + ")",
                    ("method", names))


def everything() -> Selector:
    """Every submodule's ``__call__`` (a call whose output is not an array is then an error)."""
    return Selector(_call_only, description="everything()", key=("everything",))


def arrays() -> Selector:
    """Every submodule whose ``__call__`` returns an array: the default for a model built without insilico's
    classes (convolutions, dense layers, blocks, activations wrapped in a module). Calls returning tuples or
    dicts are passed over."""
    return Selector(lambda c: _call_only(c) and c.is_array, description="arrays()", key=("arrays",),
                    silent_non_arrays=True)


def stages() -> Selector:
    """Submodules that subclass :class:`insilico.models.Stage`: the curated sites of insilico's own models."""
    from .models import Stage

    sel = of_type(Stage)
    return Selector(sel.predicate, description="stages()", key=("stages",))


def as_selector(sites) -> Selector:
    """A :class:`Selector` from a selector, a site-name pattern or a sequence of patterns."""
    if isinstance(sites, Selector):
        return sites
    if isinstance(sites, str):
        return at_path(sites)
    if isinstance(sites, (list, tuple)) and sites and all(isinstance(s, str) for s in sites):
        return at_path(*sites)
    raise TypeError(f"sites must be a Selector (insilico.selectors), a path pattern or a list of patterns; got "
                    f"{sites!r}")
