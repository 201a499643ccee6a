"""A benchmark as data — what is compared with what, how it is scored, what bounds the score, which site stands
for the model — and the registry of benchmarks (:func:`register`, :func:`get`, :func:`available`,
:data:`BENCHMARKS`).

A :class:`Benchmark` holds no results and runs nothing: its loaders read the stimuli and the recordings (or
judgements) from ``INSILICO_DATA`` when called, and :mod:`insilico.scores.run` scores a model with it.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..engine.fingerprint import describe_static
from ..validation import ArgumentError, UnknownNameError, check_fraction, check_positive

__all__ = ["Benchmark", "BENCHMARKS", "METRICS", "register", "get", "available", "missing_data",
           "MissingDataError", "UnknownBenchmarkError"]

#: metric name -> what it computes
METRICS = {
    "rsa": "RDM of the site's responses (rdm_method) compared with each subject's RDM (comparator), mean over "
           "subjects",
    "encoding": "ridge regression from the site's units (top 500 principal components of a wider site) to each "
                "neuron, K-fold over the images (alpha per neuron by inner CV over the training folds), held-out "
                "Pearson r per neuron averaged over folds, median over neurons",
    "tuning-shape": "1 - mean two-sample Kolmogorov-Smirnov distance between the distributions of preferred "
                    "spatial frequency (c/deg) and SF bandwidth (octaves) of the site's units and of the cells",
}


class UnknownBenchmarkError(UnknownNameError):
    """A benchmark name that is not registered; the message lists the registered ones."""


class MissingDataError(ArgumentError):
    """A benchmark's data folder is not under ``INSILICO_DATA``; the message names the folder and the command that
    fetches it."""


@dataclass(frozen=True)
class Benchmark:
    """One comparison of a model with the brain (or with behaviour).

    - ``name``: registry key; ``region``: the area (or "behaviour"); ``kind``: "neural" or "behaviour";
    - ``stimuli``: loader ``() -> (images (N, H, W, C) float32 in [0, 1], groups (N,) int or None)`` — ``groups``
      (categories) stratify the stimulus split; for "tuning-shape" a dict of the grating grid instead;
    - ``data``: loader ``() -> target``: subject RDMs (S, N, N) for "rsa"; an ``xarray.DataArray``
      (presentation, neuroid) for "encoding"; the cells' tuning Dataset for "tuning-shape";
    - ``metric``: one of :data:`METRICS`; ``rdm_method`` ("correlation" or "euclidean") and ``comparator`` for
      "rsa"; ``n_splits`` (image folds) for "encoding";
    - ``ceiling``: how the ceiling is computed, or why there is none (text, shown in the scorecard);
      ``ceiling_data``: loader of what the ceiling is computed from (raw repeats), or None;
    - ``selection``: the site-selection rule, "stimuli" (RSA: half the stimuli, stratified by ``groups``) or
      "neurons" (encoding and tuning: half the neurons or cells), as the metric requires — the site is chosen on
      one half, scored on the other;
    - ``folders``: the dataset folders under ``INSILICO_DATA`` it reads; ``citation``; ``version`` (bumped when
      the definition changes: a stored result of another version is recomputed); ``stream``: the number folded
      into the seed's PRNG key for this benchmark's random draws; ``options``: metric settings (e.g.
      ``visual_degrees``), part of the definition.
    """

    name: str
    region: str
    stimuli: Callable[[], Any]
    data: Callable[[], Any]
    metric: str
    ceiling: str
    selection: str
    folders: tuple[str, ...]
    citation: str
    kind: str = "neural"
    rdm_method: str | None = None
    comparator: str | None = None
    n_splits: int = 10
    ceiling_data: Callable[[], Any] | None = None
    version: str = "1"
    stream: int = 0
    description: str = ""
    options: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self):
        from ..analysis import rsa

        if not isinstance(self.name, str) or not self.name or any(c in self.name for c in "/\\ "):
            raise ArgumentError(f"name must be a non-empty string without '/', '\\' or spaces; got {self.name!r}")
        if self.metric not in METRICS:
            raise ArgumentError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        if self.kind not in ("neural", "behaviour"):
            raise ArgumentError(f"kind must be 'neural' or 'behaviour'; got {self.kind!r}")
        split = "stimuli" if self.metric == "rsa" else "neurons"    # what run_benchmark splits for this metric
        if self.selection != split:
            raise ArgumentError(f"selection must be {split!r} for metric {self.metric!r} (an RDM's site is chosen on "
                                f"half the stimuli, an encoding's or a tuning's on half the neurons); got "
                                f"{self.selection!r}")
        if self.metric == "rsa":
            streamed = ("correlation", "euclidean")                     # the RDMs streaming.site_rdms computes
            if self.rdm_method not in streamed:
                raise ArgumentError(f"rdm_method must be one of {', '.join(streamed)} (the RDMs a benchmark streams "
                                    f"from a site); got {self.rdm_method!r}")
            if self.comparator not in rsa.CEILING_METHODS:
                raise ArgumentError(f"comparator must be one of {', '.join(rsa.CEILING_METHODS)}; got "
                                    f"{self.comparator!r}")
        if not isinstance(self.folders, tuple) or not all(isinstance(f, str) for f in self.folders):
            raise ArgumentError(f"folders must be a tuple of folder names; got {self.folders!r}")
        if not isinstance(self.options, tuple) or not all(isinstance(o, tuple) and len(o) == 2 and
                                                          isinstance(o[0], str) for o in self.options):
            raise ArgumentError(f"options must be a tuple of (name, value) pairs; got {self.options!r:.80}")
        if self.metric == "tuning-shape":              # gratings need the input's size in degrees of visual angle
            check_positive("options' visual_degrees (degrees of visual angle the input spans)",
                           self.option("visual_degrees"))
            check_fraction("options' level (the fraction of the peak that bounds the bandwidth)",
                           self.option("level", 0.5), open_low=True, open_high=True)

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)

    def definition(self) -> dict:
        """Everything that defines the benchmark, as JSON-able values (loaders by their qualified names)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if callable(v):
                v = _loader_name(v)
            out[f.name] = [list(o) for o in v] if f.name == "options" else v
        return out

    def fingerprint(self) -> str:
        """sha256 of :meth:`definition`."""
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _loader_name(f) -> str:
    """A loader by module, qualified name, closure values and defaults; a ``functools.partial`` by its function and
    arguments — never by memory address, which would give the benchmark another fingerprint in every process."""
    return describe_static(f)


BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark, *, replace: bool = False) -> Benchmark:
    """Add ``benchmark`` to :data:`BENCHMARKS` (a name already taken is refused unless ``replace``)."""
    if not isinstance(benchmark, Benchmark):
        raise ArgumentError(f"benchmark must be a Benchmark; got {type(benchmark).__name__}")
    if benchmark.name in BENCHMARKS and not replace:
        raise ArgumentError(f"a benchmark named {benchmark.name!r} is registered already; pass replace=True to "
                            "replace it")
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def get(name: str) -> Benchmark:
    """The registered benchmark ``name``."""
    if not isinstance(name, str) or name not in BENCHMARKS:
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}; registered: {', '.join(BENCHMARKS)} "
                                    "(`insilico score --list`)")
    return BENCHMARKS[name]


def available() -> list[str]:
    """The registered benchmark names, in registration order."""
    return list(BENCHMARKS)


def missing_data(benchmark: Benchmark, root: str | os.PathLike | None = None) -> str | None:
    """None when every folder ``benchmark`` reads is under ``root`` (default ``INSILICO_DATA``); otherwise one
    line naming the missing folders and the command that fetches them."""
    if not benchmark.folders:
        return None
    root = root if root is not None else os.environ.get("INSILICO_DATA")
    if not root or not Path(root).expanduser().is_dir():
        why = "INSILICO_DATA is not set" if not root else f"INSILICO_DATA={str(root)!r} is not a directory"
        return (f"benchmark {benchmark.name!r} needs {', '.join(benchmark.folders)}, but {why}: set INSILICO_DATA "
                f"to the data directory, or fetch with `insilico data fetch {' '.join(benchmark.folders)} "
                f"--dest DIR --source URL`")
    missing = [f for f in benchmark.folders if not (Path(root).expanduser() / f).is_dir()]
    if not missing:
        return None
    return (f"benchmark {benchmark.name!r} needs {', '.join(missing)}, not in INSILICO_DATA={str(root)!r}: fetch "
            f"with `insilico data fetch {' '.join(missing)} --source URL`")
