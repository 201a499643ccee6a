"""One figure style for every plot insilico draws: the demo, the command line and the experiments.

``use()`` applies :data:`STYLE` to matplotlib's rcParams (calling it again changes nothing); importing
:mod:`insilico.report.figures` applies it. :func:`legend_outside` puts a legend beside the data instead of on it.

    from insilico.report import style
    style.use()
    fig, ax = plt.subplots()
    ax.plot(x, y, label="trained")
    style.legend_outside(ax)
"""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import matplotlib
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from ..validation import ArgumentError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

__all__ = ["COLORS", "CONTROL_COLOR", "STYLE", "caption", "integer_ticks", "legend_outside", "use"]

# Okabe & Ito's colour-blind-safe palette (yellow left out: too pale on white); grey is kept for controls.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
CONTROL_COLOR = "#8c8c8c"

STYLE: dict[RcKeyType, Any] = {
    # text: readable at 100% zoom in the HTML report (labels and ticks >= 9 pt, titles >= 10 pt)
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 10,
    "figure.titlesize": 12,
    "figure.labelsize": 10,
    # axes: no box around the data, no offset notation that hides the values
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "axes.prop_cycle": cycler(color=list(COLORS)),
    "axes.formatter.useoffset": False,
    "axes.titlepad": 6.0,
    "lines.linewidth": 1.6,
    "lines.markersize": 5.0,
    "legend.frameon": False,
    "image.interpolation": "nearest",
    "image.cmap": "viridis",
    # saving: the whole figure (legends and captions outside the axes included), on white
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.1,
    "savefig.facecolor": "white",
}


def use() -> None:
    """Apply :data:`STYLE` to matplotlib's rcParams. Idempotent: a second call leaves them as the first did."""
    matplotlib.rcParams.update(STYLE)


def integer_ticks(ax, axis: str = "x") -> None:
    """Ticks only at whole numbers on ``axis`` ("x", "y" or "both") of ``ax``: for counts and time steps."""
    if not isinstance(ax, Axes):
        raise ArgumentError(f"ax must be a matplotlib Axes; got {type(ax).__name__}")
    if axis not in ("x", "y", "both"):
        raise ArgumentError(f"axis must be one of 'x', 'y', 'both'; got {axis!r}")
    for which in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"{which}axis").set_major_locator(MaxNLocator(integer=True))


def caption(fig, text: str):
    """``text`` wrapped to the figure's width, in 9 pt grey under the figure (kept in the picture by
    ``bbox_inches="tight"``, the style's default when saving); returns the Text."""
    if not isinstance(fig, (Figure, SubFigure)):
        raise ArgumentError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise ArgumentError(f"text must be a non-empty string; got {text!r}")
    if isinstance(fig, Figure):
        root, inches = fig, fig.get_figwidth()
    else:                                                  # a SubFigure: its share of the whole figure's width
        root = fig.figure
        inches = fig.bbox.width / root.dpi
    width = max(40, int(inches * 14))
    lines = "\n".join(textwrap.fill(part, width) for part in text.split("\n"))
    return fig.text(0.0, 0.0, lines, ha="left", va="top", fontsize=9, color="0.25",
                    transform=offset_copy(fig.transFigure, fig=root, y=-6, units="points"))


def _labelled(axes) -> tuple[list, list]:
    """Handles and labels of every labelled artist of ``axes``, each label once, in drawing order."""
    seen: dict = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen)


def legend_outside(target, handles=None, labels=None, *, side: str = "right", title: str | None = None, **kwargs):
    """A legend beside the data, never on it, and return it.

    target: an Axes (the legend goes just outside its right edge, or below the figure with ``side="bottom"``)
        or a Figure (one legend for all its axes, each label once, right of or below every axes).
    handles/labels: as for ``Axes.legend``; default: every labelled artist.
    Other keyword arguments go to ``legend`` (``ncols``, ``fontsize``, ...). The legend lies outside the
    figure's canvas when the figure has no constrained layout; saving with ``bbox_inches="tight"`` (the
    style's default) keeps it in the picture.
    """
    if side not in ("right", "bottom"):
        raise ArgumentError(f"side must be 'right' or 'bottom'; got {side!r}")
    if isinstance(target, Axes):
        fig, axes = target.figure, [target]
    elif isinstance(target, (Figure, SubFigure)):
        fig, axes = target, [a for a in target.axes if a.get_label() != "<colorbar>"]
    else:
        raise ArgumentError(f"legend_outside needs an Axes or a Figure; got {type(target).__name__}")
    if handles is None:
        handles, found = _labelled(axes)
        labels = found if labels is None else list(labels)
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if not handles:
        raise ArgumentError("legend_outside: the target has no labelled artists (pass label=... when plotting, "
                            "or handles and labels)")
    if len(labels) != len(handles):
        raise ArgumentError(f"labels must name each of the {len(handles)} handles; got {len(labels)} labels")
    if side == "bottom":
        kwargs.setdefault("ncols", min(len(handles), 4))
    opts = {"title": title, "borderaxespad": 0.0, **kwargs}
    constrained = type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    if isinstance(target, Axes) and side == "right":
        return target.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.03, 1.0), **opts)
    if constrained:
        return fig.legend(handles, labels, loc="outside right center" if side == "right" else "outside lower center",
                          **opts)
    if side == "right":
        return fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                          bbox_transform=fig.transFigure, **opts)
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      bbox_transform=fig.transFigure, **opts)
