"""Scoring a model with registered benchmarks: each benchmark's stimuli prepared for the model, its per-site
computation (:mod:`insilico.scores._features`), its metric (:mod:`insilico.scores.metrics`) — and a store of
finished benchmarks under ``OUT/benchmarks/`` that a rerun reuses only when the fingerprint (model weights hash,
the model's own settings, benchmark definition, the data files it reads, seed, resize method, bootstrap samples,
insilico's version) is the same; a stored result that differs in any of them is named and recomputed, never
reused.

Random draws: ``base = PRNGKey(seed)``; a benchmark's key is ``fold_in(base, benchmark.stream)`` — the image
folds of the encoding come from it directly (the same folds for every site), the selection split from
``fold_in(key, 1000)``, the bootstrap from ``fold_in(key, 1001)`` and a split-half ceiling from
``fold_in(base, 99)`` (as experiments/v4_encoding.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from .. import __version__ as _insilico_version
from ..engine.fingerprint import stable_text
from ..validation import ArgumentError, check_choice, check_count, check_number
from . import _features
from .benchmark import Benchmark, MissingDataError, get, missing_data
from .metrics import score_encoding, score_rsa, score_tuning
from .stimuli import CHANNELS_RULE, RESIZE_METHODS, prepare_images, split_neurons, split_stimuli

__all__ = ["weights_hash", "model_identity", "model_settings", "data_files", "fingerprint", "run_benchmark",
           "score_model"]

SPLIT_STREAM, BOOT_STREAM, CEILING_STREAM = 1000, 1001, 99


def weights_hash(subject) -> str:
    """sha256 of the subject's variables: every array's path, dtype, shape and bytes, in tree order."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(subject.variables)[0]:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_identity(subject, source: str = "") -> dict:
    """What identifies the model scored: name, architecture, where it came from, the weights' sha256, input."""
    return {"model": subject.name, "architecture": subject.architecture, "source": source or subject.name,
            "weights_sha256": weights_hash(subject), "input_shape": "x".join(map(str, subject.input_spec.shape)),
            "classes": len(subject.class_names), "insilico_version": _insilico_version}


def model_settings(subject) -> str:
    """sha256 of what the subject computes besides its weights: the module and its settings (e.g. the input
    normalization), the input spec, the sites and how they were chosen, the call's keyword arguments."""
    parts = (subject.architecture, subject.api, subject.model, subject.graph, subject.input_spec,
             tuple(subject.sites.items()), subject.selector, subject.call_kwargs, subject.output_shape)
    return hashlib.sha256(stable_text(repr(parts)).encode()).hexdigest()       # no object addresses


