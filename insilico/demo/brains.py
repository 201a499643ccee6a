"""Demo section comparing model sites with brains: RSA on the 92 object images (only with INSILICO_DATA)."""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..report.html import MISSING
from ._core import UNTRAINED, Context, key, num


def _interval(low, high) -> str:
    low, high = float(low), float(high)
    return f"{low:.3f}–{high:.3f}" if math.isfinite(low) and math.isfinite(high) else MISSING


def brain_section(ctx: Context):
    """RSA of every site against human/monkey IT and EVC/IT fMRI on the 92 images — only with INSILICO_DATA."""
    from ..data._paths import DataNotFoundError

    question = "Which site of each model looks most like each brain region, relative to the noise ceiling?"
    try:
        from ..data import objects92, objects92_region_rdms

        regions = objects92_region_rdms()
    except (DataNotFoundError, FileNotFoundError, ImportError) as e:
        s = ctx.section("Comparison with brains", question, f"Skipped: the neural data are not available ({e}). "
                        "Set INSILICO_DATA to the data directory to compare every site with human and monkey IT and "
                        "the EVC/IT fMRI of 15 subjects.")
        s.takeaway = ("Skipped: the 92-image brain data were not found under INSILICO_DATA; with them, every site is "
                      "scored against human and monkey IT and the EVC/IT fMRI.")
        ctx.put("brains", "n_regions", xr.DataArray(0, attrs={"skipped": str(e)}), file="brains")
        return
    from ..probes import brain
    from ..report import figures

    method, label = ("corr", "Pearson r") if ctx.quick else ("tau-a", "Kendall τ-a")
    n_boot = 100
    s = ctx.section("Comparison with brains", question, "RSA on the 92 object images (Kriegeskorte et al. 2008; "
                    "Cichy et al. 2014): correlation-distance RDM of every site vs each region's subject RDMs, "
                    f"{label} averaged over subjects, 95% intervals from {n_boot} stimulus bootstraps; noise "
                    "ceilings (lower–upper) under each region's name in the heatmaps and in the table. The models see "
                    "the photos at their own input size (" + ", ".join(
                        f"{n}: {sub.input_spec.shape[0]} px{' grey' if sub.input_spec.shape[2] == 1 else ''}"
                        for n, sub in ctx.subjects.items() if not n.endswith(UNTRAINED)) + ").")
    rows, best = [], []
    for name, sub in ctx.subjects.items():
        if name.endswith(UNTRAINED):
            continue
        h, _, ch = sub.input_spec.shape
        ds = brain.rsa_by_site(sub, objects92(h, channels=ch).x, regions, method=method, n_boot=n_boot,
                               key=key(0))
        ctx.report.figure(s, figures.site_region_heatmap(ds, title=f"{name}: {label} with each region"), f"rsa_{name}")
        for r in regions:
            score = ds.score.sel(region=r).values
            if not np.isfinite(score).any():
                rows.append((name, r, MISSING, float("nan"), MISSING, MISSING))
                continue
            i = int(np.nanargmax(score))
            ceiling = (_interval(ds.ceiling_lower.sel(region=r), ds.ceiling_upper.sel(region=r))
                       if "ceiling_lower" in ds else MISSING)
            rows.append((name, r, str(ds.site.values[i]), float(score[i]),
                         _interval(ds.ci_low.sel(region=r)[i], ds.ci_high.sel(region=r)[i]), ceiling))
            lower = float(ds.ceiling_lower.sel(region=r)) if "ceiling_lower" in ds else float("nan")
            best.append((float(score[i]), name, r, str(ds.site.values[i]), lower))
        ctx.put(name, "rsa_score", xr.DataArray(ds.score.values, dims=("rsa_site", "region"),
                                                coords={"rsa_site": ds.site.values, "region": list(regions)},
                                                attrs={"method": method, "n_boot": n_boot}))
    caption = f"Best site per region ({label})"
    if any(MISSING in map(str, row) for row in rows):
        caption += f"; {MISSING}: no such number (a region with one subject has no noise ceiling; a constant site " \
                   "has no RDM)"
    s.tables.append((caption, ("model", "region", "site", label, "95% interval", "noise ceiling"), rows))
    if best:
        top = max(best)
        ceiled = [b for b in best if math.isfinite(b[4]) and b[4] > 0]
        rel = max(ceiled, key=lambda b: b[0] / b[4]) if ceiled else None
        s.takeaway = (f"The highest score is {top[1]} {top[3]} with {top[2]} ({label} {num(top[0], '.3f')})"
                      + (f"; relative to a noise ceiling, the best is {rel[1]} {rel[3]} with {rel[2]}, at "
                         f"{rel[0] / rel[4]:.0%} of the ceiling's lower bound ({num(rel[0], '.3f')} of "
                         f"{num(rel[4], '.3f')})" if rel else "")
                      + f"; {len(best)} model–region pairs compared.")
    else:
        s.takeaway = "No trained model was given: 0 model–region pairs compared."
