"""``insilico demo``: an offline tour of the bundled models, written to ``OUT/index.html`` and NetCDF files.

For every bundled model (and an untrained control): its sites, first-layer filters, activation statistics
per site on gratings and scikit-image photos, orientation tuning of early units, receptive fields (feature
visualizations with exemplars, RF size vs depth, simple/complex cells), a single-unit lesion sweep on
natural-image patches measured as agreement with the intact model, and stimulus synthesis (PGD accuracy vs ε,
controversial stimuli between the CIFAR models, metamers), comparison with brains (when INSILICO_DATA holds the
data), the four elements (recurrent vs feed-forward, feedback alignment vs backpropagation, trained on the
spot on scikit-learn's digits), a model of your own (an NNX CNN defined and trained on the spot, probed
through the same calls), and what insilico refuses (mistakes named, stale stores refused, inflated scores
flagged). No data directory is needed.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from . import electrode as el
from . import zoo
from .data import stimuli
from .probes.importance import l1_weight_norm, order_by, random_orders
from .probes.lesion import ablation_curve, single_unit_sweep
from .probes import featurevis as fv
from .probes import synthesis as syn
from .probes.rf import exemplars, grating_tuning, orientation_selectivity, receptive_field_size, tuning_summary
from .report import Report
from .report import figures as figs

DEFAULT_MODELS = ("cifar_convnet", "cifar_resnet", "mnist_convnet", "cifar_convnet_untrained")


@dataclass
class Context:
    """What the demo's sections share: the report, the subjects and their stimuli, and per-model results."""

    report: Report
    subjects: dict
    quick: bool
    results: dict = field(default_factory=dict)      # model -> {variable name: DataArray}

    def stimuli(self, subject):
        h, w, c = subject.input_spec.shape
        n_patches = 64 if self.quick else 256
        grat, _ = stimuli.grating_set(h, range(0, 180, 30 if self.quick else 15), (0.05, 0.1, 0.2),
                                      (0, 90, 180, 270), channels=c)
        return {"gratings": np.asarray(grat), "photos": stimuli.photos(h, c),
                "patches": stimuli.natural_patches(jax.random.PRNGKey(0), n_patches, h, c, scale=4)}


