"""A whole interactive session in a new process, insilico vs PyTorch: what a user waits for, imports and
compilation included.

    INSILICO_DATA=/path/to/data python benchmarks/bench_session.py [--repeats 3] [--device auto] [--json PATH]

The session, on ``cifar_convnet`` and 256 CIFAR-10 test images (without INSILICO_DATA, natural-image patches
labelled by the model): import, load the model and the images, record every site, the 128 single-channel lesions
of conv3 (accuracy of each), a feature visualization of 16 conv2 channels × 64 Adam steps, one PGD L∞ attack
(ε = 8/255, 10 steps). insilico: ``zoo.load``, ``cifar10``, ``electrode.record``, ``lesion.single_unit_sweep``,
``featurevis.visualize`` (its defaults, ReLU gradients redirected for 16 steps included) and ``synthesis.pgd``.
PyTorch, as a competent user writes it: the twin that ``bench_electrode.torch_model`` builds, saved once as a
checkpoint the session loads (no JAX in its process); the 256 JPEGs read from the same archive; forward hooks under
``torch.no_grad``; ``bench_electrode.torch_lesion_prefix`` (conv1-conv3 once, 16 lesions × 256 images a batch); the
16 units visualized as one batch (same parameterization and transforms, one random draw per image, the network run
only up to conv2); PGD as one batch with the weights frozen.

Each session is a fresh subprocess, timed whole (wall clock; user + system CPU from ``getrusage(RUSAGE_CHILDREN)``),
in interleaved order — insilico with an empty temporary ``INSILICO_CACHE`` (first ever: nothing compiled; both sides
decode only their 256 JPEGs), PyTorch, insilico with the cache of an earlier run (the next day), PyTorch — ``--repeats``
times; medians reported. Before timing, one process runs both sides on the same images and checks they agree.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_electrode
from common import environment

MODEL, LESION_SITE, VIS_SITE, EPS, LR = "cifar_convnet", "conv3", "conv2", 8 / 255, 0.05
PHASES = ("import", "load", "data", "record", "lesion", "visualize", "attack")


def pick(n_total, n):
    return np.random.default_rng(0).permutation(n_total)[:n]       # the images bench_electrode uses too


def patches(workdir):
    """Without INSILICO_DATA both sides read the same prepared patches (written before timing)."""
    with np.load(Path(workdir) / "images.npz") as f:
        return f["x"], f["y"]


def outcome(rec, lesion_accuracy, vis_score, pgd_accuracy, **more):                     # what a session computed
    return {"record_sum": {k: float(np.sum(v)) for k, v in rec.items()}, "lesion_accuracy": list(lesion_accuracy),
            "vis_score": float(vis_score), "pgd_accuracy": float(pgd_accuracy), **more}


# ---------------------------------------------------------------- insilico side
def insilico_images(n, workdir):
    if not os.environ.get("INSILICO_DATA"):
        return patches(workdir)
    from insilico.data import cifar10

    d = cifar10("test", pick(10000, n))                # only these JPEGs decoded, as the PyTorch side reads them
    return d.x, d.y


def insilico_session(cfg, workdir, lap):
    import jax

    from insilico import electrode, zoo
    from insilico.probes import featurevis, lesion, synthesis
    lap("import")
    s = zoo.load(MODEL)
    lap("load")
    x, y = insilico_images(cfg["images"], workdir)
    lap("data")
    rec = jax.device_get(electrode.record(s, x)[1])
    lap("record")
    acc = lesion.single_unit_sweep(s, x, LESION_SITE, labels=y, progress=False).accuracy.values.tolist()
    lap("lesion")
    score = featurevis.visualize(s, featurevis.channel(VIS_SITE), units=cfg["vis_units"], steps=cfg["vis_steps"],
                                 key=jax.random.PRNGKey(0), progress=False).score.mean()
    lap("visualize")
    pgd_acc = synthesis.pgd(s, x, y, EPS, steps=cfg["pgd_steps"], key=jax.random.PRNGKey(0)).attrs["accuracy"]
    lap("attack")
    return outcome(rec, acc, score, pgd_acc)


# ---------------------------------------------------------------- PyTorch side
def torch_images(n, workdir):
    """The same images as ``insilico_images``, read the way a PyTorch user would: the JPEGs in the archive."""
    if not os.environ.get("INSILICO_DATA"):
        return patches(workdir)
    import tarfile

    from PIL import Image

    with tarfile.open(Path(os.environ["INSILICO_DATA"]) / "cifar10_jpeg" / "cifar10_test_10000_jpg.tar.gz") as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg")), key=lambda m: m.name)
        classes = sorted({m.name.split("/")[-2] for m in members})
        chosen = [members[i] for i in pick(len(members), n)]
        images = {m.name: np.asarray(Image.open(tar.extractfile(m)).convert("RGB"))        # archive order
                  for m in sorted(chosen, key=lambda m: m.offset_data)}
    x = np.stack([images[m.name] for m in chosen]).astype(np.float32) / 255
    return x, np.asarray([classes.index(m.name.split("/")[-2]) for m in chosen], np.int32)


def torch_prefix(model, x, site):
    """The twin ConvNet run only as far as ``site`` (NCHW activation of that site)."""
    import torch.nn.functional as F

    names = list(model.convs)
    h = model.normalize(x)
    for name in names[:names.index(site)]:
        h = F.max_pool2d(model.convs[name](h), 2)
    return model.convs[site](h)


def torch_record(model, xt):
    import torch

    store = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: store.__setitem__(name, out))
             for name, m in model.sites().items()]
    with torch.no_grad():
        model(xt)
    for h in hooks:
        h.remove()
    return {k: v.cpu().numpy() for k, v in store.items()}


def torch_visualize(model, color, units, steps, transforms=True, site=VIS_SITE, seed=0):
    """Feature visualization of ``units`` channels of ``site``, all units as one batch of images: 1/f Fourier
    coefficients, colour matrix ``color``, sigmoid; pad 4 / jitter 4 / scale / rotate / jitter 2 with one draw
    per image; Adam. Returns (initial, final) objective per unit on the untransformed images."""
    import torch
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    rng, n, h, w = np.random.default_rng(seed), len(units), 32, 32
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1.0 / max(h, w))
    scale = torch.tensor(scale / np.sqrt(np.mean(scale ** 2)), dtype=torch.float32, device=dev)
    color = torch.tensor(np.asarray(color), dtype=torch.float32, device=dev)
    p = 0.01 * torch.randn(n, 2, 3, h, w // 2 + 1, generator=torch.Generator().manual_seed(seed), device="cpu")
    p = p.to(dev).requires_grad_()
    rows, cols = torch.arange(n, device=dev), torch.as_tensor(np.asarray(units), device=dev)

    def render():
        z = torch.fft.irfftn(torch.complex(p[:, 0], p[:, 1]) * scale, s=(h, w), dim=(-2, -1), norm="ortho")
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", color, z))

    def crop(img, size, d):
        off = rng.integers(0, d + 1, (n, 2))
        return torch.stack([im[:, a:a + size, b:b + size] for im, (a, b) in zip(img, off)])

    def transform(img):
        img = crop(F.pad(img, (4, 4, 4, 4), value=0.5), h + 4, 4)
        s = rng.choice([1.0, 0.975, 1.025, 0.95, 1.05], n)
        a = np.deg2rad(rng.choice(np.arange(-5, 6), n))
        theta = np.stack([np.stack([np.cos(a) / s, -np.sin(a) / s, 0 * a], -1),
                          np.stack([np.sin(a) / s, np.cos(a) / s, 0 * a], -1)], 1)
        theta = torch.tensor(theta, dtype=torch.float32, device=dev)
        img = F.grid_sample(img, F.affine_grid(theta, list(img.shape), align_corners=False), padding_mode="border",
                            align_corners=False)
        return crop(img, h + 2, 2)[:, :, 1:1 + h, 1:1 + w]

    def objective(img):
        return torch_prefix(model, img, site)[rows, cols].mean((1, 2))

    with torch.no_grad():
        initial = objective(render())
    opt = torch.optim.Adam([p], lr=LR)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = -objective(transform(render()) if transforms else render()).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = objective(render())
    return initial.cpu().numpy(), final.cpu().numpy()


def torch_pgd(model, x, y, eps, steps, seed=None):
    """PGD L∞ as insilico's: steps of 2.5·eps/steps from a uniform random start (none if ``seed`` is None), the
    result rounded to 8 bits inside the ball. Returns (adversarial images NCHW, accuracy on them)."""
    import torch
    import torch.nn.functional as F

    size, gen = 2.5 * eps / steps, None if seed is None else torch.Generator().manual_seed(seed)
    noise = 0.5 if gen is None else torch.rand(x.shape, generator=gen, device="cpu").to(x.device)
    xa = (x + (2 * noise - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(xa), y, reduction="sum"), xa)
        with torch.no_grad():
            xa = (x + (xa + size * g.sign() - x).clamp(-eps, eps)).clamp(0, 1)
    with torch.no_grad():
        xq = torch.round(xa * 255) / 255
        xq = torch.where(xq - x > eps + 1e-6, xq - 1 / 255, torch.where(x - xq > eps + 1e-6, xq + 1 / 255, xq))
        return xq, (model(xq).argmax(-1) == y).float().mean().item()


def torch_load(workdir, device, model=None):
    """The frozen twin on ``device`` (the checkpoint unless given); torch_lesion_prefix's too (no JAX rebuild)."""
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    torch.set_num_threads(os.cpu_count() or 1)
    if model is None:
        model = torch.load(Path(workdir) / "twin.pt", map_location=device, weights_only=False)
    model = model.to(device).requires_grad_(False)
    bench_electrode.torch_model = lambda: model
    return model, device


