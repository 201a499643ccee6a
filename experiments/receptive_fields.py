"""Receptive fields across the hierarchy (after Figure 1 of Barrett, Morcos & Macke 2019, "Analyzing biological
and artificial neural networks", which shows feature visualizations across VGG-M's layers).

    INSILICO_DATA=/path/to/data python experiments/receptive_fields.py --out results/receptive_fields [--quick]

For each bundled model (and the untrained control of cifar_convnet):
1. Per convolutional site, a grid of unit visualizations (1/f Fourier images with decorrelated colour and
   jitter/scale/rotate robustness, every unit of the site in one compiled call) beside each unit's most and
   least activating exemplars from the model's test images (CIFAR-10 test / held-out MNIST; natural-image
   patches without INSILICO_DATA), cropped to the site's receptive field.
2. Theoretical and effective receptive-field size (Luo et al. 2016) against depth, trained vs untrained.
3. Early units as V1 cells: grating tuning (orientation x spatial frequency x phase), the simple/complex split by
   F1/F0 (Skottun et al. 1991), the SF bandwidth in octaves compared with macaque V1/V2 cells (Goris et al. 2015,
   when INSILICO_DATA is set), and Gabor fits of the first-layer filters and of their white-noise STAs.
Writes figures, results.json, results.md, results.nc and index.html to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from insilico import electrode as el
from insilico import zoo
from insilico.analysis import tuning as tn
from insilico.analysis.gabor import fit_gabor, gabor_similarity
from insilico.data import DataNotFoundError, cifar10, goris2015, mnist_test
from insilico.data.stimuli import natural_patches
from insilico.probes import featurevis as fv
from insilico.probes import rf
from insilico.report import Report
from insilico.report import figures as figs

SFS = tuple(np.round(np.geomspace(0.03, 0.45, 10), 4))      # cycles/pixel, log-spaced like Goris et al.'s c/deg


def conv_sites(subject):
    return [s for s, shape in subject.sites.items() if len(shape) == 3]


def exemplar_images(subject, n: int):
    """The model's own test images if INSILICO_DATA is set, else natural-image patches."""
    try:
        data = mnist_test("heldout") if subject.input_spec.shape[-1] == 1 else cifar10("test")
        idx = np.sort(np.random.default_rng(0).permutation(len(data))[:n])
        return data.x[idx], data.name
    except DataNotFoundError:
        h, _, c = subject.input_spec.shape
        return np.asarray(natural_patches(jax.random.PRNGKey(0), n, h, c, scale=4)), "natural patches"


