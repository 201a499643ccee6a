"""The benchmark suite at accelerator sizes, one table: what each probe costs on a GPU at sizes that fill it, and
the same work in PyTorch on the same device where a PyTorch twin exists.

    PYTHONPATH=. python benchmarks/accelerator.py [--smoke] [--json PATH] [--repeats 3] [size options]
    (or benchmarks/accelerator.sh, which runs this)

Rows (sizes of the accelerator preset; ``--smoke``: tiny sizes, on the CPU, without the session):
record     every site of an ImageNet ResNet-34 (``models.ResNet18(layers=(3, 4, 6, 3))``, 3.6 GFLOP an image, as
           ResNet-50's 4.1; ``--record-depth`` 10, 18 or 34), 256 random images of 224 px, ``electrode.record``
           (the recordings left on the device)
lesion1    the 128 single-channel lesions of cifar_convnet/conv3 on 1,024 images, ``lesion.single_unit_sweep``
           (PyTorch: ``bench_electrode.torch_lesion_prefix``, conv1-conv3 once, 16 lesions a batch)
lesions    10,000 random group lesions (10% of the channels each) of conv3 on 1,024 images, ``lesion.mask_sweep``
featurevis 128 conv3 channels × 4 seeds = 512 images, 256 steps, ``featurevis.visualize`` with its defaults
           (PyTorch: ``bench_session.torch_visualize``, all 512 images as one batch)
pgd        one PGD L∞ attack, ε = 8/255, 10 steps, 1,024 images, ``synthesis.pgd`` (PyTorch: ``torch_pgd``)
eps        accuracy at 64 ε in [0, 16/255], 10 steps, 1,024 images, ``synthesis.accuracy_vs_eps`` (PyTorch: a loop
           over ε of ``torch_pgd``)
rsa        stimulus bootstrap, 10,000 samples, Pearson with per-sample noise ceilings, ``analysis.rsa.bootstrap``
rsa_tau    the same with Kendall's τ-a (15 subjects' IT RDMs of the 92 images; random RDMs without INSILICO_DATA)
session    ``bench_session.py --repeats 1``: the cold-process session, insilico first ever / next day / PyTorch
Images: CIFAR-10 test when INSILICO_DATA holds it, else natural-image patches labelled by the model. Every row:
first call (compilation included) and the median of ``--repeats`` further calls; each side runs in its own
process with an empty compilation cache, and a row that fails or runs out of ``--budget`` says so. The smoke form
runs its workers side by side (its times only show that every row runs)."""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import timed  # noqa: E402

MODEL = "cifar_convnet"
ROWS = {"record": "record every site, ImageNet ResNet", "lesion1": "single-channel lesions, conv3",
        "lesions": "group lesions (10% of channels), conv3", "featurevis": "feature visualization, conv3",
        "pgd": "PGD L∞, ε = 8/255", "eps": "accuracy vs ε (PGD L∞)", "rsa": "RSA bootstrap, Pearson + ceilings",
        "rsa_tau": "RSA bootstrap, Kendall τ-a"}
TORCH_ROWS = ("lesion1", "featurevis", "pgd", "eps")
RESNETS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}          # depth -> basic blocks per stage
PRESETS = {
    "accelerator": dict(record_depth=34, record_images=256, record_size=224, images=1024, lesions=10_000,
                        vis_units=128, vis_seeds=4, vis_steps=256, eps=64, attack_steps=10, rsa_samples=10_000,
                        repeats=3, budget=450),
    "smoke": dict(record_depth=10, record_images=2, record_size=32, images=16, lesions=64, vis_units=2, vis_seeds=1,
                  vis_steps=4, eps=3, attack_steps=2, rsa_samples=20, repeats=1, budget=240),
}


def sizes(key, c):
    return {"record": f"ResNet-{c['record_depth']}, {c['record_images']:,} × {c['record_size']} px",
            "lesion1": f"128 lesions × {c['images']:,} images",
            "lesions": f"{c['lesions']:,} lesions × {c['images']:,} images",
            "featurevis": f"{c['vis_units']} units × {c['vis_seeds']} seeds × {c['vis_steps']} steps",
            "pgd": f"{c['images']:,} images × {c['attack_steps']} steps",
            "eps": f"{c['eps']} ε × {c['images']:,} images × {c['attack_steps']} steps",
            "rsa": f"{c['rsa_samples']:,} samples", "rsa_tau": f"{c['rsa_samples']:,} samples"}[key]


def eps_values(c):
    return [float(e) for e in np.linspace(0, 16 / 255, c["eps"])]