def _hash_content(value, h) -> None:
    """Feed ``value`` (arrays, xarray objects, dicts, sequences, numbers, strings) into the hash ``h`` by content."""
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        value = value.to_dataset(name="_") if isinstance(value, xr.DataArray) else value
        for name in sorted(map(str, value.variables)):
            h.update(f"var {name}|".encode())
            _hash_content(value.variables[name].values, h)
        h.update(stable_text(repr(sorted(value.attrs.items()))).encode())
    elif isinstance(value, dict):
        for k in sorted(value, key=repr):
            h.update(f"key {k!r}|".encode())
            _hash_content(value[k], h)
    elif isinstance(value, (list, tuple)):
        h.update(f"seq {len(value)}|".encode())
        for v in value:
            _hash_content(v, h)
    elif isinstance(value, (np.ndarray, jax.Array, np.generic)):
        a = np.asarray(value)
        if a.dtype == object:
            h.update(f"objects {stable_text(repr(a.tolist()))}|".encode())
        else:
            h.update(f"array {a.dtype.str}{a.shape}|".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    else:
        h.update(f"value {stable_text(repr(value))}|".encode())


def data_files(benchmark: Benchmark, root: str | os.PathLike | None = None) -> str:
    """sha256 of every file the benchmark's data folders hold under ``root`` (default ``INSILICO_DATA``): path
    relative to the root, size and modification time. A benchmark that reads no data folder (its loaders return
    data held in memory) is hashed by the content of what its loaders return instead, so that a stored result of
    other data is never reused."""
    if not benchmark.folders:
        h = hashlib.sha256()
        for loader in (benchmark.stimuli, benchmark.data, benchmark.ceiling_data):
            _hash_content(None if loader is None else loader(), h)
        return "content:" + h.hexdigest()
    base = Path(root if root is not None else os.environ.get("INSILICO_DATA", "")).expanduser()
    h = hashlib.sha256()
    for folder in benchmark.folders:
        for f in sorted(p for p in (base / folder).rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(base)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def fingerprint(weights_sha256: str, benchmark: Benchmark, seed: int, resize: str, n_boot: int, *,
                model: str = "", data: str = "") -> dict:
    """The components a stored result must share with a rerun to be reused: ``model`` from
    :func:`model_settings`, ``data`` from :func:`data_files`, and insilico's version."""
    seed = check_seed(seed)
    return {"weights_sha256": weights_sha256, "model_settings": model, "benchmark": benchmark.fingerprint(),
            "data_files": data, "seed": seed, "resize": resize, "n_boot": int(n_boot),
            "insilico_version": _insilico_version}


def check_seed(seed) -> int:
    """A seed is an integer ≥ 0 (1.9 would be stored as 1; True as 1)."""
    return check_number("seed", seed, low=0, integer=True)


def _sites(subject, metric: str) -> list[str]:
    if metric == "tuning-shape":                        # grating tuning reads the centre unit of a spatial map
        sites = [s for s, shape in subject.sites.items() if len(shape) == 3]
        if not sites:
            raise ArgumentError(f"{subject.name} has no spatial (height, width, channels) site for grating tuning")
        return sites
    return list(subject.sites)


def _tuning(subject, benchmark: Benchmark, sites):
    """{site: {"preferred_sf" (c/deg), "sf_bandwidth" (octaves)} of responsive units}, the cells' same
    statistics, and what the model saw."""
    from ..analysis import tuning as tn
    from ..probes import rf

    grid, cells = benchmark.stimuli(), benchmark.data()
    h = subject.input_spec.shape[0]
    deg, level = float(benchmark.option("visual_degrees")), float(benchmark.option("level", 0.5))
    cpd = np.asarray(grid["sfs_cpd"], float)
    cpp = cpd * deg / h                                  # cycles/pixel = c/deg x deg per image / px per image
    keep = (cpp * h >= 1) & (cpp <= 0.5)                 # at least one cycle per image, at most Nyquist
    if keep.sum() < 3:
        raise ArgumentError(f"{benchmark.name}: fewer than 3 of the cells' SFs fit a {h}-px input spanning {deg} deg")
    tun = rf.grating_tuning(subject, sites, orientations=grid["orientations"], sfs=tuple(cpp[keep]),
                            phases=grid["phases"])
    model: dict[str, dict] = {}
    for s in sites:
        summ = rf.tuning_summary(tun[s], level)
        ok = summ.peak_response.values > 1e-3
        model[s] = {"preferred_sf": summ.preferred_sf.values[ok] * h / deg,
                    "sf_bandwidth": summ.sf_bandwidth.values[ok]}
    drive = (cells.rate_mean - cells.spont_mean).values
    stats = {"preferred_sf": tn.preferred_log_peak(cells.sf.values, drive),
             "sf_bandwidth": tn.log_bandwidth(cells.sf.values, drive, level)["bandwidth_octaves"]}
    note = (f"gratings at the cells' {int(keep.sum())} SFs {', '.join(f'{c:.3g}' for c in cpd[keep])} c/deg "
            f"({', '.join(f'{c:.3g}' for c in cpp[keep])} c/px: the {h}-px input taken to span {deg:g} deg), "
            f"{len(grid['orientations'])} orientations x {len(grid['phases'])} phases, centre unit of each channel; "
            f"units with peak response > 1e-3 kept")
    return model, stats, note


def run_benchmark(subject, benchmark: Benchmark | str, *, seed: int = 0, resize: str = "antialiased-bilinear",
                  n_boot: int = 200) -> xr.Dataset:
    """Score ``subject`` on ``benchmark``: the per-site table and the chosen site's held-out score (see
    :mod:`insilico.scores.metrics`), with the benchmark's identity, how the stimuli were prepared and the
    ceiling's method in attrs. Raises :class:`MissingDataError` naming the folder and the fetch command when the
    benchmark's data are not under ``INSILICO_DATA``. ``benchmark``: a :class:`Benchmark` or a registered name."""
    if isinstance(benchmark, str):
        benchmark = get(benchmark)
    elif not isinstance(benchmark, Benchmark):
        raise ArgumentError(f"benchmark must be a Benchmark or a registered benchmark's name; got "
                            f"{type(benchmark).__name__}")
    resize, seed = check_choice("resize", resize, RESIZE_METHODS), check_seed(seed)
    n_boot = check_count("n_boot", n_boot, minimum=0)
    if n_boot == 1:
        raise ArgumentError("n_boot must be 0 (no intervals) or at least 2; got 1")
    why = missing_data(benchmark)
    if why:
        raise MissingDataError(why)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), benchmark.stream)
    k_split, k_boot = jax.random.fold_in(key, SPLIT_STREAM), jax.random.fold_in(key, BOOT_STREAM)
    sites = _sites(subject, benchmark.metric)
    spec = subject.input_spec
    if benchmark.metric == "tuning-shape":
        model, cells, note = _tuning(subject, benchmark, sites)
        split = split_neurons(len(cells["preferred_sf"]), k_split)
        ds = score_tuning(model, cells, split, n_boot=n_boot, key=k_boot)
    else:
        images, groups = benchmark.stimuli()
        x, note = prepare_images(images, spec.shape, spec.bounds, resize)
        data = benchmark.data()
        if benchmark.metric == "rsa":
            rdms = _features.site_rdms(subject, x, sites, rdm_method=str(benchmark.rdm_method))
            split = split_stimuli(len(x), k_split, groups)
            ds = score_rsa(rdms, data, split, comparator=str(benchmark.comparator), n_boot=n_boot, key=k_boot)
        else:
            per_split = _features.encoding_scores(subject, x, data, sites, n_splits=benchmark.n_splits, key=key)
            split = split_neurons(int(np.shape(data)[1]), k_split)
            ceiling = None
            if benchmark.ceiling_data is not None:
                from ..analysis.encoding import split_half_reliability

                ceiling = split_half_reliability(benchmark.ceiling_data(), n_splits=100,
                                                 key=jax.random.fold_in(jax.random.PRNGKey(seed), CEILING_STREAM))
            ds = score_encoding(per_split, split, ceiling=ceiling, n_boot=n_boot, key=k_boot)
        ds.attrs["channels_rule"] = CHANNELS_RULE
    missing_sites = [s for s in sites if s not in ds.site.values]
    ds.attrs.update({
        "benchmark": benchmark.name, "benchmark_version": benchmark.version, "region": benchmark.region,
        "kind": benchmark.kind, "metric": benchmark.metric, "comparator": benchmark.comparator or "",
        "rdm_method": benchmark.rdm_method or "",
        "n_splits": benchmark.n_splits if benchmark.metric == "encoding" else 0,
        "citation": benchmark.citation, "ceiling_method": benchmark.ceiling, "stimuli": note, "resize": resize,
        "selection_rule": f"site chosen on half the {ds.attrs['selection_unit']} ({ds.attrs['n_selection']}), "
                          f"scored on the other half ({ds.attrs['n_heldout']})" +
                          (", stratified by category" if benchmark.selection == "stimuli" else ""),
        "seed": int(seed), "sites_without_result": ", ".join(missing_sites)})
    return ds


