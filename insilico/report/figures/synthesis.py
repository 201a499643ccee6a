"""Figures of stimulus synthesis: accuracy against the attack budget and per time step, controversial
stimuli and their acceptance per class pair, metamers."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ...validation import ArgumentError, check_finite, check_fraction, check_in_range
from .. import style
from ..style import CONTROL_COLOR, caption, integer_ticks, legend_outside
from ._common import (
    FAILED_COLOR,
    check_dataset,
    check_images,
    check_mapping,
    check_text,
    grid,
    hide,
    show,
    upsample,
)


def accuracy_vs_eps(curves: dict, title: str = "", levels: bool = True, controls=(), *, chance: float | None = None):
    """Accuracy (%) under attack against the budget ε, one line per label of ``curves`` ({label: Dataset from
    :func:`insilico.probes.synthesis.accuracy_vs_eps`}). ``levels``: ε in levels of 1/255 (ε × 255, for images
    in [0, 1]); otherwise raw ε. Labels in ``controls`` are drawn dashed grey (untrained controls); ``chance``
    (a fraction) draws the chance level."""
    curves = check_mapping("curves", curves, "Dataset from accuracy_vs_eps")
    check_text("title", title)
    for label, ds in curves.items():
        check_dataset(f"curves[{label!r}]", ds, ("accuracy", "eps"), "insilico.probes.synthesis.accuracy_vs_eps")
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
    imgs = check_images("images", images)
    check_in_range("images", imgs, low=0.0, high=1.0)
    acc = check_finite("acceptance", np.asarray(acceptance, float), ndim=1)
    n = len(imgs)
    for name, v in (("acceptance", acc), ("class_a", class_a), ("class_b", class_b)):
        if isinstance(v, str) or not hasattr(v, "__len__"):
            raise ArgumentError(f"{name} must have one entry per image ({n}); got {v!r:.80}")
        if len(v) != n:
            raise ArgumentError(f"{name} must have one entry per image ({n}); got {len(v)}")
    for name, text in (("name_a", name_a), ("name_b", name_b), ("title", title)):
        check_text(name, text)
    if threshold is not None:
        threshold = check_fraction("threshold", threshold)
    captions = [f"{name_a}: {ca}\n{name_b}: {cb}\nacceptance {a:.2f}" for a, ca, cb in zip(acc, class_a, class_b)]
    longest = max(len(line) for c in captions for line in c.split("\n"))
    width = max(1.8, 0.075 * longest + 0.2)                 # a caption never runs into its neighbour's
    rows, cols = grid(n, max_cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 0.4, (width + 0.75) * rows + 0.5), squeeze=False,
                             layout="constrained")
    for ax, img, a, text in zip(axes.ravel(), imgs, acc, captions):
        show(ax, upsample(img))
        low = threshold is not None and a < threshold
        ax.set_xlabel(text, fontsize=9, color=FAILED_COLOR if low else "black")
    hide(axes, n)
    fig.suptitle(title or f"Controversial stimuli: {name_a} vs {name_b}")
    note = (f"Each image: {name_a} sees the first class, {name_b} the second; acceptance = min of the two "
            "probabilities on the 8-bit image.")
    if threshold is not None:
        note += f" Red: acceptance below {threshold:g}."
    caption(fig, note)
    return fig


def _class_names(name: str, names, indices) -> list[str]:
    listed = None if isinstance(names, str) or not hasattr(names, "__iter__") else list(names)
    if not listed or not all(isinstance(c, str) for c in listed):
        raise ArgumentError(f"{name} must be a non-empty sequence of class names (strings); got {names!r}")
    names = listed
    bad = [int(i) for i in np.ravel(indices) if not 0 <= int(i) < len(names)]
    if bad:
        raise ArgumentError(f"{name} has {len(names)} classes (indices 0 to {len(names) - 1}); the Dataset names "
                            f"class {bad[0]}")
    return names


def controversial_acceptance(ds, class_names_a, class_names_b, title: str = ""):
    """Acceptance of controversial stimuli per class pair: a matrix (class for model A down the side, class for
    model B along the top) of the acceptance averaged over seeds, each cell annotated (up to 20 classes a side),
    grey where there is no pair (same class). ``ds``: Dataset from
    :func:`insilico.probes.synthesis.controversial`; ``class_names_a``/``class_names_b``: the two models' class
    names, in class order."""
    ds = check_dataset("ds", ds, ("acceptance", "class_a", "class_b"), "insilico.probes.synthesis.controversial")
    check_text("title", title)
    acc = check_in_range("ds.acceptance", np.asarray(ds.acceptance.values, float), low=0.0, high=1.0)
    rows = _class_names("class_names_a", class_names_a, ds.class_a.values)
    cols = _class_names("class_names_b", class_names_b, ds.class_b.values)
    name_a, name_b = str(ds.attrs.get("model_a", "model A")), str(ds.attrs.get("model_b", "model B"))
    heat = np.full((len(rows), len(cols)), np.nan)
    heat[ds.class_a.values, ds.class_b.values] = acc.reshape(len(acc), -1).mean(1)
    annotate = max(heat.shape) <= 20
    cell = 0.5 if annotate else 0.16
    fig, ax = plt.subplots(figsize=(cell * len(cols) + 2.8, cell * len(rows) + 2.4), layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(heat), vmin=0, vmax=1, cmap=cmap)
    if annotate:
        for i, j in zip(*np.nonzero(np.isfinite(heat))):
            ax.text(j, i, f"{heat[i, j]:.2f}", ha="center", va="center", fontsize=9,
                    color="black" if heat[i, j] > 0.6 else "white")
    ax.set_xticks(range(len(cols)), cols, rotation=90)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(f"class the image must be for {name_b}")
    ax.set_ylabel(f"class the image must be for {name_a}")
    for spine in ax.spines.values():
        spine.set_visible(False)
    n_seeds = ds.sizes.get("seed", 1)
    seeds = f"mean of {n_seeds} seeds" if n_seeds > 1 else "one seed"
    steps = f"{ds.attrs['steps']} steps per image, " if "steps" in ds.attrs else ""
    ax.set_title(title or f"Controversial stimuli: {name_a} vs {name_b}\n"
                          f"{steps}{seeds}; grey: same class (no pair)")
    fig.colorbar(im, ax=ax, label="acceptance (min of the two probabilities)", shrink=0.85)
    return fig


def metamers(photos, metamer_images, rel_error, site: str, title: str = ""):
    """Each photo beside its metamer(s) for ``site``, large, with the relative representation error under each
    metamer; pixels clipped to [0, 1]. ``photos`` (N, H, W, C); ``metamer_images`` (N, H, W, C) or (N, seeds,
    H, W, C); ``rel_error`` (N,) or (N, seeds)."""
    photos = check_images("photos", photos)
    met = check_images("metamer_images", metamer_images, ndim=(4, 5))
    met = met[:, None] if met.ndim == 4 else met
    err = check_finite("rel_error", np.asarray(rel_error, float), ndim=(1, 2))
    err = err[:, None] if err.ndim == 1 else err
    check_text("site", site)
    check_text("title", title)
    if met.shape[0] != len(photos) or met.shape[2:] != photos.shape[1:] or err.shape != met.shape[:2]:
        raise ArgumentError(f"metamer_images (N[, seeds], H, W, C) and rel_error (N[, seeds]) must match photos "
                            f"{photos.shape}; got {met.shape} and {err.shape}")
    n, seeds = met.shape[:2]
    fig, axes = plt.subplots(n, 1 + seeds, figsize=(1.8 * (1 + seeds) + 0.6, 2.15 * n + 0.5), squeeze=False,
                             layout="constrained")
    for i in range(n):
        show(axes[i, 0], upsample(photos[i]))
        axes[i, 0].set_ylabel(f"target {i}", fontsize=9)
        for s in range(seeds):
            show(axes[i, 1 + s], upsample(met[i, s]))
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
    data = check_mapping("per_step", per_step, "accuracies per time step")
    check_text("title", title)
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
