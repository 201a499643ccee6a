"""Controversial stimuli between the bundled CIFAR-10 models (Golan, Raju & Kriegeskorte 2020, "Controversial
stimuli: pitting neural networks against each other as models of human cognition", PNAS).

    python experiments/controversial_stimuli.py --out results/controversial [--quick] [--store DIR]

For cifar_convnet (model A) and cifar_resnet (model B): for every ordered pair of distinct classes (i, j) (90
pairs; 6 with --quick) and seed (2; 1 with --quick), an image synthesized from noise that A classifies as i and B
as j — Adam on sigmoid-parameterized pixels (300 steps; 60 with --quick) maximizing the soft minimum of
log p_A(i) and log p_B(j), every pair × seed in one compiled, vmapped call. A stimulus is controversial when its
acceptance min(p_A(i), p_B(j)), measured on the 8-bit quantized image, is at least 0.85 (Golan et al.'s
criterion). Needs no data directory: the optimization starts from noise.

The zoo holds one trained MNIST model (its untrained control is no meaningful opponent), so MNIST is left out.
Writes figures, results.json, results.md and index.html to --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insilico import zoo  # noqa: E402
from insilico.probes import synthesis as syn  # noqa: E402
from insilico.report import Report, style  # noqa: E402
from insilico.report import figures as figs  # noqa: E402

style.use()

THRESHOLD = 0.85
QUICK_PAIRS = [(0, 1), (1, 0), (3, 5), (5, 3), (2, 8), (9, 4)]


def heatmap_figure(mean_acc, names, title, model_a: str = "model A", model_b: str = "model B"):
    """Mean acceptance per (class for A, class for B); the diagonal (not controversial) is left empty."""
    k = len(names)
    fig, ax = plt.subplots(figsize=(0.62 * k + 2.6, 0.55 * k + 1.6), layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(mean_acc), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel(f"class for model B ({model_b})")
    ax.set_ylabel(f"class for model A ({model_a})")
    for i in range(k):
        for j in range(k):
            if np.isfinite(mean_acc[i, j]):
                ax.text(j, i, f"{mean_acc[i, j]:.2f}", ha="center", va="center", fontsize=9,
                        color="k" if mean_acc[i, j] > 0.6 else "w")
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean acceptance (min of the two probabilities)")
    ax.set_title(title)
    return fig


def image_grid_figure(images, pairs, acceptance, names, model_a, model_b):
    """One image per pair (the best seed), large, captioned with the class each model sees and the acceptance
    (red below the success threshold)."""
    return figs.controversial_images(images, acceptance, [names[i] for i, _ in pairs], [names[j] for _, j in pairs],
                                     "A", "B",
                                     f"Controversial stimuli, A = {model_a}, B = {model_b}", threshold=THRESHOLD,
                                     max_cols=6)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/controversial")
    p.add_argument("--quick", action="store_true", help="small version (6 class pairs, 1 seed, 60 steps)")
    p.add_argument("--models", nargs=2, default=["cifar_convnet", "cifar_resnet"], metavar=("A", "B"),
                   help="the two models to pit against each other (same input space)")
    p.add_argument("--steps", type=int, default=None, help="Adam steps (default 300, 60 with --quick)")
    p.add_argument("--store", default=None, help="directory for the finished chunks of pairs × seeds: a killed run "
                   "rerun with it resumes (a run with other settings is refused)")
    args = p.parse_args(argv)
    q = args.quick
    n_seeds, steps, lr = (1, 60, 0.05) if q else (2, 300, 0.05)
    steps = args.steps or steps
    out = Path(args.out)
    report = Report("Controversial stimuli between the bundled models", out)
    name_a, name_b = args.models
    a, b = zoo.load(name_a), zoo.load(name_b)
    names = list(a.class_names)
    k = len(names)
    pairs = QUICK_PAIRS if q else [(i, j) for i in range(k) for j in range(k) if i != j]

    t0 = time.time()
    ds = syn.controversial(a, b, pairs, n_seeds=n_seeds, steps=steps, lr=lr, key=jax.random.PRNGKey(0),
                           store=args.store)
    seconds = time.time() - t0
    acc = ds.acceptance.values                                   # (pair, seed)
    success = acc >= THRESHOLD
    print(f"{len(pairs)} pairs x {n_seeds} seeds, {steps} steps: {success.mean():.3f} with acceptance >= "
          f"{THRESHOLD}, median {np.median(acc):.3f} ({seconds:.0f} s)", flush=True)

    mean_acc = np.full((k, k), np.nan)
    for (i, j), row in zip(pairs, acc):
        mean_acc[i, j] = row.mean()
    best = acc.argmax(1)
    best_images = ds.images.values[np.arange(len(pairs)), best]
    best_acc = acc[np.arange(len(pairs)), best]

    summary = {"model_a": name_a, "model_b": name_b, "n_pairs": len(pairs), "n_seeds": n_seeds, "steps": steps,
               "lr": lr, "threshold": THRESHOLD, "fraction_success": float(success.mean()),
               "fraction_pairs_any_seed": float(success.any(1).mean()), "median_acceptance": float(np.median(acc)),
               "mean_acceptance": float(acc.mean()), "seconds": seconds,
               "mean_p_a": float(ds.p_a.values.mean()), "mean_p_b": float(ds.p_b.values.mean()),
               "class_names": names,
               "pairs": [{"class_a": names[i], "class_b": names[j], "acceptance": row.tolist(),
                          "p_a": pa.tolist(), "p_b": pb.tolist()}
                         for (i, j), row, pa, pb in zip(pairs, acc, ds.p_a.values, ds.p_b.values)],
               "mean_acceptance_matrix": [[None if not np.isfinite(v) else float(v) for v in r] for r in mean_acc]}

    sec = report.section(f"{name_a} (A) vs {name_b} (B)", f"{len(pairs)} ordered class pairs × {n_seeds} seeds, "
                         f"{steps} Adam steps (lr {lr}) on sigmoid-parameterized pixels from Gaussian noise, "
                         "maximizing the soft minimum of log p_A(i) and log p_B(j). Acceptance = min(p_A(i), "
                         f"p_B(j)) on the 8-bit quantized image; success = acceptance ≥ {THRESHOLD} (Golan et al. "
                         "2020). One compiled call for all pairs × seeds.")
    sec.tables.append(("Success", ("model A", "model B", "pairs × seeds", f"fraction ≥ {THRESHOLD}",
                                   "pairs with a successful seed", "median acceptance", "mean p_A(i)",
                                   "mean p_B(j)", "seconds"),
                       [(name_a, name_b, int(acc.size), summary["fraction_success"],
                         summary["fraction_pairs_any_seed"], summary["median_acceptance"], summary["mean_p_a"],
                         summary["mean_p_b"], seconds)]))
    report.figure(sec, heatmap_figure(mean_acc, names, f"Mean acceptance over {n_seeds} seed(s)", name_a, name_b),
                  "acceptance_heatmap",
                  "Rows: the class model A should see; columns: the class model B should see (diagonal: not "
                  "controversial, not synthesized).")
    report.figure(sec, image_grid_figure(best_images, pairs, best_acc, names, name_a, name_b), "controversial_images",
                  "The best seed of each pair.")
    rows = [(names[i], names[j], float(r.mean()), float(r.max())) for (i, j), r in zip(pairs, acc)]
    rows.sort(key=lambda r: -r[2])
    sec.tables.append(("Per pair (sorted by mean acceptance)", ("class for A", "class for B", "mean acceptance",
                                                                "best acceptance"), rows))
    report.section("MNIST", "Not run: the zoo holds one trained MNIST model; its untrained control classifies at "
                   "chance and is no meaningful opponent.")

    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = [f"# Controversial stimuli: {name_a} (A) vs {name_b} (B)", "",
             f"{len(pairs)} pairs × {n_seeds} seeds, {steps} steps, lr {lr}", "",
             f"| fraction ≥ {THRESHOLD} | pairs with a successful seed | median acceptance | mean acceptance |",
             "|---|---|---|---|",
             f"| {summary['fraction_success']:.3f} | {summary['fraction_pairs_any_seed']:.3f} | "
             f"{summary['median_acceptance']:.3f} | {summary['mean_acceptance']:.3f} |", "",
             "| class for A | class for B | mean acceptance | best |", "|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