def _store_path(out: Path, name: str) -> Path:
    return out / "benchmarks" / f"{name}.nc"


def _stored(path: Path) -> tuple[xr.Dataset | None, dict | None]:
    if not path.is_file():
        return None, None
    try:
        with xr.open_dataset(path, engine="scipy") as f:
            ds = f.load()
        return ds, json.loads(ds.attrs["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, {}                                  # unreadable: recomputed, and said so


def score_model(subject, benchmarks: Sequence[str | Benchmark], out, *, seed: int = 0,
                resize: str = "antialiased-bilinear", n_boot: int = 200, source: str = "",
                log: Callable[[str], None] = print) -> tuple[dict, dict, dict]:
    """Run ``benchmarks`` on ``subject``, storing each finished one under ``out/benchmarks/NAME.nc`` with its
    fingerprint; a stored result is reused only when its fingerprint equals this run's (otherwise the differing
    components are named and it is recomputed). A benchmark whose data are missing is skipped with the message
    naming the folder and the fetch command. Returns ({name: Dataset}, {name: why skipped}, model identity)."""
    resize, seed = check_choice("resize", resize, RESIZE_METHODS), check_seed(seed)
    benches = [b if isinstance(b, Benchmark) else get(b) for b in benchmarks]
    out = Path(out)
    (out / "benchmarks").mkdir(parents=True, exist_ok=True)
    identity = model_identity(subject, source)
    settings = model_settings(subject)
    results: dict[str, xr.Dataset] = {}
    skipped: dict[str, str] = {}
    for i, b in enumerate(benches, 1):
        head = f"[{i}/{len(benches)}] {b.name}"
        why = missing_data(b)
        if why:
            skipped[b.name] = why
            log(f"{head}: skipped — {why}")
            continue
        fp = fingerprint(identity["weights_sha256"], b, seed, resize, n_boot, model=settings, data=data_files(b))
        path = _store_path(out, b.name)
        stored, stored_fp = _stored(path)
        if stored is not None and stored_fp == fp:
            results[b.name] = stored
            log(f"{head}: reused the stored result ({path}; same weights, model settings, definition, data files, "
                f"seed, resize, samples, version)")
            continue
        if stored_fp is not None:
            differs = [k for k in fp if stored_fp.get(k) != fp[k]] or ["an unreadable file"]
            log(f"{head}: stored result {path} refused — it differs in {', '.join(differs)}; recomputing")
        log(f"{head}: running ({b.region}, {b.metric}) ...")
        t0 = time.time()
        ds = run_benchmark(subject, b, seed=seed, resize=resize, n_boot=n_boot)
        ds.attrs["fingerprint"] = json.dumps(fp, sort_keys=True)
        ds.attrs["seconds"] = round(time.time() - t0, 2)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        ds.to_netcdf(tmp, engine="scipy")
        os.replace(tmp, path)
        results[b.name] = ds
        a = ds.attrs
        ceil = f", ceiling {a['ceiling']:.3f}, normalized {a['normalized']:.3f}" if np.isfinite(a["ceiling"]) else ""
        log(f"{head}: {a['chosen_site']} (selection {a['selection_score']:.3f}), held-out {a['raw_score']:.3f}"
            f"{ceil} ({a['seconds']:.0f} s)")
    return results, skipped, identity


def require_data(benchmarks: Sequence[str]) -> None:
    """Refuse (naming the folders and the fetch command) when a chosen benchmark's data are missing."""
    for name in benchmarks:
        why = missing_data(get(name))
        if why:
            raise MissingDataError(why)