# ---------------------------------------------------------------- inputs
@functools.lru_cache(maxsize=1)
def cifar(n):
    """(subject, images, labels, source) — CIFAR-10 test images, or 8-bit natural patches labelled by the model."""
    import jax

    from insilico import electrode, zoo

    s = zoo.load(MODEL)
    if os.environ.get("INSILICO_DATA"):
        from insilico.data import cifar10

        d = cifar10("test", np.random.default_rng(0).permutation(10000)[:n])      # only these decoded
        return s, d.x, d.y, "CIFAR-10 test"
    from insilico.data.stimuli import natural_patches
    from insilico.probes.synthesis import quantize

    x = np.asarray(quantize(jax.numpy.asarray(natural_patches(jax.random.PRNGKey(0), n, 32, 3, scale=4))))
    return s, x, np.asarray(electrode.run(s, x)[0].argmax(-1), np.int32), "natural patches"


def rdms():
    """(model RDMs (3, 92, 92), data RDMs (15, 92, 92), source)."""
    if os.environ.get("INSILICO_DATA"):
        from insilico.data import cichy2014, kriegeskorte2008

        models = kriegeskorte2008().model_rdms.sel(model=["animacy", "HMAX", "V1"]).values
        return models, cichy2014().it.values, "Cichy 2014 IT, 15 subjects"
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(92, 40))
    rdm = lambda f: 1 - np.corrcoef(f)
    return (np.stack([rdm(shared + 2 * rng.normal(size=shared.shape)) for _ in range(3)]),
            np.stack([rdm(shared + rng.normal(size=shared.shape)) for _ in range(15)]), "random RDMs")


# ---------------------------------------------------------------- insilico side: key -> (call, result of a call)
def insilico_bench(key, c):
    import jax
    import jax.numpy as jnp

    rng = jax.random.PRNGKey(0)
    if key == "record":
        from insilico import electrode
        from insilico.models import ResNet18
        from insilico.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
        from insilico.subject import InputSpec, make_subject

        size, model = c["record_size"], ResNet18(layers=RESNETS[c["record_depth"]])
        s = make_subject(f"resnet{c['record_depth']}", model, jax.jit(model.init)(rng, jnp.zeros((1, size, size, 3))),
                         InputSpec((size, size, 3), (0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD))
        x = jax.random.uniform(rng, (c["record_images"], size, size, 3))
        return (lambda: jax.block_until_ready(electrode.record(s, x))), lambda r: float(len(r[1]))
    if key in ("rsa", "rsa_tau"):
        from insilico.analysis import rsa

        models, data, _ = rdms()
        method = "corr" if key == "rsa" else "tau-a"
        return (lambda: rsa.bootstrap(models, data, method=method, n_samples=c["rsa_samples"], key=rng),
                lambda ds: float(ds.samples.values.mean()))
    s, x, y, _ = cifar(c["images"])
    if key in ("lesion1", "lesions"):
        from insilico.probes import lesion

        if key == "lesion1":
            return (lambda: lesion.single_unit_sweep(s, x, "conv3", labels=y, progress=False).accuracy.values,
                    lambda a: float(a.mean()))
        masks = jax.random.bernoulli(rng, 0.1, (c["lesions"], 128)).astype(jnp.float32)
        return (lambda: lesion.mask_sweep(s, x, "conv3", masks, labels=y, progress=False).accuracy.values,
                lambda a: float(a.mean()))
    if key == "featurevis":
        from insilico.probes import featurevis

        return (lambda: featurevis.visualize(s, featurevis.channel("conv3"), units=c["vis_units"],
                                             n_seeds=c["vis_seeds"], steps=c["vis_steps"], key=rng,
                                             progress=False).score.values, lambda a: float(a.mean()))
    from insilico.probes import synthesis

    if key == "pgd":
        return (lambda: synthesis.pgd(s, x, y, 8 / 255, steps=c["attack_steps"], key=rng).attrs["accuracy"], float)
    return (lambda: synthesis.accuracy_vs_eps(s, x, y, eps_values(c), steps=c["attack_steps"], key=rng
                                              ).accuracy.values, lambda a: float(a.mean()))


# ---------------------------------------------------------------- PyTorch side, on the same device
@functools.lru_cache(maxsize=1)
def twin(device):
    import bench_electrode
    import bench_session

    return bench_session.torch_load(None, device, bench_electrode.torch_model())


def torch_bench(key, c, device):
    import bench_electrode
    import bench_session
    import torch

    s, x, y, _ = cifar(c["images"])
    model, device = twin(device)
    xt = torch.tensor(np.transpose(x, (0, 3, 1, 2)), device=device)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long, device=device)
    if key == "lesion1":
        go = bench_electrode.torch_lesion_prefix(x, y)

        def lesions():
            with torch.device(device):           # the tensors it makes land on that device
                return go()
        return lesions, lambda r: float(np.mean(r["accuracy"]))
    if key == "featurevis":
        from insilico.probes.featurevis import default_param

        units, color = list(range(c["vis_units"])) * c["vis_seeds"], default_param(s).color
        return (lambda: bench_session.torch_visualize(model, color, units, c["vis_steps"], site="conv3")[1],
                lambda a: float(a.mean()))
    if key == "pgd":
        return lambda: bench_session.torch_pgd(model, xt, yt, 8 / 255, c["attack_steps"], seed=0)[1], float
    return (lambda: [bench_session.torch_pgd(model, xt, yt, e, c["attack_steps"], seed=0)[1] for e in eps_values(c)],
            lambda a: float(np.mean(a)))


