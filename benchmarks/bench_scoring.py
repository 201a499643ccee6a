"""Scoring every site of an ImageNet network against neurons: insilico's streaming reductions vs recording first.

    python benchmarks/bench_scoring.py [--arch resnet50] [--size 224] [--n 1200] [--scale-n 12000] [--quick]
                                       [--json PATH]

A randomly initialized network (``--arch``: resnet18, resnet34 or resnet50), every site, ``--n`` synthetic images
(uniform noise) and ``--neurons`` synthetic responses (a fixed random readout of the block-averaged pixels through
tanh, plus noise). Every site is projected to ``--dims`` random Gaussian components (the same matrices on both
sides: :func:`insilico.probes.streaming.random_matrix`) and scored by ridge with nested cross-validation over the
same ``--splits`` folds.

Sides, each in a fresh process (peak memory is that process's max RSS):

- **streaming**: :func:`insilico.probes.streaming.encoding_scores` — the projections drawn inside the compiled
  forward pass, per-fold moments accumulated there; nothing n-sized kept but the responses.
- **hooks**: what a Brain-Score user runs — activations of every site recorded batch by batch and projected by a
  hook onto stored projection matrices (Brain-Score's ``LayerPCA`` holds 1,000 components per layer; here the same
  random matrices as the streaming side, so the numbers can be compared), the projected features of all stimuli
  kept, then ridge per outer fold (:func:`insilico.analysis.encoding.ridge_cv` on the training folds).
- **record**: every site's activations of every stimulus recorded (:func:`insilico.probes.brain.record_sites`),
  then projected and fitted as above; run only when its estimated size fits in half the machine's memory.

Reported: wall time, peak RSS, the ratios, the largest difference between the sides' held-out r (float32
projections in different programs: differences of float32 rounding), and the streaming side's peak RSS at ``--n``
and at ``--scale-n`` stimuli (the same images repeated, read lazily, at ``--scale-size`` pixels).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, peak_rss_mb, run_worker

ARCHS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3), "tiny": (1, 1, 1, 1)}


def subject(arch: str, size: int):
    import jax
    import jax.numpy as jnp

    from insilico.models import ResNet18, ResNet50
    from insilico.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
    from insilico.subject import InputSpec, make_subject

    if arch == "resnet50":
        model = ResNet50()
    elif arch == "tiny":
        model = ResNet18(layers=ARCHS[arch], widths=(8, 16, 32, 64), num_classes=10)
    else:
        model = ResNet18(layers=ARCHS[arch])
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, size, size, 3)))
    return make_subject(arch, model, variables, InputSpec((size, size, 3), (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD))


class Repeated:
    """``n`` images cycling through ``base`` (read lazily: nothing n-sized is made)."""

    def __init__(self, base, n):
        self.base, self.n = base, n

    def __len__(self):
        return self.n

    def __getitem__(self, sl):
        idx = np.arange(self.n)[sl] % len(self.base)
        return self.base[idx]


def data(n: int, size: int, neurons: int, splits: int):
    """Images (lazy, cycling through at most 1,200 distinct ones), responses and folds."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (min(n, 1200), size, size, 3)).astype(np.float32)
    pooled = base.reshape(len(base), 8, size // 8, 8, size // 8, 3).mean((2, 4)).reshape(len(base), -1)
    drive = (pooled - pooled.mean(0)) / pooled.std(0) @ rng.normal(size=(pooled.shape[1], neurons)) / 10
    y = np.tanh(drive) + 0.3 * rng.normal(size=drive.shape)
    y = y[np.arange(n) % len(base)]
    folds = np.arange(n) % splits
    rng.shuffle(folds)
    return Repeated(base, n) if n > len(base) else base, y, folds


def streaming(s, x, y, folds, dims, batch, max_bytes):
    import jax

    from insilico.probes import streaming as st

    ds = st.encoding_scores(s, x, y, folds=folds, dims=dims, projection="random", key=jax.random.key(1),
                            batch_size=batch, max_bytes=max_bytes)
    return ds.r.transpose("site", "split", "neuroid").values, list(ds.site.values), ds.attrs


def recorded(s, x, y, folds, dims, batch, side):
    """The hooks side (project each batch while recording) or the record side (record all, then project)."""
    import jax

    from insilico import electrode as el
    from insilico.analysis.encoding import pearson_columns, ridge_cv
    from insilico.probes import brain
    from insilico.probes import streaming as st

    _, k_proj = jax.random.split(jax.random.key(1))
    sites = list(s.sites)
    units = {t: int(np.prod(s.sites[t])) for t in sites}
    w = {t: st.random_matrix(k_proj, sites.index(t), units[t], dims) for t in sites if units[t] > dims}
    if side == "record":
        rec = brain.record_sites(s, np.asarray(x), sites, batch_size=batch)
        feats = {t: (rec.pop(t) @ w[t] if t in w else rec.pop(t)) for t in sites}
    else:
        parts: dict = {t: [] for t in sites}
        for i in range(0, len(x), batch):
            _, acts = el.record(s, np.asarray(x[i:i + batch]), sites)
            for t in sites:
                a = np.asarray(acts[t]).reshape(len(acts[t]), -1)
                parts[t].append(a @ w[t] if t in w else a)
        feats = {t: np.concatenate(parts[t]).astype(np.float64) for t in sites}
    k = folds.max() + 1
    r = np.zeros((len(sites), k, y.shape[1]))
    for i, t in enumerate(sites):
        for o in range(k):
            tr = np.concatenate([np.flatnonzero(folds == g) for g in range(k) if g != o])
            model = ridge_cv(feats[t][tr], y[tr], n_folds=k - 1)
            r[i, o] = pearson_columns(model.predict(feats[t][folds == o]), y[folds == o])
    return r, sites, {}


def worker(side, arch, size, n, neurons, dims, splits, batch, max_bytes):
    size, n, neurons, dims, splits, batch = map(int, (size, n, neurons, dims, splits, batch))
    s = subject(arch, size)
    x, y, folds = data(n, size, neurons, splits)
    before = peak_rss_mb()
    t = time.perf_counter()
    r, sites, attrs = (streaming(s, x, y, folds, dims, batch, float(max_bytes)) if side == "streaming" else
                       recorded(s, x, y, folds, dims, batch, side))
    wall = time.perf_counter() - t
    out = {"side": side, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before, "sites": sites,
           "r": np.nan_to_num(r, nan=9.0).tolist(), "raw": [float(np.nanmedian(np.nanmean(a, 0))) for a in r]}
    out.update({k: v for k, v in attrs.items() if k.startswith("preflight_") and isinstance(v, (int, float))})
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet50", choices=sorted(ARCHS))
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--n", type=int, default=1200)
    p.add_argument("--scale-n", type=int, default=12000, help="stimuli for the streaming side's memory check (0: none)")
    p.add_argument("--scale-size", type=int, default=None, help="image size of the memory check (default --size)")
    p.add_argument("--neurons", type=int, default=50)
    p.add_argument("--dims", type=int, default=1000)
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-bytes", type=float, default=2e9, help="the streaming side's memory budget")
    p.add_argument("--sides", default="streaming,hooks,record")
    p.add_argument("--quick", action="store_true", help="a tiny ResNet at 32 px, 48 images: seconds")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--worker", nargs=9)
    a = p.parse_args()
    if a.worker:
        return worker(*a.worker)
    if a.quick:
        a.arch, a.size, a.n, a.scale_n, a.neurons, a.dims, a.splits, a.batch = "tiny", 32, 48, 480, 5, 64, 3, 16
    scale_size = a.scale_size or a.size
    s = subject(a.arch, a.size)
    total_units = sum(int(np.prod(u)) for u in s.sites.values())
    held = sum(int(np.prod(u)) * a.dims * 4 for u in s.sites.values() if np.prod(u) > a.dims)
    need = {"record": a.n * total_units * 12 / 1e9,              # float32 batches joined, then float64 per site
            "hooks": held / 1e9 + a.n * len(s.sites) * a.dims * 12 / 1e9}    # matrices + projected features
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    res = {}
    for side in a.sides.split(","):
        if need.get(side, 0) > ram_gb / 2:
            res[side] = {"skipped": f"needs about {need[side]:.1f} GB (machine: {ram_gb:.0f} GB)"}
            print(side, res[side], flush=True)
            continue
        res[side] = run_worker(__file__, side, a.arch, a.size, a.n, a.neurons, a.dims, a.splits, a.batch,
                               a.max_bytes)
        print(side, {k: v for k, v in res[side].items() if k not in ("r", "sites")}, flush=True)
    ref = res["streaming"]
    for side, r in res.items():
        if side != "streaming" and "r" in r:
            diff = np.abs(np.asarray(r["r"]) - np.asarray(ref["r"]))
            r["max_abs_diff_r"] = float(diff.max())
            r["time_ratio"] = r["wall_s"] / ref["wall_s"]
            r["memory_ratio"] = r["peak_rss_mb"] / ref["peak_rss_mb"]
            print(f"{side}: max |Δr| vs streaming {diff.max():.2e}, time x{r['time_ratio']:.2f}, peak RSS "
                  f"x{r['memory_ratio']:.2f}", flush=True)
    scale = {}
    for n in (a.n, a.scale_n) if a.scale_n else ():
        scale[n] = run_worker(__file__, "streaming", a.arch, scale_size, n, a.neurons, a.dims, a.splits, a.batch,
                              a.max_bytes)
        print(f"streaming at {n} stimuli ({scale_size} px): peak RSS {scale[n]['peak_rss_mb']:.0f} MB, "
              f"{scale[n]['wall_s']:.1f} s", flush=True)
    row = {"arch": a.arch, "size": a.size, "n": a.n, "sites": len(s.sites), "units_per_image": total_units,
           "activation_mb_per_image": total_units * 4 / 1e6, "neurons": a.neurons, "dims": a.dims,
           "splits": a.splits, "batch": a.batch, "sides": {k: {q: v for q, v in r.items() if q not in ("r",)}
                                                           for k, r in res.items()},
           "scale_size": scale_size, "scale": {str(n): {q: v for q, v in r.items() if q not in ("r",)}
                                               for n, r in scale.items()},
           "environment": environment()}
    print(json.dumps({k: v for k, v in row.items() if k not in ("sides", "scale")}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
