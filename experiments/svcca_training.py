"""Do lower layers converge first? Similarity of each site to its final state across training (Raghu et al. 2017).

    INSILICO_DATA=/path/to/data python experiments/svcca_training.py --out results/svcca [--quick]

The zoo's MNIST ConvNet is trained from its recipe (12 epochs on the first 8,000 MNIST test images; --quick: 2
epochs on 2,000), keeping the weights at initialization and after every epoch. Every site is recorded on 500
held-out digits at each snapshot and compared with the same site at the end of training by
- SVCCA (Raghu et al. 2017: keep the singular directions explaining 99% of the variance, mean canonical
  correlation; convolutional sites treat each (image, position) as a data point and channels as neurons, on 8
  random positions per image),
- debiased linear CKA on the flattened responses (Kornblith et al. 2019).
Reported: the similarity curves and, per site, the first epoch at which the similarity reaches 0.9 (SVCCA) —
"bottom-up convergence" predicts this epoch grows with depth. Writes results.json, results.md, figures and
index.html to --out.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insilico import zoo  # noqa: E402
from insilico.analysis import similarity  # noqa: E402
from insilico.data import mnist_test  # noqa: E402
from insilico.probes import brain  # noqa: E402
from insilico.report import Report, style  # noqa: E402
from insilico.subject import make_subject  # noqa: E402
from insilico.train.loop import fit  # noqa: E402

THRESHOLD = 0.9
style.use()


def conv_points(a: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(images, H, W, C) → (images · positions, C) at the given flat spatial positions of each image."""
    n, h, w, c = a.shape
    flat = a.reshape(n, h * w, c)
    return flat[np.arange(n)[:, None], positions].reshape(-1, c)


def similarity_figure(epochs, sites, svcca, cka, n_epochs: int):
    """SVCCA (left) and CKA (right) of each site with its final state, per epoch; one legend beside the panels."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", sharey=True)
    for ax, vals, label in ((axes[0], svcca, "SVCCA (99% variance)"), (axes[1], cka, "debiased linear CKA")):
        for j, s in enumerate(sites):
            color = plt.cm.viridis(0.85 * j / max(1, len(sites) - 1))      # the palest yellow left out
            ax.plot(epochs, vals[:, j], marker="o", ms=4, label=s, color=color)
        ax.axhline(THRESHOLD, color="k", lw=0.6, ls=":", label=f"threshold {THRESHOLD}")
        ax.set_xlabel("epoch (0 = initialization)")
        style.integer_ticks(ax, "x")
        ax.set_title(label)
        ax.set_ylim(-0.05, 1.05)
    axes[0].set_ylabel("similarity with the final state")
    style.legend_outside(fig, title="site")
    fig.suptitle(f"mnist_convnet trained from scratch ({n_epochs} epochs): each site vs itself at the end")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/svcca")
    p.add_argument("--quick", action="store_true", help="2 epochs on 2,000 images, 200 probe images")
    args = p.parse_args(argv)
    q = args.quick
    out = Path(args.out)
    report = Report("Learning dynamics: similarity of each site to its final state", out)
    recipe = zoo.RECIPES["mnist_convnet"]
    from dataclasses import replace

    cfg = replace(recipe.train, epochs=2) if q else recipe.train
    train, test = mnist_test("train"), mnist_test("heldout")
    if q:
        train = train.subset(np.arange(2000))
    probe = np.asarray(test.x[:200 if q else 500])
    snapshots: dict[int, dict] = {}
    t0 = time.time()
    result = fit(recipe.model, train, test, cfg, progress=False,
                 on_epoch=lambda e, v: snapshots.__setitem__(e, jax.device_get(v)))
    train_s = time.time() - t0
    epochs = sorted(snapshots)
    subjects = {e: make_subject(f"epoch {e}", recipe.model, v, recipe.input_spec) for e, v in snapshots.items()}
    feats = {e: brain.record_sites(s, probe) for e, s in subjects.items()}
    sites = list(feats[epochs[-1]])
    rng = np.random.default_rng(0)
    positions = {}
    shapes = subjects[epochs[-1]].sites
    svcca = np.full((len(epochs), len(sites)), np.nan)
    cka = np.full_like(svcca, np.nan)
    for j, s in enumerate(sites):
        final = feats[epochs[-1]][s]
        shape = shapes[s]
        if len(shape) == 3:
            positions[s] = rng.integers(0, shape[0] * shape[1], (len(probe), 8))
        for i, e in enumerate(epochs):
            a = feats[e][s]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", similarity.SimilarityWarning)
                try:
                    if len(shape) == 3:
                        pa = conv_points(a.reshape(len(probe), *shape), positions[s])
                        pf = conv_points(final.reshape(len(probe), *shape), positions[s])
                        svcca[i, j] = similarity.svcca(pa, pf)
                    else:
                        svcca[i, j] = similarity.svcca(a, final)
                    cka[i, j] = similarity.cka(a, final)
                except ValueError:                            # e.g. a site silent at initialization
                    pass
    reach = {s: next((int(e) for e, v in zip(epochs, svcca[:, j]) if v >= THRESHOLD), None)
             for j, s in enumerate(sites)}
    print("first epoch with SVCCA >= 0.9:", reach, flush=True)

    fig = similarity_figure(epochs, sites, svcca, cka, cfg.epochs)
    sec = report.section("Similarity to the final state", f"{len(probe)} held-out digits; snapshots at "
                         f"initialization and after each of {cfg.epochs} epochs; final held-out accuracy "
                         f"{result.history[-1]['test_acc']:.4f}. First epoch at which SVCCA ≥ {THRESHOLD}: "
                         + ", ".join(f"{s} {reach[s]}" for s in sites) + ".")
    report.figure(sec, fig, "similarity_to_final")
    sec.tables.append(("SVCCA with the final state", ("epoch", *sites),
                       [(e, *[float(v) for v in svcca[i]]) for i, e in enumerate(epochs)]))
    sec.tables.append(("Debiased linear CKA with the final state", ("epoch", *sites),
                       [(e, *[float(v) for v in cka[i]]) for i, e in enumerate(epochs)]))
    summary = {"epochs": epochs, "sites": sites, "svcca": svcca.tolist(), "cka": cka.tolist(),
               "first_epoch_svcca_0.9": reach, "test_accuracy": result.history[-1]["test_acc"],
               "n_probe": len(probe), "train_seconds": train_s, "seconds": time.time() - t0}
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = [f"# SVCCA / CKA with the final state (mnist_convnet, {cfg.epochs} epochs)", "",
             "| epoch | " + " | ".join(sites) + " |", "|" + "---|" * (len(sites) + 1)]
    lines += [f"| {e} | " + " | ".join(f"{v:.3f}" for v in svcca[i]) + " |" for i, e in enumerate(epochs)]
    lines += ["", "first epoch with SVCCA ≥ 0.9: " + ", ".join(f"{s}: {reach[s]}" for s in sites)]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
