"""Feature visualization of every channel of a layer: insilico (one compiled call for all units) vs the Lucent
way (a PyTorch loop of Adam steps, one unit at a time, forward hook on the site), same weights.

    python benchmarks/bench_featurevis.py [--steps 256] [--units 64] [--site conv2] [--quick] [--json PATH]

1. pixel: sigmoid(pixels), pad 2 px + jitter 4 px per step (torch: host-side np.random offsets, as Lucent).
2. default: insilico's defaults (1/f Fourier + colour decorrelation, pad/jitter/scale/rotate/jitter) vs a torch
   loop doing the same per-step work (irfftn, 3x3 colour matrix, sigmoid, pad, jitter, affine_grid/grid_sample
   with one random scale and angle per step, jitter).
Both sides: Adam lr 0.05, loss = -mean of the unit's channel, full forward pass per step. Before timing: the
channel means of both networks agree, and a short optimization without transforms raises the objective on both.
insilico is timed on a first (compiling) call and the median of warm calls; torch per unit, each side in a
fresh process; the torch total is units x the median per-unit time (the measured sum is reported too).
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
from common import environment, run_worker, timed  # noqa: E402

MODEL, LR = "cifar_convnet", 0.05
CONFIGS = {"pixel": "sigmoid pixels, pad 2 + jitter 4", "default": "Fourier + colour, pad/jitter/scale/rotate/jitter"}


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
        kw = {}
    return lambda: fv.visualize(s, fv.channel(site), units=units, n_seeds=1, steps=steps, key=jax.random.PRNGKey(0),
                                progress=False, loop=loop, **kw)


# ---------------------------------------------------------------- PyTorch side (Lucent-style loop)
def torch_model(site):
    import torch

    from insilico import zoo
    from insilico.interop.torch_port import to_torch

    torch.set_num_threads(2)
    model = to_torch(zoo.load(MODEL)).requires_grad_(False)
    store = {}
    model.sites()[site].register_forward_hook(lambda mod, inp, out: store.__setitem__("act", out))
    return model, store


def _crop(x, dy, dx, h, w):
    return x[:, :, dy:dy + h, dx:dx + w]


def _center(x, h, w):
    return _crop(x, (x.shape[2] - h) // 2, (x.shape[3] - w) // 2, h, w)


def torch_unit(model, store, unit, steps, config, transforms=True):
    """One unit, Lucent's render_vis loop: returns (initial, final) objective of the untransformed image."""
    import torch
    import torch.nn.functional as F

    from insilico import zoo
    from insilico.probes.featurevis import default_param

    torch.manual_seed(unit)
    h, w = 32, 32
    if config == "pixel":
        p = (0.01 * torch.randn(1, 3, h, w)).requires_grad_()
        render = lambda: torch.sigmoid(p)  # noqa: E731
    else:
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
        scale = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1.0 / max(h, w))
        scale = torch.tensor(scale / np.sqrt(np.mean(scale ** 2)), dtype=torch.float32)
        color = torch.tensor(default_param(zoo.load(MODEL)).color, dtype=torch.float32)
        p = (0.01 * torch.randn(2, 3, h, w // 2 + 1)).requires_grad_()

        def render():
            z = torch.fft.irfftn(torch.complex(p[0], p[1]) * scale, s=(h, w), dim=(-2, -1), norm="ortho")
            return torch.sigmoid(torch.einsum("ij,jhw->ihw", color, z))[None]

    def transform(img):
        if config == "pixel":
            img = F.pad(img, (2, 2, 2, 2), value=0.5)
            return _crop(img, *np.random.randint(0, 5, 2), h, w)
        img = F.pad(img, (4, 4, 4, 4), value=0.5)
        img = _crop(img, *np.random.randint(0, 5, 2), h + 4, w + 4)
        s, a = np.random.choice([1.0, 0.975, 1.025, 0.95, 1.05]), np.deg2rad(np.random.choice(np.arange(-5, 6)))
        theta = torch.tensor([[[np.cos(a) / s, -np.sin(a) / s, 0.0], [np.sin(a) / s, np.cos(a) / s, 0.0]]],
                             dtype=torch.float32)
        img = F.grid_sample(img, F.affine_grid(theta, img.shape, align_corners=False), padding_mode="border",
                            align_corners=False)
        img = _crop(img, *np.random.randint(0, 3, 2), h + 2, w + 2)
        return _center(img, h, w)

    def objective(img):
        model(img)
        return store["act"][:, unit].mean()

    with torch.no_grad():
        init = objective(render()).item()
    opt = torch.optim.Adam([p], lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        loss = -objective(transform(render()) if transforms else render())
        loss.backward()
        opt.step()
    with torch.no_grad():
        return init, objective(render()).item()


# ---------------------------------------------------------------- agreement checks
def check(site, units, steps):
    """Same objective on both networks; a short optimization (no transforms) raises it on both."""
    import jax
    import torch

    from insilico import electrode as el
    from insilico import zoo
    from insilico.data.stimuli import natural_patches
    from insilico.interop.torch_port import to_nchw

    x = natural_patches(jax.random.PRNGKey(0), 16, 32, 3, scale=4)
    _, rec = el.record(zoo.load(MODEL), x, site)
    model, store = torch_model(site)
    with torch.no_grad():
        model(to_nchw(x))
    np.testing.assert_allclose(np.asarray(rec[site]).mean((1, 2)), store["act"].mean((2, 3)).numpy(),
                               rtol=1e-4, atol=1e-4)
    ds = jax_run("pixel", site, units, steps, transforms=())()
    j0, j1 = float(ds.objective.isel(iteration=0).mean()), float(ds.score.mean())
    t0, t1 = np.mean([torch_unit(model, store, u, steps, "pixel", transforms=False) for u in range(units)], axis=0)
    for name, a, b in (("insilico", j0, j1), ("torch", t0, t1)):
        assert b > a + 0.5 * abs(a) + 0.1, f"{name} optimization did not raise the objective: {a:.3f} -> {b:.3f}"
    return (f"{site} channel means equal (rtol/atol 1e-4) on 16 images; {steps} steps without transforms, units "
            f"0..{units - 1}: mean objective insilico {j0:.3f} -> {j1:.3f}, torch {t0:.3f} -> {t1:.3f}")


# ---------------------------------------------------------------- workers and report
def worker(side, config, site, units, steps, repeats, loop):
    units, steps, repeats = int(units), int(steps), int(repeats)
    if side == "jax":
        fn, last = jax_run(config, site, units, steps, loop=loop), {}
        first, median, times = timed(lambda: last.__setitem__("ds", fn()), repeats)
        out = {"first_s": first, "median_s": median, "times": times, "score": float(last["ds"].score.mean())}
    else:
        model, store = torch_model(site)
        times, scores = [], []
        for u in range(units):
            t = time.perf_counter()
            scores.append(torch_unit(model, store, u, steps, config)[1])
            times.append(time.perf_counter() - t)
        out = {"unit_times": times, "sum_s": sum(times), "median_s": units * statistics.median(times),
               "score": float(np.mean(scores))}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--units", type=int, default=64, help="channels visualized (layer width by default)")
    p.add_argument("--torch-units", type=int, default=None, help="time torch on this many units, extrapolate")
    p.add_argument("--site", default="conv2")
    p.add_argument("--repeats", type=int, default=3, help="warm insilico calls (median)")
    p.add_argument("--quick", action="store_true", help="smoke run: 16 steps, 4 units, 1 repeat")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    p.add_argument("--loop", choices=("auto", "host", "scan"), default="auto",
                   help="insilico's optimization driver (auto: host loop on CPU, lax.scan on accelerators)")
    p.add_argument("--worker", nargs=7, metavar=("SIDE", "CONFIG", "SITE", "UNITS", "STEPS", "REPEATS", "LOOP"))
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker)
    if args.quick:
        args.steps, args.units, args.repeats = 16, 4, 1
    tu = min(args.units, args.torch_units or args.units)
    note = check(args.site, min(8, args.units), min(64, args.steps))
    print(note, flush=True)
    results, rows = {}, []
    for config in CONFIGS:
        j = run_worker(__file__, "jax", config, args.site, args.units, args.steps, args.repeats, args.loop)
        t = run_worker(__file__, "torch", config, args.site, tu, args.steps, 1, args.loop)
        t_total = t["median_s"] * args.units / tu
        r = {"insilico": j, "torch": t, "torch_total_s": t_total, "torch_units_timed": tu,
             "ratio_warm": t_total / j["median_s"], "ratio_first_call": t_total / j["first_s"]}
        results[config] = r
        rows.append(f"{config:8s} {j['first_s']:9.2f} s {j['median_s']:9.2f} s {t_total:9.2f} s "
                    f"{r['ratio_warm']:7.2f}x {r['ratio_first_call']:7.2f}x   {j['score']:6.3f} / {t['score']:6.3f}")
        print(f"{config}: insilico first {j['first_s']:.2f} s, warm {j['median_s']:.2f} s; torch {t_total:.2f} s "
              f"(sum of units {t['sum_s'] * args.units / tu:.2f} s); ratio {r['ratio_warm']:.2f}x warm, "
              f"{r['ratio_first_call']:.2f}x with compilation", flush=True)
    extrap = "" if tu == args.units else f", torch timed on {tu} units and extrapolated linearly"
    print(f"\n{MODEL}/{args.site}, {args.units} units x {args.steps} Adam steps, 1 image each{extrap}; "
          f"insilico loop={args.loop}. "
          f"insilico: first call (compiles) and median of {args.repeats} warm calls; torch (2 threads): "
          f"{args.units} x median per-unit time.\n{environment()}\n")
    print("config    insilico 1st  insilico warm      torch   ratio  ratio(1st)   final objective jax / torch")
    print("\n".join(rows))
    for c, label in CONFIGS.items():
        print(f"  {c}: {label}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "model": MODEL, "site": args.site, "units": args.units,
                       "loop": args.loop,
                       "steps": args.steps, "repeats": args.repeats, "check": note, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