def describe(side, device):
    if side == "torch":
        import torch

        dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
        return {"torch": torch.__version__, "torch_device": f"{dev.type} ({name})"}
    import flax
    import jax

    d = jax.devices()[0]
    return {"jax": jax.__version__, "flax": flax.__version__, "platform": d.platform, "device": d.device_kind,
            "n_devices": jax.device_count()}


def measure(fn, repeats):
    """(first call s, median of ``repeats`` further calls s, the last call's value)."""
    out = {}
    first, warm, _ = timed(lambda: out.__setitem__("value", fn()), repeats)
    return first, warm, out["value"]


def worker(side, c, rows, device):
    """Run ``rows`` on one side in this process; one JSON line per row as it finishes."""
    print(json.dumps({"env": describe(side, device)}), flush=True)
    for key in rows:
        try:
            cpu = time.process_time()
            fn, result = (insilico_bench(key, c) if side == "insilico" else torch_bench(key, c, device))
            first, warm, value = measure(fn, c["repeats"])
            print(json.dumps({"row": key, "first_s": first, "warm_s": warm, "result": result(value),
                              "process_cpu_s": time.process_time() - cpu}), flush=True)
        except Exception as e:              # one failing row (out of memory, say) leaves the others to run
            print(json.dumps({"row": key, "error": f"{type(e).__name__}: {str(e)[:300]}"}), flush=True)


# ---------------------------------------------------------------- driver
def start(side, c, rows, device, env):
    cmd = [sys.executable, __file__, "--worker", side, "--config", json.dumps(c), "--rows", ",".join(rows),
           "--device", device]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, side, rows, timeout):
    """(environment, {row: result}) of a worker; rows it did not reach by ``timeout`` are marked so."""
    try:
        out, err = proc.communicate(timeout=max(timeout, 1))
        note = f"worker exited with status {proc.returncode}" if proc.returncode else ""
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        note = f"not reached in the {timeout:.0f} s left"
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    found = {x["row"]: x for x in lines if "row" in x}
    for key in rows:
        found.setdefault(key, {"row": key, "error": note or "no result"})
    if not any("env" in x for x in lines):
        print(f"{side} worker failed:\n{err[-2000:]}", file=sys.stderr)
    return next((x["env"] for x in lines if "env" in x), {}), found


