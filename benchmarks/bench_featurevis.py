"""Feature visualization of every channel of a layer: insilico (one ``visualize`` call for all units) against three
PyTorch loops on the same weights, all timed in one process, interleaved, with the same thread count.

    python benchmarks/bench_featurevis.py [--steps 256] [--units 64] [--site conv2] [--repeats 3]
                                          [--lucent-units N] [--configs pixel,default] [--quick] [--json PATH]

PyTorch, 2 threads:
- ``lucent``: Lucent's ``render_vis`` way, one unit at a time (a full forward pass with a hook on the site, host-side
  random transforms); its total is units x the median per-unit time (``--lucent-units`` times fewer and scales).
- ``batch``: every unit at once, one image per unit in one batch, objective = sum over the images of each image's
  own channel mean (Lucent's batched objective); full forward pass, hook on the site.
- ``batch-stop``: the same, but the forward pass stops at the site (only the layers up to it run).
The batched loops draw each step's random transform once for the batch (as Lucent's transforms do); insilico draws
one per image. Configurations (both sides, Adam lr 0.05):
1. pixel: sigmoid(pixels), pad 2 px + jitter 4 px per step, no redirected ReLU (Lucent has none).
2. default: insilico's defaults (1/f Fourier + colour decorrelation, pad/jitter/scale/rotate/jitter) and a PyTorch
   loop doing the same per-step work (irfftn, 3x3 colour matrix, sigmoid, pad, jitter, affine_grid/grid_sample
   with a random scale and angle, jitter).
Before timing: the site's channel means agree on both networks (hooked and stopped), and short optimizations
without transforms raise the objective on every side. Each side's first call (insilico: compiles, with the
persistent compilation cache off unless ``--cache``) is timed apart from its warm calls, which alternate between
the sides in every round (median of ``--repeats`` rounds).
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
from common import environment

MODEL, LR = "cifar_convnet", 0.05
THREADS = [2]                      # PyTorch threads (--threads)
CONFIGS = {"pixel": "sigmoid pixels, pad 2 + jitter 4", "default": "Fourier + colour, pad/jitter/scale/rotate/jitter"}
TORCH_SIDES = ("batch-stop", "batch", "lucent")


# ---------------------------------------------------------------- insilico side
def jax_run(config, site, units, steps, transforms=None, loop="auto"):
    import jax

    from insilico import zoo
    from insilico.probes import featurevis as fv

    s = zoo.load(MODEL)
    if config == "pixel":
        kw = dict(param=fv.pixel(s), transforms=(fv.Pad(2), fv.Jitter(4)) if transforms is None else transforms,
                  relu_override_steps=0)                      # Lucent does not redirect ReLU gradients
    else:
        kw = {} if transforms is None else {"transforms": transforms}
    return lambda: fv.visualize(s, fv.channel(site), units=units, n_seeds=1, steps=steps, key=jax.random.PRNGKey(0),
                                progress=False, loop=loop, **kw)


# ---------------------------------------------------------------- PyTorch side
def torch_model(site):
    """The PyTorch twin with a forward hook on ``site``, and the layers up to ``site`` alone."""
    import torch
    from torch import nn

    from insilico import zoo
    from insilico.interop.torch_port import to_torch

    torch.set_num_threads(THREADS[0])
    model = to_torch(zoo.load(MODEL)).requires_grad_(False)
    store = {}
    model.sites()[site].register_forward_hook(lambda mod, inp, out: store.__setitem__("act", out))
    layers = [model.normalize]
    for name, stage in model.convs.items():
        layers.append(stage)
        if name == site:
            break
        layers.append(nn.MaxPool2d(2))
    else:
        raise ValueError(f"the stopped forward pass is written for conv sites; got {site!r}")
    hooked = lambda img: (model(img), store["act"])[1]
    return hooked, nn.Sequential(*layers)


def _crop(x, dy, dx, h, w):
    return x[:, :, dy:dy + h, dx:dx + w]


def _param(config, n, h=32, w=32):
    """``n`` images' parameters and their render (N, 3, H, W): sigmoid pixels, or 1/f Fourier with colour."""
    import torch

    from insilico import zoo
    from insilico.probes.featurevis import default_param

    if config == "pixel":
        p = (0.01 * torch.randn(n, 3, h, w)).requires_grad_()
        return p, lambda: torch.sigmoid(p)
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1.0 / max(h, w))
    scale = torch.tensor(scale / np.sqrt(np.mean(scale ** 2)), dtype=torch.float32)
    color = torch.tensor(default_param(zoo.load(MODEL)).color, dtype=torch.float32)
    p = (0.01 * torch.randn(n, 2, 3, h, w // 2 + 1)).requires_grad_()

    def render():
        z = torch.fft.irfftn(torch.complex(p[:, 0], p[:, 1]) * scale, s=(h, w), dim=(-2, -1), norm="ortho")
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", color, z))
    return p, render


def _transform(config, img, h=32, w=32):
    """One random draw of the configuration's transforms (host-side, as Lucent), applied to the whole batch."""
    import torch
    import torch.nn.functional as F

    if config == "pixel":
        img = F.pad(img, (2, 2, 2, 2), value=0.5)
        return _crop(img, *np.random.randint(0, 5, 2), h, w)
    img = F.pad(img, (4, 4, 4, 4), value=0.5)
    img = _crop(img, *np.random.randint(0, 5, 2), h + 4, w + 4)
    s, a = np.random.choice([1.0, 0.975, 1.025, 0.95, 1.05]), np.deg2rad(np.random.choice(np.arange(-5, 6)))
    theta = torch.tensor([[[np.cos(a) / s, -np.sin(a) / s, 0.0], [np.sin(a) / s, np.cos(a) / s, 0.0]]],
                         dtype=torch.float32).expand(img.shape[0], 2, 3)
    img = F.grid_sample(img, F.affine_grid(theta, img.shape, align_corners=False), padding_mode="border",
                        align_corners=False)
    img = _crop(img, *np.random.randint(0, 3, 2), h + 2, w + 2)
    return _crop(img, (img.shape[2] - h) // 2, (img.shape[3] - w) // 2, h, w)


def torch_optimize(forward, units, steps, config, transforms=True, seed=0):
    """Images for ``units`` in one batch (image k maximizes the mean of channel ``units[k]`` of the site that
    ``forward`` returns), ``steps`` Adam steps; returns the (initial, final) mean objective of the untransformed
    images. One unit: Lucent's ``render_vis`` loop."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    units = torch.as_tensor(list(units))
    rows = torch.arange(len(units))
    p, render = _param(config, len(units))
    objective = lambda img: forward(img).mean((2, 3))[rows, units]
    with torch.no_grad():
        init = objective(render()).mean().item()
    opt = torch.optim.Adam([p], lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        loss = -objective(_transform(config, render()) if transforms else render()).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return init, objective(render()).mean().item()


def torch_side(side, hooked, stopped, units, steps, config):
    """A callable running one PyTorch side over ``units``; Lucent's returns the per-unit times too."""
    if side == "lucent":
        def lucent():
            times, finals = [], []
            for u in units:
                t = time.perf_counter()
                finals.append(torch_optimize(hooked, [u], steps, config, seed=u)[1])
                times.append(time.perf_counter() - t)
            return float(np.mean(finals)), times
        return lucent
    forward = stopped if side == "batch-stop" else hooked
    return lambda: (torch_optimize(forward, units, steps, config)[1], None)


# ---------------------------------------------------------------- agreement checks
def check(site, units, steps):
    """Same channel means on both networks (hooked and stopped); short optimizations without transforms raise the
    objective on every side."""
    import jax
    import torch

    from insilico import electrode as el
    from insilico import zoo
    from insilico.data.stimuli import natural_patches
    from insilico.interop.torch_port import to_nchw

    x = natural_patches(jax.random.PRNGKey(0), 16, 32, 3, scale=4)
    _, rec = el.record(zoo.load(MODEL), x, site)
    hooked, stopped = torch_model(site)
    with torch.no_grad():
        for forward in (hooked, stopped):
            np.testing.assert_allclose(np.asarray(rec[site]).mean((1, 2)), forward(to_nchw(x)).mean((2, 3)).numpy(),
                                       rtol=1e-4, atol=1e-4)
    ds = jax_run("pixel", site, units, steps, transforms=())()
    rise = {"insilico": (float(ds.objective.isel(iteration=0).mean()), float(ds.score.mean())),
            "lucent": tuple(np.mean([torch_optimize(hooked, [u], steps, "pixel", transforms=False, seed=u)
                                     for u in range(units)], axis=0)),
            "batch": torch_optimize(hooked, range(units), steps, "pixel", transforms=False),
            "batch-stop": torch_optimize(stopped, range(units), steps, "pixel", transforms=False)}
    for name, (a, b) in rise.items():
        assert b > a + 0.5 * abs(a) + 0.1, f"{name} optimization did not raise the objective: {a:.3f} -> {b:.3f}"
    return (f"{site} channel means equal (rtol/atol 1e-4) on 16 images, hooked and stopped; {steps} steps without "
            f"transforms, units 0..{units - 1}: mean objective " +
            ", ".join(f"{k} {a:.3f} -> {b:.3f}" for k, (a, b) in rise.items()))


# ---------------------------------------------------------------- timing and report
def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run_config(config, args, hooked, stopped):
    """First calls, then ``repeats`` rounds of warm calls alternating between the sides."""
    units = list(range(args.units))
    sides = {"insilico": jax_run(config, args.site, args.units, args.steps, loop=args.loop)}
    for side in TORCH_SIDES:
        sides[side] = torch_side(side, hooked, stopped, units[:args.lucent_units] if side == "lucent" else units,
                                 args.steps, config)
    out = {name: {"first_s": None, "warm_s": [], "score": None} for name in sides}
    for name, fn in sides.items():
        t, r = _timed(fn)
        if name == "lucent":
            out[name].update(unit_s=r[1], score=r[0], first_s=sum(r[1]) * args.units / len(r[1]),
                             median_s=statistics.median(r[1]) * args.units)
        else:
            out[name]["first_s"] = t
            out[name]["score"] = float(r.score.mean()) if name == "insilico" else r[0]
    warm = [n for n in sides if n != "lucent"]
    for k in range(args.repeats):
        for name in warm[k % len(warm):] + warm[:k % len(warm)]:          # a different side first each round
            out[name]["warm_s"].append(_timed(sides[name])[0])
    for name in warm:
        out[name]["median_s"] = statistics.median(out[name]["warm_s"])
    strongest = min(TORCH_SIDES, key=lambda s: out[s]["median_s"])
    j = out["insilico"]
    ratios = {s: out[s]["median_s"] / j["median_s"] for s in TORCH_SIDES}
    return {"sides": out, "ratio_warm": ratios, "strongest": strongest,
            "ratio_warm_strongest": ratios[strongest], "first_over_warm": j["first_s"] / j["median_s"],
            "ratio_first_strongest": out[strongest]["first_s"] / j["first_s"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--units", type=int, default=64, help="channels visualized (layer width by default)")
    p.add_argument("--lucent-units", type=int, default=None, help="time Lucent's loop on this many units, scale")
    p.add_argument("--site", default="conv2")
    p.add_argument("--repeats", type=int, default=3, help="rounds of warm calls (median)")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--quick", action="store_true", help="smoke run: 16 steps, 4 units, 1 round")
    p.add_argument("--cache", action="store_true", help="keep XLA's persistent compilation cache on")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads (XLA uses the CPUs the process may run on: "
                   "pin both to one core with taskset -c 0 and --threads 1)")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    p.add_argument("--loop", choices=("auto", "host", "scan"), default="auto",
                   help="insilico's optimization driver (auto: host loop on CPU, lax.scan on accelerators)")
    args = p.parse_args()
    if args.quick:
        args.steps, args.units, args.repeats = 16, 4, 1
    args.lucent_units = min(args.units, args.lucent_units or args.units)
    THREADS[0] = args.threads
    import jax

    if not args.cache:
        jax.config.update("jax_enable_compilation_cache", False)
    note = check(args.site, min(8, args.units), min(64, args.steps))
    print(note, flush=True)
    hooked, stopped = torch_model(args.site)
    results, rows = {}, []
    for config in args.configs.split(","):
        r = results[config] = run_config(config, args, hooked, stopped)
        s = r["sides"]
        for name in ("insilico", *TORCH_SIDES):
            first = "" if s[name]["first_s"] is None else f"{s[name]['first_s']:8.2f} s"
            ratio = "" if name == "insilico" else f"{r['ratio_warm'][name]:6.2f}x"
            rows.append(f"{config:8s} {name:11s} {s[name]['median_s']:8.2f} s {first:>10s} {ratio:>7s}   "
                        f"{s[name]['score']:.3f}")
        print("\n".join(rows[-4:]), flush=True)
    scaled = "" if args.lucent_units == args.units else f" (timed on {args.lucent_units} units, scaled)"
    print(f"\n{MODEL}/{args.site}, {args.units} units x {args.steps} Adam steps, 1 image each; insilico loop="
          f"{args.loop}; PyTorch {THREADS[0]} threads, {len(os.sched_getaffinity(0))} CPUs (load average "
          f"{os.getloadavg()[0]:.1f}); warm = median of {args.repeats} interleaved rounds; lucent = units x median "
          f"per-unit time{scaled}.\n{environment()}\n")
    print("config   side           warm     first call  PyTorch/insilico (warm)   final objective")
    print("\n".join(rows))
    for config in results:
        r = results[config]
        print(f"{config}: strongest PyTorch = {r['strongest']}, {r['ratio_warm_strongest']:.2f}x warm, "
              f"{r['ratio_first_strongest']:.2f}x first calls; insilico first call / warm = "
              f"{r['first_over_warm']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "model": MODEL, "site": args.site, "units": args.units,
                       "lucent_units": args.lucent_units, "loop": args.loop, "steps": args.steps,
                       "repeats": args.repeats, "threads": THREADS[0], "cpus": len(os.sched_getaffinity(0)),
                       "load_average": os.getloadavg(), "check": note, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
