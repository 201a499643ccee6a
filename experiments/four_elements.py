"""The four things a modeller manipulates — architecture, learning rule, objective, input statistics — compared on
the same stimuli (Kietzmann, McClure & Kriegeskorte 2019).

    INSILICO_DATA=/path/to/data python experiments/four_elements.py --out results/four_elements [--quick]

Every variant is trained on CIFAR-10 with one recipe (Adam, one-cycle schedule, flips and crops; --quick: a small
subset for a few epochs) and then measured on the same images:
- accuracy on the CIFAR-10 test set, and under Gaussian pixel noise (σ = 0.1) and occlusion (a grey square of
  a third of the image side at a random place); stochastic units stay noisy at test time (one draw per image);
  for self-supervised objectives, a linear readout (ridge classifier) of the penultimate site trained on up to
  5,000 training images;
- RSA with the brain: every site's correlation-distance RDM of the 92 object images (shrunk to 32 px) against
  human IT (Kriegeskorte et al. 2008) and the 15 subjects' EVC (Cichy et al. 2014); best site per region by
  Pearson correlation of RDMs, with noise ceilings.

Variants: architecture — feed-forward ConvNet, recurrent BLT (4 time steps), B (the same net, no recurrence),
locally connected, stochastic (Gaussian noise in every conv stage); learning rule — an MLP and the ConvNet by
backpropagation vs by feedback alignment (with the angle between the two rules' gradients); objective — classification vs SimCLR contrastive (linear
readout); input statistics — the ConvNet trained on a grayscale and on a blurred world. Writes results.json,
results.md, figures and index.html to --out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insilico.data import cifar10, objects92, objects92_region_rdms  # noqa: E402
from insilico.data.worlds import transform  # noqa: E402
from insilico.models import MLP, BLTNet, ConvNet  # noqa: E402
from insilico.models.spec import model_spec  # noqa: E402
from insilico.probes import brain  # noqa: E402
from insilico.report import Report, style  # noqa: E402
from insilico.subject import InputSpec, make_subject  # noqa: E402
from insilico.train import TrainConfig, fit  # noqa: E402
from insilico.train.objectives import Contrastive  # noqa: E402
from insilico.train.rules import gradient_alignment  # noqa: E402
from insilico.zoo import CIFAR_MEAN, CIFAR_STD  # noqa: E402

style.use()

NORM = {"mean": CIFAR_MEAN, "std": CIFAR_STD}


def variants(quick: bool, widths=None, steps=None) -> dict:
    """name → (element, model, objective, world options). Every conv net has the same widths."""
    w = tuple(widths or ((8, 16, 32) if quick else (16, 32, 64)))
    steps = steps or (2 if quick else 4)
    return {
        "ConvNet (feed-forward)": ("architecture", ConvNet(widths=w, fc=(128,), **NORM), None, {}),
        "BLT (recurrent)": ("architecture", BLTNet(widths=w, steps=steps, **NORM), None, {}),
        "B (BLT without recurrence)": ("architecture", BLTNet(widths=w, steps=steps, lateral=False, topdown=False,
                                                              **NORM), None, {}),
        "locally connected": ("architecture", ConvNet(widths=w, fc=(128,), local=True, norm=False, **NORM), None, {}),
        "stochastic units": ("architecture", ConvNet(widths=w, fc=(128,), noise=0.5, **NORM), None, {}),
        "MLP, backprop": ("learning rule", MLP(widths=(512, 256), **NORM), None, {}),
        "MLP, feedback alignment": ("learning rule", MLP(widths=(512, 256), learning_rule="feedback_alignment",
                                                          **NORM), None, {}),
        "ConvNet, feedback alignment": ("learning rule", ConvNet(widths=w, fc=(128,), learning_rule="feedback_alignment",
                                                                 **NORM), None, {}),
        "ConvNet, contrastive (SimCLR)": ("objective", ConvNet(widths=w, fc=(128,), num_classes=64, **NORM),
                                          Contrastive(), {}),
        "ConvNet, grayscale world": ("input statistics", ConvNet(widths=w, fc=(128,), **NORM), None,
                                     {"grayscale": True}),
        "ConvNet, blurred world": ("input statistics", ConvNet(widths=w, fc=(128,), **NORM), None, {"blur": 1.0}),
    }


def perturb(x, kind: str, key):
    k1, k2 = jax.random.split(key)
    if kind == "noise":
        return np.clip(x + 0.1 * np.asarray(jax.random.normal(k1, x.shape)), 0, 1).astype(np.float32)
    n, h = x.shape[:2]
    side = h // 3
    pos = np.asarray(jax.random.randint(k2, (n, 2), 0, h - side + 1))
    out = x.copy()
    for i, (r, c) in enumerate(pos):
        out[i, r:r + side, c:c + side] = 0.5
    return out


def predict(subject, x, key, batch_size: int = 500) -> np.ndarray:
    """Predicted classes; stochastic units draw their noise from ``key`` (deterministic models ignore it)."""
    from insilico import electrode

    out = [np.argmax(np.asarray(electrode.run(subject, x[i:i + batch_size], key=jax.random.fold_in(key, i))[0]), -1)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def linear_readout(subject, site: str, train, test, n_train: int) -> float:
    """Held-out accuracy of a ridge classifier on a site's responses (self-supervised models)."""
    from sklearn.linear_model import RidgeClassifierCV

    pick = np.sort(np.random.default_rng(1).choice(len(train.y), n_train, replace=False))   # every class, not the
    ftr = brain.record_sites(subject, train.x[pick], [site])[site]                       # first (class-sorted) n
    fte = brain.record_sites(subject, test.x, [site])[site]
    clf = RidgeClassifierCV(alphas=np.logspace(-2, 4, 7)).fit(ftr, train.y[pick])
    return float(clf.score(fte, test.y))


