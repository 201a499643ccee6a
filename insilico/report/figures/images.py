"""Figures of images: rows of images, feature visualizations beside their exemplars, flat ones flagged."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.layout_engine import ConstrainedLayoutEngine

from ...validation import ArgumentError, check_positive
from ..style import caption
from ._common import FAILED_COLOR, check_images, check_mapping, check_text, show


def image_rows(rows: dict, title: str = "", labels=None, normalize: bool = False, size: float = 0.9):
    """One row of images per entry of ``rows`` ({row label: (N, H, W, C)}), e.g. unit visualizations per site."""
    rows = {label: check_images(f"rows[{label!r}]", imgs) for label, imgs in
            check_mapping("rows", rows, "images (N, H, W, C)").items()}
    check_text("title", title)
    size = check_positive("size", size)
    n = max(len(v) for v in rows.values())
    if labels is not None and (isinstance(labels, str) or len(labels) < n):
        raise ArgumentError(f"labels must give one label per column ({n}); got {labels!r:.80}")
    fig, axes = plt.subplots(len(rows), n, figsize=(n * size + 1.2, len(rows) * size + 0.7), squeeze=False)
    for r, (label, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(imgs):
                show(ax, imgs[c], normalize)
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
    check_text("title", title)
    size = check_positive("size", size)
    vis = np.asarray(visualizations, float)
    if vis.ndim == 4 and vis.shape[-1] not in (1, 3):
        raise ArgumentError(f"visualizations must hold images (units, H, W, C) with 1 or 3 channels; got shape "
                            f"{vis.shape}")
    top = check_images("top", top, ndim=5)
    if bottom is not None:
        bottom = check_images("bottom", bottom, ndim=5)
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
                             squeeze=False, width_ratios=ratios,
                             layout=ConstrainedLayoutEngine(w_pad=0.02, h_pad=0.02, wspace=0.02, hspace=0.02))
    for ax in axes[:, [1] + ([2 + k] if bottom is not None else [])].ravel():
        ax.axis("off")
    for r in range(len(top)):
        show(axes[r, 0], np.nan_to_num(vis[r]))
        for j in range(k):
            show(axes[r, groups[1][j]], top[r, j])
            if bottom is not None:
                show(axes[r, groups[2][j]], bottom[r, j])
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