def first_layer_filters(subject, site):
    """conv kernel (kh, kw, C, K) of ``site``, as (K, kh, kw, C) in pixel units (divided by the input std)."""
    k = np.asarray(subject.params[site]["conv"]["kernel"])
    std = np.asarray(subject.input_spec.std, float).reshape(1, 1, -1, 1)
    return np.moveaxis(k / std, -1, 0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/receptive_fields")
    p.add_argument("--quick", action="store_true", help="small version (about two minutes)")
    p.add_argument("--models", nargs="*", default=["cifar_convnet", "cifar_resnet", "mnist_convnet"])
    args = p.parse_args(argv)
    q = args.quick
    n_units, steps, n_images, n_noise = (6, 48, 256, 4096) if q else (16, 512, 5000, 32768)
    key = jax.random.PRNGKey(0)
    out = Path(args.out)
    report = Report("Receptive fields across the hierarchy", out)
    subjects = {m: zoo.load(m) for m in args.models}
    if "cifar_convnet" in subjects:
        subjects["cifar_convnet_untrained"] = zoo.load("cifar_convnet_untrained")
    results, summary, nc = {}, {}, {}

    sec = report.section("Units across the hierarchy", f"First {n_units} units of every convolutional site: "
                         f"feature visualization ({steps} Adam steps, lr 0.05, 1/f Fourier parameterization with "
                         "colour decorrelation, standard robustness transforms), then the top and bottom exemplars "
                         "cropped to the theoretical receptive field around the best position.")
    vis_rows = []
    for name, sub in subjects.items():
        if name.endswith("_untrained"):
            continue
        x, source = exemplar_images(sub, n_images)
        for site in conv_sites(sub):
            units = np.arange(min(n_units, sub.sites[site][-1]))
            vis = fv.visualize(sub, fv.channel(site), units, key=jax.random.fold_in(key, len(site)), steps=steps)
            ex = rf.exemplars(sub, site, x, k=5, units=units)
            report.figure(sec, figs.exemplar_grid(vis.images.isel(step=-1, seed=0).values, ex.top_crop.values,
                                                  ex.bottom_crop.values, units, f"{name} {site} ({source})"),
                          f"units_{name}_{site.replace('/', '_')}")
            # how strongly does the visualization drive the unit (its best position) compared with the best exemplar?
            _, rec = el.record(sub, vis.images.isel(step=-1, seed=0).values, site)
            vis_max = np.asarray(rec[site]).max(axis=(1, 2))[units, units]
            ratio = vis_max / np.maximum(ex.top_score.values[:, 0], 1e-6)
            vis_rows.append((name, site, len(units), float(np.median(ratio))))
            nc[f"vis_over_exemplar_{name}_{site}".replace("/", "_")] = xr.DataArray(ratio, dims=f"u_{name}_{site}"
                                                                                    .replace("/", "_"))
    sec.tables.append(("Visualization vs best exemplar", ("model", "site", "units",
                                                          "median ratio of the unit's maximum response to its "
                                                          "visualization and to its top exemplar"), vis_rows))
    summary["visualization_vs_exemplar"] = {f"{a} {b}": d for a, b, _, d in vis_rows}

    sec = report.section("Receptive-field size vs depth", "Theoretical RF: bounding box of the pixels with a "
                         "non-zero input gradient of the centre unit over 64 white-noise images; effective RF: "
                         "2√2 × the gradient-weighted RMS radius of the mean |gradient| (Luo et al. 2016). Sizes "
                         "that reach the image border are clipped.")
    sizes = {}
    for name, sub in subjects.items():
        sizes[name] = rf.receptive_field_size(sub, key=key, n_images=64)
        summary.setdefault("rf_size", {})[name] = {
            s: {"theoretical": float(t), "effective": float(e), "clipped": bool(c)}
            for s, t, e, c in zip(sizes[name].site.values, sizes[name].theoretical_size.values,
                                  sizes[name].effective_size.values, sizes[name].clipped.values)}
    report.figure(sec, figs.rf_size_vs_depth(sizes), "rf_size_vs_depth")

    sec = report.section("Early units as V1 cells", "Full-field gratings, 12 orientations × 10 log-spaced spatial "
                         "frequencies × 8 phases, centre unit of each channel. F1/F0 > 1 = simple cell. SF "
                         "bandwidth: full width at half height of the SF tuning curve at the preferred orientation "
                         "(octaves; only units whose curve falls below half height on both sides of the tested "
                         "range).")
    ratios, bandwidths, rows = {}, {}, []
    for name, sub in subjects.items():
        sites = conv_sites(sub)[:2]
        tun = rf.grating_tuning(sub, sites, orientations=range(0, 180, 15), sfs=SFS, phases=range(0, 360, 45))
        for site, t in tun.items():
            s = rf.tuning_summary(t)
            ok = s.peak_response.values > 1e-3
            mr, bw = s.modulation_ratio.values[ok], s.sf_bandwidth.values[ok]
            ratios[f"{name} {site}"] = mr
            bandwidths[f"{name} {site}"] = bw
            rows.append((name, site, int(ok.sum()), float(np.mean(mr > 1)), float(np.nanmedian(s.osi.values[ok])),
                         float(np.nanmedian(bw)) if np.isfinite(bw).any() else float("nan"),
                         int(np.isfinite(bw).sum())))
            tag = f"{name}_{site}".replace("/", "_")
            for var in ("modulation_ratio", "sf_bandwidth", "osi", "preferred_sf", "preferred_orientation"):
                nc[f"{var}_{tag}"] = xr.DataArray(s[var].values, dims=f"unit_{tag}")
    summary["v1"] = {f"{r[0]} {r[1]}": {"responsive": r[2], "fraction_simple": r[3], "median_osi": r[4],
                                        "median_sf_bandwidth": r[5], "n_bandpass": r[6]} for r in rows}
    sec.tables.append(("Tuning of early units", ("model", "site", "responsive units", "fraction simple",
                                                 "median OSI", "median SF bandwidth (oct)", "band-pass units"), rows))
    report.figure(sec, figs.modulation_histograms(ratios), "modulation_ratio")
    try:
        cells = goris2015()
        drive = (cells.rate_mean - cells.spont_mean).values
        real_bw = tn.log_bandwidth(cells.sf.values, drive)["bandwidth_octaves"]
        summary["goris2015_sf_bandwidth"] = dict(zip(cells.unit.values.tolist(), map(float, real_bw)))
        report.figure(sec, figs.bandwidth_comparison(bandwidths, real_bw), "sf_bandwidth_vs_v1",
                      "SF bandwidth of model units (octaves are scale-free, so c/px and c/deg compare) against "
                      f"the {len(real_bw)} macaque cells of Goris et al. 2015")
    except DataNotFoundError:
        pass

    sec = report.section("Gabor fits of first-layer filters and STAs", f"Each first-layer filter (pixel units) and "
                         f"each unit's spike-triggered average from {n_noise} white-noise images fitted with a 2-D "
                         "Gabor (dominant colour component); r² of the fit, and |correlation| of the STA with the "
                         "filter.")
    gabor_rows = []
    for name, sub in subjects.items():
        site = conv_sites(sub)[0]
        filters = first_layer_filters(sub, site)
        kh = filters.shape[1]
        sta = rf.reverse_correlation(sub, site, n_noise, key=jax.random.fold_in(key, 7)).sta.values
        h, w = sta.shape[1:3]
        y0, x0 = h // 2 - (kh - 1) // 2, w // 2 - (kh - 1) // 2       # SAME padding: the centre unit's footprint
        sta_crop = sta[:, y0:y0 + kh, x0:x0 + kh, :]
        has = np.isfinite(sta_crop).all((1, 2, 3))          # a unit that never responds to the noise has no STA
        fit_f = fit_gabor(filters)
        r2_sta, corr = np.full(len(has), np.nan), np.full(len(has), np.nan)
        if has.any():
            r2_sta[has] = fit_gabor(sta_crop[has]).r2.values
            corr[has] = gabor_similarity(sta_crop[has], filters[has])
        gabor_rows.append((name, site, kh, float(np.nanmedian(fit_f.r2.values)),
                           float(np.mean(fit_f.r2.values > 0.5)), float(np.nanmedian(r2_sta)),
                           float(np.nanmedian(corr))))
        tag = f"{name}_{site}".replace("/", "_")
        nc[f"gabor_r2_filters_{tag}"] = xr.DataArray(fit_f.r2.values, dims=f"k_{tag}")
        nc[f"gabor_r2_sta_{tag}"] = xr.DataArray(r2_sta, dims=f"k_{tag}")
        nc[f"sta_filter_corr_{tag}"] = xr.DataArray(corr, dims=f"k_{tag}")
    summary["gabor"] = {f"{r[0]} {r[1]}": {"kernel": r[2], "median_r2_filters": r[3], "fraction_r2_over_0.5": r[4],
                                           "median_r2_sta": r[5], "median_sta_filter_corr": r[6]}
                        for r in gabor_rows}
    sec.tables.append(("Gabor fits", ("model", "site", "kernel", "median r² (filters)", "fraction r² > 0.5",
                                      "median r² (STAs)", "median |corr(STA, filter)|"), gabor_rows))
    sec.text += " Units that never respond to the noise have no STA (NaN, left out of the medians)."

    xr.Dataset(nc).to_netcdf(out / "results.nc")
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = ["| model | site | responsive | fraction simple | median OSI | median SF bandwidth (oct) | band-pass |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d:.2f} | {e:.2f} | {f:.2f} | {g} |" for a, b, c, d, e, f, g in rows]
    lines += ["", "| model | site | kernel | median r² filters | r² > 0.5 | median r² STAs "
              "| median corr(STA, filter) |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d:.2f} | {e:.2f} | {f:.2f} | {g:.3f} |" for a, b, c, d, e, f, g in gabor_rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
