"""Model metamers per site (after Feather, Durango, Gonzalez & McDermott 2019): how far from the original can an
image be while a site cannot tell them apart, and does another network still recognize it?

    INSILICO_DATA=/path/to/data python experiments/metamers.py --out results/metamers [--quick] [--store DIR]

For each site of the model (default cifar_convnet), metamers of CIFAR-10 test images (scikit-image photos
without INSILICO_DATA) are synthesized from white noise (targets × seeds in one call per site). Reported per
site: the relative representation error reached, the pixel RMSE to the target, whether the model itself gives
the metamer the target's class, and whether an independent network (cifar_resnet) does.
Writes figures, results.json, results.md and index.html to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from insilico import electrode as el
from insilico import zoo
from insilico.data import DataNotFoundError, cifar10
from insilico.data.stimuli import photos
from insilico.probes import synthesis as syn
from insilico.report import Report


def targets(n: int):
    try:
        test = cifar10("test", np.random.default_rng(0).permutation(10000)[:n])
        return np.asarray(syn.quantize(test.x)), "cifar10-test"
    except DataNotFoundError:
        return np.asarray(syn.quantize(photos(32)[:n])), "scikit-image photos"


def metamer_figure(x, grids: dict, errors: dict, model: str):
    """One row per target: the target, then its metamer (first seed) for each site, each with its relative
    representation error; pixels clipped to [0, 1], nearest-neighbour upsampled."""
    import matplotlib.pyplot as plt

    from insilico.report import style

    style.use()
    sites = list(grids)
    n = len(x)

    def show(ax, img):
        img = np.clip(np.repeat(np.repeat(img, 4, 0), 4, 1), 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)

    fig, axes = plt.subplots(n, len(sites) + 1, figsize=(1.55 * (len(sites) + 1) + 0.4, 1.85 * n + 0.8),
                             squeeze=False, layout="constrained")
    for i in range(n):
        show(axes[i, 0], x[i])
        axes[i, 0].set_ylabel(f"target {i}")
        for j, site in enumerate(sites, start=1):
            show(axes[i, j], grids[site][i])
            axes[i, j].set_xlabel(f"rel. error {errors[site][i]:.3g}", fontsize=9)
    axes[0, 0].set_title("target")
    for j, site in enumerate(sites, start=1):
        axes[0, j].set_title(f"metamer of\n{site}")
    fig.suptitle(f"Metamers of {model}, one per site (relative representation error under each)")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/metamers")
    p.add_argument("--quick", action="store_true", help="small version (about a minute)")
    p.add_argument("--model", default="cifar_convnet")
    p.add_argument("--observer", default="cifar_resnet", help="independent network that judges the metamers")
    p.add_argument("--store", default=None, help="directory for the finished chunks of targets, one subdirectory "
                   "per site: a killed run rerun with it resumes (a run with other settings is refused)")
    args = p.parse_args(argv)
    n_targets, n_seeds, steps = (2, 1, 300) if args.quick else (8, 2, 2000)
    subject, observer = zoo.load(args.model), zoo.load(args.observer)
    x, source = targets(n_targets)
    out = Path(args.out)
    report = Report(f"Metamers of {args.model} per site", out)
    sec = report.section("Metamers per site", f"{n_targets} targets ({source}) × {n_seeds} white-noise starts, "
                         f"Adam on pixels for up to {steps} steps (lr 0.01), stopping at a relative representation "
                         f"error of 1e-2. 'Self' = {args.model} gives the metamer its target's class; "
                         f"'observer' = {args.observer} does.")
    sites = list(subject.sites)[:-1]
    target_pred_self = np.asarray(el.record(subject, x)[0].argmax(-1))
    target_pred_obs = np.asarray(el.record(observer, x)[0].argmax(-1))
    rows, summary, grids, errors = [], {}, {}, {}
    for site in sites:
        m = syn.metamers(subject, site, x, n_seeds=n_seeds, steps=steps, lr=0.01, tol=1e-2,
                         key=jax.random.PRNGKey(1), store=None if args.store is None else Path(args.store) / site)
        imgs = m.images.values.reshape(-1, *x.shape[1:])
        self_pred = np.asarray(el.record(subject, imgs)[0].argmax(-1)).reshape(n_targets, n_seeds)
        obs_pred = np.asarray(el.record(observer, imgs)[0].argmax(-1)).reshape(n_targets, n_seeds)
        r = {"rel_error_median": float(np.median(m.rel_error.values)),
             "converged": float(np.mean(m.converged_at.values >= 0)),
             "pixel_rmse_median": float(np.median(m.pixel_rmse.values)),
             "self_agreement": float(np.mean(self_pred == target_pred_self[:, None])),
             "observer_agreement": float(np.mean(obs_pred == target_pred_obs[:, None]))}
        summary[site] = r
        rows.append((site, r["rel_error_median"], r["converged"], r["pixel_rmse_median"], r["self_agreement"],
                     r["observer_agreement"]))
        grids[site] = m.images.values[:, 0]
        errors[site] = m.rel_error.values[:, 0]
    sec.tables.append(("Per site", ("site", "median relative error", "fraction converged", "median pixel RMSE",
                                    "self agreement", "observer agreement"), rows))
    fig = metamer_figure(x, grids, errors, args.model)
    report.figure(sec, fig, "metamers", "Target (left) and one metamer per site")
    (out / "results.json").write_text(json.dumps({"model": args.model, "observer": args.observer,
                                                  "source": source, "sites": summary}, indent=1))
    lines = ["| site | median rel. error | converged | median pixel RMSE | self agreement | observer agreement |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b:.4f} | {c:.2f} | {d:.3f} | {e:.2f} | {f:.2f} |" for a, b, c, d, e, f in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
