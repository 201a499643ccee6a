"""Which model site predicts macaque V4 best? Site-by-site encoding models on Cowley et al.'s V4 array data.

    INSILICO_DATA=/path/to/data python experiments/v4_encoding.py --out results/v4 [--quick]

Session 210325 (640 natural images, 50 V4 neurons, 6–10 repeats per image): every site of the bundled CIFAR models
(trained and untrained) is recorded on the images (112 px → 32 px), reduced to its top 500 principal components
when wider, and mapped to the neurons by ridge regression (α per neuron by 5-fold cross-validation inside the
training set) on 10 random 90/10 splits of the images. Score: per-neuron Pearson r on held-out images, median
over neurons; ceiling: split-half reliability of each neuron's mean response (Spearman–Brown corrected, 100
random splits of the repeats); normalized = median r / √(median ceiling) (a perfect model of the mean response
scores 1; Brain-Score divides by the ceiling itself). The other three sessions (no raw repeats, so no ceiling) are
scored raw. --quick: session 210325 only, trained cifar_convnet, 3 splits.
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
from insilico.analysis import encoding as enc  # noqa: E402
from insilico.data import cowley2023, cowley2023_images  # noqa: E402
from insilico.probes import brain  # noqa: E402
from insilico.report import Report, style  # noqa: E402

style.use()

MODELS = ("cifar_convnet", "cifar_resnet")
SESSIONS = ("210325", "190923", "201025", "210225")


def images(session, size: int):
    from skimage.transform import resize

    x = cowley2023_images(session)
    return np.stack([resize(im, (size, size), anti_aliasing=True) for im in x]).astype(np.float32)


def _session_index(session: str) -> int:
    """A fixed index per session, so that a session's random splits do not depend on which others are run."""
    return SESSIONS.index(session) if session in SESSIONS else int(session)


def profile_figure(results: dict, title: str):
    """Median held-out r of each site (x, by name) per model; bars: 2.5–97.5% of the per-split medians; untrained
    controls dashed; legend beside the data."""
    n_sites = max(ds.sizes["site"] for ds in results.values())
    fig, ax = plt.subplots(figsize=(0.45 * n_sites + 4.5, 3.6), layout="constrained")
    for k, (name, ds) in enumerate(results.items()):
        y = ds.raw.values[:, 0]
        dist = ds.distribution.values[:, 0]
        lo, hi = np.nanpercentile(dist, 2.5, axis=1), np.nanpercentile(dist, 97.5, axis=1)
        x = np.arange(len(y))
        # the point is the median over neurons of the split-averaged r; the bar spans the per-split medians
        ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], marker="o", ms=4, capsize=2,
                    label=name, color=f"C{k}", ls="--" if name.endswith("_untrained") else "-")
        ax.set_xticks(x, list(ds.site.values), rotation=45, ha="right")
    ax.set_xlabel("model site (input → output)")
    ax.set_ylabel("median held-out r\n(over neurons)")
    ax.set_title(title)
    style.legend_outside(ax, title="model")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/v4")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n-images", type=int, default=None, help="use only the first N images of each session")
    p.add_argument("--sessions", nargs="+", default=None, help=f"sessions (default all: {', '.join(SESSIONS)})")
    p.add_argument("--splits", type=int, default=None, help="train/test splits (default 10, 3 with --quick)")
    args = p.parse_args(argv)
    q = args.quick
    out = Path(args.out)
    report = Report("Encoding macaque V4 (Cowley et al. 2023) from model sites", out)
    names = ["cifar_convnet"] if q else [m + s for m in MODELS for s in ("", "_untrained")]
    sessions = args.sessions or (SESSIONS[:1] if q else SESSIONS)
    n_splits = args.splits or (3 if q else 10)
    key = jax.random.PRNGKey(0)
    summary = {"n_splits": n_splits, "sessions": {}}
    t0 = time.time()
    for session in sessions:
        keep = slice(None, args.n_images)
        resp = cowley2023(session).isel(presentation=keep)
        x = images(session, 32)[keep]
        ceiling = None
        if session == "210325":
            raw = cowley2023(session, raw=True).isel(presentation=keep)
            ceiling = enc.split_half_reliability(raw.values, n_splits=100, key=jax.random.fold_in(key, 99))
        results, sess = {}, {"n_images": int(resp.sizes["presentation"]), "n_neurons": int(resp.sizes["neuroid"]),
                             "models": {}}
        if ceiling is not None:
            sess["ceiling_median"] = float(np.nanmedian(ceiling))
        for k, name in enumerate(names):
            sub = zoo.load(name)
            ds = brain.encoding_by_site(sub, x, {"V4": resp.values}, n_splits=n_splits, max_units=500,
                                        ceilings=None if ceiling is None else {"V4": ceiling},
                                        key=jax.random.fold_in(key, 10 * _session_index(session) + k))
            results[name] = ds
            raw_r = ds.raw.values[:, 0]
            best = int(np.nanargmax(raw_r))
            sess["models"][name] = {"sites": list(ds.site.values), "raw": raw_r.tolist(),
                                    "normalized": ds.normalized.values[:, 0].tolist(),
                                    "best_site": str(ds.site.values[best]), "best_raw": float(raw_r[best])}
            print(f"session {session}, {name}: best {ds.site.values[best]} r = {raw_r[best]:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
        summary["sessions"][session] = sess
        text = (f"{sess['n_images']} images × {sess['n_neurons']} neurons; ridge, {n_splits} random 90/10 splits; "
                "bars: 2.5–97.5 percentiles of the median r over splits.")
        if ceiling is not None:
            text += f" Split-half ceiling (median over neurons): {sess['ceiling_median']:.3f}."
        sec = report.section(f"Session {session}", text)
        report.figure(sec, profile_figure(results, f"V4 session {session}: held-out predictivity per site"),
                      f"profile_{session}")
        sec.tables.append(("Best site per model", ("model", "best site", "median r", "normalized"),
                           [(n, m["best_site"], m["best_raw"],
                             m["normalized"][m["sites"].index(m["best_site"])]) for n, m in sess["models"].items()]))
    summary["seconds"] = time.time() - t0
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = ["# V4 encoding (Cowley et al. 2023)", ""]
    for session, sess in summary["sessions"].items():
        lines += [f"## Session {session} ({sess['n_images']} images, {sess['n_neurons']} neurons"
                  + (f", ceiling {sess['ceiling_median']:.3f})" if "ceiling_median" in sess else ")"), "",
                  "| model | best site | median r | normalized |", "|---|---|---|---|"]
        for n, m in sess["models"].items():
            norm = m["normalized"][m["sites"].index(m["best_site"])]
            lines.append(f"| {n} | {m['best_site']} | {m['best_raw']:.3f} | {norm:.3f} |")
        lines.append("")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
