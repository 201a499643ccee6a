"""``insilico demo``: an offline tour of the bundled models, written to ``OUT/index.html`` and NetCDF files.

The report opens with a summary (what ran, how long each section took, one finding per section) and a table of
contents. Each section asks one question, shows its figures and tables, states a takeaway computed from its
results, and links to its NetCDF output, to the code that made it and to the experiment that does it at full
scale. Sections: the models and their sites, first-layer filters, activation statistics, orientation tuning,
receptive fields (feature visualizations with exemplars, RF size vs depth, simple/complex cells), single-unit
lesions and cumulative ablation, stimulus synthesis (PGD accuracy vs ε with the untrained control, controversial
stimuli between the CIFAR models, metamers), comparison with brains and scoring on the registered brain
benchmarks (both when INSILICO_DATA holds the data), the four elements (recurrent vs feed-forward, feedback
alignment vs backpropagation, trained on the spot on scikit-learn's digits), a model of your own (an NNX CNN
defined and trained on the spot) and what insilico refuses. No data directory is needed.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import jax
import xarray as xr

from .. import zoo
from ..report import Report
from ..validation import ArgumentError
from ._core import DEFAULT_MODELS, CompileCounter, Context, code_link, experiment_links
from .brains import brain_section
from .honesty import nothing_silent_section
from .learning import four_elements_section, your_own_model_section
from .lesions import lesion_section
from .overview import filters_section, models_section, statistics_section
from .scoring import scoring_section
from .synthesis import synthesis_section
from .tuning import receptive_fields_section, tuning_section

SECTIONS = [models_section, filters_section, statistics_section, tuning_section, receptive_fields_section,
            lesion_section, synthesis_section, brain_section, scoring_section, four_elements_section,
            your_own_model_section, nothing_silent_section]

EXPERIMENTS = {                              # the scripts in experiments/ that do a section at full scale
    "models_section": ("train_zoo.py",),
    "filters_section": ("receptive_fields.py",),
    "tuning_section": ("receptive_fields.py",),
    "receptive_fields_section": ("receptive_fields.py",),
    "lesion_section": ("ablation_morcos2018.py",),
    "synthesis_section": ("adversarial.py", "controversial_stimuli.py", "metamers.py"),
    "brain_section": ("rsa_92images.py", "v4_encoding.py"),
    "scoring_section": ("performance_vs_brain.py",),
    "four_elements_section": ("four_elements.py", "feedback_alignment.py"),
    "nothing_silent_section": ("honesty_audit.py",),
}

__all__ = ["DEFAULT_MODELS", "SECTIONS", "Context", "run_demo"] + [f.__name__ for f in SECTIONS]


def _check_models(models) -> tuple:
    if isinstance(models, str) or not hasattr(models, "__iter__"):
        raise ArgumentError(f"models must be a sequence of zoo model names; got {models!r}; available: "
                            f"{', '.join(zoo.available())}")
    models = tuple(models)
    if not models:
        raise ArgumentError(f"models must name at least one zoo model; available: {', '.join(zoo.available())}")
    if len(set(models)) != len(models):
        raise ArgumentError(f"models must not repeat a name; got {models!r}")
    return models


def run_demo(out, models=DEFAULT_MODELS, quick: bool = False, progress: bool = True) -> Path:
    """Run every demo section on ``models`` and write ``out/index.html`` plus NetCDF files: ``MODEL.nc`` per model
    and ``SECTION.nc`` for results that belong to no bundled model. With ``progress``, a bar over the sections
    and each section's time and number of compilations on stderr. Returns the path of index.html."""
    from tqdm.auto import tqdm

    models = _check_models(models)
    if not isinstance(quick, bool) or not isinstance(progress, bool):
        raise ArgumentError(f"quick and progress must be True or False; got quick={quick!r}, progress={progress!r}")
    out = Path(out)
    t0 = time.perf_counter()
    with CompileCounter() as loading:
        subjects = {m: zoo.load(m) for m in models}
    ctx = Context(Report("insilico demo" + (" (quick)" if quick else ""), out), subjects, quick)
    timings = [("loading the models", time.perf_counter() - t0, loading.count)]
    if progress:
        tqdm.write(f"loading {len(models)} models: {timings[0][1]:.1f} s, {loading.count} compilations",
                   file=sys.stderr)
    bar = tqdm(SECTIONS, desc="insilico demo", unit="section", disable=not progress, file=sys.stderr)
    for section in bar:
        short = section.__name__.replace("_section", "")
        bar.set_postfix_str(short)
        before = len(ctx.report.sections)
        t = time.perf_counter()
        with CompileCounter() as compiles:
            section(ctx)
        dt = time.perf_counter() - t
        timings.append((short, dt, compiles.count))
        label, href = code_link(section)
        for s in ctx.report.sections[before:]:
            s.seconds = dt
            s.link("code", label, href)
            for exp_label, exp_href in experiment_links(EXPERIMENTS.get(section.__name__, ())):
                s.link("experiment", exp_label, exp_href)
        if progress:
            tqdm.write(f"{short}: {dt:.1f} s, {compiles.count} compilations", file=sys.stderr)
    bar.close()
    for store, attrs in ((ctx.results, lambda k: {"model": k, "description": subjects[k].meta.get("description", "")}),
                         (ctx.files, lambda k: {"section": k})):
        for name, variables in store.items():
            xr.Dataset(variables, attrs=attrs(name)).to_netcdf(out / f"{name}.nc")
    for s in ctx.report.sections:
        for fname in ctx.data_links.get(id(s), ()):
            s.link("data", fname, fname)
    total = time.perf_counter() - t0
    device = jax.devices()[0]
    where = (f"the CPU ({platform.machine()}, {os.cpu_count()} cores)" if device.platform == "cpu"
             else f"{device.platform} ({device.device_kind})")
    ctx.report.summary = (
        f"{'The quick form of ' if quick else ''}insilico demo ran {len(SECTIONS)} sections on {len(models)} "
        f"model{'s' if len(models) > 1 else ''} ({', '.join(models)}) in {total:.0f} s on {where}; "
        f"loading the models took {timings[0][1]:.1f} s. {sum(c for *_, c in timings)} compilations in all. Each "
        "row: the section, the seconds it took (including compilation) and its finding.")
    if progress:
        tqdm.write(f"insilico demo: {total:.1f} s in all", file=sys.stderr)
    return ctx.report.write()
