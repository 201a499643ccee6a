"""How robust are the bundled models? Adversarial examples (Szegedy et al. 2014; Goodfellow et al. 2015; Madry et
al. 2018) against the zoo's classifiers.

    INSILICO_DATA=/path/to/data python experiments/adversarial.py --out results/adversarial [--quick]

For each model (CIFAR-10 test images for the CIFAR models, the held-out MNIST digits for mnist_convnet; 1,000
random images, 64 with --quick):
1. Accuracy against ε for FGSM, PGD in L∞ (40 steps, 10 with --quick, step 2.5·ε/steps, one random start) and
   PGD in L2; every attacked image is 8-bit quantized before it is judged, and an image counts as broken at an ε
   once any PGD iterate (rounded to 8 bits) is misclassified (``accuracy_vs_eps``'s early stopping).
2. The usual benchmark numbers: accuracy under PGD L∞ at ε = 8/255 (CIFAR) and ε = 0.3 (MNIST), FGSM beside them.
3. Transfer between the two CIFAR models: PGD L∞ examples (ε = 8/255) made on model A, classified by model B.
4. Example adversarial images with the predicted class names.
Writes figures, results.json, results.md and index.html to --out.
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

from insilico import electrode as el  # noqa: E402
from insilico import zoo  # noqa: E402
from insilico.data import cifar10, mnist_test  # noqa: E402
from insilico.probes import synthesis as syn  # noqa: E402
from insilico.report import Report, style  # noqa: E402

style.use()

# (full grid, quick grid); the benchmark ε is in both
CIFAR_LINF = ([0, 1, 2, 3, 4, 6, 8, 12, 16], [0, 2, 4, 8, 16])            # in 1/255
CIFAR_L2 = ([0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5], [0, 0.25, 0.5, 1.0])
MNIST_LINF = ([0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4], [0, 0.1, 0.2, 0.3, 0.4])
MNIST_L2 = ([0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], [0, 1.0, 2.0, 3.0])
CIFAR_EPS, MNIST_EPS = 8 / 255, 0.3


def is_mnist(subject) -> bool:
    return subject.input_spec.shape[-1] == 1


def grids(subject, quick: bool):
    k = 1 if quick else 0
    if is_mnist(subject):
        return np.asarray(MNIST_LINF[k], np.float32), np.asarray(MNIST_L2[k], np.float32), MNIST_EPS
    return np.asarray(CIFAR_LINF[k], np.float32) / 255, np.asarray(CIFAR_L2[k], np.float32), CIFAR_EPS


def test_images(subject, n: int):
    data = mnist_test("heldout") if is_mnist(subject) else cifar10("test")
    idx = np.sort(np.random.default_rng(0).permutation(len(data))[:n])
    return data.x[idx], data.y[idx], data.name


def predict(subject, x) -> np.ndarray:
    out, _ = el.record(subject, x, [])
    return np.asarray(out).argmax(-1)


def eps_label(eps: float, mnist: bool) -> str:
    return f"{eps:g}" if mnist else f"{round(eps * 255):g}/255"


def curves_figure(curves: dict):
    """One row per model: accuracy (%) against ε for each attack, L∞ (left; ε in levels of 1/255 for CIFAR) and
    L2 (right); the benchmark ε marked; one legend beside the panels."""
    names = list(curves)
    fig, axes = plt.subplots(len(names), 2, figsize=(9.5, 3.1 * len(names) + 0.3), squeeze=False,
                             layout="constrained")
    for row, name in zip(axes, names):
        c = curves[name]
        scale = 1.0 if c["mnist"] else 255.0
        ax = row[0]
        for attack, marker, ls in (("fgsm", "o", "--"), ("pgd_linf", "s", "-")):
            ax.plot(np.asarray(c[attack]["eps"]) * scale, 100 * np.asarray(c[attack]["accuracy"]), marker=marker,
                    ls=ls, color="C0" if attack == "fgsm" else "C1", label=attack.upper().replace("_LINF", " L∞"))
        ax.set_xlabel("ε (L∞, pixel units in [0, 1])" if c["mnist"] else "ε (L∞, levels of 1/255)")
        ax.set_title(f"{name}: L∞")
        ax.axvline(c["benchmark_eps"] * scale, color="0.6", lw=0.8, ls=":", label="benchmark ε")
        ax = row[1]
        ax.plot(c["pgd_l2"]["eps"], 100 * np.asarray(c["pgd_l2"]["accuracy"]), "^-", color="C2", label="PGD L2")
        ax.set_xlabel("ε (L2 norm, pixel units in [0, 1])")
        ax.set_title(f"{name}: L2")
        for a in row:
            a.set_ylim(-3, 103)
            a.set_ylabel("accuracy (%)")
    style.legend_outside(fig, title="attack")
    fig.suptitle("Accuracy under attack (8-bit images)")
    return fig


def examples_figure(name, x, adv, labels, clean_pred, adv_pred, class_names, eps_text):
    """Clean image (true / predicted class), adversarial image (predicted class), perturbation (amplified)."""
    n = len(x)
    fig, axes = plt.subplots(3, n, figsize=(1.7 * n + 0.6, 7.0), squeeze=False, layout="constrained")
    gray = x.shape[-1] == 1
    for i in range(n):
        d = adv[i] - x[i]
        amp = 0.5 + 0.5 * d / max(np.abs(d).max(), 1e-8)
        size = f"{np.abs(d).max():.3g}" if gray else f"{np.abs(d).max() * 255:.3g}/255"
        for r, (img, caption) in enumerate(((x[i], f"true {class_names[labels[i]]}\n→ {class_names[clean_pred[i]]}"),
                                            (adv[i], f"→ {class_names[adv_pred[i]]}"), (amp, f"max |δ| {size}"))):
            ax = axes[r, i]
            img = np.repeat(np.repeat(img, max(1, 128 // img.shape[0]), 0), max(1, 128 // img.shape[1]), 1)
            ax.imshow(np.clip(img[..., 0] if gray else img, 0, 1), cmap="gray" if gray else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xlabel(caption, fontsize=9, color="#C00000" if r == 1 and adv_pred[i] != labels[i] else "k")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
    for r, label in enumerate(("clean", "adversarial", "perturbation\n(amplified)")):
        axes[r, 0].set_ylabel(label)
    fig.suptitle(f"{name}: PGD L∞, ε = {eps_text}")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/adversarial")
    p.add_argument("--quick", action="store_true", help="small version (64 images, 10 PGD steps, coarse ε grids)")
    p.add_argument("--models", nargs="*", default=["cifar_convnet", "cifar_resnet", "mnist_convnet"])
    p.add_argument("--n", type=int, default=None, help="number of test images (default 1000, 64 with --quick)")
    args = p.parse_args(argv)
    q = args.quick
    n = args.n or (64 if q else 1000)
    steps = 10 if q else 40
    n_examples = 6
    key = jax.random.PRNGKey(0)
    out = Path(args.out)
    report = Report("How robust are the bundled models?", out)
    subjects = {m: zoo.load(m) for m in args.models}
    data = {m: test_images(s, n) for m, s in subjects.items()}
    summary = {"n_images": n, "pgd_steps": steps, "models": {}}
    t_start = time.time()

    sec = report.section("Accuracy against ε", f"{n} test images per model. FGSM: one signed-gradient step of size "
                         f"ε. PGD: {steps} steps of 2.5·ε/{steps} from a random start in the ε-ball, projected onto "
                         "the ball and the pixel bounds. Accuracy is measured on the 8-bit quantized attacked "
                         "images; an image counts as broken once any PGD iterate, rounded to 8 bits, is "
                         "misclassified. The grey line marks the benchmark ε.")
    curves, bench_rows = {}, []
    for name, sub in subjects.items():
        x, y, source = data[name]
        linf, l2, bench = grids(sub, q)
        k = jax.random.fold_in(key, len(name))
        t0 = time.time()
        res = {"fgsm": syn.accuracy_vs_eps(sub, x, y, linf, attack="fgsm"),
               "pgd_linf": syn.accuracy_vs_eps(sub, x, y, linf, attack="pgd", norm="linf", steps=steps, key=k),
               "pgd_l2": syn.accuracy_vs_eps(sub, x, y, l2, attack="pgd", norm="l2", steps=steps, key=k)}
        clean = float(np.mean(predict(sub, x) == y))
        c = {a: {"eps": ds.eps.values.tolist(), "accuracy": ds.accuracy.values.tolist(),
                 "mean_linf": ds.linf.values.tolist(), "mean_l2": ds.l2.values.tolist()} for a, ds in res.items()}
        c.update(mnist=is_mnist(sub), benchmark_eps=float(bench), clean_accuracy=clean, data=source,
                 seconds=time.time() - t0)
        i = int(np.argmin(np.abs(linf - bench)))
        c["benchmark"] = {"eps": float(linf[i]), "fgsm": float(res["fgsm"].accuracy.values[i]),
                          "pgd_linf": float(res["pgd_linf"].accuracy.values[i])}
        curves[name] = c
        bench_rows.append((name, source, eps_label(float(linf[i]), c["mnist"]), clean, c["benchmark"]["fgsm"],
                           c["benchmark"]["pgd_linf"]))
        print(f"{name}: clean {clean:.3f}, FGSM {c['benchmark']['fgsm']:.3f}, PGD {c['benchmark']['pgd_linf']:.3f} "
              f"at ε = {eps_label(float(linf[i]), c['mnist'])} ({c['seconds']:.0f} s)", flush=True)
    summary["models"] = curves
    report.figure(sec, curves_figure(curves), "accuracy_vs_eps")
    sec.tables.append(("Benchmark ε (PGD L∞ ε = 8/255 for CIFAR-10, 0.3 for MNIST)",
                       ("model", "images", "ε", "clean accuracy", "FGSM accuracy", f"PGD-{steps} accuracy"),
                       bench_rows))
    for name, c in curves.items():
        for attack in ("fgsm", "pgd_linf", "pgd_l2"):
            sec.tables.append((f"{name}: {attack}", ("ε", "accuracy", "mean L∞", "mean L2"),
                               [(eps_label(e, c["mnist"]) if attack != "pgd_l2" else f"{e:g}", a, li, l2)
                                for e, a, li, l2 in zip(c[attack]["eps"], c[attack]["accuracy"],
                                                        c[attack]["mean_linf"], c[attack]["mean_l2"])]))

    cifar = [m for m, s in subjects.items() if not is_mnist(s)]
    if len(cifar) >= 2:
        sec = report.section("Transfer between the CIFAR models", f"PGD L∞ examples (ε = 8/255, {steps} steps) "
                             "made on the source model (rows) on the same images, classified by the target model "
                             "(columns): accuracy of the target. The diagonal is the white-box attack.")
        x, y, _ = data[cifar[0]]
        adv = {}
        for src in cifar:
            adv[src] = syn.pgd(subjects[src], x, y, CIFAR_EPS, norm="linf", steps=steps,
                               key=jax.random.fold_in(key, 11)).images.values
        table = {src: {tgt: float(np.mean(predict(subjects[tgt], adv[src]) == y)) for tgt in cifar} for src in cifar}
        clean = {tgt: float(np.mean(predict(subjects[tgt], x) == y)) for tgt in cifar}
        summary["transfer"] = {"eps": CIFAR_EPS, "accuracy": table, "clean_accuracy": clean,
                               "rows": "source model", "columns": "target model"}
        sec.tables.append(("Accuracy of the target model (columns) on PGD examples from the source model (rows)",
                           ("source \\ target", *cifar), [(src, *[table[src][t] for t in cifar]) for src in cifar]
                           + [("clean images", *[clean[t] for t in cifar])]))

    sec = report.section("Example adversarial images", "First test images of each model, attacked with PGD L∞ at "
                         "the benchmark ε. Top: the clean image with its true class → the model's prediction; "
                         "middle: the adversarial image and its prediction (red: fooled); bottom: the perturbation, "
                         "scaled to the full grey range.")
    summary["examples"] = {}
    for name, sub in subjects.items():
        x, y, _ = data[name]
        _, _, bench = grids(sub, q)
        xs, ys = x[:n_examples], y[:n_examples]
        a = syn.pgd(sub, xs, ys, bench, norm="linf", steps=steps, key=jax.random.fold_in(key, 5))
        names = list(sub.class_names)
        summary["examples"][name] = {"true": [names[i] for i in ys],
                                     "clean": [names[i] for i in a.clean_prediction.values],
                                     "adversarial": [names[i] for i in a.prediction.values],
                                     "linf": a.linf.values.tolist()}
        report.figure(sec, examples_figure(name, xs, a.images.values, ys, a.clean_prediction.values,
                                           a.prediction.values, names, eps_label(bench, is_mnist(sub))),
                      f"examples_{name}")
    summary["seconds"] = time.time() - t_start

    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = [f"# Adversarial robustness ({n} images, PGD {steps} steps)", "",
             "| model | images | ε | clean | FGSM | PGD L∞ |", "|---|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d:.3f} | {e:.3f} | {f:.3f} |" for a, b, c, d, e, f in bench_rows]
    if "transfer" in summary:
        t = summary["transfer"]["accuracy"]
        lines += ["", "Transfer (PGD L∞ ε = 8/255; rows: source, columns: target accuracy)", "",
                  "| source \\ target | " + " | ".join(cifar) + " |", "|---" * (len(cifar) + 1) + "|"]
        lines += [f"| {s} | " + " | ".join(f"{t[s][g]:.3f}" for g in cifar) + " |" for s in cifar]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
