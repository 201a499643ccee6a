"""Figures of lesion sweeps: per-unit effects and cumulative ablation curves."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ...validation import ArgumentError
from .. import style
from ..style import integer_ticks, legend_outside
from ._common import check_dataset, check_mapping, check_text, grid, hide


def lesion_sweep(ds, title: str = ""):
    """Per-unit lesion effects, units sorted by agreement: agreement with the intact model and mean |Δ logit|."""
    ds = check_dataset("ds", ds, ("agreement", "logit_change"), "insilico.probes.lesion.single_unit_sweep")
    check_text("title", title)
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
    curves = check_mapping("curves", curves, "(site, Dataset from ablation_curve)")
    check_text("metric", metric)
    for name, entry in curves.items():
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ArgumentError(f"curves[{name!r}] must be (site, Dataset); got {type(entry).__name__}")
        check_dataset(f"curves[{name!r}][1]", entry[1], (metric, "order", "fraction"),
                       "insilico.probes.lesion.ablation_curve")
    rows, cols = grid(len(curves), 3)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols + 2.2, 3.1 * rows + 0.4), squeeze=False, sharey=True,
                             layout="constrained")
    colors: dict[str, str] = {}
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
    hide(axes, len(curves))
    legend_outside(fig, title="removal order")
    fig.suptitle(f"Cumulative ablation: {metric.replace('_', ' ')}")
    return fig
