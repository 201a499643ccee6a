"""Figures for the report: filters, activation statistics, tuning, lesions, receptive fields, stimulus synthesis.

Every function returns a matplotlib Figure drawn in the shared style of :mod:`insilico.report.style` (applied on
import): titles, axis labels with units, legends beside the data, integer ticks for counts and time steps,
small multiples instead of overlaid histograms, and a caption under the figure where the reader needs one.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ..validation import (
    ArgumentError,
    check_count,
    check_finite,
    check_fraction,
    check_in_range,
    check_positive,
)
from . import style
from .style import CONTROL_COLOR, caption, integer_ticks, legend_outside

style.use()

__all__ = ["ablation_curves", "accuracy_per_time_step", "accuracy_vs_eps", "bandwidth_comparison",
           "controversial_images", "exemplar_grid", "filters", "image_rows", "lesion_sweep", "metamers",
           "modulation_histograms", "osi_histograms", "responsive_units", "rf_size_vs_depth", "site_statistics",
           "tuning_curves", "visualization_failed"]

FAILED_COLOR = "#C00000"


# ------------------------------------------------------------------------------------------------ checks, drawing

def _check_text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ArgumentError(f"{name} must be a string; got {type(value).__name__} {value!r}")
    return value


def _check_mapping(name: str, value, what: str) -> dict:
    if not isinstance(value, Mapping) or not value:
        got = "an empty mapping" if isinstance(value, Mapping) else type(value).__name__
        raise ArgumentError(f"{name} must be a non-empty mapping {{label: {what}}}; got {got}")
    return dict(value)


def _check_dataset(name: str, ds, variables, producer: str) -> xr.Dataset:
    missing = [v for v in variables if not isinstance(ds, xr.Dataset) or v not in ds.variables]
    if missing:
        got = type(ds).__name__ if not isinstance(ds, xr.Dataset) else f"a Dataset with {', '.join(ds.variables)}"
        raise ArgumentError(f"{name} must be a Dataset from {producer} (with {', '.join(variables)}); got {got}")
    return ds


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def _hide(axes, used: int) -> None:
    for ax in list(np.ravel(axes))[used:]:
        ax.set_visible(False)


def _image(img) -> tuple[np.ndarray, str | None]:
    """An (H, W, C) image as imshow data and colour map (grey for one channel)."""
    img = np.asarray(img, float)
    return (img[..., 0], "gray") if img.ndim == 3 and img.shape[-1] == 1 else (img, None)


def _show(ax, img, normalize: bool = False):
    img = np.asarray(img, float)
    if normalize:
        img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    data, cmap = _image(np.clip(img, 0, 1))
    ax.imshow(data, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _upsample(img, min_pixels: int = 160) -> np.ndarray:
    """Nearest-neighbour upsampling by a whole factor, so that small images stay crisp at any zoom."""
    img = np.asarray(img)
    f = max(1, -(-min_pixels // max(img.shape[:2])))
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def _images(name: str, images, ndim=4) -> np.ndarray:
    a = check_finite(name, np.asarray(images, float), ndim=ndim)
    if a.shape[-1] not in (1, 3):
        raise ArgumentError(f"{name} must hold images (..., H, W, C) with 1 or 3 channels; got shape {a.shape}")
    return a


# ------------------------------------------------------------------------------------------------ filters, statistics

def filters(kernel, title: str = "", max_filters: int = 64):
    """Grid of first-layer filters from a conv kernel (kh, kw, C_in, C_out); each scaled to its own [min, max].
    Colour for three input channels, input channel 0 in grey otherwise."""
    k = check_finite("kernel", kernel, ndim=4)[..., :check_count("max_filters", max_filters)]
    _check_text("title", title)
    n, c_in = k.shape[-1], k.shape[2]
    rows, cols = _grid(n, int(np.ceil(np.sqrt(n))))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7 + 0.4, rows * 0.7 + 0.6), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            f = k[..., i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)
            data, cmap = _image(f if c_in == 3 else f[..., :1])
            ax.imshow(data, cmap=cmap, interpolation="nearest")
    fig.suptitle(title or f"{n} first-layer filters")
    caption(fig, f"{k.shape[0]}×{k.shape[1]} kernels, each scaled to its own range"
             + ("" if c_in in (1, 3) else f"; input channel 0 of {c_in} shown"))
    return fig


def site_statistics(stats: dict, title: str = ""):
    """Bar charts per site: mean activation, fraction of responses > 0, fraction of silent units.

    ``stats``: {site: {"mean": float, "active": float, "silent_units": float}}.
    """
    stats = _check_mapping("stats", stats, '{"mean", "active", "silent_units"}')
    _check_text("title", title)
    keys = ("mean", "active", "silent_units")
    for s, v in stats.items():
        if not isinstance(v, Mapping) or any(k not in v for k in keys):
            raise ArgumentError(f"stats[{s!r}] must be a mapping with {', '.join(keys)}; got {v!r}")
    sites = list(stats)
    fig, axes = plt.subplots(1, 3, figsize=(max(9.0, 3 * (1.0 + 0.35 * len(sites))), 3.4), layout="constrained")
    panels = (("mean", "Mean activation", "activation (a.u.)"),
              ("active", "Responses > 0", "fraction of responses"),
              ("silent_units", "Silent units (never > 0)", "fraction of units"))
    for ax, (key, name, ylabel) in zip(axes, panels):
        ax.bar(range(len(sites)), [float(stats[s][key]) for s in sites], color=style.COLORS[0])
        ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right")
        ax.set_title(name)
        ax.set_xlabel("site")
        ax.set_ylabel(ylabel)
        if key != "mean":
            ax.set_ylim(0, 1)
    fig.suptitle(title or "Activation statistics per site")
    return fig


# ------------------------------------------------------------------------------------------------ orientation tuning

def responsive_units(selectivity, fraction: float = 0.05) -> np.ndarray:
    """Boolean mask over units: a unit is *responsive* when its peak response exceeds ``fraction`` × the largest
    peak response of any unit of the site, and is > 0. A near-silent unit (peak 0.002 where others reach 1) has
    an OSI of pure noise; this is the criterion to select units before reporting their selectivity.

    selectivity: a Dataset from :func:`insilico.probes.rf.orientation_selectivity` (its ``peak_response``), or
        the peak responses themselves (a 1-D array, one per unit).
    """
    fraction = check_fraction("fraction", fraction)
    if isinstance(selectivity, xr.Dataset):
        if "peak_response" not in selectivity:
            raise ArgumentError("selectivity must be a Dataset with peak_response (orientation_selectivity) or a "
                                f"1-D array of peak responses; got a Dataset with {', '.join(selectivity.data_vars)}")
        selectivity = selectivity.peak_response.values
    peak = check_finite("peak responses of selectivity", np.asarray(selectivity, float), ndim=1)
    return (peak > 0) & (peak > fraction * peak.max())


def tuning_curves(selectivity, units, title: str = "", responsive=None, criterion: str = "", *,
                  sharey: bool = True, max_cols: int = 6):
    """Orientation tuning curves (at each unit's preferred spatial frequency) of ``units`` (values of the
    ``unit`` coordinate) from :func:`insilico.probes.rf.orientation_selectivity` output. Each panel's title gives
    the unit's OSI and peak response; panels share the response axis (``sharey``), so a near-silent unit looks
    flat. ``responsive``: boolean mask over all units (e.g. :func:`responsive_units`); with it the caption says
    how many units passed ``criterion`` (the text of the rule, e.g. "peak response > 5% of the site's largest"),
    and a shown unit that did not is marked "below criterion"."""
    sel = _check_dataset("selectivity", selectivity, ("curve", "osi", "peak_response", "orientation"),
                         "insilico.probes.rf.orientation_selectivity")
    _check_text("title", title)
    _check_text("criterion", criterion)
    all_units = list(sel.unit.values)
    units = [u.item() if hasattr(u, "item") else u for u in np.atleast_1d(np.asarray(units))]
    if not units:
        raise ArgumentError("units must name at least one unit of selectivity")
    bad = [u for u in units if u not in all_units]
    if bad:
        raise ArgumentError(f"units {bad[:5]} are not units of selectivity (its units: 0..{len(all_units) - 1})")
    if responsive is not None:
        responsive = np.asarray(responsive)
        if responsive.dtype != bool or responsive.shape != (len(all_units),):
            raise ArgumentError(f"responsive must be a boolean mask over the {len(all_units)} units of selectivity "
                                f"(e.g. responsive_units(selectivity)); got dtype {responsive.dtype}, shape "
                                f"{responsive.shape}")
    rows, cols = _grid(len(units), max_cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 0.3, 2.3 * rows + 0.6), squeeze=False,
                             sharey=bool(sharey), layout="constrained")
    ori = sel.orientation.values
    for ax, u in zip(axes.ravel(), units):
        i = all_units.index(u)
        below = responsive is not None and not responsive[i]
        ax.plot(ori, sel.curve.values[i], "o-", color=CONTROL_COLOR if below else style.COLORS[1])
        if "preferred_orientation" in sel:
            ax.axvline(float(sel.preferred_orientation.values[i]), color="0.6", lw=0.8, ls=":")
        head = f"unit {u}\nOSI {float(sel.osi.values[i]):.2f}, peak {float(sel.peak_response.values[i]):.3g}"
        ax.set_title(head + ("\nbelow criterion" if below else ""), color=FAILED_COLOR if below else "black")
        ax.set_xticks([0, 45, 90, 135])
        ax.set_xlim(-10, 180)
        ax.set_xlabel("orientation (deg)")
    for ax in axes[:, 0]:
        ax.set_ylabel("response (a.u.)")
    _hide(axes, len(units))
    fig.suptitle(title or "Orientation tuning at the preferred spatial frequency")
    note = "Dotted line: preferred orientation. OSI = 1 − circular variance; peak = largest response of the curve."
    if responsive is not None:
        rule = f"Responsive: {criterion}" if criterion else "Responsive units as selected (rule not stated)"
        note = f"{rule} — {int(responsive.sum())} of {len(all_units)} units. {note}"
    caption(fig, note)
    return fig


# ------------------------------------------------------------------------------------------------ small multiples

def _histogram_panels(values: dict, bins, xlabel: str, title: str, describe, ref: float | None = None):
    """One histogram panel per label (shared x), with ``describe(v) -> (text, value to mark)``."""
    n = len(values)
    rows, cols = _grid(n, 4)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 0.3, 2.6 * rows + 0.6), squeeze=False,
                             sharex=True, layout="constrained")
    for k, (ax, (label, v)) in enumerate(zip(axes.ravel(), values.items())):
        v = np.asarray(v, float).ravel()
        finite = v[np.isfinite(v)]
        lo, hi = bins[0], bins[-1]
        ax.hist(np.clip(finite, lo, hi), bins=bins, color=style.COLORS[k % len(style.COLORS)], alpha=0.85)
        dropped = len(v) - len(finite)
        head = f"{label}\nn = {len(finite)} units"
        if ref is not None:
            ax.axvline(ref, color="black", lw=0.8, ls=":")
        if len(finite):
            text, mark = describe(finite)
            ax.axvline(mark, color="black", lw=1.4)
            head += f"\n{text}"
        else:
            ax.text(0.5, 0.5, "no units", transform=ax.transAxes, ha="center", va="center", fontsize=10)
        ax.set_title(head + (f"\n({dropped} undefined left out)" if dropped else ""))
        ax.set_xlim(lo, hi)
        integer_ticks(ax, "y")
        ax.set_xlabel(xlabel)
        ax.tick_params(labelbottom=True)
        ax.set_ylabel("units (count)")
    _hide(axes, n)
    fig.suptitle(title)
    return fig


def osi_histograms(osi_by_label: dict, title: str = ""):
    """Orientation selectivity per label (e.g. trained vs untrained), one panel each on a shared x axis [0, 1],
    the median marked (solid line) and written. NaN OSIs (units that never respond) are counted and left out."""
    data = _check_mapping("osi_by_label", osi_by_label, "OSI values")
    _check_text("title", title)

    def median(v):
        m = float(np.median(v))
        return f"median {m:.2f}", m
    fig = _histogram_panels(data, np.linspace(0, 1, 21), "orientation selectivity index", title or
                            "Orientation selectivity", median)
    caption(fig, "OSI = 1 − circular variance at the preferred spatial frequency (0: untuned, 1: one orientation). "
             "Solid line: median.")
    return fig


def modulation_histograms(ratios: dict, title: str = "Simple vs complex: F1/F0 modulation ratio"):
    """F1/F0 per label ({label: ratios}), one panel each on a shared x axis [0, 2]; the dotted line at 1
    separates complex (< 1) from simple (> 1) cells and each panel gives its % simple. Values above 2 are
    counted in the last bin."""
    data = _check_mapping("ratios", ratios, "F1/F0 values")
    _check_text("title", title)

    def simple(v):
        return f"{np.mean(v > 1):.0%} simple, median {np.median(v):.2f}", float(np.median(v))
    fig = _histogram_panels(data, np.linspace(0, 2, 21), "F1/F0 modulation ratio", title, simple, ref=1.0)
    over = sum(int(np.sum(np.asarray(v, float)[np.isfinite(np.asarray(v, float))] > 2)) for v in data.values())
    caption(fig, "F1/F0 at each unit's preferred orientation and spatial frequency. Dotted: F1/F0 = 1 (> 1: "
             "simple-cell-like); solid: median." + (f" {over} value(s) above 2 counted in the last bin." if over
                                                   else ""))
    return fig


# ------------------------------------------------------------------------------------------------ lesions

def lesion_sweep(ds, title: str = ""):
    """Per-unit lesion effects, units sorted by agreement: agreement with the intact model and mean |Δ logit|."""
    ds = _check_dataset("ds", ds, ("agreement", "logit_change"), "insilico.probes.lesion.single_unit_sweep")
    _check_text("title", title)
    order = np.argsort(ds.agreement.values)
    n = len(order)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    axes[0].bar(range(n), ds.agreement.values[order], color=style.COLORS[0], width=1.0)
    axes[0].set_ylim(min(0.5, float(ds.agreement.min()) - 0.05), 1.0)
    axes[0].set_ylabel("agreement with intact\n(fraction of images)")
    axes[0].set_title("Top-1 agreement with the intact model")
    axes[1].bar(range(n), ds.logit_change.values[order], color=style.COLORS[1], width=1.0)
    axes[1].set_ylabel("mean |Δ logit| (logit units)")
    axes[1].set_title("Change of the logits")
    for ax in axes:
        ax.set_xlabel(f"lesioned unit, rank by agreement (n = {n})")
        integer_ticks(ax, "x")
        ax.set_xlim(-0.5, n - 0.5)
    fig.suptitle(title or "Single-unit lesions")
    return fig


_METRICS = {"agreement": "agreement with intact\n(fraction of images)", "accuracy": "accuracy (fraction)",
            "logit_change": "mean |Δ logit| (logit units)"}


def ablation_curves(curves: dict, metric: str = "agreement"):
    """One panel per model: ``metric`` vs fraction of units removed, per order family (random orders: mean, with
    ± 1 s.d. band over orders); one legend beside the panels.

    ``curves``: {model: (site, Dataset from :func:`insilico.probes.lesion.ablation_curve`)}.
    """
    curves = _check_mapping("curves", curves, "(site, Dataset from ablation_curve)")
    for name, entry in curves.items():
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ArgumentError(f"curves[{name!r}] must be (site, Dataset); got {type(entry).__name__}")
        _check_dataset(f"curves[{name!r}][1]", entry[1], (metric, "order", "fraction"),
                       "insilico.probes.lesion.ablation_curve")
    rows, cols = _grid(len(curves), 3)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols + 2.2, 3.1 * rows + 0.4), squeeze=False, sharey=True,
                             layout="constrained")
    colors = {}
    for ax, (name, (site, ds)) in zip(axes.ravel(), curves.items()):
        families = dict.fromkeys(str(o).split("/")[0] for o in ds.order.values)
        for fam in families:
            sel = [o for o in ds.order.values if str(o).split("/")[0] == fam]
            vals = ds[metric].sel(order=sel).values
            color = colors.setdefault(fam, style.COLORS[len(colors) % len(style.COLORS)])
            label = fam if len(sel) == 1 else f"{fam} (mean of {len(sel)} orders ± s.d.)"
            ax.plot(ds.fraction.values, vals.mean(0), "o-", ms=4, color=color, label=label)
            if len(sel) > 1:
                ax.fill_between(ds.fraction.values, vals.mean(0) - vals.std(0), vals.mean(0) + vals.std(0),
                                color=color, alpha=0.2, lw=0)
        ax.set_title(f"{name}: {site}")
        ax.set_xlabel("fraction of units removed")
    for ax in axes[:, 0]:
        ax.set_ylabel(_METRICS.get(metric, metric))
    _hide(axes, len(curves))
    legend_outside(fig, title="removal order")
    fig.suptitle(f"Cumulative ablation: {metric.replace('_', ' ')}")
    return fig


# ------------------------------------------------------------------------------------------------ images

def image_rows(rows: dict, title: str = "", labels=None, normalize: bool = False, size: float = 0.9):
    """One row of images per entry of ``rows`` ({row label: (N, H, W, C)}), e.g. unit visualizations per site."""
    rows = _check_mapping("rows", rows, "images (N, H, W, C)")
    _check_text("title", title)
    size = check_positive("size", size)
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(n * size + 1.2, len(rows) * size + 0.7), squeeze=False)
    for r, (label, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(imgs):
                _show(ax, imgs[c], normalize)
                if labels is not None and r == 0:
                    ax.set_title(str(labels[c]), fontsize=10)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.suptitle(title)
    return fig


def visualization_failed(images, min_contrast: float = 0.02) -> np.ndarray:
    """Boolean mask, one per unit: True where a feature visualization is flat — the standard deviation of its
    pixels (over y, x and channel) is below ``min_contrast`` (pixel values in [0, 1]) — or holds NaN/inf. A flat
    image says the optimization found nothing, not that the unit prefers grey. ``images``: (units, H, W[, C])."""
    min_contrast = check_positive("min_contrast", min_contrast)
    a = np.asarray(images, float)
    if a.ndim not in (3, 4) or a.size == 0:
        raise ArgumentError(f"images must be a non-empty batch (units, H, W) or (units, H, W, C); got shape "
                            f"{a.shape}")
    flat = a.reshape(len(a), -1)
    finite = np.isfinite(flat).all(1)
    std = np.where(finite, np.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0).std(1), 0.0)
    return ~finite | (std < min_contrast)


def exemplar_grid(visualizations, top, bottom=None, units=(), title: str = "", failed=None, *, size: float = 1.0,
                  min_contrast: float = 0.02):
    """Per unit (row): its feature visualization, then its top-k exemplar crops (and bottom-k, if given), each
    image ``size`` inches wide. ``failed``: boolean mask of visualizations to mark (default:
    :func:`visualization_failed` with ``min_contrast``); a failed one gets a red frame and "flat — failed" in its
    row label."""
    _check_text("title", title)
    size = check_positive("size", size)
    vis = np.asarray(visualizations, float)
    top = _images("top", top, ndim=5)
    if bottom is not None:
        bottom = _images("bottom", bottom, ndim=5)
        if bottom.shape[:2] != top.shape[:2]:
            raise ArgumentError(f"bottom must have the shape of top (units, k, ...); got {bottom.shape} and "
                                f"{top.shape}")
    if vis.ndim != 4 or len(vis) != len(top):
        raise ArgumentError(f"visualizations must be (units, H, W, C) with one image per row of top ({len(top)}); "
                            f"got shape {vis.shape}")
    units = list(units)
    if units and len(units) != len(top):
        raise ArgumentError(f"units must label each of the {len(top)} rows; got {len(units)}")
    auto = failed is None
    failed = visualization_failed(vis, min_contrast) if auto else np.asarray(failed)
    if failed.dtype != bool or failed.shape != (len(top),):
        raise ArgumentError(f"failed must be a boolean mask over the {len(top)} units; got dtype {failed.dtype}, "
                            f"shape {failed.shape}")
    k = top.shape[1]
    groups = [[0], list(range(2, 2 + k))] + ([list(range(3 + k, 3 + 2 * k))] if bottom is not None else [])
    ratios = [1.0]
    for g in groups[1:]:
        ratios += [0.25] + [1.0] * len(g)                 # a narrow gap before each group of exemplars
    fig, axes = plt.subplots(len(top), len(ratios), figsize=(sum(ratios) * size + 1.2, len(top) * size + 1.3),
                             squeeze=False, width_ratios=ratios, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02)
    for ax in axes[:, [1] + ([2 + k] if bottom is not None else [])].ravel():
        ax.axis("off")
    for r in range(len(top)):
        _show(axes[r, 0], np.nan_to_num(vis[r]))
        for j in range(k):
            _show(axes[r, groups[1][j]], top[r, j])
            if bottom is not None:
                _show(axes[r, groups[2][j]], bottom[r, j])
        label = f"unit {units[r]}" if units else f"row {r}"
        if failed[r]:
            for spine in axes[r, 0].spines.values():
                spine.set(visible=True, color=FAILED_COLOR, linewidth=3)
            axes[r, 0].set_ylabel(f"{label}\nflat — failed", color=FAILED_COLOR, fontsize=9)
        else:
            axes[r, 0].set_ylabel(label, fontsize=9)
    axes[0, 0].set_title("feature\nvisualization", fontsize=10)
    axes[0, groups[1][0]].set_title(f"top {k} exemplars\n(strongest response) →", fontsize=10, loc="left")
    if bottom is not None:
        axes[0, groups[2][0]].set_title(f"bottom {k} exemplars\n(weakest response) →", fontsize=10, loc="left")
    fig.suptitle(title or "Feature visualizations and exemplars")
    if failed.any():
        why = f"pixel s.d. below {min_contrast:g} or non-finite" if auto else "marked as failed"
        caption(fig, f"{int(failed.sum())} of {len(failed)} visualizations are flat ({why}; red frame): the "
                 "optimization found no stimulus for these units, so they show no preferred stimulus.")
    return fig


# ------------------------------------------------------------------------------------------------ synthesis

def accuracy_vs_eps(curves: dict, title: str = "", levels: bool = True, controls=(), *, chance: float | None = None):
    """Accuracy (%) under attack against the budget ε, one line per label of ``curves`` ({label: Dataset from
    :func:`insilico.probes.synthesis.accuracy_vs_eps`}). ``levels``: ε in levels of 1/255 (ε × 255, for images
    in [0, 1]); otherwise raw ε. Labels in ``controls`` are drawn dashed grey (untrained controls); ``chance``
    (a fraction) draws the chance level."""
    curves = _check_mapping("curves", curves, "Dataset from accuracy_vs_eps")
    _check_text("title", title)
    for label, ds in curves.items():
        _check_dataset(f"curves[{label!r}]", ds, ("accuracy", "eps"), "insilico.probes.synthesis.accuracy_vs_eps")
    controls = [controls] if isinstance(controls, str) else list(controls)
    unknown = [c for c in controls if c not in curves]
    if unknown:
        raise ArgumentError(f"controls {unknown} are not labels of curves ({', '.join(map(str, curves))})")
    if chance is not None:
        chance = check_fraction("chance", chance)
    scale = 255.0 if levels else 1.0
    fig, ax = plt.subplots(figsize=(5.6, 3.6), layout="constrained")
    dashes = iter(["--", ":", "-."] * len(controls))
    k = 0
    for label, ds in curves.items():
        eps, acc = np.asarray(ds.eps.values, float) * scale, 100 * np.asarray(ds.accuracy.values, float)
        if label in controls:
            ax.plot(eps, acc, marker="s", ls=next(dashes), color=CONTROL_COLOR, label=f"{label} (control)")
        else:
            ax.plot(eps, acc, marker="o", color=style.COLORS[k % len(style.COLORS)], label=label)
            k += 1
    if chance is not None:
        ax.axhline(100 * chance, color="black", lw=0.8, ls=":", label=f"chance ({100 * chance:g}%)")
    ticks = np.unique(np.concatenate([np.asarray(ds.eps.values, float) * scale for ds in curves.values()]))
    if len(ticks) <= 10:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("ε (levels of 1/255)" if levels else "ε")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    legend_outside(ax)
    first = next(iter(curves.values())).attrs
    norm = "L∞" if first.get("norm") == "linf" else str(first.get("norm", ""))
    attack = f"{str(first.get('attack', '')).upper()} {norm}"
    steps = f", {first['steps']} steps" if first.get("steps") and first.get("attack") != "fgsm" else ""
    ax.set_title(title or f"Accuracy under attack ({attack.strip() or 'attack'}{steps})")
    return fig


def controversial_images(images, acceptance, class_a, class_b, name_a: str, name_b: str, title: str = "", *,
                         threshold: float | None = None, max_cols: int = 5):
    """Controversial stimuli, one per pair: ``images`` (P, H, W, C) in [0, 1], nearest-neighbour upsampled,
    each 1.8 in wide with the caption "name_a: class / name_b: class / acceptance 0.93" under it.
    ``acceptance`` (P,); ``class_a``/``class_b``: the class each model is driven to, per pair. With
    ``threshold``, captions of images below it are red."""
    imgs = _images("images", images)
    check_in_range("images", imgs, low=0.0, high=1.0)
    acc = check_finite("acceptance", np.asarray(acceptance, float), ndim=1)
    n = len(imgs)
    for name, v in (("acceptance", acc), ("class_a", class_a), ("class_b", class_b)):
        if len(v) != n:
            raise ArgumentError(f"{name} must have one entry per image ({n}); got {len(v)}")
    for name, text in (("name_a", name_a), ("name_b", name_b), ("title", title)):
        _check_text(name, text)
    if threshold is not None:
        threshold = check_fraction("threshold", threshold)
    captions = [f"{name_a}: {ca}\n{name_b}: {cb}\nacceptance {a:.2f}" for a, ca, cb in zip(acc, class_a, class_b)]
    longest = max(len(line) for c in captions for line in c.split("\n"))
    width = max(1.8, 0.075 * longest + 0.2)                 # a caption never runs into its neighbour's
    rows, cols = _grid(n, max_cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 0.4, (width + 0.75) * rows + 0.5), squeeze=False,
                             layout="constrained")
    for ax, img, a, text in zip(axes.ravel(), imgs, acc, captions):
        _show(ax, _upsample(img))
        low = threshold is not None and a < threshold
        ax.set_xlabel(text, fontsize=9, color=FAILED_COLOR if low else "black")
    _hide(axes, n)
    fig.suptitle(title or f"Controversial stimuli: {name_a} vs {name_b}")
    note = (f"Each image: {name_a} sees the first class, {name_b} the second; acceptance = min of the two "
            "probabilities on the 8-bit image.")
    if threshold is not None:
        note += f" Red: acceptance below {threshold:g}."
    caption(fig, note)
    return fig


def metamers(photos, metamer_images, rel_error, site: str, title: str = ""):
    """Each photo beside its metamer(s) for ``site``, large, with the relative representation error under each
    metamer; pixels clipped to [0, 1]. ``photos`` (N, H, W, C); ``metamer_images`` (N, H, W, C) or (N, seeds,
    H, W, C); ``rel_error`` (N,) or (N, seeds)."""
    photos = _images("photos", photos)
    met = _images("metamer_images", metamer_images, ndim=(4, 5))
    met = met[:, None] if met.ndim == 4 else met
    err = check_finite("rel_error", np.asarray(rel_error, float), ndim=(1, 2))
    err = err[:, None] if err.ndim == 1 else err
    _check_text("site", site)
    _check_text("title", title)
    if met.shape[0] != len(photos) or met.shape[2:] != photos.shape[1:] or err.shape != met.shape[:2]:
        raise ArgumentError(f"metamer_images (N[, seeds], H, W, C) and rel_error (N[, seeds]) must match photos "
                            f"{photos.shape}; got {met.shape} and {err.shape}")
    n, seeds = met.shape[:2]
    fig, axes = plt.subplots(n, 1 + seeds, figsize=(1.8 * (1 + seeds) + 0.6, 2.15 * n + 0.5), squeeze=False,
                             layout="constrained")
    for i in range(n):
        _show(axes[i, 0], _upsample(photos[i]))
        axes[i, 0].set_ylabel(f"target {i}", fontsize=9)
        for s in range(seeds):
            _show(axes[i, 1 + s], _upsample(met[i, s]))
            axes[i, 1 + s].set_xlabel(f"rel. error {err[i, s]:.3g}", fontsize=9)
    axes[0, 0].set_title("photo", fontsize=10)
    for s in range(seeds):
        axes[0, 1 + s].set_title("metamer" + (f" (seed {s})" if seeds > 1 else ""), fontsize=10)
    fig.suptitle(title or f"Metamers of {site}")
    caption(fig, f"rel. error: ‖r(metamer) − r(photo)‖² / ‖r(photo)‖² of the {site} responses")
    return fig


def accuracy_per_time_step(per_step: dict, title: str = "", *, chance: float | None = None):
    """Accuracy (%) of a readout at each time step of a recurrent network, one line per label of ``per_step``
    ({label: [accuracy (fraction) at step 0, 1, ...]}); whole-number time-step ticks; legend beside the data."""
    data = _check_mapping("per_step", per_step, "accuracies per time step")
    _check_text("title", title)
    if chance is not None:
        chance = check_fraction("chance", chance)
    fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    for label, acc in data.items():
        acc = check_in_range(f"per_step[{label!r}]", np.asarray(acc, float).ravel(), low=0.0, high=1.0)
        ax.plot(np.arange(len(acc)), 100 * acc, marker="o", label=label)
    if chance is not None:
        ax.axhline(100 * chance, color="black", lw=0.8, ls=":", label=f"chance ({100 * chance:g}%)")
    integer_ticks(ax, "x")
    ax.set_xlabel("time step")
    ax.set_ylabel("accuracy (%)")
    legend_outside(ax)
    ax.set_title(title or "Accuracy per time step")
    return fig


# ------------------------------------------------------------------------------------------------ receptive fields

def rf_size_vs_depth(sizes: dict, title: str = "Receptive-field size vs depth"):
    """One panel per model ({model: Dataset from :func:`insilico.probes.rf.receptive_field_size`}), sites by name
    along x: theoretical (dashed) and effective (solid) size of the centre unit; open markers: a theoretical field
    that reaches the image border (its true size may be larger)."""
    sizes = _check_mapping("sizes", sizes, "Dataset from receptive_field_size")
    _check_text("title", title)
    for name, ds in sizes.items():
        _check_dataset(f"sizes[{name!r}]", ds, ("effective_size", "theoretical_size"),
                       "insilico.probes.rf.receptive_field_size")
    rows, cols = _grid(len(sizes), 3)
    width = max(2.8, 0.45 * max(ds.sizes["site"] for ds in sizes.values()) + 1.2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 1.8, 3.2 * rows + 0.4), squeeze=False, sharey=True,
                             layout="constrained")
    clipped_any = False
    for ax, (name, ds) in zip(axes.ravel(), sizes.items()):
        x = np.arange(ds.sizes["site"])
        ax.plot(x, ds.effective_size.values, "o-", color=style.COLORS[0], label="effective (Luo et al. 2016)")
        ax.plot(x, ds.theoretical_size.values, "s--", color=style.COLORS[1], label="theoretical (gradient support)")
        if "clipped" in ds and ds.clipped.values.any():
            c = ds.clipped.values.astype(bool)
            clipped_any = True
            ax.plot(x[c], ds.theoretical_size.values[c], "s", mfc="white", mec=style.COLORS[1], ms=8, mew=1.5,
                    label="reaches the image border")
        if "site" in ds.coords:
            ax.set_xticks(x, [str(s) for s in ds.site.values], rotation=45, ha="right")
            ax.set_xlabel("site (input → output)")
        else:
            ax.set_xticks(x, [str(d) for d in ds.depth.values] if "depth" in ds else x)
            ax.set_xlabel("site depth")
        ax.set_title(name)
    for ax in axes[:, 0]:
        ax.set_ylabel("size (input pixels)")
    _hide(axes, len(sizes))
    legend_outside(fig)
    fig.suptitle(title)
    if clipped_any:
        caption(fig, "Open squares: the theoretical receptive field reaches the image border, so its size is a "
                 "lower bound.")
    return fig


def bandwidth_comparison(model_bw: dict, real_bw, real_label: str = "macaque V1/V2 (Goris et al. 2015)", *,
                         title: str = "Spatial-frequency bandwidth: model units vs cells"):
    """Spatial-frequency bandwidths (octaves) of model units ({label: values}) against real cells; one box per
    group, every value as a point, n in each label. Units without a band-pass curve (NaN) are left out."""
    model_bw = _check_mapping("model_bw", model_bw, "bandwidths (octaves)")
    _check_text("real_label", real_label)
    _check_text("title", title)
    real = np.asarray(real_bw, float).ravel()
    labels = list(model_bw) + [real_label]
    data = [np.asarray(v, float)[np.isfinite(v)] for v in model_bw.values()] + [real[np.isfinite(real)]]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(labels) + 1.4), layout="constrained")
    shown = [d if len(d) else np.array([np.nan]) for d in data]
    ax.boxplot(shown, orientation="horizontal", widths=0.5, showfliers=False)
    for i, d in enumerate(data, start=1):
        ax.plot(d, np.full(len(d), i) + np.linspace(-0.15, 0.15, len(d)), ".", alpha=0.5, ms=4,
                color=CONTROL_COLOR if i == len(data) else style.COLORS[0])
    ax.set_yticks(range(1, len(labels) + 1), [f"{lab} (n = {len(d)})" for lab, d in zip(labels, data)])
    ax.set_xlabel("SF bandwidth (octaves, full width at half height)")
    ax.set_ylabel("population")
    ax.set_title(title)
    return fig