def fingerprint(variant: tuple, config: dict) -> str:
    """A digest of how a variant's numbers were made: the model, objective, world and training settings."""
    element, model, objective, world = variant
    made = {"model": model_spec(model), "objective": repr(objective), "world": world, "config": config}
    return hashlib.sha256(json.dumps(made, sort_keys=True, default=str).encode()).hexdigest()[:16]


def row(element: str, name: str, entry: dict) -> tuple:
    return (element, name, entry["accuracy"], entry["accuracy_noise"], entry["accuracy_occlusion"],
            entry["rsa_human IT"], entry["best_site_human IT"], entry["rsa_EVC"], entry["best_site_EVC"])


def variants_figure(rows, ceil: dict):
    """Per variant (one row each): test accuracy clean / with noise / with occlusion (left), and RSA of the best
    site with human IT and EVC (right; dotted: each region's lower noise ceiling); legends beside the panels."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(rows) + 1.6), sharey=True, layout="constrained")
    names = [r[1] for r in rows]
    y = np.arange(len(rows))
    for j, (label, idx) in enumerate((("clean", 2), ("noise", 3), ("occlusion", 4))):
        axes[0].barh(y + 0.27 * (j - 1), [r[idx] for r in rows], 0.27, label=label)
    axes[0].set_xlabel("test accuracy (fraction)")
    axes[0].set_title("Accuracy")
    style.legend_outside(axes[0], title="test images")
    bars, lines = [], []
    for j, (label, idx) in enumerate((("human IT", 5), ("EVC", 7))):
        bars.append(axes[1].barh(y + 0.35 * (j - 0.5), [r[idx] for r in rows], 0.35, label=label,
                                 color=f"C{j + 3}"))
        lines.append(axes[1].axvline(ceil[label][0], color=f"C{j + 3}", ls=":", lw=1.2,
                                     label=f"{label} lower noise ceiling"))
    axes[1].set_xlabel("RSA of the best site (Pearson r)")
    axes[1].set_title("Similarity to the brain")
    style.legend_outside(axes[1], bars + lines, title="region")
    axes[0].set_yticks(y, names)
    axes[0].set_ylabel("variant")
    axes[0].invert_yaxis()
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/four_elements")
    p.add_argument("--quick", action="store_true", help="2,000 training images, 2 epochs, 500 test images")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 10; 2 with --quick)")
    p.add_argument("--widths", default=None, help="channels of the three conv stages of every conv net, e.g. "
                   "32,64,128 (default 16,32,64; 8,16,32 with --quick)")
    p.add_argument("--steps", type=int, default=None, help="time steps of the recurrent nets (default 4; 2 with "
                   "--quick)")
    p.add_argument("--n-train", type=int, default=None, help="training images (default all 50,000)")
    p.add_argument("--only", nargs="+", default=None, help="variant names to run (default all)")
    args = p.parse_args(argv)
    q = args.quick
    out = Path(args.out)
    report = Report("The four elements: architecture, learning rule, objective, input statistics", out)
    train, test = cifar10("train"), cifar10("test")
    n_train = args.n_train or (2000 if q else len(train.y))
    rng = np.random.default_rng(0)
    train = train.subset(np.sort(rng.choice(len(train.y), n_train, replace=False)))
    test = test.subset(np.sort(rng.choice(len(test.y), 500 if q else len(test.y), replace=False)))
    cfg = TrainConfig(epochs=args.epochs or (2 if q else 10), batch_size=128, lr=2e-3, optimizer="adam",
                      weight_decay=5e-4, augment="flip_crop")
    images92 = objects92(32).x
    regions = objects92_region_rdms()
    regions = {"human IT": regions["human IT"], "EVC": regions["EVC"]}
    widths = None
    if args.widths is not None:
        widths = tuple(int(v) for v in args.widths.split(",") if v.strip())
        if len(widths) != 3 or min(widths) < 1:
            raise SystemExit(f"--widths takes three positive channel counts, e.g. 32,64,128; got {args.widths!r}")
    if args.steps is not None and args.steps < 1:
        raise SystemExit(f"--steps must be at least 1; got {args.steps}")
    everything = variants(q, widths, args.steps)
    chosen = everything
    if args.only:
        unknown = set(args.only) - set(chosen)
        if unknown:
            raise SystemExit(f"unknown variants {sorted(unknown)}; available: {', '.join(chosen)}")
        chosen = {k: v for k, v in chosen.items() if k in args.only}
    config = {"n_train": n_train, "n_test": len(test.y), "train": asdict(cfg),
              "widths": list(everything["ConvNet (feed-forward)"][1].widths),
              "steps": everything["BLT (recurrent)"][1].steps}
    prints = {name: fingerprint(v, config) for name, v in everything.items()}
    summary = {"config": config, "variants": {}}
    results = out / "results.json"
    if results.exists():           # finished variants of an earlier or interrupted run, if made the same way
        previous = json.loads(results.read_text())
        summary["variants"] = {n: e for n, e in previous.get("variants", {}).items()
                               if e.get("fingerprint") == prints.get(n)}
        stale = sorted(set(previous.get("variants", {})) - set(summary["variants"]))
        if stale:
            shutil.copy(results, out / "results.json.bak")
            print(f"{results}: {', '.join(stale)} were made with other settings; not reused (old file kept as "
                  "results.json.bak)", flush=True)
        if summary["variants"] and previous.get("ceilings"):
            summary["ceilings"] = previous["ceilings"]
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for name, (element, model, objective, world) in chosen.items():
        if name in summary["variants"]:
            print(f"{name}: kept from {results}", flush=True)
            continue
        t = time.time()
        data = transform(train, **world) if world else train
        result = fit(model, data, None if objective else test, cfg, progress=False, objective=objective)
        subject = make_subject(name, model, result.variables, InputSpec((32, 32, 3), (0.0, 1.0), CIFAR_MEAN,
                                                                       CIFAR_STD), train.class_names)
        sites = list(subject.sites)
        entry = {"element": element, "fingerprint": prints[name], "train_seconds": time.time() - t}
        if objective is None:
            key = jax.random.PRNGKey(200)
            entry["accuracy"] = float(np.mean(predict(subject, np.asarray(test.x), key) == test.y))
            for kind in ("noise", "occlusion"):
                xp = perturb(np.asarray(test.x), kind, jax.random.PRNGKey(100))      # the same for every variant
                entry[f"accuracy_{kind}"] = float(np.mean(predict(subject, xp, key) == test.y))
        else:
            site = [s for s in sites if s != "logits"][-1]
            entry["accuracy"] = linear_readout(subject, site, train, test, min(n_train, 5000))
            entry["readout_site"] = site
            for kind in ("noise", "occlusion"):
                xp = perturb(np.asarray(test.x), kind, jax.random.PRNGKey(100))
                noisy = test.__class__(xp, test.y, test.class_names, test.name)
                entry[f"accuracy_{kind}"] = linear_readout(subject, site, train, noisy, min(n_train, 5000))
        if getattr(model, "learning_rule", "backprop") == "feedback_alignment":
            entry["gradient_alignment_deg"] = gradient_alignment(model, result.variables, test.x[:500],
                                                                 test.y[:500])
        ds = brain.rsa_by_site(subject, images92, regions, method="corr")
        for r in regions:
            scores = ds.score.sel(region=r)
            entry[f"rsa_{r}"] = float(scores.max())
            entry[f"best_site_{r}"] = str(scores.idxmax().item())
        entry["rsa_profile"] = {r: dict(zip(map(str, ds.site.values), ds.score.sel(region=r).values.tolist()))
                                for r in regions}
        summary["ceilings"] = {r: [float(ds.ceiling_lower.sel(region=r)), float(ds.ceiling_upper.sel(region=r))]
                               for r in regions}
        summary["variants"][name] = entry
        results.write_text(json.dumps(summary, indent=1, default=float))      # after every variant
        print(f"{name}: accuracy {entry['accuracy']:.3f} (noise {entry['accuracy_noise']:.3f}, occlusion "
              f"{entry['accuracy_occlusion']:.3f}); RSA human IT {entry['rsa_human IT']:.3f} "
              f"({entry['best_site_human IT']}), EVC {entry['rsa_EVC']:.3f} ({entry['best_site_EVC']}) "
              f"({time.time() - t0:.0f} s)", flush=True)
    summary["seconds"] = time.time() - t0
    # every finished variant made with these settings, in the canonical order (also those of earlier runs)
    summary["variants"] = {n: summary["variants"][n] for n in everything if n in summary["variants"]}
    rows = [row(everything[n][0], n, e) for n, e in summary["variants"].items()]

    header = ("element", "variant", "accuracy", "with noise", "with occlusion", "RSA human IT", "site",
              "RSA EVC", "site")
    ceil = summary["ceilings"]
    sec = report.section("Accuracy, robustness and similarity to the brain",
                         f"CIFAR-10, {n_train} training images, {cfg.epochs} epochs; {len(test.y)} test images. "
                         "Self-supervised variants: ridge readout of the penultimate site. RSA: Pearson "
                         "correlation of correlation-distance RDMs on the 92 images, best site; noise ceilings "
                         + "; ".join(f"{r} {lo:.3f}–{hi:.3f}" for r, (lo, hi) in ceil.items()) + ".")
    sec.tables.append(("Per variant", header, rows))
    fig = variants_figure(rows, ceil)
    report.figure(sec, fig, "four_elements")
    fa = {n: e["gradient_alignment_deg"] for n, e in summary["variants"].items() if "gradient_alignment_deg" in e}
    if fa:
        layers = sorted({layer for angles in fa.values() for layer in angles}, key=lambda s: (s[0] != "c", s))
        sec = report.section("Feedback alignment: how close to backpropagation",
                             "Angle (degrees) between each layer's kernel gradient under feedback alignment and "
                             "under backpropagation on the same weights, after training, 500 test images; 90° = "
                             "unrelated, 0° = backpropagation's direction.")
        sec.tables.append(("Gradient angle by layer", ("variant", *layers),
                           [(n, *(f"{a[layer]:.1f}" if layer in a else "" for layer in layers))
                            for n, a in fa.items()]))
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    lines = [f"# Four elements (CIFAR-10, {n_train} images, {cfg.epochs} epochs)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    report.write()
    print(f"wrote {out / 'index.html'}")
    return summary


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
