"""Does task performance predict brain predictivity? (after Yamins et al. 2014, PNAS, Fig. 2)

    INSILICO_DATA=/path/to/data python experiments/performance_vs_brain.py --out results/pvb [--quick]

Models — the zoo's CIFAR models and untrained controls, four_elements.py's variants (its definitions and recipe:
Adam, one-cycle, flips and crops, a fixed random subset of CIFAR-10) and ConvNets of other widths and depths —
get a CIFAR-10 test accuracy and :func:`insilico.scores.score_model` scores (site chosen on one half of the
stimuli or neurons, scored on the other). Does accuracy predict V4 (Cowley et al. 2023 encoding) and IT (RSA
with Kriegeskorte et al. 2008's human IT and Cichy et al. 2014's IT)? Pearson and Spearman r across models,
95% intervals from a bootstrap over models (key from --seed). Does the chosen site lie deeper for IT than for
V4? Relative depth = site position from the input (first 1) / number of sites; paired over models (mean
difference with a bootstrap interval, Wilcoxon signed-rank). Weights are cached in OUT/weights and results in
OUT/models per model as it finishes, keyed by the training fingerprint (four_elements.fingerprint) or shipped
weights' hash and the benchmarks' definitions; a rerun keeps what matches and recomputes, naming it, what does
not. mnist_convnet has no CIFAR-10 accuracy and is left out. Writes performance_vs_brain.png,
performance_vs_brain_depth.png, table.csv, table.md and summary.json.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import four_elements as fe

from insilico import scores, zoo
from insilico.analysis.stats import pearson
from insilico.data import cifar10, neural
from insilico.data.worlds import transform
from insilico.models import ConvNet
from insilico.report import style
from insilico.subject import InputSpec, make_subject
from insilico.train import TrainConfig, fit, init_variables, load_checkpoint, save_checkpoint

style.use()

FOUR = ("ConvNet (feed-forward)", "MLP, backprop", "MLP, feedback alignment", "ConvNet, feedback alignment",
        "ConvNet, blurred world")
ZOO = ("cifar_convnet", "cifar_resnet", "cifar_convnet_untrained", "cifar_resnet_untrained")
IT_REGIONS = ("IT", "human IT")
FAMILIES = {"zoo, trained": "#0072B2", "zoo, untrained": "#999", "four elements": "#D55E00", "width / depth": "#009E73"}


def bootstrap_correlation(x, y, key, *, n_boot: int = 2000, method: str = "pearson", ci: float = 0.95) -> dict:
    """r between ``x`` and ``y`` (one value per model) and its percentile interval from ``n_boot`` resamplings of
    the models with replacement (indices ``jax.random.randint(key, (n_boot, n), 0, n)``); resamples in which
    either side is constant give no r and are left out (``n_valid`` counts the others)."""
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman'; got {method!r}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"x and y must be finite vectors of the same length ≥ 3; got shapes {x.shape}, {y.shape}")
    rank = (lambda v: scipy.stats.rankdata(v, axis=-1)) if method == "spearman" else (lambda v: v)
    r = float(np.clip(pearson(rank(x), rank(y)), -1, 1))                  # round-off can pass ±1
    idx = np.asarray(jax.random.randint(key, (n_boot, len(x)), 0, len(x)))
    samples = np.clip(np.asarray(pearson(rank(x[idx]), rank(y[idx]), axis=1), np.float64), -1, 1)
    ok = samples[np.isfinite(samples)]
    lo, hi = np.percentile(ok, [50 * (1 - ci), 50 * (1 + ci)]) if len(ok) else (np.nan, np.nan)
    return {"r": r, "lo": float(lo), "hi": float(hi), "n": len(x), "n_valid": int(len(ok)), "method": method}


def relative_depth(site: str, sites) -> float:
    """Position of ``site`` counted from the input (the first site is 1) divided by the number of ``sites``."""
    if site not in (sites := list(sites)):
        raise ValueError(f"site must be one of the sites {sites}; got {site!r}")
    return (sites.index(site) + 1) / len(sites)


def paired_depth(d_v4, d_it, key, *, n_boot: int = 2000, ci: float = 0.95) -> dict:
    """Per model IT depth − V4 depth: mean, its bootstrap interval over models, counts of models where IT's site
    is deeper / as deep / shallower, and the two-sided Wilcoxon signed-rank p (zero differences dropped)."""
    d = np.asarray(d_it, np.float64) - np.asarray(d_v4, np.float64)
    idx = np.asarray(jax.random.randint(key, (n_boot, len(d)), 0, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [50 * (1 - ci), 50 * (1 + ci)])
    p = float(scipy.stats.wilcoxon(d[d != 0]).pvalue) if np.count_nonzero(d) >= 1 else float("nan")
    return {"mean_difference": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": len(d),
            "it_deeper": int((d > 0).sum()), "same": int((d == 0).sum()), "v4_deeper": int((d < 0).sum()),
            "wilcoxon_p": p, "mean_v4": float(np.mean(d_v4)), "mean_it": float(np.mean(d_it))}


def roster(quick: bool) -> dict:
    """name → (family, source): source is a zoo name, or (model, objective, world) to train."""
    four = fe.variants(quick)
    base = four["ConvNet (feed-forward)"][1].widths
    conv = lambda widths: ("width / depth", (ConvNet(widths=widths, fc=(128,), **fe.NORM), None, {}))
    if quick:
        return {"cifar_convnet_untrained": ("zoo, untrained", "cifar_convnet_untrained"),
                "ConvNet (feed-forward)": ("four elements", four["ConvNet (feed-forward)"][1:]),
                "ConvNet, 2 stages": conv(base[:2])}
    out = {n: ("zoo, untrained" if n.endswith("_untrained") else "zoo, trained", n) for n in ZOO}
    out |= {n: ("four elements", four[n][1:]) for n in FOUR}
    return out | {"ConvNet, widths x0.5": conv(tuple(w // 2 for w in base)), "ConvNet, widths x2":
                  conv(tuple(2 * w for w in base)), "ConvNet, 2 stages": conv(base[:2]),
                  "ConvNet, 4 stages": conv((*base, 2 * base[-1]))}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def trained_subject(name, source, train, cfg, config, out: Path):
    """The subject of a roster model: a zoo load, or training with ``cfg`` (cached in OUT/weights by the
    training fingerprint; a cached file of other settings is named and retrained). Returns (subject, origin)."""
    if isinstance(source, str):
        return zoo.load(source), {"source": f"zoo:{source}"}
    (model, objective, world), fp = source, origin_print(source, config)
    spec = InputSpec((32, 32, 3), (0.0, 1.0), fe.CIFAR_MEAN, fe.CIFAR_STD)
    path = out / "weights" / f"{_slug(name)}.ckpt"
    if path.exists():
        abstract = jax.eval_shape(lambda: init_variables(model, spec.shape, jax.random.PRNGKey(0), eager=True))
        variables, meta = load_checkpoint(path, abstract)
        if meta.get("fingerprint") == fp:
            print(f"{name}: weights kept from {path} (same training fingerprint {fp})", flush=True)
            return make_subject(name, model, variables, spec, train.class_names), {"training": fp, **meta}
        print(f"{name}: {path} was trained otherwise ({meta.get('fingerprint')} != {fp}); retraining", flush=True)
    t, data = time.time(), transform(train, **world) if world else train
    result = fit(model, data, None, cfg, progress=False, objective=objective)
    save_checkpoint(path, result.variables, meta := {"fingerprint": fp, "train_seconds": round(time.time() - t, 1),
                                                     "history": result.history})
    print(f"{name}: trained in {meta['train_seconds']:.0f} s", flush=True)
    return make_subject(name, model, result.variables, spec, train.class_names), {"training": fp, **meta}


def _first(n: int, session: str, what: str):
    if what == "images":
        return neural.cowley2023_images(session)[:n], None
    raw = neural.cowley2023(session, raw=what == "repeats")
    return raw.values[:n] if what == "repeats" else raw.isel(presentation=slice(0, n))


def quick_v4(n: int = 160, session: str = "210325") -> scores.Benchmark:
    """Cowley et al.'s session ``session`` on its first ``n`` images and 3 image splits (a smoke-test size)."""
    b, load = scores.get(f"cowley2023-v4-{session}"), partial(partial, _first, n, session)
    return dataclasses.replace(b, name=f"{b.name}-first{n}", n_splits=3, stimuli=load("images"), data=load("responses"),
                               ceiling_data=load("repeats"), description=f"{b.description}; its first {n} images only")


