"""Recording and single-unit lesion sweeps: insilico (JAX) vs a PyTorch forward-hook loop, same weights.

    python benchmarks/bench_electrode.py [--repeats 5] [--write]

1. record: all sites of cifar_convnet on 1,024 images (one jit call vs forward hooks on every stage).
2. lesion: all 128 single-channel lesions of cifar_convnet/conv3 on 256 CIFAR test images, measuring
   accuracy, agreement with the intact model and mean |Δ logit| per lesion (one compiled lax.map sweep vs two
   PyTorch versions: the naive one, a Python loop over units with a zeroing forward hook that reruns the whole
   network per lesion; and the strong one a competent user would write, conv1-conv3 computed once and the rest
   of the network run on 16 lesions × 256 images at a time).
Results are checked equal before timing; each side is timed in a fresh process (peak RSS is that process's).
Uses CIFAR-10 test images from INSILICO_DATA when set, else natural-image patches.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, peak_rss_mb, run_worker, timed, update_docs  # noqa: E402

MODEL, SITE = os.environ.get("BENCH_MODEL", "cifar_convnet"), "conv3"


def images(n):
    if os.environ.get("INSILICO_DATA"):
        from insilico.data import cifar10

        d = cifar10("test", np.random.default_rng(0).permutation(10000)[:n])      # only these decoded
        return d.x, d.y, "CIFAR-10 test"
    import jax

    from insilico.data.stimuli import natural_patches

    return natural_patches(jax.random.PRNGKey(0), n, 32, 3, scale=4), np.zeros(n, np.int32), "photo patches"


# ---------------------------------------------------------------- JAX side
def jax_record(x):
    import jax
    import jax.numpy as jnp

    from insilico import electrode as el
    from insilico import zoo

    s = zoo.load(MODEL)
    x = jnp.asarray(x)
    return lambda: jax.block_until_ready(el.record(s, x))


def jax_lesion(x, y, batch_size):
    from insilico import zoo
    from insilico.probes.lesion import single_unit_sweep

    s = zoo.load(MODEL)

    def go():
        ds = single_unit_sweep(s, x, SITE, labels=y, batch_size=batch_size)
        return {k: ds[k].values for k in ("accuracy", "agreement", "logit_change")}
    return go


# ---------------------------------------------------------------- PyTorch side
def torch_model():
    import torch

    from insilico import zoo
    from insilico.interop.torch_port import to_torch

    torch.set_num_threads(os.cpu_count())
    return to_torch(zoo.load(MODEL))


def torch_record(x):
    import torch

    from insilico.interop.torch_port import to_nchw

    model, xt = torch_model(), to_nchw(x)
    store = {}
    for name, m in model.sites().items():
        m.register_forward_hook(lambda mod, inp, out, name=name: store.__setitem__(name, out))

    def go():
        with torch.no_grad():
            model(xt)
        return {k: v.numpy() for k, v in store.items()}
    return go


def torch_lesion(x, y):
    import torch

    from insilico.interop.torch_port import to_nchw

    model, xt, yt = torch_model(), to_nchw(x), torch.as_tensor(y)
    site = model.sites()[SITE]
    unit = {"u": None}

    def zero(mod, inp, out):
        if unit["u"] is not None:
            out = out.clone()
            out[:, unit["u"]] = 0
        return out

    site.register_forward_hook(zero)

    def go():
        res = {"accuracy": [], "agreement": [], "logit_change": []}
        with torch.no_grad():
            unit["u"] = None
            intact = model(xt)
            for u in range(site.conv.out_channels):
                unit["u"] = u
                out = model(xt)
                pred = out.argmax(-1)
                res["accuracy"].append((pred == yt).float().mean().item())
                res["agreement"].append((pred == intact.argmax(-1)).float().mean().item())
                res["logit_change"].append((out - intact).abs().mean().item())
        return {k: np.asarray(v) for k, v in res.items()}
    return go


def torch_lesion_prefix(x, y, group=16):
    """The strong PyTorch baseline: the lesion-independent prefix (up to the site) once, then the suffix for
    ``group`` lesions at a time as one batch of group × images."""
    import torch

    from insilico.interop.torch_port import to_nchw

    model, xt, yt = torch_model(), to_nchw(x), torch.as_tensor(y)
    names = list(model.convs)
    n_units = model.convs[SITE].conv.out_channels

    def suffix(a):
        h = torch.nn.functional.max_pool2d(a, 2)
        for name in names[names.index(SITE) + 1:]:
            h = torch.nn.functional.max_pool2d(model.convs[name](h), 2)
        h = h.permute(0, 2, 3, 1).flatten(1)
        for fc in model.fcs.values():
            h = fc(h)
        return model.logits(h)

    def go():
        with torch.no_grad():
            h = model.normalize(xt)
            for name in names[:names.index(SITE)]:
                h = torch.nn.functional.max_pool2d(model.convs[name](h), 2)
            site = model.convs[SITE](h)                                          # (N, C, H, W), once
            intact = suffix(site)
            res = {"accuracy": [], "agreement": [], "logit_change": []}
            for start in range(0, n_units, group):
                units = torch.arange(start, min(start + group, n_units))
                keep = torch.ones(len(units), n_units, 1, 1)
                keep[torch.arange(len(units)), units] = 0
                batch = (site.unsqueeze(0) * keep.unsqueeze(1)).flatten(0, 1)     # (G·N, C, H, W)
                out = suffix(batch).view(len(units), len(xt), -1)
                pred = out.argmax(-1)
                res["accuracy"] += (pred == yt).float().mean(1).tolist()
                res["agreement"] += (pred == intact.argmax(-1)).float().mean(1).tolist()
                res["logit_change"] += (out - intact).abs().mean((1, 2)).tolist()
        return {k: np.asarray(v) for k, v in res.items()}
    return go


def make(bench, side, batch_size=32):
    if bench == "record":
        x, _, _ = images(1024)
        return jax_record(x) if side == "jax" else torch_record(x)
    x, y, _ = images(256)
    if side == "torch_prefix":
        return torch_lesion_prefix(x, y)
    return jax_lesion(x, y, batch_size) if side == "jax" else torch_lesion(x, y)


def check():
    """Both sides compute the same thing before anything is timed."""
    import jax

    from insilico import electrode as el
    from insilico import zoo

    x, _, _ = images(64)
    tr = torch_record(x)()
    _, jr = el.record(zoo.load(MODEL), x)
    for k, v in jr.items():
        t = tr[k] if v.ndim == 2 else np.transpose(tr[k], (0, 2, 3, 1))
        np.testing.assert_allclose(np.asarray(v), t, rtol=1e-4, atol=1e-4, err_msg=k)
    x, y, _ = images(256)
    j = jax_lesion(x, y, 32)()
    for t in (torch_lesion(x, y)(), torch_lesion_prefix(x, y)()):
        # top-1 may flip on an exact near-tie between float32 implementations: allow one image in 256
        np.testing.assert_allclose(j["accuracy"], t["accuracy"], atol=1.5 / 256)
        np.testing.assert_allclose(j["agreement"], t["agreement"], atol=1.5 / 256)
        np.testing.assert_allclose(j["logit_change"], t["logit_change"], rtol=1e-3, atol=1e-5)
    flips = int(np.sum(np.abs(j["agreement"] - t["agreement"]) > 0))
    del jax
    return f"recordings equal (atol 1e-4) on all {len(jr)} sites; lesion metrics equal on {128 - flips}/128 units"


def worker(bench, side, repeats, batch_size):
    fn = make(bench, side, int(batch_size))
    first, median, times = timed(fn, int(repeats))
    print(json.dumps({"first_s": first, "median_s": median, "times": times, "peak_rss_mb": peak_rss_mb()}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32, help="lesions vmapped per lax.map step")
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    p.add_argument("--worker", nargs=4, metavar=("BENCH", "SIDE", "REPEATS", "BATCH"))
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker)
    note = check()
    print(note, flush=True)
    rows, lines = [], []
    runs = (("record", "torch", "record all sites, 1,024 images (PyTorch: forward hooks)"),
            ("lesion", "torch", "128 single-channel lesions of conv3, 256 images (PyTorch: hook loop, naive)"),
            ("lesion", "torch_prefix", "the same (PyTorch: conv1-conv3 once, suffix batched, strong)"))
    jax_runs: dict = {}
    for bench, torch_side, label in runs:
        if bench not in jax_runs:
            jax_runs[bench] = run_worker(__file__, bench, "jax", args.repeats, args.batch_size)
        r = {"jax": jax_runs[bench], "torch": run_worker(__file__, bench, torch_side, args.repeats, args.batch_size)}
        ratio = r["torch"]["median_s"] / r["jax"]["median_s"]
        line = (f"{bench} vs {torch_side}: jax {r['jax']['median_s']:.3f} s, torch {r['torch']['median_s']:.3f} s, "
                f"speedup {ratio:.1f}x")
        print(line, flush=True)
        lines.append(line)
        rows.append(f"| {label} | {r['jax']['median_s']:.3f} s (first call {r['jax']['first_s']:.2f} s) | "
                    f"{r['torch']['median_s']:.3f} s | **{ratio:.1f}x** | {r['jax']['peak_rss_mb']:.0f} / "
                    f"{r['torch']['peak_rss_mb']:.0f} MB |")
    _, _, source = images(8)
    body = (f"`python benchmarks/bench_electrode.py --repeats {args.repeats} --write` — {environment()}.\n"
            f"Model `{MODEL}`, images: {source}. Median of {args.repeats} runs after a first (compiling) call; "
            f"each side in a fresh process. {note}.\n\n"
            "| benchmark | insilico (JAX) | PyTorch | ratio | peak RSS jax / torch |\n|---|---|---|---|---|\n"
            + "\n".join(rows))
    if args.write:
        import jax

        update_docs(f"Electrode: recording and lesion sweeps ({jax.devices()[0].platform.upper()})", body)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
