"""Do networks that generalize resist ablation better than networks that memorize, and are selective units
important? (Morcos, Barrett, Rabinowitz & Botvinick 2018, "On the importance of single directions for
generalization").

    INSILICO_DATA=/path/to/data python experiments/ablation_morcos2018.py --out results/ablation [--quick]

1. Cumulative ablation curves (random orders, many seeds, one compiled sweep per site) for the bundled CIFAR
   models and for two copies of the cifar_convnet architecture trained on the same CIFAR subset, one with the
   true labels (generalizing) and one with shuffled labels (memorizing); each network is measured on its own
   training images and labels, accuracy normalized by the intact network's.
2. Importance vs selectivity per site of the bundled models: single-unit lesion accuracy drop (and the maximum
   per-class accuracy drop) against the class selectivity index, Spearman ρ with a bootstrap 95% CI; and
   cumulative ablation ordered by selectivity (most selective first / last) against random orders.
3. Category selectivity: each unit's d′ for faces vs non-faces (scikit-image's LFW subset).
Writes figures, results.nc, results.md and index.html to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from insilico import electrode as el
from insilico import zoo
from insilico.analysis.selectivity import category_dprime, class_selectivity, spearman_bootstrap, unit_responses
from insilico.data import Dataset, cifar10
from insilico.data.stimuli import faces_and_nonfaces
from insilico.probes.importance import order_by, random_orders
from insilico.probes.lesion import ablation_curve, single_unit_sweep
from insilico.report import Report
from insilico.subject import make_subject
from insilico.train import TrainConfig, evaluate, fit


def conv_sites(subject):
    return [s for s, shape in subject.sites.items() if len(shape) == 3]


def train_pair(n_train: int, epochs: int, test, seed: int = 0):
    """cifar_convnet's architecture trained on ``n_train`` random CIFAR training images with true labels and
    with shuffled labels (Adam 1e-3, no augmentation or weight decay, so both fit their training set)."""
    recipe = zoo.RECIPES["cifar_convnet"]
    train = cifar10("train")
    idx = np.sort(np.random.default_rng(seed).permutation(len(train))[:n_train])
    true = train.subset(idx)
    shuffled = Dataset(true.x, np.random.default_rng(seed + 1).permutation(true.y), true.class_names, "cifar10-shuffled")
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, optimizer="adam", augment="none", weight_decay=0.0,
                      label_smoothing=0.0, warmup=0.1, seed=seed)
    subjects = {}
    for label, data in (("generalizing", true), ("memorizing", shuffled)):
        print(f"training the {label} network on {n_train} images for {epochs} epochs", flush=True)
        res = fit(recipe.model, data, None, cfg, progress=True)
        subject = make_subject(f"convnet_{label}", recipe.model, res.variables, recipe.input_spec, recipe.class_names)
        accs = (evaluate(recipe.model, res.variables, data.x, data.y), evaluate(recipe.model, res.variables, test.x, test.y))
        subjects[label] = (subject, data, accs)
    return subjects


def curves(subject, x, y, n_seeds, key):
    out = {}
    for site in conv_sites(subject):
        n = subject.sites[site][-1]
        ds = ablation_curve(subject, x, site, {"random": random_orders(jax.random.fold_in(key, n), n_seeds, n)}, y,
                            fractions=np.linspace(0, 1, 11), progress=True)
        out[site] = ds.accuracy.values / max(ds.attrs["intact_accuracy"], 1e-6)   # seeds x fractions
    return out


def importance_vs_selectivity(subject, x, y, key, n_seeds):
    rows = {}
    for site in conv_sites(subject):
        sweep = single_unit_sweep(subject, x, site, labels=y, progress=True)
        drop = sweep.attrs["intact_accuracy"] - sweep.accuracy.values
        class_drop = (sweep.intact_class_accuracy.values[None] - sweep.class_accuracy.values).max(1)
        _, rec = el.record(subject, x, site)
        si = np.asarray(class_selectivity(unit_responses(rec[site]), jnp.asarray(y), len(subject.class_names)))
        rho, (lo, hi), _ = spearman_bootstrap(si, drop, key, n_boot=1000)
        rho_c, (lo_c, hi_c), _ = spearman_bootstrap(si, class_drop, jax.random.fold_in(key, 1), n_boot=1000)
        n = len(si)
        orders = {"selective first": order_by(si), "selective last": order_by(si, descending=False),
                  "random": random_orders(jax.random.fold_in(key, 7), n_seeds, n)}
        curve = ablation_curve(subject, x, site, orders, y, fractions=np.linspace(0, 1, 11), progress=True)
        rows[site] = {"selectivity": si, "accuracy_drop": drop, "max_class_drop": class_drop, "curve": curve,
                      "rho": float(rho), "ci": (float(lo), float(hi)), "rho_class": float(rho_c),
                      "ci_class": (float(lo_c), float(hi_c))}
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/ablation_morcos2018")
    p.add_argument("--quick", action="store_true", help="small version (about a minute)")
    p.add_argument("--models", nargs="*", default=["cifar_convnet", "cifar_resnet"])
    args = p.parse_args(argv)
    q = args.quick
    n_images, n_seeds, n_train, epochs = (128, 3, 256, 2) if q else (500, 10, 2000, 30)
    key = jax.random.PRNGKey(0)
    import matplotlib.pyplot as plt

    from insilico.report import style

    style.use()

    report = Report("Ablation, generalization and selectivity (Morcos et al. 2018)", args.out)
    test = cifar10("test", np.sort(np.random.default_rng(0).permutation(10000)[:n_images]))
    nets = {}
    for m in args.models:
        s = zoo.load(m)
        nets[m] = (s, test, (None, evaluate(s.model, s.variables, test.x, test.y)))
    for label, (subject, data, accs) in train_pair(n_train, epochs, test).items():
        sub = data.subset(slice(0, min(n_images, len(data))))
        nets[label] = (subject, sub, accs)

    results, summary = {}, []
    sec = report.section("Accuracy vs fraction of units ablated", "Random ablation orders (mean ± s.d. over "
                         f"{n_seeds} seeds), accuracy normalized by the intact network's. Bundled models are "
                         "measured on CIFAR-10 test images; the generalizing/memorizing pair on its own training "
                         "images and (true or shuffled) labels.")
    n_cols = min(2, len(nets))
    n_rows = -(-len(nets) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 3.1 * n_rows + 0.4), squeeze=False,
                             layout="constrained")
    fractions = np.linspace(0, 1, 11)
    for ax, (name, (subject, data, (train_acc, test_acc))) in zip(axes.ravel(), nets.items()):
        c = curves(subject, jnp.asarray(data.x), jnp.asarray(data.y), n_seeds, key)
        for site, acc in c.items():
            m, sd = acc.mean(0), acc.std(0)
            line, = ax.plot(fractions, m, label=site)
            ax.fill_between(fractions, m - sd, m + sd, alpha=0.2, color=line.get_color(), lw=0)
            results[f"curve_{name}_{site}".replace("/", "_")] = xr.DataArray(acc, dims=("seed", "fraction"),
                                                                             coords={"fraction": fractions})
            half = float(np.interp(0.5, fractions, m))
            summary.append((name, site, "" if train_acc is None else train_acc, test_acc, half))
        ax.set_title(name)
        ax.set_xlabel("fraction of units ablated")
        ax.set_ylabel("accuracy / intact accuracy")
        style.legend_outside(ax, title="site ablated")
    for ax in axes.ravel()[len(nets):]:
        ax.set_visible(False)
    fig.suptitle(f"Random ablation (mean ± s.d. over {n_seeds} seeds)")
    report.figure(sec, fig, "ablation_curves")
    sec.tables.append(("Normalized accuracy with half of a site's units ablated (random order, mean over seeds)",
                       ("network", "site", "train accuracy", "test accuracy", "normalized accuracy at 50%"), summary))

    sec = report.section("Importance vs class selectivity", "Each unit's accuracy drop when ablated alone "
                         "(and the largest drop in any one class's accuracy) against its class selectivity index "
                         "on CIFAR-10 test images. Spearman ρ with a 95% bootstrap CI over units.")
    rows = []
    for name in args.models:
        subject = nets[name][0]
        sites = importance_vs_selectivity(subject, jnp.asarray(test.x), jnp.asarray(test.y), key, n_seeds)
        n_cols = min(3, len(sites))
        n_rows = -(-len(sites) // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.3 * n_cols + 0.4, 3.2 * n_rows + 0.4), squeeze=False,
                                 layout="constrained")
        for ax in axes.ravel()[len(sites):]:
            ax.set_visible(False)
        for ax, (site, r) in zip(axes.ravel(), sites.items()):
            ax.scatter(r["selectivity"], r["accuracy_drop"], s=10, alpha=0.7)
            ax.set_title(f"{site}\nρ = {r['rho']:.2f}, 95% CI [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]")
            ax.set_xlabel("class selectivity index")
            rows.append((name, site, r["rho"], f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]", r["rho_class"],
                         f"[{r['ci_class'][0]:.2f}, {r['ci_class'][1]:.2f}]"))
            tag = f"{name}_{site}".replace("/", "_")
            for k in ("selectivity", "accuracy_drop", "max_class_drop"):
                results[f"{k}_{tag}"] = xr.DataArray(r[k], dims=f"unit_{tag}")
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy drop when ablated\n(fraction of images)")
        fig.suptitle(f"{name}: importance vs class selectivity, one point per unit")
        report.figure(sec, fig, f"importance_{name}")
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.0 * n_cols + 2.4, 3.0 * n_rows + 0.4), squeeze=False,
                                 sharey=True, layout="constrained")
        for ax in axes.ravel()[len(sites):]:
            ax.set_visible(False)
        for ax, (site, r) in zip(axes.ravel(), sites.items()):
            c = r["curve"]
            for fam in ("selective first", "selective last", "random"):
                sel = [o for o in c.order.values if str(o).split("/")[0] == fam]
                label = fam if len(sel) == 1 else f"{fam} (mean of {len(sel)} orders)"
                ax.plot(c.fraction, c.accuracy.sel(order=sel).mean("order"), "o-", ms=4, label=label)
            ax.set_title(site)
            ax.set_xlabel("fraction of units ablated")
            tag = f"{name}_{site}".replace("/", "_")
            results[f"selectivity_curve_{tag}"] = xr.DataArray(
                c.accuracy.values, dims=(f"order_{tag}", "fraction"), coords={"fraction": fractions,
                                                                              f"order_{tag}": c.order.values})
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (fraction)")
        style.legend_outside(fig, title="ablation order")
        fig.suptitle(f"{name}: cumulative ablation by class selectivity")
        report.figure(sec, fig, f"selectivity_order_{name}", "Cumulative ablation by class selectivity vs random")
    sec.tables.append(("Spearman correlation of selectivity with importance",
                       ("model", "site", "ρ (accuracy drop)", "95% CI", "ρ (max class drop)", "95% CI"), rows))

    sec = report.section("Face selectivity", "d′ of each unit's (spatially averaged) response to 100 faces vs "
                         "100 non-faces (scikit-image's LFW subset, resized); |d′| > 1 counts as category-selective.")
    faces, is_face = faces_and_nonfaces(32, 3)
    face_rows = []
    for name in args.models:
        subject = nets[name][0]
        _, rec = el.record(subject, faces)
        for site in subject.sites:
            d = np.asarray(category_dprime(unit_responses(rec[site]), is_face))
            d = d[np.isfinite(d)]
            face_rows.append((name, site, len(d), float(np.mean(np.abs(d) > 1)), float(np.max(d)) if len(d) else np.nan))
            results[f"face_dprime_{name}_{site}".replace("/", "_")] = xr.DataArray(d, dims=f"face_unit_{name}_{site}".replace("/", "_"))
    sec.tables.append(("Face vs non-face d′", ("model", "site", "units", "fraction |d′| > 1", "max d′"), face_rows))
    out = Path(args.out)
    xr.Dataset(results).to_netcdf(out / "results.nc")
    lines = ["| network | site | train acc | test acc | normalized acc at 50% |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c if c == '' else f'{c:.3f}'} | {t:.3f} | {d:.3f} |" for a, b, c, t, d in summary]
    lines += ["", "| model | site | rho (acc drop) | 95% CI | rho (max class drop) | 95% CI |", "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c:.3f} | {d} | {e:.3f} | {f} |" for a, b, c, d, e, f in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print("\n".join(lines))
    print(json.dumps({"out": str(out)}))


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
