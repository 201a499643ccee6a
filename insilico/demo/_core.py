"""What the demo's sections share: the context (report, subjects, cached stimuli and tunings, results), number
formatting for takeaways, links to data and code, and a count of compilations."""
from __future__ import annotations

import inspect
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from ..data import stimuli
from ..report.html import Report, Section

DEFAULT_MODELS = ("cifar_convnet", "cifar_resnet", "mnist_convnet", "cifar_convnet_untrained")
UNTRAINED = "_untrained"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]          # .../insilico
REPO_ROOT = PACKAGE_ROOT.parent
ORIENTATIONS = {True: tuple(range(0, 180, 30)), False: tuple(range(0, 180, 15))}     # keyed by quick
SFS = (0.05, 0.1, 0.2, 0.3)
PHASES = tuple(range(0, 360, 45))


def key(seed: int):
    """The demo's PRNG key for ``seed``: JAX's "rbg" implementation (XLA's random-bit generator for the bits,
    threefry only to split keys), which compiles several times faster on CPU than the default threefry bits and
    is as deterministic. Every random choice of the demo takes one of these, with the seed written out."""
    return jax.random.key(seed, impl="rbg")


@dataclass
class Context:
    """The report, the subjects, whether this is the quick form, and what sections share.

    results: model -> {variable: DataArray}, written to ``MODEL.nc``; files: file stem -> {variable: DataArray}
    for results that belong to no bundled model, written to ``STEM.nc``. Every variable put through :meth:`put`
    links the section in progress to the file it goes to."""

    report: Report
    subjects: dict
    quick: bool
    results: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    data_links: dict = field(default_factory=dict)        # id(section) -> [file names]
    cache: dict = field(default_factory=dict)
    current: Section | None = None

    def section(self, title: str, question: str, text: str = "") -> Section:
        self.current = self.report.section(title, text, question=question)
        return self.current

    def put(self, model: str, name: str, value, file: str | None = None):
        """Store ``value`` as variable ``name`` of ``model``'s NetCDF file (or of ``file``.nc, for results that
        belong to no bundled model) and link the current section to that file."""
        store = self.results if file is None else self.files
        stem = model if file is None else file
        store.setdefault(stem, {})[name] = value
        if self.current is not None:
            links = self.data_links.setdefault(id(self.current), [])
            if f"{stem}.nc" not in links:
                links.append(f"{stem}.nc")

    def stimuli(self, subject) -> dict:
        """Gratings, scikit-image photos and natural-image patches in the subject's input shape (made once)."""
        shape = tuple(subject.input_spec.shape)
        if shape not in self.cache:
            h, _, c = shape
            grat, _ = stimuli.grating_set(h, ORIENTATIONS[self.quick], (0.05, 0.1, 0.2), (0, 90, 180, 270),
                                          channels=c)
            self.cache[shape] = {"gratings": np.asarray(grat), "photos": np.asarray(stimuli.photos(h, c)),
                                 "patches": np.asarray(stimuli.natural_patches(key(0),
                                                                               64 if self.quick else 256, h, c,
                                                                               scale=4))}
        return self.cache[shape]

    def compute_subject(self, name: str):
        """The subject to run probes on. An untrained control whose trained model is also loaded gets the trained
        subject's static part (same architecture and sites) with its own weights, so that every compiled probe
        is reused instead of compiled again for another name; the numbers are the control's."""
        sub = self.subjects[name]
        base = name[: -len(UNTRAINED)] if name.endswith(UNTRAINED) else None
        twin = self.subjects.get(base)
        if twin is not None and twin.architecture == sub.architecture and twin.sites == sub.sites and \
                _same_structure(twin.variables, sub.variables):
            return twin.replace(variables=sub.variables)
        return sub

    def trained(self) -> dict:
        return {k: v for k, v in self.subjects.items() if not k.endswith(UNTRAINED)}


def _same_structure(a, b) -> bool:
    """Whether pytrees ``a`` and ``b`` have one structure (the same keys and nesting)."""
    # PyTreeDef compares with ==; JAX's stubs leave its type unresolved, so the checker refuses the operator
    return bool(jax.tree.structure(a) == jax.tree.structure(b))  # type: ignore[operator]


def conv_sites(subject) -> list:
    return [k for k, v in subject.sites.items() if len(v) == 3]


def var(name: str) -> str:
    """A site name as part of a NetCDF variable name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def num(x, spec: str = ".2f") -> str:
    """A number for a takeaway; a missing one (NaN, or no units to take a median over) as "—"."""
    if x is None or not math.isfinite(float(x)):
        return "—"
    return f"{float(x):{spec}}"


def median(values) -> float:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def code_link(fn) -> tuple[str, str]:
    """(``insilico/demo/x.py:LINE``, file URI) of the function that made a section."""
    source = inspect.getsourcefile(fn)
    if source is None:
        raise ValueError(f"no source file for {fn!r}")
    path = Path(source).resolve()
    line = inspect.getsourcelines(fn)[1]
    try:
        label = path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        label = path.name
    return f"{label}:{line}", path.as_uri()


def experiment_links(names) -> list:
    """(label, file URI) of the experiment scripts among ``names`` that exist beside the package."""
    out = []
    for n in names:
        p = REPO_ROOT / "experiments" / n
        if p.is_file():
            out.append((f"experiments/{n}", p.as_uri()))
    return out


class CompileCounter:
    """Counts XLA compilations (JAX's backend-compile events) while it is entered."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.count, self.seconds, self.names = 0, 0.0, Counter()

    def _listen(self, event, duration, fun_name=None, **_):
        if event == self.EVENT:
            self.count += 1
            self.seconds += duration
            self.names[str(fun_name)] += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)
