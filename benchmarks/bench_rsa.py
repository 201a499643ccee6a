"""Stimulus-bootstrap RSA: insilico ``rsa.bootstrap`` (one compiled call) vs rsatoolbox ``eval_bootstrap_pattern``.

    INSILICO_DATA=/path/to/data python benchmarks/bench_rsa.py [--n-corr 1000] [--n-tau 1000] [--quick] [--json PATH]

Data: the 92 images — 15 subjects' IT RDMs (Cichy et al. 2014) as data, three model RDMs of Kriegeskorte et al.
2008 (animacy, HMAX, V1 model) as fixed models. Both sides resample the 92 stimuli with replacement N times and
average each model's comparison over the subjects in each sample (pairs of a stimulus with itself are masked);
the same N on both sides. Pearson ("corr"): the noise ceiling of every sample too, on both sides (rsatoolbox's
default ``boot_noise_ceil=True``; insilico ``ceiling_*_samples``). Kendall's τ-a: per-sample ceilings off on both
(rsatoolbox ``boot_noise_ceil=False``; insilico does not resample the τ-a ceiling and computes it once). Reported: seconds (insilico: first call and
median of warm calls; rsatoolbox: one call), ms per sample, the ratio, and the bootstrap means and standard
deviations of both (different random samples: they should agree within Monte-Carlo error).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, timed  # noqa: E402

MODELS = ("animacy", "HMAX", "V1")


def load():
    from insilico.data import cichy2014, kriegeskorte2008

    data = cichy2014().it.values
    models = kriegeskorte2008().model_rdms.sel(model=list(MODELS)).values
    return models, data


def run_insilico(models, data, method, n, repeats):
    import jax

    from insilico.analysis import rsa

    out = {}

    def fn():
        out["ds"] = rsa.bootstrap(models, data, method=method, n_samples=n, key=jax.random.PRNGKey(0),
                                  model_names=list(MODELS))
    first, median, times = timed(fn, repeats)
    s = out["ds"].samples.values
    return {"first_s": first, "median_s": median, "times": times, "mean": s.mean(0).tolist(),
            "sd": s.std(0, ddof=1).tolist()}


def run_rsatoolbox(models, data, method, n, ceilings: bool):
    import rsatoolbox
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed

    rdms = rsatoolbox.rdm.RDMs(data)
    fixed = [ModelFixed(name, rsatoolbox.rdm.RDMs(m[None])) for name, m in zip(MODELS, models)]
    np.random.seed(0)
    t = time.perf_counter()
    res = eval_bootstrap_pattern(fixed, rdms, method=method, N=n, boot_noise_ceil=ceilings)
    dt = time.perf_counter() - t
    ev = res.evaluations.reshape(n, len(MODELS), -1).mean(-1)
    ev = ev[np.isfinite(ev).all(1)]
    return {"seconds": dt, "mean": ev.mean(0).tolist(), "sd": ev.std(0, ddof=1).tolist()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n-corr", type=int, default=1000, help="bootstrap samples for Pearson")
    p.add_argument("--n-tau", type=int, default=1000, help="bootstrap samples for Kendall's tau-a")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: 50 / 10 samples, 1 repeat")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    if args.quick:
        args.n_corr, args.n_tau, args.repeats = 50, 10, 1
    models, data = load()
    rows = {}
    for method, n in (("corr", args.n_corr), ("tau-a", args.n_tau)):
        ours = run_insilico(models, data, method, n, args.repeats)
        ref = run_rsatoolbox(models, data, method, n, ceilings=method != "tau-a")
        rows[method] = {"n": n, "insilico": ours, "rsatoolbox": ref, "ratio": ref["seconds"] / ours["median_s"]}
        print(f"{method}: N={n}  insilico first {ours['first_s']:.2f} s, warm {ours['median_s']:.3f} s "
              f"({1000 * ours['median_s'] / n:.2f} ms/sample)  rsatoolbox {ref['seconds']:.2f} s "
              f"({1000 * ref['seconds'] / n:.1f} ms/sample)  ratio {rows[method]['ratio']:.1f}x", flush=True)
        for k, name in enumerate(MODELS):
            print(f"    {name:8s} mean ± sd  insilico {ours['mean'][k]:+.4f} ± {ours['sd'][k]:.4f}   rsatoolbox "
                  f"{ref['mean'][k]:+.4f} ± {ref['sd'][k]:.4f}")
    print(f"\n92 stimuli, 15 subject RDMs (Cichy IT), 3 fixed models; {environment()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "models": MODELS, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