def chosen_benchmarks(quick: bool, names) -> list:
    """--quick: Cichy IT and :func:`quick_v4`; otherwise ``names`` (a missing one is skipped by score_model,
    which says why) or every registered benchmark whose data are present."""
    if quick:
        return [scores.get("cichy2014-it"), quick_v4()]
    return [scores.get(n) for n in names or [n for n in scores.available()
                                                     if not scores.missing_data(scores.get(n))]]


def origin_print(source, config: dict) -> str:
    """What the weights come from: the shipped (or initial) weights' sha256 for a zoo model, the training
    fingerprint (four_elements.fingerprint: model, objective, world, recipe) for a model trained here."""
    if isinstance(source, str):
        return scores.weights_hash(zoo.load(source))
    model, objective, world = source
    return fe.fingerprint(("", model, objective, world), config)


def model_fingerprint(origin: str, benches, seed: int, n_boot: int, n_test: int) -> str:
    made = {"origin": origin, "seed": seed, "n_boot": n_boot, "n_test": n_test,
            "benchmarks": {b.name: b.fingerprint() for b in benches}}
    return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]


def measure(name, family, subject, origin, benches, test, args, out: Path) -> dict:
    """Accuracy on the test images and every benchmark's result (raw, ceiling, normalized, chosen site and its
    relative depth, each site's held-out score) of one model."""
    acc = float(np.mean(fe.predict(subject, np.asarray(test.x), jax.random.PRNGKey(200)) == test.y))
    results, skipped, _ = scores.score_model(subject, benches, out / "scores" / _slug(name), seed=args.seed,
                                             n_boot=args.n_boot, source=origin.get("source", "trained here"),
                                             log=lambda s: print(f"  {name} {s}", flush=True))
    entry = {"family": family, "accuracy": acc, "sites": (sites := list(subject.sites)), "skipped": skipped,
             "benchmarks": {}}
    for b, ds in results.items():
        a = ds.attrs
        entry["benchmarks"][b] = {
            "region": a["region"], "raw": float(a["raw_score"]), "ceiling": float(a["ceiling"]),
            "normalized": float(a["normalized"]), "chosen_site": a["chosen_site"],
            "relative_depth": relative_depth(a["chosen_site"], sites),
            "heldout": dict(zip(map(str, ds.site.values), map(float, ds.heldout_score.values)))}
    return entry


