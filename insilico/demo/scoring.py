"""Demo section scoring the bundled models on the registered brain benchmarks (only with INSILICO_DATA)."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..report.html import MISSING
from ._core import UNTRAINED, Context, num

# the benchmarks the demo runs: every 92-image RSA benchmark, one V4 session and the tuning shapes (a few seconds
# each on a CIFAR model); `insilico score MODEL` runs all of them
DEMO_BENCHMARKS = ("kriegeskorte2008-human-it", "kriegeskorte2008-monkey-it", "cichy2014-evc", "cichy2014-it",
                   "mur2013-judgements", "cowley2023-v4-210325", "goris2015-v1v2-sf")
QUICK_BENCHMARKS = ("kriegeskorte2008-human-it", "cichy2014-evc", "cichy2014-it", "goris2015-v1v2-sf")


def scoring_section(ctx: Context):
    """Registered benchmarks on the bundled models: the site chosen on one half, scored on the other."""
    from .. import scores

    question = ("Which site of each model stands for each brain area when the site is chosen on one half of the "
                "data and scored on the other, and how close does it come to the noise ceiling?")
    names = QUICK_BENCHMARKS if ctx.quick else DEMO_BENCHMARKS
    missing = {b: why for b in names if (why := scores.missing_data(scores.get(b)))}
    if missing:
        s = ctx.section("Scoring against brain benchmarks", question,
                        f"Skipped: the data of {len(missing)} of {len(names)} benchmarks are not available (the "
                        f"first: {next(iter(missing.values()))}). Set INSILICO_DATA to the data directory.")
        s.takeaway = ("Skipped: the benchmarks' data were not found under INSILICO_DATA; with them, each model is "
                      "scored on held-out halves of human and monkey IT, EVC, V4 and V1/V2 data.")
        ctx.put("scores", "n_benchmarks", xr.DataArray(0, attrs={"skipped": "; ".join(missing.values())}),
                file="scores")
        return
    models = {k: v for k, v in ctx.subjects.items() if not k.endswith(UNTRAINED) or not ctx.quick}
    if ctx.quick:
        models = dict(list(models.items())[:1])
    if not models:
        s = ctx.section("Scoring against brain benchmarks", question, "The quick form scores the first trained model "
                        "given; only untrained controls were given.")
        s.takeaway = "No trained model was given: 0 models scored."
        ctx.put("scores", "n_benchmarks", xr.DataArray(0, attrs={"skipped": "no trained model"}), file="scores")
        return
    n_boot = 20 if ctx.quick else 100
    s = ctx.section("Scoring against brain benchmarks", question,
                    f"{len(names)} of the {len(scores.available())} registered benchmarks (`insilico score --list`) "
                    f"on {', '.join(models)}: for each, the model's site is chosen on half of the stimuli (RSA, "
                    "stratified by category) or of the neurons (encoding, tuning) and scored on the other half, "
                    f"with {n_boot} bootstrap samples for 95% intervals and the benchmark's own noise ceiling. "
                    "Stimuli are resized to the model's input by antialiased bilinear interpolation (and averaged "
                    "to one channel for a grayscale model). Every site streams through compiled reductions; "
                    "nothing but the RDMs and ridge moments is kept. `insilico score MODEL` runs all of them and "
                    "writes a scorecard.")
    cards, rows = {}, []
    for name, sub in models.items():
        out = ctx.report.out / f"scores_{name}"
        results, skipped, identity = scores.score_model(ctx.compute_subject(name), names, out, n_boot=n_boot,
                                                        source=f"zoo {name}", log=lambda m: None)
        identity = {**identity, "model": name}        # a control computed on its trained twin's static part
        card = scores.combine(results, identity, seed=0, resize="antialiased-bilinear",
                              task=(float("nan"), "not measured in the demo"), skipped=skipped,
                              sites=list(sub.sites))
        html, _ = scores.write_scorecard(card, out)
        s.link("data", f"scorecard of {name}", f"{out.name}/{html.name}")
        cards[name] = card
        site_index = [str(x) for x in card.site.values]
        for b in card.benchmark.values:
            c = card.sel(benchmark=b)
            i = site_index.index(str(c.chosen_site.values))
            lo, hi = float(c.heldout_ci_low[i]), float(c.heldout_ci_high[i])
            rows.append((name, str(b), str(c.region.values), str(c.chosen_site.values), float(c.raw_score),
                         f"{lo:.3f}–{hi:.3f}" if np.isfinite(lo + hi) else MISSING, float(c.normalized)))
        ctx.put(name, "benchmark_heldout_score", xr.DataArray(
            card.raw_score.values, dims="benchmark", coords={"benchmark": card.benchmark.values},
            attrs={"chosen_sites": ", ".join(map(str, card.chosen_site.values)), "n_boot": n_boot}))
        ctx.put(name, "benchmark_normalized_score", xr.DataArray(
            card.normalized.values, dims="benchmark", coords={"benchmark": card.benchmark.values}))
    ctx.report.figure(s, scores.compare_models(cards), "scores_by_model",
                      "Each model's chosen site per benchmark, scored on the held-out half, with 95% intervals "
                      "and the ceiling.")
    first = next(iter(cards))
    ctx.report.figure(s, scores.heatmap(cards[first]), f"scores_sites_{first}",
                      f"{first}: every site's held-out score on every benchmark; the chosen site framed.")
    s.tables.append((f"Per model and benchmark: the site chosen on the selection half and its held-out score "
                     f"(Kendall τ-a for RSA, median r for encoding, 1 − mean KS distance for tuning shapes); "
                     f"normalized = the score over its ceiling (RSA: the noise ceiling's lower bound; encoding: "
                     f"√ of the median reliability, the ceiling of a correlation); {MISSING}: no ceiling",
                     ("model", "benchmark", "area", "chosen site", "held-out", "95% interval", "normalized"), rows))
    s.takeaway = _takeaway(cards)


def _takeaway(cards: dict) -> str:
    """Where each trained model's IT, EVC and V4 sites sit, and the best normalized score."""
    parts = []
    for name, card in cards.items():
        if name.endswith(UNTRAINED):
            continue
        chosen = {str(b): str(card.sel(benchmark=b).chosen_site.values) for b in card.benchmark.values}
        picks = [f"{area} {chosen[b]}" for area, b in (("IT", "cichy2014-it"), ("EVC", "cichy2014-evc"),
                                                       ("V4", "cowley2023-v4-210325")) if b in chosen]
        parts.append(f"{name}: {', '.join(picks)}")
    norm = [(float(c.sel(benchmark=b).normalized), n, str(b)) for n, c in cards.items() for b in c.benchmark.values
            if np.isfinite(float(c.sel(benchmark=b).normalized))]
    best = max(norm) if norm else None
    return (("Sites chosen on the selection half — " + "; ".join(parts) if parts else
             f"Only untrained controls were scored ({', '.join(cards)})") +
            (f". The highest score relative to its ceiling is {best[1]} on {best[2]}, {num(best[0], '.2f')} of "
             "the ceiling" if best else "") + ".")
