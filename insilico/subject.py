"""The model organism: a model with its weights, its input specification and its recordable sites."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import flax.linen as nn


@dataclass(frozen=True)
class InputSpec:
    """What a subject accepts: images of ``shape`` (H, W, C) with pixel values in ``bounds``.

    ``mean``/``std`` document the normalization the model applies *internally*; callers pass raw pixels.
    """

    shape: tuple[int, int, int]
    bounds: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)


@dataclass(frozen=True, eq=False)
class Subject:
    """A ready-to-probe model: ``model`` (Linen module), ``variables`` ({"params", ["batch_stats"]}),
    ``input_spec``, ``class_names`` and ``sites`` (ordered ``{name: unit shape}``, batch axis excluded).

    Build one with :func:`insilico.zoo.load` or :func:`insilico.subject.make_subject`.
    """

    name: str
    model: nn.Module
    variables: dict
    input_spec: InputSpec
    class_names: Sequence[str]
    sites: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def params(self) -> dict:
        """The trainable parameters (``variables["params"]``)."""
        return self.variables["params"]

    def replace(self, **changes) -> "Subject":
        """A copy with some fields replaced (e.g. lesioned ``variables``)."""
        from dataclasses import replace

        return replace(self, **changes)

    def __repr__(self) -> str:
        sites = ", ".join(f"{k}{tuple(v)}" for k, v in self.sites.items())
        return (f"Subject({self.name!r}, {type(self.model).__name__}, input {self.input_spec.shape} in "
                f"{self.input_spec.bounds}, sites: {sites})")


def make_subject(name: str, model: nn.Module, variables: dict, input_spec: InputSpec,
                 class_names: Sequence[str] = (), meta: dict | None = None) -> Subject:
    """Bundle a model and its variables into a :class:`Subject`, discovering its sites and their shapes."""
    from .electrode import list_sites

    sites = list_sites(model, variables, input_spec.shape)
    return Subject(name, model, dict(variables), input_spec, tuple(class_names), sites, dict(meta or {}))