def run_session(device, timeout, env):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.json"
        cmd = [sys.executable, str(HERE / "bench_session.py"), "--repeats", "1", "--device", device,
               "--json", str(path)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            return {"error": f"not finished in the {timeout:.0f} s left"}
        if r.returncode or not path.exists():
            return {"error": f"exited with status {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"}
        return json.loads(path.read_text())


def fmt(v, unit="s"):
    return f"{v:.3f} {unit}" if isinstance(v, float) and math.isfinite(v) else "—"


def table(c, envs, results, session, preset):
    ji, tj = envs.get("insilico", {}), envs.get("torch", {})
    head = [f"insilico benchmark suite, {preset} sizes — {time.strftime('%Y-%m-%d')}",
            f"device: {ji.get('device', '?')} ({ji.get('platform', '?')}, {ji.get('n_devices', '?')} device(s)); "
            f"PyTorch on {tj.get('torch_device', 'n/a')}",
            f"jax {ji.get('jax', '?')}, flax {ji.get('flax', '?')}, torch {tj.get('torch', 'n/a')}, python "
            f"{platform.python_version()}, {os.cpu_count()} CPU cores; images: {c['source']}", "",
            f"{'row':11s} {'benchmark':38s} {'size':36s} {'first call':>11s} {'warm':>11s} {'PyTorch':>11s} "
            f"{'PyTorch/insilico':>16s} {'result':>9s}"]
    lines = []
    for key, label in ROWS.items():
        if key not in results["insilico"]:
            continue
        j, t = results["insilico"][key], results.get("torch", {}).get(key, {})
        ratio = t["warm_s"] / j["warm_s"] if "warm_s" in t and "warm_s" in j else None
        lines.append(f"{key:11s} {label:38s} {sizes(key, c):36s} {fmt(j.get('first_s')):>11s} "
                     f"{fmt(j.get('warm_s')):>11s} {fmt(t.get('warm_s')):>11s} "
                     f"{f'{ratio:.2f}x' if ratio else '—':>16s} {fmt(j.get('result'), ''):>9s}")
        for side, r in (("insilico", j), ("PyTorch", t)):
            if "error" in r:
                lines.append(f"{'':11s}   {side}: {r['error']}")
    if session is not None:
        if "error" in session:
            lines.append(f"{'session':11s} cold-process session: {session['error']}")
        else:
            torch_wall = session["summary"]["torch"]["wall_s"]
            for key, label in (("insilico_first", "session, insilico first ever"),
                               ("insilico_next", "session, insilico next day")):
                wall = session["summary"][key]["wall_s"]
                lines.append(f"{'session':11s} {label:38s} {'whole cold process (bench_session)':36s} "
                             f"{fmt(wall):>11s} {'':>11s} {fmt(torch_wall):>11s} {f'{torch_wall / wall:.2f}x':>16s}")
    legend = ("result: record, sites recorded; lesion1/lesions, mean accuracy; featurevis, mean final objective; "
              "pgd, accuracy under attack; eps, mean accuracy over ε; rsa/rsa_tau, mean bootstrap score. Session "
              "rows: the whole cold process (bench_session.py), PyTorch's beside it.")
    return "\n".join(head + lines + ["", legend])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, no session (under a minute)")
    p.add_argument("--json", metavar="PATH", help="write the results here")
    p.add_argument("--rows", help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument("--device", default="auto", help="PyTorch's device: auto (cuda when available), cpu, cuda")
    p.add_argument("--no-torch", action="store_true", help="insilico only")
    p.add_argument("--no-session", action="store_true", help="leave out bench_session.py")
    for name, v in PRESETS["accelerator"].items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {v:,} (smoke {PRESETS['smoke'][name]})")
    p.add_argument("--worker", choices=("insilico", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args()
    rows = args.rows.split(",") if args.rows else list(ROWS)
    if args.worker:
        return worker(args.worker, json.loads(args.config), rows, args.device)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"--rows names unknown rows {unknown}; valid: {', '.join(ROWS)}")
    preset = "smoke" if args.smoke else "accelerator"
    c = dict(PRESETS[preset])
    for name in c:
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1; got {v}")
        if name == "record_depth" and v is not None and v not in RESNETS:
            p.error(f"--record-depth must be one of {sorted(RESNETS)}; got {v}")
        c[name] = c[name] if v is None else v
    c["source"] = "CIFAR-10 test" if os.environ.get("INSILICO_DATA") else "natural-image patches"
    t0, envs, results, session = time.perf_counter(), {}, {}, None
    left = lambda: c["budget"] - (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="insilico-accelerator-") as cache:
        env = {**os.environ, "INSILICO_CACHE": cache, "INSILICO_COMPILATION_CACHE": "1"}
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        if args.smoke:
            env["JAX_PLATFORMS"] = "cpu"
        with_session = not (args.smoke or args.no_session)
        torch_rows = [] if args.no_torch else [r for r in rows if r in TORCH_ROWS]
        torch_env = {**env, "JAX_PLATFORMS": "cpu"}           # JAX only loads the weights in PyTorch's process
        groups = [("insilico", rows, env), ("torch", torch_rows, torch_env)]
        if args.smoke:      # timings do not matter there: compile-bound workers share the cores, three at a time
            heavy = {"featurevis", "record", "lesions"}
            groups[:1] = [("insilico", [r for r in rows if r in heavy], env),
                          ("insilico", [r for r in rows if r not in heavy], env)]
        groups = [g for g in groups if g[1]]
        # sequentially, each stage leaves the later ones these fractions of the budget
        reserve = {"insilico": 0.15 * bool(torch_rows) + 0.4 * with_session, "torch": 0.4 * with_session}
        procs = [start(side, c, todo, args.device, e) for side, todo, e in groups] if args.smoke else []
        for i, (side, todo, e) in enumerate(groups):
            proc = procs[i] if procs else start(side, c, todo, args.device, e)
            got_env, got = finish(proc, side, todo, left() - (0 if procs else reserve[side] * c["budget"]))
            envs[side] = envs.get(side) or got_env
            results.setdefault(side, {}).update(got)
            print(f"{side}: " + ", ".join(f"{k} {fmt(v.get('warm_s'))}" for k, v in got.items()), flush=True)
        if with_session:
            session = run_session(args.device, left(), {k: v for k, v in env.items() if k != "INSILICO_CACHE"})
    text = table(c, envs, results, session, preset)
    print("\n" + text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"preset": preset, "config": c, "environment": envs, "results": results, "session": session,
                       "table": text}, f, indent=1)
    return 0 if all("error" not in r for side in results.values() for r in side.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
