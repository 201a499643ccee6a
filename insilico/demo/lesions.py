"""Demo section on what units are for: single-unit lesion sweeps and cumulative ablation."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..probes.importance import l1_weight_norm, order_by, random_orders
from ..probes.lesion import ablation_curve, single_unit_sweep
from ..report import figures as figs
from ._core import UNTRAINED, Context, conv_sites, key, num


def lesion_section(ctx: Context):
    n_patches = 64 if ctx.quick else 128
    s = ctx.section("Single-unit lesions", "How much does the model's decision depend on any single unit, and do "
                    "the units that matter alone also matter together?",
                    "Each channel of a middle site silenced in turn, all in one compiled call (each channel's "
                    "contribution to the first linear map after the site computed once, only the rest of the network "
                    "run per lesion, where the model allows: the 'computed' column); measured on "
                    f"{n_patches} natural-image patches from scikit-image's photos as agreement of the top-1 class "
                    "with the intact model. Then units removed cumulatively in random orders, by single-unit impact "
                    "and by L1 weight norm.")
    rows, curves, fractions = [], {}, np.linspace(0, 1, 9)
    n_random = 2 if ctx.quick else 4
    for name, sub in ctx.subjects.items():
        csub = ctx.compute_subject(name)
        sites = conv_sites(sub) or list(sub.sites)[:-1]
        site = sites[len(sites) // 2]
        x = ctx.stimuli(sub)["patches"][:n_patches]
        ds = single_unit_sweep(csub, x, site, progress=False)
        ctx.report.figure(s, figs.lesion_sweep(ds, f"{name}: {site}, {ds.sizes['unit']} lesions x {len(x)} images"),
                          f"lesions_{name}")
        worst = int(np.argmin(ds.agreement.values))
        n = sub.sites[site][-1]
        orders = {"random": random_orders(key(0), n_random, n),
                  "single-unit impact": order_by(ds.logit_change.values),
                  "L1 weight norm": order_by(l1_weight_norm(csub, site))}
        curve = ablation_curve(csub, x, site, orders, fractions=fractions, progress=False)
        curves[name] = (site, curve)
        half = int(np.argmin(np.abs(curve.fraction.values - 0.5)))
        rand = [o for o in curve.order.values if str(o).startswith("random")]
        at_half = (float(curve.agreement.sel(order=rand).values[:, half].mean()),
                   float(curve.agreement.sel(order="single-unit impact").values[half]))
        route = ds.attrs["propagation"]
        path = (f"factored at {route.rsplit(' → ', 1)[-1]}" if route.startswith("factored")
                else "whole network per lesion")
        rows.append((name, site, ds.sizes["unit"], float(ds.agreement.mean()), worst, float(ds.agreement.min()),
                     at_half[0], at_half[1], path))
        ctx.put(name, "lesion_agreement", xr.DataArray(ds.agreement.values, dims="lesion_unit",
                                                       attrs={"site": site, "n_images": len(x)}))
        ctx.put(name, "lesion_logit_change", xr.DataArray(ds.logit_change.values, dims="lesion_unit"))
        ctx.put(name, "curve_agreement", xr.DataArray(curve.agreement.values, dims=("order", "fraction"),
                                                      coords={"order": curve.order.values,
                                                              "fraction": curve.fraction.values}))
    s.tables.append(((f"Lesion sweeps on {len(x)} patches (agreement: fraction of images whose top-1 class "
                      "is unchanged)"), ("model", "site", "lesions", "mean agreement", "most important unit",
                                    "its agreement", f"half removed, random (mean of {n_random})",
                                    "half removed, by impact", "computed"), rows))
    ctx.report.figure(s, figs.ablation_curves(curves, "agreement"), "ablation_curves",
                      f"Cumulative ablation of the same sites: units removed in {n_random} random orders (mean), by "
                      "single-unit impact (largest first) and by L1 weight norm (largest first)")
    trained = [r for r in rows if not r[0].endswith(UNTRAINED)]
    controls = [r for r in rows if r[0].endswith(UNTRAINED)] if trained else []
    pool = trained or rows
    big = min(pool, key=lambda r: r[5])
    gap = max(pool, key=lambda r: r[6] - r[7])
    s.takeaway = (f"The most important single unit of {'a trained model' if trained else 'any model'} ({big[0]} "
                  f"{big[1]} unit {big[4]}) leaves {num(100 * big[5], '.0f')}% of top-1 decisions unchanged"
                  + "".join(f" ({r[0]}: {num(100 * r[5], '.0f')}%)" for r in controls)
                  + f"; with half of {gap[0]}'s {gap[1]} units removed, agreement is {num(gap[7])} when removed by "
                  f"single-unit impact vs {num(gap[6])} in random order.")