def region_value(entry: dict, regions, key: str) -> float:
    vals = [v[key] for v in entry["benchmarks"].values() if v["region"] in regions and np.isfinite(v[key])]
    return float(np.mean(vals)) if vals else float("nan")


def _scatter(ax, models, x, y):
    for fam, colour in FAMILIES.items():
        if pick := [i for i, m in enumerate(models) if m[1] == fam]:
            ax.scatter(x[pick], y[pick], s=36, color=colour, label=fam, zorder=3, edgecolor="white", lw=0.5)
    for (name, _), xi, yi in zip(models, x, y):
        ax.annotate(name, (xi, yi), fontsize=6.5, xytext=(3, 3), textcoords="offset points", color="0.3")


def accuracy_figure(models, acc, panels):
    """Per region (panel): accuracy (x) vs the region's score (y), a point per model coloured by family, the
    least-squares line, Pearson and Spearman r with their bootstrap intervals in the title."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.6), layout="constrained", squeeze=False)
    for ax, (region, (y, ylabel, corr)) in zip(axes[0], panels.items()):
        ok = np.isfinite(y)
        _scatter(ax, [m for m, k in zip(models, ok) if k], acc[ok], y[ok])
        if ok.sum() >= 2:
            slope, icpt = np.polyfit(acc[ok], y[ok], 1)
            xs = np.linspace(acc[ok].min(), acc[ok].max(), 2)
            ax.plot(xs, slope * xs + icpt, color="k", lw=1, ls="--", label="least-squares line")
        p, s = corr.get("pearson"), corr.get("spearman")
        text = (f"Pearson r = {p['r']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}]\nSpearman ρ = {s['r']:.2f} "
                f"[{s['lo']:.2f}, {s['hi']:.2f}]") if p else "fewer than 3 models"
        ax.set_title(f"{region}\n{text}", fontsize=9)
        ax.set(xlabel="CIFAR-10 test accuracy (fraction correct)", ylabel=ylabel)
    style.legend_outside(fig, title="model family")
    fig.suptitle("Task performance vs brain predictivity (each point a model)")
    style.caption(fig, "Scores on the held-out half of each benchmark (the site chosen on the other half); IT: mean "
                  "over subjects, then over the human IT and Cichy IT benchmarks. Brackets: 95% intervals from a "
                  "bootstrap over models; with this few models they are wide.")
    return fig


def depth_figure(models, d_v4, d_it, paired):
    """Relative depth of the chosen site for V4 (x) vs for IT (y), a point per model (jittered slightly), the
    identity line; points above it: IT's site deeper."""
    fig, ax = plt.subplots(figsize=(5.6, 4.8), layout="constrained")
    jitter = np.asarray(jax.random.uniform(jax.random.PRNGKey(7), (2, len(models)), minval=-0.012, maxval=0.012))
    ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls=":", label="same depth")
    _scatter(ax, models, d_v4 + jitter[0], d_it + jitter[1])
    ax.set(xlim=(0, 1.05), ylim=(0, 1.05), xlabel="V4: relative depth of the chosen site\n(site position from the "
           "input / number of sites)", ylabel="IT: relative depth of the chosen site")
    ax.set_title(f"IT − V4 depth: mean {paired['mean_difference']:+.2f} [{paired['lo']:+.2f}, {paired['hi']:+.2f}]"
                 f"\nIT deeper in {paired['it_deeper']}, same {paired['same']}, V4 deeper in {paired['v4_deeper']}"
                 f" of {paired['n']} models; Wilcoxon p = {paired['wilcoxon_p']:.2g}", fontsize=9)
    style.legend_outside(ax, title="model family")
    style.caption(fig, "Above the dotted line: IT's site is deeper than V4's. Points jittered slightly so that "
                  "equal depths stay visible. Bracket: 95% bootstrap interval over models.")
    return fig


