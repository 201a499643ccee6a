"""Figures for the report: filters, activation statistics, tuning curves, lesion sweeps."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def filters(kernel, title: str = "", max_filters: int = 64):
    """Grid of first-layer filters from a conv kernel (kh, kw, C_in, C_out); each normalized to [0, 1]."""
    k = np.asarray(kernel)[..., :max_filters]
    n = k.shape[-1]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8 + 0.4))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i < n:
            f = k[..., i]
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)
            ax.imshow(f if f.shape[-1] == 3 else f[..., 0], cmap=None if f.shape[-1] == 3 else "gray",
                      interpolation="nearest")
    fig.suptitle(title, fontsize=10)
    return fig


def site_statistics(stats: dict, title: str = ""):
    """Bar charts per site: mean activation, fraction of responses > 0, fraction of silent units.

    ``stats``: {site: {"mean": float, "active": float, "silent_units": float}}.
    """
    sites = list(stats)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, key, label in zip(axes, ("mean", "active", "silent_units"),
                              ("mean activation", "fraction of responses > 0", "fraction of silent units")):
        ax.bar(range(len(sites)), [stats[s][key] for s in sites], color="#4a7ab5")
        ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def tuning_curves(selectivity, units, title: str = ""):
    """Orientation tuning curves (at each unit's preferred sf) of ``units`` from
    :func:`insilico.probes.rf.orientation_selectivity` output."""
    units = list(units)
    fig, axes = plt.subplots(1, len(units), figsize=(2.2 * len(units), 2.2), squeeze=False)
    ori = selectivity.orientation.values
    for ax, u in zip(axes[0], units):
        curve = selectivity.curve.sel(unit=u).values
        ax.plot(ori, curve, "o-", color="#b5554a", ms=3)
        ax.set_title(f"unit {u}  OSI {float(selectivity.osi.sel(unit=u)):.2f}", fontsize=8)
        ax.set_xticks([0, 45, 90, 135])
        ax.set_xlabel("orientation (deg)", fontsize=7)
    axes[0][0].set_ylabel("response", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def osi_histograms(osi_by_label: dict, title: str = ""):
    """Overlaid histograms of orientation selectivity, e.g. trained vs untrained."""
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for label, osi in osi_by_label.items():
        ax.hist(np.asarray(osi), bins=np.linspace(0, 1, 21), alpha=0.55, label=label)
    ax.set_xlabel("orientation selectivity index")
    ax.set_ylabel("units")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def lesion_sweep(ds, title: str = ""):
    """Per-unit lesion effects (sorted): agreement with the intact model and mean |Δ logit|."""
    order = np.argsort(ds.agreement.values)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    axes[0].bar(range(len(order)), ds.agreement.values[order], color="#4a7ab5")
    axes[0].set_ylim(min(0.5, float(ds.agreement.min()) - 0.05), 1.0)
    axes[0].set_ylabel("agreement with intact")
    axes[0].set_xlabel("units, sorted")
    axes[1].bar(range(len(order)), ds.logit_change.values[order], color="#b5554a")
    axes[1].set_ylabel("mean |Δ logit|")
    axes[1].set_xlabel("units, sorted as left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ablation_curves(curves: dict, metric: str = "agreement"):
    """One panel per model: ``metric`` vs fraction of units removed, per order family (random orders averaged).

    ``curves``: {model: (site, Dataset from :func:`insilico.probes.lesion.ablation_curve`)}.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(3.4 * len(curves), 3), squeeze=False)
    for ax, (name, (site, ds)) in zip(axes[0], curves.items()):
        families = dict.fromkeys(str(o).split("/")[0] for o in ds.order.values)
        for fam in families:
            sel = [o for o in ds.order.values if str(o).split("/")[0] == fam]
            ax.plot(ds.fraction.values, ds[metric].sel(order=sel).mean("order").values, "o-", ms=3, label=fam)
        ax.set_title(f"{name}: {site}", fontsize=9)
        ax.set_xlabel("fraction of units removed")
    axes[0][0].set_ylabel(metric)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _show(ax, img, normalize: bool = False):
    img = np.asarray(img, float)
    if normalize:
        img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    ax.imshow(np.clip(img, 0, 1) if img.shape[-1] == 3 else img[..., 0], cmap=None if img.shape[-1] == 3 else "gray",
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def image_rows(rows: dict, title: str = "", labels=None, normalize: bool = False, size: float = 0.9):
    """One row of images per entry of ``rows`` ({row label: (N, H, W, C)}), e.g. unit visualizations per site."""
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(n * size + 1.0, len(rows) * size + 0.5), squeeze=False)
    for r, (label, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(imgs):
                _show(ax, imgs[c], normalize)
                if labels is not None and r == 0:
                    ax.set_title(str(labels[c]), fontsize=7)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def exemplar_grid(visualizations, top, bottom=None, units=(), title: str = ""):
    """Per unit (row): its feature visualization, then its top-k exemplar crops (and bottom-k, if given)."""
    k = top.shape[1]
    cols = 1 + k + (k if bottom is not None else 0)
    fig, axes = plt.subplots(len(top), cols, figsize=(cols * 0.8 + 0.6, len(top) * 0.8 + 0.6), squeeze=False)
    for r in range(len(top)):
        _show(axes[r, 0], visualizations[r])
        for j in range(k):
            _show(axes[r, 1 + j], top[r, j])
            if bottom is not None:
                _show(axes[r, 1 + k + j], bottom[r, j])
        axes[r, 0].set_ylabel(f"unit {units[r]}" if len(units) else "", fontsize=7)
    axes[0, 0].set_title("visualization", fontsize=7)
    axes[0, 1].set_title(f"top {k}", fontsize=7)
    if bottom is not None:
        axes[0, 1 + k].set_title(f"bottom {k}", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def rf_size_vs_depth(sizes: dict, title: str = "Receptive-field size vs depth"):
    """``sizes``: {model: Dataset from receptive_field_size}; theoretical (dashed) and effective (solid) size."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (name, ds) in enumerate(sizes.items()):
        color = f"C{i}"
        d = ds.depth.values
        ax.plot(d, ds.effective_size.values, "o-", color=color, label=f"{name} effective")
        ax.plot(d, ds.theoretical_size.values, "s--", color=color, alpha=0.6, label=f"{name} theoretical")
    ax.set_xlabel("site depth")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("size (input pixels)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def modulation_histograms(ratios: dict, title: str = "Simple vs complex: F1/F0 modulation ratio"):
    """Histograms of F1/F0 per label ({label: ratios}); the line at 1 separates complex (<1) from simple (>1)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    bins = np.linspace(0, 2, 21)
    for label, v in ratios.items():
        v = np.asarray(v)
        v = v[np.isfinite(v)]
        ax.hist(v, bins=bins, histtype="step", lw=1.5, label=f"{label} ({np.mean(v > 1):.0%} simple)")
    ax.axvline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("F1/F0")
    ax.set_ylabel("units")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def bandwidth_comparison(model_bw: dict, real_bw, real_label: str = "macaque V1/V2 (Goris et al. 2015)"):
    """Spatial-frequency bandwidths (octaves) of model units ({label: values}) against real cells."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    labels = list(model_bw) + [real_label]
    data = [np.asarray(v)[np.isfinite(v)] for v in model_bw.values()] + [np.asarray(real_bw)]
    ax.boxplot(data, vert=False, widths=0.5)
    for i, d in enumerate(data, start=1):
        ax.plot(d, np.full(len(d), i) + np.linspace(-0.15, 0.15, len(d)), ".", alpha=0.5, ms=4)
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_xlabel("SF bandwidth (octaves, full width at half height)")
    fig.tight_layout()
    return fig