def _var(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def models_section(ctx: Context):
    s = ctx.report.section("Models and their sites", "Each site is a named stage whose output is the "
                           "post-nonlinearity activation; these names are what record, edit and sweep take.")
    rows = []
    for name, sub in ctx.subjects.items():
        acc = sub.meta.get("test_accuracy")
        rows.append((name, sub.architecture, ", ".join(f"{k} {v}" for k, v in sub.sites.items()),
                     f"{acc:.4f} ({sub.meta.get('test_set', '')})" if acc is not None else "untrained"))
    s.tables.append(("Bundled models", ("model", "class", "sites (unit shape)", "test accuracy"), rows))


def filters_section(ctx: Context):
    s = ctx.report.section("First-layer filters", "Convolution kernels of the first site, each scaled to "
                           "its own range. Trained CIFAR filters show oriented edges and colour opponency; "
                           "the untrained control shows noise.")
    for name, sub in ctx.subjects.items():
        first = next(iter(sub.sites))
        if "conv" not in sub.params[first]:
            continue
        kernel = sub.params[first]["conv"]["kernel"]
        ctx.report.figure(s, figs.filters(kernel, f"{name}: {first} ({kernel.shape[-1]} filters)"),
                          f"filters_{name}", f"{name} {first} kernels {tuple(kernel.shape)}")


def statistics_section(ctx: Context):
    s = ctx.report.section("Activation statistics per site", "Every site recorded on gratings and "
                           "scikit-image photos. 'Silent units' never respond (> 0) to any of these stimuli.")
    for name, sub in ctx.subjects.items():
        st = ctx.stimuli(sub)
        x = np.concatenate([st["gratings"], st["photos"]])
        _, rec = el.record(sub, x)
        stats = {}
        for site, a in rec.items():
            a = np.asarray(a).reshape(len(x), -1, a.shape[-1])
            active = a > 0
            stats[site] = {"mean": float(a.mean()), "active": float(active.mean()),
                           "silent_units": float((~active.any(axis=(0, 1))).mean())}
        ctx.report.figure(s, figs.site_statistics(stats, f"{name} ({len(x)} stimuli)"), f"stats_{name}")
        res = ctx.results.setdefault(name, {})
        coords = {"site": list(stats)}
        for key in ("mean", "active", "silent_units"):
            res[f"site_{key}"] = xr.DataArray([stats[k][key] for k in stats], dims="site", coords=coords)


def tuning_section(ctx: Context):
    s = ctx.report.section("Orientation tuning", "Centre units of the first two convolutional sites, "
                           "driven by full-field gratings (orientation x spatial frequency x phase). "
                           "Response = max over phase; OSI = 1 - circular variance at the preferred "
                           "spatial frequency. Shown: the most selective units.")
    osi = {}
    for name, sub in ctx.subjects.items():
        conv_sites = [k for k, v in sub.sites.items() if len(v) == 3][:2]
        tuning = grating_tuning(sub, conv_sites, orientations=range(0, 180, 30 if ctx.quick else 15),
                                sfs=(0.05, 0.1, 0.2, 0.3))
        for site in conv_sites:
            sel = orientation_selectivity(tuning[site])
            responsive = sel.peak_response.values > 1e-3
            top = np.argsort(np.where(responsive, sel.osi.values, -1))[::-1][:6]
            ctx.report.figure(s, figs.tuning_curves(sel, top, f"{name} {site}"), f"tuning_{name}_{_var(site)}")
            osi[f"{name} {site}"] = sel.osi.values[responsive]
            res = ctx.results.setdefault(name, {})
            dim = f"{_var(site)}_unit"
            res[f"osi_{_var(site)}"] = xr.DataArray(sel.osi.values, dims=dim)
            res[f"preferred_orientation_{_var(site)}"] = xr.DataArray(sel.preferred_orientation.values, dims=dim)
    first = {k: v for k, v in osi.items() if k.startswith("cifar_convnet") and k.endswith("conv1")}
    if len(first) > 1:
        ctx.report.figure(s, figs.osi_histograms(first, "conv1: trained vs untrained"), "osi_trained_vs_untrained")
    s.tables.append(("Median OSI of responsive centre units", ("model site", "units", "median OSI"),
                     [(k, len(v), float(np.median(v)) if len(v) else float("nan")) for k, v in osi.items()]))


def lesion_section(ctx: Context):
    s = ctx.report.section("Single-unit lesions", "Each channel of a middle site silenced in turn, all in "
                           "one compiled call; measured on natural-image patches from scikit-image's photos "
                           "as agreement of the top-1 class with the intact model.")
    rows, curves = [], {}
    for name, sub in ctx.subjects.items():
        sites = [k for k, v in sub.sites.items() if len(v) == 3] or list(sub.sites)[:-1]
        site = sites[len(sites) // 2]
        x = ctx.stimuli(sub)["patches"]
        t = time.perf_counter()
        ds = single_unit_sweep(sub, x, site, progress=False)
        dt = time.perf_counter() - t
        ctx.report.figure(s, figs.lesion_sweep(ds, f"{name}: {site}, {ds.sizes['unit']} lesions x {len(x)} images"),
                          f"lesions_{name}")
        worst = int(np.argmin(ds.agreement.values))
        rows.append((name, site, ds.sizes["unit"], float(ds.agreement.mean()), worst,
                     float(ds.agreement.min()), f"{dt:.1f} s"))
        res = ctx.results.setdefault(name, {})
        res["lesion_agreement"] = xr.DataArray(ds.agreement.values, dims="lesion_unit",
                                               attrs={"site": site, "n_images": len(x)})
        res["lesion_logit_change"] = xr.DataArray(ds.logit_change.values, dims="lesion_unit")
        n = sub.sites[site][-1]
        orders = {"random": random_orders(jax.random.PRNGKey(0), 2 if ctx.quick else 4, n),
                  "single-unit impact": order_by(ds.logit_change.values), "L1 weight norm": order_by(l1_weight_norm(sub, site))}
        curve = ablation_curve(sub, x, site, orders, fractions=np.linspace(0, 1, 9), progress=False)
        curves[name] = (site, curve)
        res["curve_agreement"] = xr.DataArray(curve.agreement.values, dims=("order", "fraction"),
                                              coords={"order": curve.order.values, "fraction": curve.fraction.values})
    s.tables.append(("Lesion sweeps", ("model", "site", "lesions", "mean agreement", "most important unit",
                                       "its agreement", "time (incl. compile)"), rows))
    ctx.report.figure(s, figs.ablation_curves(curves, "agreement"), "ablation_curves",
                      "Cumulative ablation of the same sites: units removed in random orders (mean), by "
                      "single-unit impact (largest first) and by L1 weight norm (largest first)")


def receptive_fields_section(ctx: Context):
    s = ctx.report.section("Receptive fields", "Per convolutional site of the trained models: feature "
                           "visualizations of the first units (1/f Fourier images with decorrelated colour, "
                           "optimized with random jitter, scale and rotation; all units of a site in one compiled "
                           "call) beside the natural-image patches that drive them most and least, cropped to the "
                           "site's receptive field. Then receptive-field size against depth (theoretical: support "
                           "of the input gradient; effective: its spread, Luo et al. 2016) and the simple/complex "
                           "split of early units by the F1/F0 modulation ratio of their grating responses.")
    n_units, steps = (4, 32) if ctx.quick else (8, 128)
    sizes, ratios, rows = {}, {}, []
    for name, sub in ctx.subjects.items():
        conv_sites = [k for k, v in sub.sites.items() if len(v) == 3]
        res = ctx.results.setdefault(name, {})
        if "untrained" not in name:
            x = ctx.stimuli(sub)["patches"]
            for site in (conv_sites[-1:] if ctx.quick else conv_sites[:3]):
                units = np.arange(min(n_units, sub.sites[site][-1]))
                t = time.perf_counter()
                vis = fv.visualize(sub, fv.channel(site), units, key=jax.random.PRNGKey(0), steps=steps,
                                   progress=False)
                dt = time.perf_counter() - t
                ex = exemplars(sub, site, x, k=4, units=units, progress=False)
                ctx.report.figure(s, figs.exemplar_grid(vis.images.isel(step=-1, seed=0).values, ex.top_crop.values,
                                                        ex.bottom_crop.values, units, f"{name} {site}"),
                                  f"units_{name}_{_var(site)}")
                rows.append((name, site, len(units), steps, float(vis.score.mean()), f"{dt:.1f} s"))
                res[f"visualization_score_{_var(site)}"] = xr.DataArray(vis.score.values[:, 0],
                                                                        dims=f"{_var(site)}_vis_unit")
        sizes[name] = receptive_field_size(sub, key=jax.random.PRNGKey(0), n_images=16)
        res["effective_rf_size"] = xr.DataArray(sizes[name].effective_size.values, dims="site_index",
                                                attrs={"sites": ", ".join(sizes[name].site.values)})
        res["theoretical_rf_size"] = xr.DataArray(sizes[name].theoretical_size.values, dims="site_index")
        if conv_sites:
            tun = grating_tuning(sub, conv_sites[:2], orientations=range(0, 180, 30 if ctx.quick else 15),
                                 sfs=(0.05, 0.1, 0.2, 0.3), phases=range(0, 360, 45))
            for site, t in tun.items():
                summ = tuning_summary(t)
                ratios[f"{name} {site}"] = summ.modulation_ratio.values
                res[f"modulation_ratio_{_var(site)}"] = xr.DataArray(summ.modulation_ratio.values,
                                                                     dims=f"{_var(site)}_unit")
    s.tables.append(("Feature visualization", ("model", "site", "units", "steps", "mean objective",
                                               "time (incl. compile)"), rows))
    ctx.report.figure(s, figs.rf_size_vs_depth(sizes), "rf_size_vs_depth",
                      "Centre unit of each site; sizes of the last sites are clipped by the image when marked so "
                      "in the NetCDF output (theoretical RF reaching the border)")
    if ratios:
        ctx.report.figure(s, figs.modulation_histograms(ratios), "modulation_ratio",
                          "F1/F0 at each unit's preferred orientation and spatial frequency; > 1 = simple-cell-like")


def synthesis_section(ctx: Context):
    s = ctx.report.section("Stimulus synthesis", "Adversarial robustness: accuracy (agreement with the intact "
                           "prediction) of each trained model on natural-image patches under PGD L∞ (10 steps) at "
                           "several ε, all ε in one compiled call and judged on 8-bit images. Controversial stimuli "
                           "(Golan et al. 2020) between the two CIFAR models: images one model calls class i and "
                           "the other class j, every pair in one call, acceptance = min of the two probabilities on "
                           "the 8-bit image. Metamers: white noise optimized until a site cannot tell it from a "
                           "photo.")
    import matplotlib.pyplot as plt

    rows, curves = [], {}
    for name, sub in ctx.subjects.items():
        if "untrained" in name:
            continue
        x = np.asarray(syn.quantize(ctx.stimuli(sub)["patches"][:32 if ctx.quick else 128]))
        y = np.asarray(el.record(sub, x)[0].argmax(-1))
        eps = (0, 1 / 255, 2 / 255, 4 / 255, 8 / 255) if sub.input_spec.shape[-1] == 3 else (0, 0.05, 0.1, 0.2, 0.3)
        t = time.perf_counter()
        curve = syn.accuracy_vs_eps(sub, x, y, eps, steps=10, key=jax.random.PRNGKey(0))
        curves[name] = curve
        rows.append((name, len(x), ", ".join(f"{e:.3g}: {a:.2f}" for e, a in zip(eps, curve.accuracy.values)),
                     f"{time.perf_counter() - t:.1f} s"))
        ctx.results.setdefault(name, {})["pgd_accuracy"] = xr.DataArray(curve.accuracy.values, dims="eps",
                                                                         coords={"eps": curve.eps.values})
    s.tables.append(("PGD L∞ accuracy vs ε (agreement with the clean prediction)", ("model", "images",
                                                                                   "ε: accuracy", "time"), rows))
    if {"cifar_convnet", "cifar_resnet"} <= set(ctx.subjects):
        a, b = ctx.subjects["cifar_convnet"], ctx.subjects["cifar_resnet"]
        pairs = [(0, 1), (3, 5), (9, 8), (6, 2)] if ctx.quick else [(i, (i + 1 + i // 3) % 10) for i in range(10)]
        con = syn.controversial(a, b, pairs, steps=60 if ctx.quick else 200, key=jax.random.PRNGKey(0))
        fig, axes = plt.subplots(1, len(pairs), figsize=(1.5 * len(pairs), 2.0), squeeze=False)
        for ax, k in zip(axes[0], range(len(pairs))):
            ax.imshow(con.images.values[k, 0])
            ax.set_title(f"{a.class_names[pairs[k][0]]}\n{b.class_names[pairs[k][1]]}\n"
                         f"{con.acceptance.values[k, 0]:.2f}", fontsize=7)
            ax.axis("off")
        fig.tight_layout()
        ctx.report.figure(s, fig, "controversial", "Controversial stimuli: cifar_convnet's class (top), "
                          "cifar_resnet's class (middle), acceptance (bottom)")
        ctx.results["cifar_convnet"]["controversial_acceptance"] = xr.DataArray(con.acceptance.values[:, 0],
                                                                                dims="controversial_pair")
        sub = a
        photo = np.asarray(syn.quantize(stimuli.photos(32, 3)[:2]))
        met = syn.metamers(sub, "conv2", photo, steps=150 if ctx.quick else 600, tol=1e-2,
                           key=jax.random.PRNGKey(0))
        fig, axes = plt.subplots(2, 2, figsize=(3, 3))
        for i in range(2):
            axes[i, 0].imshow(photo[i])
            axes[i, 1].imshow(np.clip(met.images.values[i, 0], 0, 1))
            axes[i, 1].set_title(f"rel. error {met.rel_error.values[i, 0]:.3f}", fontsize=7)
            for ax in axes[i]:
                ax.axis("off")
        fig.tight_layout()
        ctx.report.figure(s, fig, "metamers", "Photo (left) and a cifar_convnet conv2 metamer from white noise")


def brain_section(ctx: Context):
    """RSA of every site against human/monkey IT and EVC/IT fMRI on the 92 images — only with INSILICO_DATA."""
    from .data._paths import DataNotFoundError

    try:
        from .data import objects92, objects92_region_rdms

        regions = objects92_region_rdms()
    except (DataNotFoundError, FileNotFoundError, ImportError) as e:
        ctx.report.section("Comparison with brains", f"Skipped: the neural data are not available ({e}). Set "
                           "INSILICO_DATA to the data directory to compare every site with human and monkey IT "
                           "and the EVC/IT fMRI of 15 subjects.")
        return
    from .probes import brain

    method, label = ("corr", "Pearson r") if ctx.quick else ("tau-a", "Kendall τ-a")
    s = ctx.report.section("Comparison with brains", "RSA on the 92 object images (Kriegeskorte et al. 2008; "
                           "Cichy et al. 2014): correlation-distance RDM of every site vs each region's subject "
                           f"RDMs, {label} averaged over subjects, 95% stimulus-bootstrap intervals, noise "
                           "ceilings in the column labels. The models see 32 px versions of the photos.")
    rows = []
    for name, sub in ctx.subjects.items():
        if "untrained" in name:
            continue
        h, w, ch = sub.input_spec.shape
        ds = brain.rsa_by_site(sub, objects92(h, channels=ch).x, regions, method=method,
                               n_boot=100 if ctx.quick else 200, key=jax.random.PRNGKey(0))
        ctx.report.figure(s, brain.site_region_heatmap(ds, title=f"{name}: {label} with each region"),
                          f"rsa_{name}")
        for r in regions:
            best = ds.score.sel(region=r)
            i = int(np.nanargmax(best.values))
            rows.append((name, r, str(ds.site.values[i]), float(best.values[i]),
                         f"{float(ds.ci_low.sel(region=r)[i]):.3f}–{float(ds.ci_high.sel(region=r)[i]):.3f}"))
        ctx.results.setdefault(name, {})["rsa_score"] = xr.DataArray(ds.score.values, dims=("rsa_site", "region"),
                                                                     coords={"rsa_site": ds.site.values,
                                                                             "region": list(regions)})
    s.tables.append(("Best site per region", ("model", "region", "site", label, "95% interval"), rows))


def four_elements_section(ctx: Context):
    """Architecture and learning rule, trained on the spot on scikit-learn's digits (offline): a recurrent BLT
    network vs the same network without recurrence, read out at every time step; an MLP trained by
    backpropagation vs feedback alignment, with the angle between their updates."""
    import matplotlib.pyplot as plt

    from .data import digits
    from .models import MLP, BLTNet
    from .subject import InputSpec, make_subject
    from .train import TrainConfig, fit
    from .train.rules import gradient_alignment

    data = digits()
    order = np.random.default_rng(0).permutation(len(data.y))
    train, test = data.subset(order[:1400]), data.subset(order[1400:])
    epochs, widths = (2, (8, 16)) if ctx.quick else (10, (16, 32))
    cfg = TrainConfig(epochs=epochs, batch_size=50, lr=3e-3, optimizer="adam", augment="none", weight_decay=0.0)
    s = ctx.report.section("The four elements: architecture and learning rule", "Trained here on scikit-learn's "
                           f"8x8 digits ({len(train.y)} training, {len(test.y)} held-out, {epochs} epochs). Left: a "
                           "recurrent BLT network (bottom-up, lateral and top-down connections, 4 time steps) "
                           "and the same network without recurrence (B), read out at every step — the site "
                           "logits/t{k}. Right: the angle between the weight updates of an MLP trained by feedback "
                           "alignment (a fixed random feedback matrix) and backpropagation's, per epoch; 90° is "
                           "no better than chance direction. Experiment: experiments/four_elements.py.")
    rows, per_step = [], {}
    for label, lateral in (("BLT", True), ("B", False)):
        model = BLTNet(widths=widths, steps=4, lateral=lateral, topdown=lateral, mean=(0.3,), std=(0.4,))
        res = fit(model, train, test, cfg, progress=False)
        sub = make_subject(label, model, res.variables, InputSpec((8, 8, 1)))
        steps = [f"logits/t{t}" for t in range(4)]
        _, rec = el.record(sub, test.x, steps)
        per_step[label] = [float(np.mean(np.argmax(np.asarray(rec[k]), -1) == test.y)) for k in steps]
        rows.append(("architecture", f"{label} (4 steps)", per_step[label][-1]))
    angles = {}
    for rule in ("backprop", "feedback_alignment"):
        model = MLP(widths=(64, 32), learning_rule=rule, mean=(0.3,), std=(0.4,))
        snaps = {}
        res = fit(model, train, test, cfg, progress=False, on_epoch=lambda e, v: snaps.__setitem__(e, v))
        rows.append(("learning rule", f"MLP, {rule.replace('_', ' ')}", res.history[-1]["test_acc"]))
        if rule == "feedback_alignment":
            angles = {e: gradient_alignment(model, v, test.x, test.y) for e, v in snaps.items()}
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    for label, acc in per_step.items():
        axes[0].plot(range(4), acc, marker="o", label=label)
    axes[0].set_xlabel("time step")
    axes[0].set_ylabel("held-out accuracy of logits/t{k}")
    axes[0].legend(fontsize=7)
    for layer in ("fc1/dense", "fc2/dense"):
        axes[1].plot(list(angles), [a[layer] for a in angles.values()], marker="o", label=layer)
    axes[1].axhline(90, color="k", lw=0.5, ls=":")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("feedback alignment vs backprop (°)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    ctx.report.figure(s, fig, "four_elements")
    s.tables.append(("Held-out accuracy", ("element", "variant", "accuracy"), rows))


def _nnx_digits_cnn(key):
    """A small CNN written with plain ``flax.nnx`` layers, as a user would (no insilico class)."""
    from flax import nnx

    class DigitsCNN(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(1, 8, (3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(8, 16, (3, 3), strides=2, rngs=rngs)
            self.out = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.conv1(x))
            x = nnx.relu(self.conv2(x))
            return self.out(x.mean((1, 2)))

    return DigitsCNN(nnx.Rngs(params=key))


def your_own_model_section(ctx: Context):
    """Any Flax model is a subject: an NNX CNN defined and trained here (plain optax), then recorded, lesioned
    and attacked through the same calls as the zoo's models."""
    import matplotlib.pyplot as plt
    import optax
    from flax import nnx

    from .data import digits
    from .subject import InputSpec, make_subject

    data = digits()
    order = np.random.default_rng(1).permutation(len(data.y))
    x_train, y_train = np.asarray(data.x[order[:1400]]), np.asarray(data.y[order[:1400]])
    x_test, y_test = np.asarray(data.x[order[1400:]]), np.asarray(data.y[order[1400:]])
    steps = 100 if ctx.quick else 600
    model = _nnx_digits_cnn(jax.random.key(0))
    graphdef, params = nnx.split(model, nnx.Param)
    opt = optax.adam(1e-2)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(xb), yb).mean()
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state, rng = opt.init(params), np.random.default_rng(2)
    for _ in range(steps):
        idx = rng.choice(len(y_train), 128, replace=False)
        params, state = step(params, state, x_train[idx], y_train[idx])
    nnx.update(model, params)
    subject = make_subject("digits_cnn (nnx)", model, None, InputSpec((8, 8, 1)),
                           tuple(str(d) for d in range(10)))
    out, _ = el.record(subject, x_test)
    acc = float(np.mean(np.asarray(out.argmax(-1)) == y_test))
    sweep = single_unit_sweep(subject, x_test, "conv2", labels=y_test, progress=False)
    eps = (np.array([0, 2, 8]) if ctx.quick else np.array([0, 1, 2, 4, 8, 16])) / 255
    curve = syn.accuracy_vs_eps(subject, x_test[:128], y_test[:128], eps, steps=10, key=jax.random.key(3))
    s = ctx.report.section("Probe your own model", "Any Flax model is a subject. Here a small CNN is written "
                           "with plain flax.nnx layers (conv1 8 channels, conv2 16 channels with stride 2, a linear "
                           f"readout), trained for {steps} Adam steps on scikit-learn's 8x8 digits with optax, made "
                           "a subject with make_subject(name, model, None, InputSpec((8, 8, 1))), and probed through "
                           "the same calls as the bundled models. Its sites are every submodule whose output is an "
                           f"array: {', '.join(f'{k} {v}' for k, v in subject.sites.items())}. Held-out accuracy "
                           f"{acc:.3f} on {len(y_test)} digits.")
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    drop = 100 * (sweep.attrs["intact_accuracy"] - sweep.accuracy.values)
    axes[0].bar(np.arange(len(drop)), drop, color="tab:blue")
    axes[0].set_xlabel("conv2 channel silenced")
    axes[0].set_ylabel("accuracy drop (points)")
    axes[0].set_title("Single-channel lesions", fontsize=9)
    axes[1].plot(eps * 255, curve.accuracy.values, marker="o")
    axes[1].set_xlabel("PGD L∞ budget ε (levels of 255)")
    axes[1].set_ylabel("held-out accuracy")
    axes[1].set_title("Adversarial robustness (PGD, 10 steps)", fontsize=9)
    fig.tight_layout()
    ctx.report.figure(s, fig, "your_own_model", "Left: held-out accuracy lost when each of the 16 conv2 channels is "
                      f"silenced (intact {sweep.attrs['intact_accuracy']:.3f}). Right: accuracy of 128 held-out "
                      "digits under PGD as the budget grows, judged on 8-bit images.")
    s.tables.append(("The NNX model as a subject", ("site", "unit shape"),
                     [(k, str(v)) for k, v in subject.sites.items()]))


def _refusal(call) -> str:
    """The first line of the error ``call`` raises, or a note that it returned (which would be a bug)."""
    try:
        call()
    except Exception as e:                     # the point is to show the message, whatever its type
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    return "returned without an error"


def nothing_silent_section(ctx: Context):
    """What insilico refuses: mistakes a user makes, a results store rerun with other inputs, and a CCA-family
    score computed with too many dimensions."""
    import tempfile
    import warnings

    import jax.numpy as jnp
    import matplotlib.pyplot as plt

    from .analysis import similarity

    name, subject = next(iter(ctx.subjects.items()))
    x = np.asarray(ctx.stimuli(subject)["patches"][:32])
    site = [k for k, v in subject.sites.items() if len(v) == 3][-1]
    n = subject.sites[site][-1]
    mistakes = [
        ("an index where a mask belongs: lesion(7)", lambda: el.run(subject, x, {site: el.lesion(7)})),
        ("0–255 pixels", lambda: el.record(subject, x * 255, site)),
        ("an empty batch", lambda: el.record(subject, x[:0], site)),
        ("a NaN noise scale", lambda: el.noise(jnp.full(n, jnp.nan))),
        (f"labels outside 0..{subject.n_outputs - 1}",
         lambda: single_unit_sweep(subject, x, site, labels=np.full(len(x), subject.n_outputs), progress=False)),
        (f"unit {n} of a {n}-unit site", lambda: fv.visualize(subject, fv.channel(site), [n], steps=4,
                                                             key=jax.random.key(0))),
        ("a NaN attack budget", lambda: syn.pgd(subject, x, np.zeros(len(x), int), eps=float("nan"),
                                                key=jax.random.key(0))),
    ]
    rows = [(what, _refusal(call)) for what, call in mistakes]
    with tempfile.TemporaryDirectory() as store:
        single_unit_sweep(subject, x[:16], site, store=store, progress=False)
        rows.append(("the same lesion-sweep store rerun on 32 images instead of 16",
                     _refusal(lambda: single_unit_sweep(subject, x, site, store=store, progress=False))))

    rng = np.random.default_rng(0)
    widths, scores, warned = (5, 10, 20, 40, 60, 80, 99, 150), [], []
    for w in widths:                            # two independent noise populations: the true similarity is 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores.append(similarity.svcca(rng.normal(size=(100, w)), rng.normal(size=(100, w))))
        warned.append(any(issubclass(c.category, similarity.InflatedScoreWarning) for c in caught))
    a = rng.normal(size=(100, 50))
    b = a @ rng.normal(size=(50, 50)) * 0.1 + rng.normal(size=(100, 50))
    s = ctx.report.section("Nothing silent", "A wrong number that looks right is worse than a crash. Each mistake "
                           f"below, made on {name}/{site}, is refused with a message naming the argument, the bad "
                           "value and what is valid; a results store refuses a rerun whose inputs changed instead "
                           "of returning its old numbers. Numbers are honest by construction too: CKA is computed "
                           f"in float64 on centred features (CKA {similarity.cka(a, b):.6f}, with an offset of 1000 "
                           f"on one side {similarity.cka(a + 1000, b):.6f}), and CCA-family scores warn when the "
                           "dimensions make them meaningless.")
    s.tables.append(("Mistakes and what insilico answers (first line of the error)", ("mistake", "answer"), rows))
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(widths, scores, "o-", color="0.3", label="SVCCA of two independent populations")
    ax.scatter([w for w, f in zip(widths, warned) if f], [v for v, f in zip(scores, warned) if f], s=80,
               facecolors="none", edgecolors="tab:red", linewidths=2, label="InflatedScoreWarning raised", zorder=3)
    ax.set(xlabel="units per population (100 stimuli)", ylabel="SVCCA", ylim=(0, 1.05),
           title="Unrelated populations look similar when wide")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    ctx.report.figure(s, fig, "svcca_inflation", "SVCCA between two independent Gaussian populations (true "
                      "similarity 0) over 100 stimuli, by width. The score climbs towards 1 as the widths approach "
                      "the number of stimuli; insilico warns (red circles) once the two subspaces must share "
                      "directions.")


SECTIONS = [models_section, filters_section, statistics_section, tuning_section, receptive_fields_section,
            lesion_section, synthesis_section, brain_section, four_elements_section, your_own_model_section,
            nothing_silent_section]


def run_demo(out, models=DEFAULT_MODELS, quick: bool = False, progress: bool = True) -> Path:
    """Run every demo section on ``models`` and write ``out/index.html`` plus ``out/MODEL.nc``."""
    from tqdm.auto import tqdm

    out = Path(out)
    t0 = time.perf_counter()
    subjects = {m: zoo.load(m) for m in models}
    ctx = Context(Report("insilico demo", out), subjects, quick)
    bar = tqdm(SECTIONS, desc="insilico demo", disable=not progress)
    for section in bar:
        bar.set_postfix_str(section.__name__.replace("_section", ""))
        section(ctx)
    for name, variables in ctx.results.items():
        ds = xr.Dataset(variables, attrs={"model": name, "description": subjects[name].meta.get("description", "")})
        ds.to_netcdf(out / f"{name}.nc")
    ctx.report.sections[0].text += f"\n\nGenerated in {time.perf_counter() - t0:.0f} s on {jax.devices()[0].platform}."
    return ctx.report.write()