def write_tables(summary: dict, benches, out: Path) -> None:
    rows = [(name, e["family"], f"{e['accuracy']:.4f}", b, v["region"], f"{v['raw']:.4f}", f"{v['ceiling']:.4f}",
             f"{v['normalized']:.4f}", v["chosen_site"], f"{v['relative_depth']:.3f}")
            for name, e in summary["models"].items() for b, v in e["benchmarks"].items()]
    head = ("model", "family", "accuracy", "benchmark", "region", "raw", "ceiling", "normalized", "chosen_site",
            "relative_depth")
    with open(out / "table.csv", "w", newline="") as f:
        csv.writer(f).writerows([head, *rows])
    names = [b.name for b in benches]
    lines = ["# Accuracy and brain scores per model", "", "Each cell: held-out raw score / ceiling-normalized "
             "(— without a ceiling) / chosen site.", "", "| model | family | accuracy | " + " | ".join(names) + " |",
             "|" + "---|" * (3 + len(names))]
    cell = lambda v: (f"{v['raw']:.3f} / " + (f"{v['normalized']:.3f}" if np.isfinite(v["normalized"]) else "—")
                      + f" / {v['chosen_site']}") if v else ""
    lines += [f"| {name} | {e['family']} | {e['accuracy']:.3f} | " + " | ".join(cell(e["benchmarks"].get(b)) for b in
              names) + " |" for name, e in summary["models"].items()]
    (out / "table.md").write_text("\n".join(lines) + "\n")


