"""Lesion sweeps against the strongest PyTorch a competent user would write, interleaved in one process.

    INSILICO_DATA=/path/to/data python benchmarks/bench_lesion_speed.py [--repeats 5] [--json PATH]

Two sweeps of ``cifar_convnet/conv3`` (128 channels) on 256 CIFAR-10 test images (natural-image patches without
INSILICO_DATA), each lesion's accuracy, agreement with the intact model and mean |Δ logit|:

- all 128 single-channel lesions;
- 4,096 group lesions (random masks, 10% of the channels each).

Sides, on the same weights and images:

- insilico ``single_unit_sweep`` / ``mask_sweep``, default path (factored at the first linear map after the site,
  chosen automatically) and ``method="plain"`` (the whole network from the site on, per lesion);
- PyTorch, naive: a zeroing forward hook and the whole network per lesion (single-channel sweep only);
- PyTorch, strong: conv1-conv3 once under ``torch.no_grad``, the rest of the network on 16 lesions × 256 images a
  batch (``bench_electrode.torch_lesion_prefix``), for masks too;
- PyTorch, hand-factored: the same algebra as insilico's factored path written by hand for this one architecture
  (zeroing a channel commutes with ReLU and max pooling; fc1 is linear, so each channel's contribution to fc1 is
  computed once and a lesion subtracts it).

All sides run in this process with the same thread count, interleaved (one call of each side per round); the
first call of each (compilation for insilico) is reported apart from the warm calls (median of ``--repeats``),
as wall time and CPU time (user + system of this process). Results are checked equal before timing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_electrode import MODEL, SITE, images, torch_lesion, torch_lesion_prefix, torch_model  # noqa: E402
from common import environment  # noqa: E402

N_IMAGES, N_GROUPS, GROUP_FRACTION, BATCH = 256, 4096, 0.1, 16


def group_masks(n_channels: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((N_GROUPS, n_channels)) < GROUP_FRACTION).astype(np.float32)


def _metrics(out, intact, yt):
    pred = out.argmax(-1)
    return {"accuracy": (pred == yt).float().mean(-1), "agreement": (pred == intact.argmax(-1)).float().mean(-1),
            "logit_change": (out - intact).abs().mean((-2, -1))}


def _collect(parts):
    return {k: np.concatenate([p[k].numpy().reshape(-1) for p in parts]) for k in parts[0]}


# ---------------------------------------------------------------- PyTorch sides
def torch_masks_prefix(x, y, masks):
    """Strong PyTorch for group lesions: the prefix once, 16 masks × 256 images per batch through the rest."""
    import torch

    from insilico.interop.torch_port import to_nchw

    model, xt, yt = torch_model(), to_nchw(x), torch.as_tensor(y)
    names = list(model.convs)
    keep_all = 1 - torch.as_tensor(masks)

    def suffix(a):
        h = torch.nn.functional.max_pool2d(a, 2).permute(0, 2, 3, 1).flatten(1)
        for fc in model.fcs.values():
            h = fc(h)
        return model.logits(h)

    assert names[-1] == SITE

    def go():
        with torch.no_grad():
            h = model.normalize(xt)
            for name in names[:-1]:
                h = torch.nn.functional.max_pool2d(model.convs[name](h), 2)
            site = model.convs[SITE](h)
            intact = suffix(site)
            parts = []
            for start in range(0, len(keep_all), BATCH):
                keep = keep_all[start:start + BATCH, :, None, None]
                out = suffix((site.unsqueeze(0) * keep.unsqueeze(1)).flatten(0, 1)).view(len(keep), len(xt), -1)
                parts.append(_metrics(out, intact, yt))
        return _collect(parts)
    return go


def torch_factored(x, y, masks=None):
    """The factored algebra by hand for this architecture: conv3 → ReLU → 2x2 max pool → flatten → fc1. Zeroing
    channel c commutes with the pooling, so fc1's input loses P[:, c] and fc1's output loses
    D[:, c] = Σ_s P[:, c, s] W[s, c]; one einsum gives every D, a lesion subtracts its channels' D."""
    import torch

    from insilico.interop.torch_port import to_nchw

    model, xt, yt = torch_model(), to_nchw(x), torch.as_tensor(y)
    names = list(model.convs)
    fc1, rest = list(model.fcs.values())[0], list(model.fcs.values())[1:]
    lesions = torch.eye(model.convs[SITE].conv.out_channels) if masks is None else torch.as_tensor(masks)

    def head(h):
        for fc in rest:
            h = fc(h)
        return model.logits(h)

    def go():
        with torch.no_grad():
            h = model.normalize(xt)
            for name in names:
                h = torch.nn.functional.max_pool2d(model.convs[name](h), 2)        # (N, C, 4, 4) after conv3
            n, c = h.shape[:2]
            flat = h.permute(0, 2, 3, 1).flatten(1)
            pre = fc1.dense(flat)                                                  # (N, 256) before the ReLU
            intact = head(torch.relu(pre))
            w = fc1.dense.weight.T.reshape(-1, c, pre.shape[1])                    # (positions, C, 256)
            contrib = torch.einsum("ncs,scd->ncd", h.flatten(2), w)               # (N, C, 256)
            parts = []
            for start in range(0, len(lesions), 4 * BATCH):
                m = lesions[start:start + 4 * BATCH]
                out = head(torch.relu(pre - torch.einsum("mc,ncd->mnd", m, contrib)))
                parts.append(_metrics(out, intact, yt))
        return _collect(parts)
    return go


