"""Figures of units: first-layer filters, activation statistics per site, orientation tuning and its
small multiples, receptive-field size against depth, spatial-frequency bandwidths."""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_count, check_finite, check_fraction, check_number
from .. import style
from ..style import CONTROL_COLOR, caption, integer_ticks, legend_outside
from ._common import (
    FAILED_COLOR,
    as_image,
    check_dataset,
    check_mapping,
    check_text,
    check_values,
    grid,
    hide,
)

# ------------------------------------------------------------------------------------------------ filters, statistics

def filters(kernel, title: str = "", max_filters: int = 64):
    """Grid of first-layer filters from a conv kernel (kh, kw, C_in, C_out); each scaled to its own [min, max].
    Colour for three input channels, input channel 0 in grey otherwise."""
    k = check_finite("kernel", kernel, ndim=4)[..., :check_count("max_filters", max_filters)]
    check_text("title", title)
    n, c_in = k.shape[-1], k.shape[2]
    rows, cols = grid(n, int(np.ceil(np.sqrt(n))))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.7 + 0.4, rows * 0.7 + 0.6), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            f = k[..., i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)
            data, cmap = as_image(f if c_in == 3 else f[..., :1])
            ax.imshow(data, cmap=cmap, interpolation="nearest")
    fig.suptitle(title or f"{n} first-layer filters")
    caption(fig, f"{k.shape[0]}×{k.shape[1]} kernels, each scaled to its own range"
             + ("" if c_in in (1, 3) else f"; input channel 0 of {c_in} shown"))
    return fig


def site_statistics(stats: dict, title: str = ""):
    """Bar charts per site: mean activation, fraction of responses > 0, fraction of silent units.

    ``stats``: {site: {"mean": float, "active": float, "silent_units": float}}.
    """
    stats = check_mapping("stats", stats, '{"mean", "active", "silent_units"}')
    check_text("title", title)
    keys = ("mean", "active", "silent_units")
    for s, v in stats.items():
        if not isinstance(v, Mapping) or any(k not in v for k in keys):
            raise ArgumentError(f"stats[{s!r}] must be a mapping with {', '.join(keys)}; got {v!r}")
        for k in keys:
            check_number(f"stats[{s!r}][{k!r}]", v[k])
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
            names = ", ".join(map(str, selectivity.data_vars))
            raise ArgumentError("selectivity must be a Dataset with peak_response (orientation_selectivity) or a "
                                f"1-D array of peak responses; got a Dataset with {names}")
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
    sel = check_dataset("selectivity", selectivity, ("curve", "osi", "peak_response", "orientation"),
                         "insilico.probes.rf.orientation_selectivity")
    check_text("title", title)
    check_text("criterion", criterion)
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
    rows, cols = grid(len(units), max_cols)
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
    hide(axes, len(units))
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
    rows, cols = grid(n, 4)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols + 0.3, 2.6 * rows + 0.6), squeeze=False,
                             sharex=True, layout="constrained")
    for k, (ax, (label, v)) in enumerate(zip(axes.ravel(), values.items())):
        v = check_values(f"values of {label!r}", v)
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
    hide(axes, n)
    fig.suptitle(title)
    return fig


def osi_histograms(osi_by_label: dict, title: str = ""):
    """Orientation selectivity per label (e.g. trained vs untrained), one panel each on a shared x axis [0, 1],
    the median marked (solid line) and written. NaN OSIs (units that never respond) are counted and left out."""
    data = {k: check_values(f"osi_by_label[{k!r}]", v) for k, v in
            check_mapping("osi_by_label", osi_by_label, "OSI values").items()}
    check_text("title", title)
    for k, v in data.items():
        if ((v < 0) | (v > 1)).any():
            raise ArgumentError(f"osi_by_label[{k!r}] must be OSIs in [0, 1] (NaN for silent units); got values from "
                                f"{np.nanmin(v):.3g} to {np.nanmax(v):.3g}")

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
    data = check_mapping("ratios", ratios, "F1/F0 values")
    check_text("title", title)

    def simple(v):
        return f"{np.mean(v > 1):.0%} simple, median {np.median(v):.2f}", float(np.median(v))
    fig = _histogram_panels(data, np.linspace(0, 2, 21), "F1/F0 modulation ratio", title, simple, ref=1.0)
    over = sum(int(np.sum(np.asarray(v, float)[np.isfinite(np.asarray(v, float))] > 2)) for v in data.values())
    caption(fig, "F1/F0 at each unit's preferred orientation and spatial frequency. Dotted: F1/F0 = 1 (> 1: "
             "simple-cell-like); solid: median." + (f" {over} value(s) above 2 counted in the last bin." if over
                                                   else ""))
    return fig


# ------------------------------------------------------------------------------------------------ receptive fields

def rf_size_vs_depth(sizes: dict, title: str = "Receptive-field size vs depth"):
    """One panel per model ({model: Dataset from :func:`insilico.probes.rf.receptive_field_size`}), sites by name
    along x: theoretical (dashed) and effective (solid) size of the centre unit; open markers: a theoretical field
    that reaches the image border (its true size may be larger)."""
    sizes = check_mapping("sizes", sizes, "Dataset from receptive_field_size")
    check_text("title", title)
    for name, ds in sizes.items():
        check_dataset(f"sizes[{name!r}]", ds, ("effective_size", "theoretical_size"),
                       "insilico.probes.rf.receptive_field_size")
    rows, cols = grid(len(sizes), 3)
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
    hide(axes, len(sizes))
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
    model_bw = check_mapping("model_bw", model_bw, "bandwidths (octaves)")
    check_text("real_label", real_label)
    check_text("title", title)
    real = check_values("real_bw", real_bw)
    labels = list(model_bw) + [real_label]
    model = [check_values(f"model_bw[{k!r}]", v) for k, v in model_bw.items()]
    data = [v[np.isfinite(v)] for v in model] + [real[np.isfinite(real)]]
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