def analyse(summary: dict, seed: int, n_boot: int) -> tuple[dict, dict]:
    """Correlations of accuracy with the V4 score, the IT score and every benchmark's raw score, over all models
    and over the trained ones ("... (trained)"; without the untrained controls); the paired depth comparison."""
    es = list(summary["models"].values())
    acc, trained = np.array([e["accuracy"] for e in es]), np.array([e["family"] != "zoo, untrained" for e in es])
    key, corr = jax.random.fold_in(jax.random.PRNGKey(seed), 2014), {}
    groups = {"V4": ("V4",), "IT": IT_REGIONS}
    values = {g: np.array([region_value(e, r, "raw") for e in es]) for g, r in groups.items()}
    values |= {b: np.array([e["benchmarks"].get(b, {}).get("raw", np.nan) for e in es])
               for b in sorted({b for e in es for b in e["benchmarks"]})}
    for i, (g, y) in enumerate((g + tag, np.where(pick, y, np.nan)) for g, y in values.items()
                               for tag, pick in (("", True), (" (trained)", trained))):
        ok = np.isfinite(y)
        corr[g] = ({m: bootstrap_correlation(acc[ok], y[ok], jax.random.fold_in(key, i), n_boot=n_boot, method=m)
                    for m in ("pearson", "spearman")} if ok.sum() >= 3 else {})
    d = {g: np.array([region_value(e, r, "relative_depth") for e in es]) for g, r in groups.items()}
    ok = np.isfinite(d["V4"]) & np.isfinite(d["IT"])
    paired = paired_depth(d["V4"][ok], d["IT"][ok], jax.random.fold_in(key, 999), n_boot=n_boot) if ok.any() else {}
    paired["per_model"] = {n: {"V4": d["V4"][i], "IT": d["IT"][i]} for i, n in enumerate(summary["models"]) if ok[i]}
    return corr, paired


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/performance_vs_brain")
    p.add_argument("--quick", action="store_true", help="3 small models, 2,000 training images for 3 epochs, 500 "
                   "test images, Cichy IT and the first 160 images of one V4 session, 20 bootstrap samples")
    p.add_argument("--only", nargs="+", default=None, help="model names to run (default all)")
    p.add_argument("--seed", type=int, default=0, help="scoring seed (splits, bootstraps; default 0)")
    p.add_argument("--benchmarks", nargs="+", default=None, help="registered benchmarks (default: every one whose "
                   "data are present)")
    for flag, what in (("--epochs", "training epochs (default 10; 3 with --quick)"), ("--n-train", "training images "
                       "(default 50,000; 2,000 with --quick)"), ("--n-test", "test images (default 10,000; 500 with "
                       "--quick)"), ("--n-boot", "bootstrap samples (default 200; 20 with --quick)")):
        p.add_argument(flag, type=int, default=None, help=what)
    args = p.parse_args(argv)
    q, out = args.quick, Path(args.out)
    args.n_boot = args.n_boot or (20 if q else 200)
    (out / "models").mkdir(parents=True, exist_ok=True)
    everything = roster(q)
    if args.only and (unknown := sorted(set(args.only) - set(everything))):
        raise SystemExit(f"--only: unknown models {unknown}; available: {', '.join(everything)}")
    chosen = {k: v for k, v in everything.items() if not args.only or k in args.only}
    benches = chosen_benchmarks(q, args.benchmarks)
    train, test = cifar10("train"), cifar10("test")
    rng = np.random.default_rng(0)                                    # the subsets of four_elements.py
    n_train = args.n_train or (2000 if q else len(train.y))
    train = train.subset(np.sort(rng.choice(len(train.y), n_train, replace=False)))
    test = test.subset(np.sort(rng.choice(len(test.y), args.n_test or (500 if q else len(test.y)), replace=False)))
    cfg = TrainConfig(epochs=args.epochs or (3 if q else 10), batch_size=128, lr=2e-3, optimizer="adam",
                      weight_decay=5e-4, augment="flip_crop")
    four = fe.variants(q)
    config = {"n_train": n_train, "n_test": len(test.y), "train": asdict(cfg),
              "widths": list(four["ConvNet (feed-forward)"][1].widths), "steps": four["BLT (recurrent)"][1].steps}
    summary: dict = {"config": {**config, "seed": args.seed, "n_boot": args.n_boot,
                                "benchmarks": [b.name for b in benches]}, "models": {}}
    t0 = time.time()
    for k, (name, (family, source)) in enumerate(everything.items()):
        path = out / "models" / f"{_slug(name)}.json"
        stored = json.loads(path.read_text()) if path.exists() else None
        fp = model_fingerprint(origin_print(source, config), benches, args.seed, args.n_boot, len(test.y))
        if stored and stored.get("fingerprint") == fp:
            print(f"{name}: results kept from {path} (fingerprint {fp})", flush=True)
            summary["models"][name] = stored
            continue
        if stored:                          # refused, named; recomputed when chosen, otherwise left out
            print(f"{name}: {path} refused — made with another recipe or benchmarks ({stored.get('fingerprint')} "
                  f"!= {fp}); " + ("recomputing" if name in chosen else "left out"), flush=True)
        if name not in chosen:
            continue
        t = time.time()
        print(f"[{k + 1}/{len(everything)}] {name} ({family})", flush=True)
        subject, origin = trained_subject(name, source, train, cfg, config, out)
        entry = measure(name, family, subject, origin, benches, test, args, out)
        entry.update(fingerprint=fp, seconds=round(time.time() - t, 1), train_seconds=origin.get("train_seconds", 0))
        path.write_text(json.dumps(entry, indent=1, default=float))
        summary["models"][name] = entry
        print(f"{name}: accuracy {entry['accuracy']:.3f}, V4 {region_value(entry, ('V4',), 'raw'):.3f}, IT "
              f"{region_value(entry, IT_REGIONS, 'raw'):.3f} ({entry['seconds']:.0f} s; {time.time() - t0:.0f} s "
              "so far)", flush=True)
    summary["models"] = {n: summary["models"][n] for n in everything if n in summary["models"]}
    corr, paired = analyse(summary, args.seed, 2000)
    summary.update(correlations=corr, depth=paired, seconds=round(time.time() - t0, 1))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    write_tables(summary, benches, out)
    models = [(n, e["family"]) for n, e in summary["models"].items()]
    acc = np.array([e["accuracy"] for e in summary["models"].values()])
    col = lambda regions: np.array([region_value(e, regions, "raw") for e in summary["models"].values()])
    panels = {"V4 (Cowley et al. 2023 encoding)": (col(("V4",)), "V4 score (median held-out Pearson r over "
                                                   "neurons)", corr.get("V4", {})),
              "IT (RSA with human IT and Cichy IT)": (col(IT_REGIONS), "IT score (Kendall τ-a)", corr.get("IT", {}))}
    accuracy_figure(models, acc, panels).savefig(out / "performance_vs_brain.png")
    for g, c in ((g, corr.get(g, {})) for g in ("V4", "IT")):
        if c:
            print(f"accuracy vs {g}: Pearson r {c['pearson']['r']:.3f} [{c['pearson']['lo']:.3f}, "
                  f"{c['pearson']['hi']:.3f}], Spearman {c['spearman']['r']:.3f} (n = {c['pearson']['n']})")
    if paired.get("n"):
        pm = [(n, summary["models"][n]["family"]) for n in paired["per_model"]]
        dv4, dit = (np.array([paired["per_model"][n][g] for n, _ in pm]) for g in ("V4", "IT"))
        depth_figure(pm, dv4, dit, paired).savefig(out / "performance_vs_brain_depth.png")
        print(f"chosen-site depth IT − V4: {paired['mean_difference']:+.3f} [{paired['lo']:+.3f}, "
              f"{paired['hi']:+.3f}], Wilcoxon p {paired['wilcoxon_p']:.3g}")
    plt.close("all")
    print(f"wrote {out / 'summary.json'} ({summary['seconds']:.0f} s)", flush=True)
    return summary


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