# ---------------------------------------------------------------- insilico sides
def insilico_single(x, y, method):
    from insilico import zoo
    from insilico.probes.lesion import single_unit_sweep

    s = zoo.load(MODEL)

    def go():
        ds = single_unit_sweep(s, x, SITE, labels=y, method=method, progress=False)
        go.route = ds.attrs["propagation"]
        return {k: ds[k].values for k in ("accuracy", "agreement", "logit_change")}
    return go


def insilico_masks(x, y, masks, method):
    from insilico import zoo
    from insilico.probes.lesion import mask_sweep

    s = zoo.load(MODEL)

    def go():
        ds = mask_sweep(s, x, SITE, masks, labels=y, method=method, progress=False)
        go.route = ds.attrs["propagation"]
        return {k: ds[k].values for k in ("accuracy", "agreement", "logit_change")}
    return go


def _cpu():
    t = os.times()
    return t.user + t.system


def _call(fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def compare(sides: dict, reference: str):
    """Every side's results against ``reference`` (top-1 may flip on an exact near-tie: one image in 256)."""
    ref = sides[reference]["first_out"]
    for name, side in sides.items():
        out = side["first_out"]
        for k in ("accuracy", "agreement"):
            np.testing.assert_allclose(out[k], ref[k], atol=1.5 / N_IMAGES, err_msg=f"{name} {k}")
        np.testing.assert_allclose(out["logit_change"], ref["logit_change"], rtol=1e-3, atol=1e-5,
                                   err_msg=f"{name} logit_change")


def run(cases: dict, repeats: int) -> dict:
    """First call of every side (results kept for the check), then ``repeats`` interleaved rounds."""
    results = {}
    for name, fn in cases.items():
        out, wall, cpu = _call(fn)
        results[name] = {"first_out": out, "first_s": wall, "first_cpu_s": cpu, "walls": [], "cpus": [],
                         "route": getattr(fn, "route", "")}
    for _ in range(repeats):
        for name, fn in cases.items():
            if name.endswith("naive") and len(results[name]["walls"]) >= 1:
                continue                                         # the naive loop is slow and steady: one warm call
            _, wall, cpu = _call(fn)
            results[name]["walls"].append(wall)
            results[name]["cpus"].append(cpu)
    for r in results.values():
        r["warm_s"], r["warm_cpu_s"] = statistics.median(r["walls"]), statistics.median(r["cpus"])
    return results


def table(title: str, results: dict, strongest: str) -> str:
    base = results[strongest]
    rows = [f"**{title}** — ratios are PyTorch {strongest.split(': ')[-1]} time / this side's time\n",
            "| side | first call (wall / CPU) | warm (wall / CPU) | vs strongest PyTorch, warm | incl. first call |",
            "|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['first_s']:.3f} / {r['first_cpu_s']:.2f} s | {r['warm_s']:.3f} / "
                    f"{r['warm_cpu_s']:.2f} s | {base['warm_s'] / r['warm_s']:.2f}x | "
                    f"{base['first_s'] / r['first_s']:.2f}x |")
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    import torch

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    x, y, source = images(N_IMAGES)
    masks = group_masks(128)
    single = {"insilico (factored, auto)": insilico_single(x, y, "auto"),
              "insilico (plain)": insilico_single(x, y, "plain"),
              "PyTorch: naive": torch_lesion(x, y),
              "PyTorch: prefix + batched": torch_lesion_prefix(x, y),
              "PyTorch: hand-factored": torch_factored(x, y)}
    groups = {"insilico (factored, auto)": insilico_masks(x, y, masks, "auto"),
              "PyTorch: prefix + batched": torch_masks_prefix(x, y, masks),
              "PyTorch: hand-factored": torch_factored(x, y, masks)}
    print(f"{environment()}; {threads} threads each side; images: {source}", flush=True)
    out = {}
    for title, cases in (("128 single-channel lesions of conv3, 256 images", single),
                         (f"{N_GROUPS:,} group lesions of conv3 (10% of channels each), 256 images", groups)):
        res = run(cases, args.repeats)
        compare(res, "PyTorch: prefix + batched")
        print(f"route: {res['insilico (factored, auto)']['route']}")
        print(table(title, res, "PyTorch: prefix + batched"), flush=True)
        out[title] = {k: {m: v for m, v in r.items() if m != "first_out"} for k, r in res.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "results": out}, f, indent=1)


if __name__ == "__main__":
    main()