def torch_session(cfg, workdir, lap):
    import torch
    lap("import")
    (model, device), color = torch_load(workdir, cfg["device"]), np.load(Path(workdir) / "color.npy")
    lap("load")
    x, y = torch_images(cfg["images"], workdir)
    xt = torch.tensor(np.transpose(x, (0, 3, 1, 2)), device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    lap("data")
    rec = torch_record(model, xt)
    lap("record")
    with torch.device(device):                # the tensors torch_lesion_prefix makes land on that device
        acc = bench_electrode.torch_lesion_prefix(x, y)()["accuracy"].tolist()
    lap("lesion")
    _, final = torch_visualize(model, color, range(cfg["vis_units"]), cfg["vis_steps"])
    lap("visualize")
    _, pgd_acc = torch_pgd(model, xt, yt, EPS, cfg["pgd_steps"], seed=0)
    lap("attack")
    return outcome(rec, acc, final.mean(), pgd_acc, device=device)


# ---------------------------------------------------------------- check (one process, both sides)
def prepare_and_check(cfg, workdir):
    """Write the PyTorch checkpoint (and the images when INSILICO_DATA is unset), then check both sides agree."""
    import jax
    import torch

    from insilico import electrode, zoo
    from insilico.probes import featurevis, lesion, synthesis

    s, work, key = zoo.load(MODEL), Path(workdir), jax.random.PRNGKey(0)
    torch.save(bench_electrode.torch_model(), work / "twin.pt")
    np.save(work / "color.npy", np.asarray(featurevis.default_param(s).color, np.float32))
    if not os.environ.get("INSILICO_DATA"):
        from insilico.data.stimuli import natural_patches

        x = np.asarray(synthesis.quantize(jax.numpy.asarray(natural_patches(key, cfg["images"], 32, 3, scale=4))))
        np.savez(work / "images.npz", x=x, y=np.asarray(electrode.run(s, x)[0].argmax(-1), np.int32))
    (x, y), (x2, y2) = insilico_images(cfg["images"], workdir), torch_images(cfg["images"], workdir)
    assert np.array_equal(y, y2) and np.abs(x - x2).max() < 1e-6, "the two sides read different images"
    model, device = torch_load(workdir, cfg["device"])
    xt, yt = torch.tensor(np.transpose(x, (0, 3, 1, 2)), device=device), torch.as_tensor(y, device=device).long()
    rec, trec = electrode.record(s, x)[1], torch_record(model, xt)
    for k, v in rec.items():
        t = trec[k] if v.ndim == 2 else np.transpose(trec[k], (0, 2, 3, 1))
        np.testing.assert_allclose(np.asarray(v), t, rtol=1e-4, atol=1e-4, err_msg=k)
    ja = lesion.single_unit_sweep(s, x, LESION_SITE, labels=y, progress=False).accuracy.values
    with torch.device(device):
        ta = bench_electrode.torch_lesion_prefix(x, y)()["accuracy"]
    np.testing.assert_allclose(ja, ta, atol=1.5 / len(y))      # one near-tie image may flip between float32 kernels
    n, steps = cfg["vis_units"], 32
    ds = featurevis.visualize(s, featurevis.channel(VIS_SITE), units=n, steps=steps, key=key, transforms=(),
                              relu_override_steps=0, progress=False)
    j0, j1 = float(ds.objective.isel(iteration=0).mean()), float(ds.score.mean())
    t0, t1 = (float(v.mean()) for v in torch_visualize(model, np.load(work / "color.npy"), range(n), steps, False))
    for name, a, b in (("insilico", j0, j1), ("torch", t0, t1)):
        assert b > a + 0.5 * abs(a) + 0.1, f"{name} visualization did not raise the objective: {a:.3f} -> {b:.3f}"
    adv = synthesis.pgd(s, x, y, EPS, steps=cfg["pgd_steps"], random_start=False)
    xq, tacc = torch_pgd(model, xt, yt, EPS, cfg["pgd_steps"])
    same = float(np.mean(np.abs(adv.images.values - xq.cpu().numpy().transpose(0, 2, 3, 1)) * 255 <= 1 + 1e-3))
    jacc = float(adv.attrs["accuracy"])
    assert abs(jacc - tacc) <= 2.5 / len(y) and same >= 0.95, (jacc, tacc, same)
    return (f"recordings equal (atol 1e-4) on all {len(rec)} sites; lesion accuracies equal on "
            f"{int(np.sum(ja == ta))}/{len(ja)} units (all within one image); {steps} visualization steps "
            f"without transforms raise the mean objective {j0:.3f} -> {j1:.3f} (insilico), {t0:.3f} -> {t1:.3f} "
            f"(PyTorch); PGD without random start: accuracy {jacc:.4f} / {tacc:.4f}, {100 * same:.1f}% of pixels "
            f"within one 8-bit level")


# ---------------------------------------------------------------- processes and report
def child(side, cfg, workdir):
    """One session in this (fresh) process; prints the seconds of each phase and what it computed."""
    marks, phases = [time.perf_counter()], {}

    def lap(name):
        marks.append(time.perf_counter())
        phases[name] = marks[-1] - marks[-2]
    results = (insilico_session if side == "insilico" else torch_session)(cfg, workdir, lap)
    print(json.dumps({"phases": phases, "results": results}))


def run_process(argv, cache):
    """Run ``python bench_session.py argv`` with INSILICO_CACHE=``cache``: (wall s, user+sys CPU s, its JSON)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(INSILICO_CACHE=str(cache), INSILICO_COMPILATION_CACHE="1")
    before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    r = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env)
    wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{r.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(r.stdout.strip().splitlines()[-1])


def summarize(runs):
    med = statistics.median
    return {"wall_s": med(r["wall_s"] for r in runs), "cpu_s": med(r["cpu_s"] for r in runs),
            "phases_s": {p: med(r["phases"][p] for r in runs) for p in PHASES}}


def report(cfg, note, summary, runs, cache):
    rows = (("insilico, first ever (empty INSILICO_CACHE)", "insilico_first"),
            ("insilico, next day (cache of an earlier run)", "insilico_next"),
            (f"PyTorch ({runs['torch'][0]['results']['device']})", "torch"))
    torch_wall, source = summary["torch"]["wall_s"], ("CIFAR-10 test" if os.environ.get("INSILICO_DATA")
                                                      else "natural-image patches")
    lines = [f"Session on {MODEL}, {cfg['images']} {source} images: load, record all sites, {LESION_SITE} "
             f"single-channel lesions, {VIS_SITE} visualization ({cfg['vis_units']} units x {cfg['vis_steps']} steps), "
             f"PGD eps 8/255 x {cfg['pgd_steps']} steps; each a fresh process, median of {cfg['repeats']} "
             f"(interleaved).", f"{environment()}; load average at the end (1, 5, 15 min): "
             + ", ".join(f"{v:.1f}" for v in os.getloadavg()), f"check: {note}", "",
             f"{'session':46s} {'wall':>8s} {'user+sys':>9s} {'/ PyTorch':>9s}  "
             + " ".join(f"{p:>9s}" for p in PHASES)]
    for label, key in rows:
        s = summary[key]
        lines.append(f"{label:46s} {s['wall_s']:7.2f}s {s['cpu_s']:8.2f}s {s['wall_s'] / torch_wall:8.2f}x  "
                     + " ".join(f"{s['phases_s'][p]:8.2f}s" for p in PHASES))
    for key, label in (("insilico_first", "first ever"), ("insilico_next", "next day")):
        r = summary[key]["wall_s"] / torch_wall
        lines.append(f"target insilico <= 1.5x PyTorch, {label}: {r:.2f}x ({'met' if r <= 1.5 else 'not met'})")
    ji, ti = runs["insilico_next"][0]["results"], runs["torch"][0]["results"]
    jl, tl = np.asarray(ji["lesion_accuracy"]), np.asarray(ti["lesion_accuracy"])
    lines += [f"results (insilico / PyTorch): mean lesion accuracy {jl.mean():.4f} / {tl.mean():.4f} (largest "
              f"difference {np.abs(jl - tl).max():.4f}); PGD accuracy {ji['pgd_accuracy']:.4f} / "
              f"{ti['pgd_accuracy']:.4f}; final visualization objective {ji['vis_score']:.3f} / {ti['vis_score']:.3f}",
              f"the next-day cache (the first first-ever run's): {cache[0]} entries, {cache[1]:.1f} MB; phase "
              "columns: time inside the process (the rest of the wall time is starting and ending Python)"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="sessions of each kind (median)")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--vis-units", type=int, default=16)
    p.add_argument("--vis-steps", type=int, default=64)
    p.add_argument("--pgd-steps", type=int, default=10)
    p.add_argument("--device", default="auto", help="PyTorch's device: auto (cuda when available), cpu, cuda")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    p.add_argument("--child", choices=("insilico", "torch", "check"), help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        cfg = json.loads(args.config)
        if args.child == "check":
            return print(json.dumps({"note": prepare_and_check(cfg, args.workdir)}))
        return child(args.child, cfg, args.workdir)
    for name in ("repeats", "images", "vis_units", "vis_steps", "pgd_steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}")
    cfg = {k: getattr(args, k) for k in ("repeats", "images", "vis_units", "vis_steps", "pgd_steps", "device")}
    with tempfile.TemporaryDirectory(prefix="bench_session-") as tmp:
        work = Path(tmp)
        argv = lambda side: ["--child", side, "--workdir", str(work), "--config", json.dumps(cfg)]
        note = run_process(argv("check"), work / "cache-check")[2]["note"]
        print(f"check: {note}", flush=True)
        runs = {"insilico_first": [], "torch": [], "insilico_next": []}
        order = [("insilico_first", "insilico"), ("torch", "torch"), ("insilico_next", "insilico"), ("torch", "torch")]
        for r in range(args.repeats):             # the next day reuses the cache the first first-ever run filled
            for key, side in order:
                wall, cpu, out = run_process(argv(side), work / f"cache-first-{r if key != 'insilico_next' else 0}")
                runs[key].append({"wall_s": wall, "cpu_s": cpu, **out})
                print(f"  {key:15s} wall {wall:6.2f} s, user+sys {cpu:6.2f} s, phases "
                      + ", ".join(f"{k} {v:.2f}" for k, v in out["phases"].items()), flush=True)
        files = [f.stat().st_size for f in (work / "cache-first-0" / "xla").rglob("*-cache")]       # JAX's entries
        summary, cache = {k: summarize(v) for k, v in runs.items()}, (len(files), sum(files) / 1e6)
    text = report(cfg, note, summary, runs, cache)
    print("\n" + text)
    if args.json:
        ratios = {k: summary[k]["wall_s"] / summary["torch"]["wall_s"] for k in ("insilico_first", "insilico_next")}
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "config": cfg, "check": note, "summary": summary,
                       "ratio_wall_to_torch": ratios, "target_ratio": 1.5, "next_day_cache_entries_mb": cache,
                       "runs": runs, "table": text}, f, indent=1)


if __name__ == "__main__":
    main()
