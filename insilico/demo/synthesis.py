"""Demo section on stimuli made for a model: adversarial robustness (PGD), controversial stimuli between two
models, and metamers of a site."""
from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import electrode as el
from ..data import stimuli
from ..probes import synthesis as syn
from ..report import figures as figs
from ._core import UNTRAINED, Context, key, num

CIFAR_EPS = (0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
GREY_EPS = (0, 0.05, 0.1, 0.2, 0.3)
PGD_STEPS = 10


def _pgd(ctx: Context, s, n_images: int) -> str:
    rows: list[tuple] = []
    groups: dict[tuple, dict] = {}
    for name, sub in ctx.subjects.items():
        csub = ctx.compute_subject(name)
        x = np.asarray(syn.quantize(ctx.stimuli(sub)["patches"][:n_images]))
        y = np.asarray(el.record(csub, x)[0].argmax(-1))
        eps = CIFAR_EPS if sub.input_spec.shape[-1] == 3 else GREY_EPS
        curve = syn.accuracy_vs_eps(csub, x, y, eps, steps=PGD_STEPS, key=key(0), early_stop=False)
        groups.setdefault(eps, {})[name] = curve
        rows.append((name, len(x), ", ".join(f"{255 * e:.3g}: {a:.2f}" for e, a in zip(eps, curve.accuracy.values))))
        ctx.put(name, "pgd_accuracy", xr.DataArray(curve.accuracy.values, dims="eps", coords={"eps": curve.eps.values},
                                                   attrs={"n_images": len(x), "steps": PGD_STEPS}))
    s.tables.append(((f"PGD L∞ accuracy (agreement with the clean prediction) at ε in levels of 1/255, "
                      f"{PGD_STEPS} steps"), ("model", "images", "ε (levels): accuracy"), rows))
    for k, curves in enumerate(groups.values()):
        controls = [n for n in curves if n.endswith(UNTRAINED)]
        n_out = ctx.subjects[next(iter(curves))].n_outputs
        ctx.report.figure(s, figs.accuracy_vs_eps(curves, f"PGD L∞, {PGD_STEPS} steps, {n_images} patches",
                                                  controls=controls, chance=1 / n_out if n_out else None),
                          f"pgd_accuracy_{k}", f"{', '.join(curves)}: agreement with each model's own clean "
                          "prediction, judged on 8-bit images" + ("; dashed grey: the untrained control, attacked the "
                                                                  "same way" if controls else ""))
    eps = CIFAR_EPS if CIFAR_EPS in groups else next(iter(groups))
    curves = groups[eps]
    e = 2 if len(eps) > 2 else len(eps) - 1
    trained = [n for n in curves if not n.endswith(UNTRAINED)]
    controls = [n for n in curves if n.endswith(UNTRAINED)]
    text = ", ".join(f"{n} {num(curves[n].accuracy.values[e])}" for n in trained)
    if controls:
        control = ", ".join(f"{n} {num(curves[n].accuracy.values[e])}" for n in controls)
        text = f"{text} (untrained control {control})" if trained else f"the untrained control {control}"
    return f"At ε = {255 * eps[e]:.3g}/255 PGD leaves agreement of {text}"


def synthesis_section(ctx: Context):
    n_images = 32
    s = ctx.section("Stimulus synthesis", "How little must an image change to fool a model, can two models be made "
                    "to disagree, and what does a site ignore?",
                    "Adversarial robustness: accuracy (agreement with the intact prediction) of each model on "
                    f"{n_images} natural-image patches under PGD L∞ ({PGD_STEPS} steps) at several ε, all ε in one "
                    "compiled call, every pair run for all steps and judged on its last iterate as an 8-bit image. "
                    "Controversial stimuli (Golan et al. 2020) between the two CIFAR models: images one model calls "
                    "class i and the other class j, acceptance = min of the two probabilities on the 8-bit image; the "
                    "pairs run vmapped in chunks of two, each streamed to a store that a rerun resumes from. Metamers: "
                    "white noise optimized until a site cannot tell it from a photo.")
    parts = [_pgd(ctx, s, n_images)]
    if {"cifar_convnet", "cifar_resnet"} <= set(ctx.subjects):
        a, b = ctx.subjects["cifar_convnet"], ctx.subjects["cifar_resnet"]
        pairs = [(0, 1), (3, 5), (9, 8), (6, 2)] if ctx.quick else [(i, (i + 1 + i // 3) % 10) for i in range(0, 10, 2)]
        steps = 60 if ctx.quick else 100
        store = ctx.report.out / "stores" / "controversial"          # chunks of two pairs, streamed to disk
        con = syn.controversial(a, b, pairs, steps=steps, key=key(0), store=store, chunk_size=2, overwrite=True)
        started = time.perf_counter()
        again = syn.controversial(a, b, pairs, steps=steps, key=key(0), store=store, chunk_size=2)  # a rerun resumes
        reread = time.perf_counter() - started
        same = bool(np.array_equal(again.images.values, con.images.values))
        acc = con.acceptance.values[:, 0]
        ctx.report.figure(s, figs.controversial_images(con.images.values[:, 0], acc,
                                                       [a.class_names[i] for i, _ in pairs],
                                                       [b.class_names[j] for _, j in pairs], a.name, b.name,
                                                       f"Controversial stimuli ({len(pairs)} pairs, {steps} steps)",
                                                       threshold=0.5), "controversial")
        ctx.put("cifar_convnet", "controversial_acceptance", xr.DataArray(acc, dims="controversial_pair",
                                                                          attrs={"steps": steps, "pairs": str(pairs)}))
        parts.append(f"{int(np.sum(acc > 0.5))} of {len(pairs)} controversial images ({steps} steps) convince both "
                     f"CIFAR models (acceptance > 0.5; median {num(np.median(acc))}); run in chunks of two pairs to "
                     f"a store, a rerun read every chunk back in {reread:.1f} s "
                     f"{'with identical images' if same else 'WITH DIFFERENT IMAGES'}")
        photo = np.asarray(syn.quantize(stimuli.photos(32, 3)[:2]))
        steps = 150 if ctx.quick else 300
        met = syn.metamers(a, "conv2", photo, steps=steps, tol=1e-2, key=key(0))
        err = met.rel_error.values[:, 0]
        ctx.report.figure(s, figs.metamers(photo, np.clip(met.images.values[:, 0], 0, 1), err, "conv2",
                                           f"{a.name} conv2 metamers from white noise ({steps} Adam steps at most, "
                                           "stop at rel. error 0.01)"), "metamers")
        ctx.put("cifar_convnet", "metamer_rel_error", xr.DataArray(err, dims="metamer_photo",
                                                                   attrs={"site": "conv2", "max_steps": steps}))
        parts.append(f"conv2 metamers reach a relative error of {num(err.max(), '.3f')} at most")
    s.takeaway = "; ".join(parts) + "."
