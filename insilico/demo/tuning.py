"""Demo sections on what single units prefer: orientation tuning, and receptive fields (feature visualizations
with exemplars, receptive-field size against depth, simple and complex cells)."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..probes import featurevis as fv
from ..probes.rf import (
    exemplars,
    grating_tuning,
    orientation_selectivity,
    receptive_field_size,
    tuning_summary,
)
from ..report import figures as figs
from ._core import (
    ORIENTATIONS,
    PHASES,
    SFS,
    UNTRAINED,
    Context,
    conv_sites,
    key,
    median,
    num,
    var,
)

RESPONSIVE = 0.05
CRITERION = f"peak response > {RESPONSIVE:.0%} of the site's largest peak and > 0"


def _tuning(ctx: Context, name: str) -> dict:
    """Grating responses of the centre units of the first two convolutional sites (computed once per model)."""
    slot = ("tuning", name)
    if slot not in ctx.cache:
        sub = ctx.compute_subject(name)
        sites = conv_sites(sub)[:2]
        ctx.cache[slot] = grating_tuning(sub, sites, orientations=ORIENTATIONS[ctx.quick], sfs=SFS,
                                         phases=PHASES) if sites else {}
    return ctx.cache[slot]


def tuning_section(ctx: Context):
    n_ori = len(ORIENTATIONS[ctx.quick])
    s = ctx.section("Orientation tuning", "Are early units orientation selective, and more so after training?",
                    "Centre units of the first two convolutional sites, driven by full-field gratings "
                    f"({n_ori} orientations x {len(SFS)} spatial frequencies x {len(PHASES)} phases). Response = max "
                    "over phase; OSI = 1 - circular variance at the preferred spatial frequency. Only responsive "
                    f"units count ({CRITERION}): a unit that barely responds has an OSI of noise. Shown: the most "
                    "selective responsive units; medians are over responsive units.")
    osi, rows = {}, []
    for name in ctx.subjects:
        for site, tuning in _tuning(ctx, name).items():
            sel = orientation_selectivity(tuning)
            resp = figs.responsive_units(sel, RESPONSIVE)
            label = f"{name} {site}"
            osi[label] = sel.osi.values[resp]
            if resp.any():
                order = np.argsort(np.where(resp, np.nan_to_num(sel.osi.values, nan=-1), -2))[::-1]
                top = sel.unit.values[order[:min(6, int(resp.sum()))]]
                ctx.report.figure(s, figs.tuning_curves(sel, top, f"{name} {site}: most selective responsive units",
                                                        responsive=resp, criterion=CRITERION),
                                  f"tuning_{name}_{var(site)}")
            rows.append((label, f"{int(resp.sum())} of {len(resp)}", median(osi[label]),
                         median(sel.osi.values)))
            dim = f"{var(site)}_unit"
            ctx.put(name, f"osi_{var(site)}", xr.DataArray(sel.osi.values, dims=dim))
            ctx.put(name, f"preferred_orientation_{var(site)}", xr.DataArray(sel.preferred_orientation.values,
                                                                             dims=dim))
            ctx.put(name, f"responsive_{var(site)}", xr.DataArray(resp.astype(np.int8), dims=dim,
                                                                   attrs={"criterion": CRITERION}))
    if osi:
        ctx.report.figure(s, figs.osi_histograms(osi, "OSI of responsive centre units"), "osi_histograms",
                          "One panel per model and site; responsive units only")
    s.tables.append(("Median OSI of centre units", ("model site", "responsive units", "median OSI (responsive)",
                                                    "median OSI (all)"), rows))
    firsts = {k: v for k, v in osi.items() if k.split()[1] == conv_sites(ctx.subjects[k.split()[0]])[0]}
    trained = {k: v for k, v in firsts.items() if UNTRAINED not in k}
    control = {k: v for k, v in firsts.items() if UNTRAINED in k}
    if trained and control:
        t, c = next(iter(control.items()))
        base = next((k for k in trained if k.split()[0] + UNTRAINED == t.split()[0]), next(iter(trained)))
        mt, mc = median(trained[base]), median(c)
        verdict = "more" if mt > mc else "not more"
        s.takeaway = (f"Trained first-layer units are {verdict} orientation selective than untrained ones: median OSI "
                      f"{num(mt)} ({base}, {len(trained[base])} responsive units) vs {num(mc)} ({t}, {len(c)} "
                      "responsive units).")
    elif firsts:
        s.takeaway = "Median OSI of responsive first-layer units: " + ", ".join(
            f"{num(median(v))} ({k}, {len(v)} units)" for k, v in firsts.items()) + "."
    else:
        s.takeaway = "No model with a convolutional site was given."


def receptive_fields_section(ctx: Context):
    n_units, steps = (4, 32) if ctx.quick else (6, 64)
    s = ctx.section("Receptive fields", "What do units prefer, how large is the patch of the image they see, and "
                    "do early units behave like simple or complex cells?",
                    "For the last convolutional site of each trained model: feature visualizations of units "
                    f"0–{n_units - 1} ({steps} Adam steps on 1/f Fourier images with decorrelated colour, optimized "
                    "with random jitter, scale and rotation; all units of a site in one compiled call) beside the "
                    "natural-image patches that drive them most and least, cropped to the site's theoretical "
                    "receptive field. A flat visualization (pixel s.d. < 0.02) is marked failed. Then receptive-field "
                    "size against depth for every convolutional site (theoretical: support of the input gradient over "
                    "16 white-noise images; effective: its spread, Luo et al. 2016; fully connected sites see the "
                    "whole image by construction) and the simple/complex split of early units by the F1/F0 "
                    "modulation ratio of their grating responses.")
    sizes, ratios, rows = {}, {}, []
    n_vis = n_failed = 0
    for name, sub in ctx.subjects.items():
        csub = ctx.compute_subject(name)
        sites = conv_sites(sub)
        if not sites:
            continue
        sizes[name] = receptive_field_size(csub, sites, key=key(0), n_images=16)
        ctx.put(name, "effective_rf_size", xr.DataArray(sizes[name].effective_size.values, dims="site_index",
                                                        attrs={"sites": ", ".join(sizes[name].site.values)}))
        ctx.put(name, "theoretical_rf_size", xr.DataArray(sizes[name].theoretical_size.values, dims="site_index"))
        if not name.endswith(UNTRAINED):
            x = ctx.stimuli(sub)["patches"]
            for site in sites[-1:]:
                units = list(range(min(n_units, sub.sites[site][-1])))
                vis = fv.visualize(csub, fv.channel(site), units, key=key(0), steps=steps,
                                   progress=False)
                images = vis.images.isel(step=-1, seed=0).values
                failed = figs.visualization_failed(images)
                n_vis, n_failed = n_vis + len(units), n_failed + int(failed.sum())
                crop = int(sizes[name].theoretical_size.sel(site=site))
                ex = exemplars(csub, site, x, k=4, units=units, crop_size=max(crop, 1), progress=False)
                ctx.report.figure(s, figs.exemplar_grid(images, ex.top_crop.values, ex.bottom_crop.values, units,
                                                        f"{name} {site}: units {units[0]}–{units[-1]}",
                                                        failed=failed), f"units_{name}_{var(site)}")
                rows.append((name, site, len(units), steps, len(x), float(vis.score.mean()), int(failed.sum())))
                ctx.put(name, f"visualization_score_{var(site)}", xr.DataArray(vis.score.values[:, 0],
                                                                                 dims=f"{var(site)}_vis_unit"))
                ctx.put(name, f"visualization_failed_{var(site)}", xr.DataArray(failed.astype(np.int8),
                                                                                  dims=f"{var(site)}_vis_unit"))
        for site, t in _tuning(ctx, name).items():
            summ = tuning_summary(t)
            ratios[f"{name} {site}"] = summ.modulation_ratio.values
            ctx.put(name, f"modulation_ratio_{var(site)}", xr.DataArray(summ.modulation_ratio.values,
                                                                        dims=f"{var(site)}_unit"))
    s.tables.append(("Feature visualization", ("model", "site", "units", "Adam steps", "exemplar patches",
                                               "mean objective", "flat (failed)"), rows))
    if sizes:
        ctx.report.figure(s, figs.rf_size_vs_depth(sizes), "rf_size_vs_depth",
                          "Centre unit of each convolutional site, 16 white-noise images; a size is clipped by the "
                          "image when its theoretical field reaches the border (open markers)")
    if ratios:
        ctx.report.figure(s, figs.modulation_histograms(ratios), "modulation_ratio",
                          "F1/F0 at each unit's preferred orientation and spatial frequency; > 1 = simple-cell-like")
    if not sizes:
        s.takeaway = "No model with a convolutional site was given: 0 receptive fields measured."
        return
    name = next(iter(sizes))
    eff = sizes[name].effective_size.values
    parts = [(f"{name}'s effective receptive field goes from {num(eff[0], '.1f')} px "
              f"({sizes[name].site.values[0]}) to {num(eff[-1], '.1f')} px ({sizes[name].site.values[-1]})")]
    if n_vis:
        parts.append(f"{n_failed} of {n_vis} feature visualizations ({steps} steps) are flat (failed)")
    if ratios:
        label, r = next(iter(ratios.items()))
        r = r[np.isfinite(r)]
        parts.append(f"{np.mean(r > 1):.0%} of {len(r)} {label} units are simple-cell-like (F1/F0 > 1)" if len(r)
                     else f"no {label} unit has an F1/F0 ratio (none responds to the gratings)")
    s.takeaway = "; ".join(parts) + "."
