"""Demo sections on what is probed: the models and their sites, first-layer filters, activation statistics."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import electrode as el
from ..report import figures as figs
from ._core import UNTRAINED, Context, num


def models_section(ctx: Context):
    s = ctx.section("Models and their sites", "What is probed, and where can we record from it?",
                    "Each site is a named stage whose output is the post-nonlinearity activation; these names are "
                    "what record, edit and sweep take.")
    rows, acc = [], {}
    for name, sub in ctx.subjects.items():
        a = sub.meta.get("test_accuracy")
        if a is not None:
            acc[name] = float(a)
        rows.append((name, sub.architecture, ", ".join(f"{k} {v}" for k, v in sub.sites.items()),
                     f"{a:.4f} ({sub.meta.get('test_set', '')})" if a is not None else "untrained"))
    s.tables.append(("Bundled models", ("model", "class", "sites (unit shape)", "test accuracy"), rows))
    names = list(ctx.subjects)
    ctx.put("models", "test_accuracy", xr.DataArray([acc.get(n, np.nan) for n in names], dims="model",
                                                    coords={"model": names}), file="models")
    ctx.put("models", "n_sites", xr.DataArray([len(ctx.subjects[n].sites) for n in names], dims="model",
                                              coords={"model": names}), file="models")
    n_sites = [len(sub.sites) for sub in ctx.subjects.values()]
    best = max(acc, key=lambda n: acc[n]) if acc else None
    worst = min(acc, key=lambda n: acc[n]) if acc else None
    untrained = [n for n in names if n.endswith(UNTRAINED)]
    n_trained = len(names) - len([n for n in names if n.endswith(UNTRAINED)])
    s.takeaway = (f"{n_trained} model{'s' if n_trained != 1 else ''} with {min(n_sites)}–{max(n_sites)} sites each"
                  + (f"; held-out accuracy from {acc[worst]:.3f} ({worst}) to {acc[best]:.3f} ({best})"
                     if acc else "") + (f", plus {len(untrained)} untrained control{'s' if len(untrained) > 1 else ''} "
                                        f"({', '.join(untrained)})" if untrained else "") + ".")


def _neighbour_correlation(kernel) -> np.ndarray:
    """Per filter: correlation between horizontally and vertically adjacent weights (over input channels) — near 0
    for independent random weights, high for smooth filters (edges, blobs)."""
    k = np.asarray(kernel, float)
    out = []
    for i in range(k.shape[-1]):
        f = k[..., i]
        a = np.concatenate([f[:, :-1].ravel(), f[:-1, :].ravel()])
        b = np.concatenate([f[:, 1:].ravel(), f[1:, :].ravel()])
        out.append(np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else np.nan)
    return np.asarray(out)


def filters_section(ctx: Context):
    s = ctx.section("First-layer filters", "Do trained first-layer filters look like edge and colour detectors, "
                    "and random ones like noise?",
                    "Convolution kernels of the first site, each scaled to its own range. Smoothness is measured "
                    "as the correlation between adjacent weights of a filter (0 for independent random weights).")
    smooth = {}
    for name, sub in ctx.subjects.items():
        first = next(iter(sub.sites))
        if "conv" not in sub.params.get(first, {}):
            continue
        kernel = np.asarray(sub.params[first]["conv"]["kernel"])
        r = _neighbour_correlation(kernel)
        smooth[name] = float(np.nanmean(r))
        ctx.report.figure(s, figs.filters(kernel, f"{name}: {first} ({kernel.shape[-1]} filters)"),
                          f"filters_{name}", f"{name} {first} kernels {tuple(kernel.shape)}; mean adjacent-weight "
                          f"correlation {num(smooth[name])}")
        ctx.put(name, "first_filter_neighbour_correlation", xr.DataArray(r, dims="first_filter",
                                                                         attrs={"site": first}))
    trained = {k: v for k, v in smooth.items() if not k.endswith(UNTRAINED)}
    control = {k: v for k, v in smooth.items() if k.endswith(UNTRAINED)}
    if not smooth:
        s.takeaway = "No model with a convolutional first site was given: 0 filters shown."
        return
    text = "Adjacent weights of first-layer filters correlate with mean r " + ", ".join(
        f"{num(v)} ({k})" for k, v in {**trained, **control}.items())
    if trained and control:
        lo, hi = min(trained.values()), max(control.values())
        text += (f"; every trained model's filters are smoother than the untrained control's (r ≥ {num(lo)} vs "
                 f"≤ {num(hi)}; 0 for independent weights)" if lo > hi else
                 f"; not every trained model's filters are smoother than the control's ({num(lo)} vs {num(hi)})")
    s.takeaway = text + "."


def statistics_section(ctx: Context):
    s = ctx.section("Activation statistics per site", "How active is each site on gratings and photos, and how "
                    "many units never respond?", "Every site recorded on gratings and scikit-image photos. "
                    "'Silent units' never respond (> 0) to any of these stimuli.")
    worst: tuple[str | None, str | None, float] = (None, None, -1.0)
    for name, sub in ctx.subjects.items():
        st = ctx.stimuli(sub)
        x = np.concatenate([st["gratings"], st["photos"]])
        _, rec = el.record(ctx.compute_subject(name), x)
        stats = {}
        for site, act in rec.items():
            a = np.asarray(act).reshape(len(x), -1, act.shape[-1])
            active = a > 0
            stats[site] = {"mean": float(a.mean()), "active": float(active.mean()),
                           "silent_units": float((~active.any(axis=(0, 1))).mean())}
            if site != list(rec)[-1] and stats[site]["silent_units"] > worst[2]:
                worst = (name, site, stats[site]["silent_units"])
        ctx.report.figure(s, figs.site_statistics(stats, f"{name} ({len(x)} stimuli)"), f"stats_{name}")
        coords = {"site": list(stats)}
        for key in ("mean", "active", "silent_units"):
            ctx.put(name, f"site_{key}", xr.DataArray([stats[k][key] for k in stats], dims="site", coords=coords))
    s.takeaway = (f"The most silent hidden site is {worst[0]} {worst[1]}: {100 * worst[2]:.0f}% of its units never "
                  f"respond to the {len(x)} gratings and photos." if worst[0] else "No hidden site was recorded.")
