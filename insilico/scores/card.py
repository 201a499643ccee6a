"""The scorecard of a model: every number in one NetCDF file (``scores.nc``) and one HTML page
(``scorecard.html``) — the chosen site and its held-out score per benchmark with its ceiling and interval, the
whole site x benchmark table, and the layer -> area heatmap."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from .stimuli import CHANNELS_RULE, RESIZE_METHODS

__all__ = ["combine", "compare_models", "heatmap", "write_scorecard"]

_PER_SITE = ("selection_score", "heldout_score", "heldout_ci_low", "heldout_ci_high", "full_score", "full_ci_low",
             "full_ci_high")
_PER_BENCH = ("raw_score", "selection_score", "ceiling", "ceiling_lower", "ceiling_upper", "normalized")
_TEXT = ("chosen_site", "region", "metric", "kind", "benchmark_version", "normalization", "ceiling_method",
         "selection_rule", "stimuli", "citation")


def combine(results: dict, identity: dict, *, seed: int, resize: str, task: tuple[float, str],
            skipped: dict, sites) -> xr.Dataset:
    """One Dataset of all numbers: (benchmark, site) tables, per-benchmark results and the chosen site's
    bootstrap samples (benchmark, sample; NaN-padded), the model's identity and benchmark versions in attrs."""
    names = list(results)
    sites = list(sites)
    n_samples = max([results[b].sizes.get("sample", 0) for b in names] + [0])
    data: dict = {}
    for v in _PER_SITE:
        table = np.full((len(names), len(sites)), np.nan)
        for i, b in enumerate(names):
            ds = results[b]
            for s, val in zip(ds.site.values, ds[v].values):
                table[i, sites.index(str(s))] = val
        data[v] = (("benchmark", "site"), table)
    for v in _PER_BENCH:
        key = "chosen_" + v if v == "selection_score" else v
        data[key] = ("benchmark", np.array([float(results[b].attrs[v]) for b in names]))
    for v in _TEXT:
        data[v] = ("benchmark", np.array([str(results[b].attrs.get(v, "")) for b in names], dtype=object))
    if n_samples:                            # NaN-padded: a stored benchmark may have other sample counts
        samples = np.full((len(names), n_samples), np.nan)
        for i, b in enumerate(names):
            if "samples" in results[b]:
                s = results[b].samples.values
                samples[i, :len(s)] = s
        data["samples"] = (("benchmark", "sample"), samples)
    attrs = {**{k: (str(v) if not isinstance(v, (int, float)) else v) for k, v in identity.items()},
             "seed": int(seed), "resize": resize, "resize_method": RESIZE_METHODS[resize],
             "channels_rule": CHANNELS_RULE,
             "benchmark_versions": ", ".join(f"{b}={results[b].attrs['benchmark_version']}" for b in names),
             "task_accuracy": float(task[0]), "task_note": task[1],
             "skipped": "; ".join(f"{k}: {v}" for k, v in skipped.items())}
    coords = {"benchmark": names, "site": sites, **({"sample": np.arange(n_samples)} if n_samples else {})}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def heatmap(card: xr.Dataset):
    """Sites (rows, input -> output) x benchmarks (columns, labelled with their area): each cell the site's
    held-out score, coloured relative to the column's range (metrics differ between columns), the chosen site
    framed."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..report import style

    style.use()
    v = card.heldout_score.values.T                                  # (site, benchmark)
    lo, hi = np.nanmin(np.where(np.isfinite(v), v, np.inf), 0), np.nanmax(np.where(np.isfinite(v), v, -np.inf), 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(np.isfinite(v), np.where(hi > lo, (v - lo) / (hi - lo), 1.0), np.nan)
    n_sites, n_bench = v.shape
    fig, ax = plt.subplots(figsize=(2.6 + 1.25 * n_bench, 1.8 + 0.42 * n_sites), layout="constrained")
    im = ax.imshow(np.ma.masked_invalid(rel), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    sites = [str(s) for s in card.site.values]
    for (i, j), val in np.ndenumerate(v):
        text = "—" if not np.isfinite(val) else f"{val:.2f}"
        bright = np.isfinite(rel[i, j]) and rel[i, j] > 0.6
        colour = "0.4" if not np.isfinite(val) else "black" if bright else "white"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    for j, chosen in enumerate(card.chosen_site.values):
        if str(chosen) in sites:
            ax.add_patch(Rectangle((j - 0.5, sites.index(str(chosen)) - 0.5), 1, 1, fill=False, lw=2, ec="#D55E00"))
    ax.set_xticks(range(n_bench), [f"{b}\n({r})" for b, r in zip(card.benchmark.values, card.region.values)],
                  rotation=35, ha="left", fontsize=8)
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    ax.set_yticks(range(n_sites), sites)
    ax.set_xlabel("benchmark (area)")
    ax.set_ylabel("model site (input → output)")
    fig.colorbar(im, ax=ax, shrink=0.85, label="held-out score relative to the\nbenchmark's sites (0 worst, 1 best)")
    fig.suptitle(f"{card.attrs.get('model', 'model')}: which site matches which area")
    style.caption(fig, "Numbers: each site's score on the held-out half (stimuli for RSA, neurons for encoding and "
                  "tuning); colours rescaled per column because the metrics differ. Framed: the site chosen on the "
                  "selection half. —: no value (a site without a result, or a site the metric does not use).")
    return fig


def compare_models(cards: dict):
    """Several models' scorecards side by side: per benchmark (x, labelled with its area), one bar per model — the
    held-out score of the site that model chose, with its 95% bootstrap interval — and the benchmark's ceiling
    as a black line where it has one: the score at which the normalized score is 1 (an RSA ceiling's lower bound;
    for encoding the square root of the neurons' median reliability)."""
    import matplotlib.pyplot as plt

    from ..report import style

    style.use()
    if not isinstance(cards, dict) or not cards:
        raise ValueError(f"cards must be a non-empty dict of model name -> scorecard Dataset; got {cards!r}")
    for name, card in cards.items():
        if not isinstance(card, xr.Dataset) or not {"raw_score", "chosen_site", "heldout_ci_low"} <= set(card):
            raise ValueError(f"cards[{name!r}] must be a scorecard Dataset (scores.combine); got "
                             f"{type(card).__name__}")
    names = list(cards)
    benches = list(dict.fromkeys(str(b) for c in cards.values() for b in c.benchmark.values))
    fig, ax = plt.subplots(figsize=(2.0 + 1.1 * len(benches), 4.2), layout="constrained")
    width = 0.8 / len(names)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    regions: dict[str, str] = {}
    for m, name in enumerate(names):
        card = cards[name]
        sites = [str(s) for s in card.site.values]
        label: str | None = name                      # on this model's first bar
        for j, b in enumerate(benches):
            if b not in card.benchmark.values:
                continue
            c = card.sel(benchmark=b)
            regions[b] = str(c.region.values)
            i = sites.index(str(c.chosen_site.values))
            y, lo, hi = float(c.raw_score), float(c.heldout_ci_low[i]), float(c.heldout_ci_high[i])
            x = j - 0.4 + width * (m + 0.5)
            # a bootstrap interval need not contain the held-out score (a tuning-shape score often sits above
            # its resamples): the bar reaches the interval's ends, never below zero length
            err = [[max(y - lo, 0.0)], [max(hi - y, 0.0)]] if np.isfinite(lo) and np.isfinite(hi) else None
            ax.bar(x, y, width * 0.92, color=colours[m % len(colours)], label=label, yerr=err, capsize=2,
                   error_kw={"lw": 0.8})
            label = None
    labelled = False
    for j, b in enumerate(benches):                  # the score at which the normalized score is 1
        c = next(card for card in cards.values() if b in card.benchmark.values).sel(benchmark=b)
        raw, norm = float(c.raw_score), float(c.normalized)
        if np.isfinite(norm) and norm != 0 and raw != 0:
            ax.hlines(raw / norm, j - 0.45, j + 0.45, colors="black", lw=1.5,
                      label="_nolegend_" if labelled else "ceiling (normalized score 1)")
            labelled = True
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(range(len(benches)), [f"{b}\n({regions.get(b, '')})" for b in benches], rotation=30, ha="right",
                  fontsize=8)
    ax.set_ylabel("held-out score of the chosen site")
    ax.set_title("Each model's best site per benchmark, scored on the held-out half")
    style.legend_outside(ax, title="model")
    style.caption(fig, "Scores by metric: RSA benchmarks the benchmark's comparator (Kendall τ-a for the bundled "
                  "ones) between the site's RDM and the subjects' RDMs on the held-out images; encoding benchmarks "
                  "the median over held-out neurons of the cross-validated ridge r; tuning-shape benchmarks 1 − the "
                  "mean Kolmogorov–Smirnov distance of tuning-property distributions. Error bars: 95% bootstrap "
                  "intervals; black lines: the noise ceiling (where the normalized score is 1) on the held-out half "
                  "of the first model listed, where the data have repeats or several subjects (models scored with "
                  "other seeds have other halves).")
    return fig


def _ci(lo, hi) -> str:
    return f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else "—"


def write_scorecard(card: xr.Dataset, out) -> tuple[Path, Path]:
    """``out/scores.nc`` (NetCDF3 through SciPy) and ``out/scorecard.html`` with the heatmap beside it."""
    from ..report import Report
    from ..report.html import fmt

    out = Path(out)
    nc = out / "scores.nc"
    card.to_netcdf(nc, engine="scipy")
    a = card.attrs
    report = Report(f"Scorecard: {a.get('model', 'model')}", out)
    report.summary = (f"Model {a.get('model')} ({a.get('architecture')}, from {a.get('source')}; weights sha256 "
                      f"{str(a.get('weights_sha256'))[:16]}…), input {a.get('input_shape')}; seed {a['seed']}. "
                      f"Stimuli resized by {a['resize']}: {a['resize_method']}. {a['channels_rule'][0].upper()}"
                      f"{a['channels_rule'][1:]}."
                      f"\n\nEach benchmark chooses the model's site on one half (of the stimuli for RSA, stratified "
                      "by category; of the neurons or cells otherwise) and reports that site's score on the other "
                      "half. Task: " + (f"{a['task_accuracy']:.4f} ({a['task_note']})"
                                        if np.isfinite(a["task_accuracy"]) else a["task_note"]) + "."
                      + (f"\n\nSkipped: {a['skipped']}" if a.get("skipped") else ""))
    sec = report.section("Scores", question="Which site stands for each area, and how well does it match?")
    rows = []
    for i, b in enumerate(card.benchmark.values):
        c = card.isel(benchmark=i)
        s = [str(x) for x in card.site.values].index(str(c.chosen_site.values))
        rows.append((str(b), str(c.region.values), str(c.metric.values), str(c.chosen_site.values),
                     float(c.chosen_selection_score), float(c.raw_score),
                     _ci(float(c.heldout_ci_low[s]), float(c.heldout_ci_high[s])),
                     float(c.ceiling_lower) if np.isfinite(c.ceiling_lower) else float(c.ceiling),
                     float(c.ceiling_upper), float(c.normalized), str(c.normalization.values)))
    sec.tables.append(("Per benchmark: the site chosen on the selection half, its selection score, its held-out "
                       "score with a 95% bootstrap interval, the ceiling (lower, upper where a range) and the "
                       "normalized score (formula in the last column); — where there is no such number.",
                       ("benchmark", "area", "metric", "chosen site", "selection", "held-out", "95% interval",
                        "ceiling", "ceiling upper", "normalized", "normalization"), rows))
    best = [str(x) for x in card.chosen_site.values]
    sec.takeaway = "; ".join(f"{b}: {s} ({fmt(float(v))})" for b, s, v in
                             zip(card.benchmark.values, best, card.raw_score.values)) + "."
    sec2 = report.section("Site × benchmark", question="How does every site score on every benchmark?")
    report.figure(sec2, heatmap(card), "heatmap", "Layer → area: held-out scores, chosen sites framed.")
    whole = "whole set of stimuli and neurons (not an unbiased score of a chosen site)"
    for label, var, lo, hi in (("held-out half", "heldout_score", "heldout_ci_low", "heldout_ci_high"),
                               (whole, "full_score", "full_ci_low", "full_ci_high")):
        site_rows = [(str(s), *(f"{fmt(float(card[var][j, i]))} {_ci(float(card[lo][j, i]), float(card[hi][j, i]))}"
                                for j in range(card.sizes["benchmark"]))) for i, s in enumerate(card.site.values)]
        sec2.tables.append((f"Score of every site on the {label}, with 95% bootstrap intervals",
                            ("site", *map(str, card.benchmark.values)), site_rows))
    sec3 = report.section("Benchmarks", question="What does each benchmark compare, and how is it bounded?")
    sec3.tables.append(("Definitions", ("benchmark", "version", "stimuli as shown", "ceiling", "site selection",
                                        "citation"),
                        [(str(b), str(card.benchmark_version.values[i]), str(card.stimuli.values[i]),
                          str(card.ceiling_method.values[i]), str(card.selection_rule.values[i]),
                          str(card.citation.values[i])) for i, b in enumerate(card.benchmark.values)]))
    sec3.link("data", "scores.nc", "scores.nc")
    path = report.write()
    html = out / "scorecard.html"
    path.replace(html)
    return html, nc
