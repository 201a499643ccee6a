"""Which model sites look like which brain regions? RSA on the 92 object images (after Khaligh-Razavi &
Kriegeskorte 2014, with the 15-subject fMRI data of Cichy et al. 2014).

    INSILICO_DATA=/path/to/data python experiments/rsa_92images.py --out results/rsa92 [--quick]

For every site of the bundled models, trained and untrained: the correlation-distance RDM of the site's responses
to the 92 images (resized to the model's input), compared by Kendall's τ-a with
- "human IT" (Kriegeskorte et al. 2008: 4 subjects × 2 sessions, averaged per subject),
- "monkey IT" (Kiani et al. 2007, one RDM),
- "EVC" and "IT" of the 15 subjects of Cichy et al. 2014 (``insilico.data.objects92_region_rdms``),
averaged over subjects, with the noise ceiling of each region (lower and upper bound) and 95% intervals from a
bootstrap over the 92 stimuli (1,000 samples; 100 with --quick, which also skips the untrained controls). The
models see 32×32 (MNIST: 28×28 grey) versions of 175×175 photos, a far cry from the fMRI subjects' view; the
numbers are reported as they come. Writes results.json, results.md, figures and index.html to --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from insilico import zoo
from insilico.data import objects92, objects92_region_rdms
from insilico.probes import brain
from insilico.report import Report, figures, style

style.use()

MODELS = ("cifar_convnet", "cifar_resnet", "mnist_convnet")


def profile_figure(results: dict, region_names):
    """Per model: τ-a of each site (x, by name) with each region (lines), 95% intervals as bars, noise ceilings
    as bands of the region's colour; one legend beside the panels."""
    n_sites = max(ds.sizes["site"] for ds in results.values())
    n_cols = min(2, len(results))
    n_rows = -(-len(results) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=((0.35 * n_sites + 2.4) * n_cols + 1.8, 3.6 * n_rows + 0.4),
                             squeeze=False, sharey=True, layout="constrained")
    for ax in axes.ravel()[len(results):]:
        ax.set_visible(False)
    for ax, (name, ds) in zip(axes.ravel(), results.items()):
        x = np.arange(ds.sizes["site"])
        for j, r in enumerate(region_names):
            y = ds.score.sel(region=r).values
            lo = ds.ci_low.sel(region=r).values if "ci_low" in ds else y
            hi = ds.ci_high.sel(region=r).values if "ci_high" in ds else y
            ax.errorbar(x + 0.06 * (j - 1.5), y, yerr=[y - lo, hi - y], marker="o", ms=4, lw=1.2, capsize=2,
                        label=r, color=f"C{j}")
            c_lo, c_hi = float(ds.ceiling_lower.sel(region=r)), float(ds.ceiling_upper.sel(region=r))
            if np.isfinite(c_lo) and np.isfinite(c_hi):
                ax.axhspan(c_lo, c_hi, color=f"C{j}", alpha=0.08, lw=0)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(x, list(ds.site.values), rotation=45, ha="right")
        ax.set_xlabel("model site (input → output)")
        ax.set_title(name)
    for ax in axes[:, 0]:
        ax.set_ylabel("Kendall τ-a\n(mean over subjects)")
    style.legend_outside(fig, title="region")
    fig.suptitle("Site RDMs vs brain RDMs")
    style.caption(fig, "Bands: noise ceilings (lower–upper); bars: 95% stimulus-bootstrap intervals.")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/rsa92")
    p.add_argument("--quick", action="store_true", help="trained models only, 100 bootstrap samples")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap samples (default 1000, 100 with --quick)")
    p.add_argument("--models", nargs="+", default=list(MODELS), help="trained zoo models (default: all three)")
    args = p.parse_args(argv)
    n_boot = args.n_boot or (100 if args.quick else 1000)
    out = Path(args.out)
    report = Report("RSA on the 92 object images: model sites vs human and monkey IT, EVC", out)
    reg = objects92_region_rdms()
    trained = list(args.models)
    names = trained + ([] if args.quick else [m + "_untrained" for m in trained])
    results, summary = {}, {"n_boot": n_boot, "method": "tau-a", "rdm": "correlation", "models": {}}
    t0 = time.time()
    for k, name in enumerate(names):
        sub = zoo.load(name)
        h, _, c = sub.input_spec.shape
        imgs = objects92(h, channels=c).x
        ds = brain.rsa_by_site(sub, imgs, reg, method="tau-a", n_boot=n_boot, key=jax.random.PRNGKey(k))
        results[name] = ds
        best = {r: str(ds.score.sel(region=r).idxmax().item()) for r in reg}
        summary["models"][name] = {
            "sites": list(ds.site.values), "best_site": best,
            "score": {r: ds.score.sel(region=r).values.tolist() for r in reg},
            "ci_low": {r: ds.ci_low.sel(region=r).values.tolist() for r in reg},
            "ci_high": {r: ds.ci_high.sel(region=r).values.tolist() for r in reg}}
        print(f"{name}: best sites {best} ({time.time() - t0:.0f} s)", flush=True)
    first = next(iter(results.values()))
    summary["ceilings"] = {r: [float(first.ceiling_lower.sel(region=r)), float(first.ceiling_upper.sel(region=r))]
                           for r in reg}
    summary["seconds"] = time.time() - t0

    sec = report.section("Site × region τ-a", f"Correlation-distance RDMs of every site's responses to the 92 "
                         "images, compared with each region's subject RDMs by Kendall's τ-a and averaged over "
                         f"subjects; 95% intervals from {n_boot} bootstrap samples of the stimuli. Noise ceilings "
                         "(lower–upper): " + "; ".join(f"{r} {lo:.3f}–{hi:.3f}"
                                                       for r, (lo, hi) in summary["ceilings"].items()) + ".")
    report.figure(sec, profile_figure({n: results[n] for n in trained}, list(reg)), "profiles_trained",
                  "Trained models.")
    if not args.quick:
        report.figure(sec, profile_figure({n: results[n] for n in names[len(trained):]}, list(reg)),
                      "profiles_untrained", "Untrained controls (same architectures, random weights).")
    for name, ds in results.items():
        report.figure(sec, figures.site_region_heatmap(ds, title=f"{name}: τ-a"), f"heatmap_{name}")
    rows = []
    for name, ds in results.items():
        for r in reg:
            s = ds.score.sel(region=r)
            i = int(np.nanargmax(s.values))
            rows.append((name, r, str(ds.site.values[i]), float(s.values[i]), float(ds.ci_low.sel(region=r)[i]),
                         float(ds.ci_high.sel(region=r)[i]), summary["ceilings"][r][0]))
    sec.tables.append(("Best site per model and region", ("model", "region", "best site", "τ-a", "CI low",
                                                          "CI high", "ceiling (lower)"), rows))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = [f"# RSA, 92 images (Kendall τ-a, {n_boot} bootstrap samples)", "",
             "| region | noise ceiling (lower–upper) |", "|---|---|"]
    lines += [f"| {r} | {lo:.3f}–{hi:.3f} |" for r, (lo, hi) in summary["ceilings"].items()]
    lines += ["", "| model | region | best site | τ-a | 95% CI |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {r} | {s} | {v:.3f} | {lo:.3f}–{hi:.3f} |" for m, r, s, v, lo, hi, _ in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
