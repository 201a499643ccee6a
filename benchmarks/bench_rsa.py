"""Stimulus-bootstrap RSA, three sides: insilico ``rsa.bootstrap``; the same algorithm written in plain NumPy; and
rsatoolbox ``eval_bootstrap_pattern``.

    INSILICO_DATA=/path/to/data python benchmarks/bench_rsa.py [--n-corr 1000] [--n-tau 1000] [--repeats 5]
        [--no-rsatoolbox] [--quick] [--json PATH]

Data: the 92 images — 15 subjects' IT RDMs (Cichy et al. 2014) as data, three model RDMs of Kriegeskorte et al.
2008 (animacy, HMAX, V1 model) as fixed models. Every side resamples the 92 stimuli with replacement N times and
averages each model's comparison over the subjects in each sample (pairs of a stimulus with itself are masked),
and computes the score and the noise ceiling on all data. Pearson ("corr"): the noise ceiling of every sample too
(rsatoolbox's default ``boot_noise_ceil=True``; insilico ``ceiling_*_samples``). Kendall's τ-a: per-sample ceilings
off (rsatoolbox ``boot_noise_ceil=False``; insilico does not resample the τ-a ceiling and computes it once).

The NumPy side (``numpy_bootstrap``) is insilico's algorithm as a NumPy user would write it: a sample with stimulus
counts k weighs pair (i, j) by kᵢkⱼ, and blocks of 1,024 samples are matrix products — Pearson: weights @ moment
columns (1, a, a², b, bₛbₜ, ab of the standardized RDMs), then the correlations and ceilings from the moments; τ-a:
the upper triangle of the sign matrix Σₛ sign(a_p − a_q) sign(b_sp − b_sq) built once in row blocks, each multiplied
by the block's weights. NumPy multiplies in float32 (it has no int8 matrix product; insilico's are int8 on CPU, with
the Pearson columns in fixed point). Before timing, it runs on insilico's own draws and its per-sample values must
equal insilico's to float32 rounding (not only in Monte-Carlo error); timed, it draws its own samples.

Reported: seconds (insilico: the first call in a fresh process, compiling — the persistent compilation cache is
off here — and the median of warm calls; NumPy: median; warm insilico and NumPy calls alternate in one process, as
other load on the machine shifts both alike, with a pause before each; rsatoolbox: one call), the ratios, and the
bootstrap means and standard deviations (rsatoolbox draws other samples: agreement within Monte-Carlo error).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import scipy.stats

os.environ.setdefault("INSILICO_COMPILATION_CACHE", "0")        # a first call compiles
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, run_worker

MODELS = ("animacy", "HMAX", "V1")
BLOCK = 1024                    # samples per NumPy block (faster than 256 with OpenBLAS here)
PAUSE = 0.3                     # s before each timed call: OpenBLAS's (and XLA's) idle threads spin ~0.1 s after a
                                # call, and would take a core from the other side's next call


def load():
    from insilico.data import cichy2014, kriegeskorte2008

    data = cichy2014().it.values
    models = kriegeskorte2008().model_rdms.sel(model=list(MODELS)).values
    return models, data


# ---------------------------------------------------------------- the same algorithm in NumPy
def condensed(r):
    i, j = np.triu_indices(r.shape[-1], 1)
    return r[..., i, j].reshape(-1, len(i))


def numpy_counts(rng, n_samples: int, n: int) -> np.ndarray:
    draws = rng.integers(0, n, (n_samples, n)) + n * np.arange(n_samples)[:, None]
    return np.bincount(draws.ravel(), minlength=n_samples * n).reshape(n_samples, n).astype(np.float32)


def _standardized(v, method):
    if method == "corr":
        v = v - v.mean(1, keepdims=True)
    return v / np.sqrt(np.mean(v * v, 1, keepdims=True))


def _pearson_from_moments(mom, n_models, n_sub):
    """Scores (B, M, S) and ceilings (B,), (B,) from weighted moments (B, K)."""
    m_, s_ = n_models, n_sub
    s, t = np.triu_indices(s_)
    n_w = mom[:, :1]
    ea, eaa = mom[:, 1:1 + m_] / n_w, mom[:, 1 + m_:1 + 2 * m_] / n_w
    o = 1 + 2 * m_ + s_
    eb = mom[:, 1 + 2 * m_:o] / n_w
    ebb = np.zeros((len(mom), s_, s_), mom.dtype)
    ebb[:, s, t] = ebb[:, t, s] = mom[:, o:o + len(s)] / n_w
    eab = mom[:, o + len(s):].reshape(-1, m_, s_) / n_w[:, :, None]
    cab = eab - ea[:, :, None] * eb[:, None, :]
    cbb = ebb - eb[:, :, None] * eb[:, None, :]
    va, vb = eaa - ea ** 2, np.diagonal(cbb, axis1=1, axis2=2)
    scores = cab / np.sqrt(va[:, :, None] * vb[:, None, :])
    r = cbb / np.sqrt(vb[:, :, None] * vb[:, None, :])
    rows = r.sum(-1)
    total = rows.sum(-1, keepdims=True)
    return scores, np.mean((rows - 1) / np.sqrt(total - 2 * rows + 1), -1), np.mean(rows / np.sqrt(total), -1)


def numpy_corr(vm, vd, counts):
    """Pearson: per-sample mean scores (N, M), per-sample ceilings, score and ceiling on all data."""
    m_, s_ = len(vm), len(vd)
    a, b = _standardized(vm, "corr"), _standardized(vd, "corr")
    s, t = np.triu_indices(s_)
    full = np.concatenate([[a.shape[1]], a.sum(1), (a * a).sum(1), b.sum(1), (b @ b.T)[s, t], (a @ b.T).ravel()])
    full, lo_all, hi_all = _pearson_from_moments(full[None], m_, s_)                    # float64, weights 1
    a, b = a.astype(np.float32), b.astype(np.float32)
    x = np.concatenate([np.ones((1, a.shape[1]), np.float32), a, a * a, b, b[s] * b[t],
                        (a[:, None] * b[None]).reshape(-1, a.shape[1])]).T
    i, j = np.triu_indices(counts.shape[1], 1)
    out = []
    for c in np.array_split(counts, -(-len(counts) // BLOCK)):
        scores, lo, hi = _pearson_from_moments((c[:, i] * c[:, j]) @ x, m_, s_)
        out.append((scores.mean(-1), lo, hi))
    samples, lo, hi = (np.concatenate(v) for v in zip(*out))
    return {"samples": samples, "lower": lo, "upper": hi, "score": full[0].mean(-1),
            "ceiling": (float(lo_all[0]), float(hi_all[0]))}


def _tau_a(x, y):
    """Kendall's τ-a from SciPy's τ-b (ties: (C − D) / (m(m − 1)/2))."""
    n0 = len(x) * (len(x) - 1) / 2
    ties = [np.sum(c * (c - 1) / 2) for c in (np.unique(v, return_counts=True)[1] for v in (x, y))]
    return scipy.stats.kendalltau(x, y).statistic * np.sqrt((n0 - ties[0]) * (n0 - ties[1])) / n0


def numpy_tau(vm, vd, counts, rows: int = 512):
    """τ-a: per-sample mean over subjects (N, M), score and ceiling on all data."""
    ra = np.rint(2 * scipy.stats.rankdata(vm, axis=1)).astype(np.int16)
    rb = np.rint(2 * scipy.stats.rankdata(vd, axis=1)).astype(np.int16)
    m, n_sub = vm.shape[1], len(vd)
    edges = [(r0, min(m, r0 + rows)) for r0 in range(0, m, rows)]
    mats, full = [], 0
    for r0, r1 in edges:                          # strict upper triangle of the summed sign matrix, row blocks
        bsum = np.zeros((r1 - r0, m - r0), np.int8)
        for b in rb:
            bsum += np.sign(b[r0:r1, None] - b[None, r0:]).astype(np.int8)
        sa = np.sign(ra[:, r0:r1, None] - ra[:, None, r0:]).astype(np.int8)
        sm = (sa * bsum) * (np.arange(r0, m) > np.arange(r0, r1)[:, None])
        full = full + sm.sum((1, 2), dtype=np.int64)
        mats.append(sm.reshape(-1, m - r0).astype(np.float32))
    i, j = np.triu_indices(counts.shape[1], 1)
    out = []
    for c in np.array_split(counts, -(-len(counts) // BLOCK)):
        w = c[:, i] * c[:, j]
        form = sum(((w[:, r0:] @ s.T).reshape(len(w), -1, r1 - r0) * w[:, None, r0:r1]).sum(-1)
                   for (r0, r1), s in zip(edges, mats))
        tot = w.sum(1, dtype=np.float64)
        out.append(form / (tot * (tot - 1) / 2)[:, None] / n_sub)
    t = scipy.stats.rankdata(vd, axis=1)
    rest = (t.sum(0) - t) / (n_sub - 1)
    ceiling = (np.mean([_tau_a(r, x) for r, x in zip(rest, vd)]), np.mean([_tau_a(t.mean(0), x) for x in vd]))
    return {"samples": np.concatenate(out), "score": full / (m * (m - 1) / 2) / n_sub, "ceiling": ceiling}


def numpy_bootstrap(vm, vd, method, counts):
    return (numpy_corr if method == "corr" else numpy_tau)(vm, vd, counts)


# ---------------------------------------------------------------- the three sides
def insilico_counts(n_samples: int, n: int, seed: int = 0) -> np.ndarray:
    """The stimulus counts of insilico's samples 0 … n_samples − 1 for ``key(seed)`` (drawn here in blocks of another
    size than insilico's: a sample does not depend on its block)."""
    import jax

    from insilico.analysis.rsa.sampling import draw_counts

    ks = jax.random.split(jax.random.key(seed))[0]
    return np.concatenate([np.asarray(draw_counts(ks, np.int32(s), BLOCK, n))
                           for s in range(0, n_samples, BLOCK)])[:n_samples]


def run_insilico(models, data, method, n):
    import jax

    from insilico.analysis import rsa

    return rsa.bootstrap(models, data, method=method, n_samples=n, key=jax.random.key(0), model_names=list(MODELS))


def check_agreement(models, data, method, n) -> dict:
    """NumPy on insilico's draws: per-sample values equal to float32 rounding."""
    ds = run_insilico(models, data, method, n)
    ref = numpy_bootstrap(condensed(models), condensed(data), method, insilico_counts(n, models.shape[-1]))
    diff = {"samples": float(np.abs(ds.samples.values - ref["samples"]).max()),
            "score": float(np.abs(ds.score.values - ref["score"]).max()),
            "ceiling": float(np.abs(np.subtract((ds.attrs["ceiling_lower"], ds.attrs["ceiling_upper"]),
                                                ref["ceiling"])).max())}
    if method == "corr":
        diff["ceiling_samples"] = float(max(np.abs(ds.ceiling_lower_samples.values - ref["lower"]).max(),
                                            np.abs(ds.ceiling_upper_samples.values - ref["upper"]).max()))
    worst = max(diff.values())
    assert worst < 1e-5, f"{method}: NumPy and insilico differ on the same samples by {diff}"
    return diff


def run_rsatoolbox(models, data, method, n, ceilings: bool):
    os.environ.setdefault("TQDM_DISABLE", "1")
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


def time_interleaved(models, data, method, n, repeats):
    """Warm insilico and NumPy (its own draws, from the square RDMs as insilico) calls, alternating."""
    rng = np.random.default_rng(0)

    def numpy_side():
        return numpy_bootstrap(condensed(models), condensed(data), method, numpy_counts(rng, n, models.shape[-1]))

    numpy_side()                                                                        # warm-up
    times = {"insilico": [], "numpy": []}
    for _ in range(repeats):
        time.sleep(PAUSE)
        t = time.perf_counter()
        ours = run_insilico(models, data, method, n)
        times["insilico"].append(time.perf_counter() - t)
        time.sleep(PAUSE)
        t = time.perf_counter()
        ref = numpy_side()
        times["numpy"].append(time.perf_counter() - t)
    s, r = ours.samples.values, ref["samples"]
    return {"insilico_s": statistics.median(times["insilico"]),
            "numpy_s": statistics.median(times["numpy"]), "times": times,
            "mean": s.mean(0).tolist(), "sd": s.std(0, ddof=1).tolist(),
            "numpy_mean": r.mean(0).tolist(), "numpy_sd": r.std(0, ddof=1).tolist()}


def first_call(method: str, n: int) -> dict:
    """The first insilico call of a process (``--worker``): loading excluded, compiling included."""
    models, data = load()
    t = time.perf_counter()
    run_insilico(models, data, method, n)
    return {"first_s": time.perf_counter() - t}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n-corr", type=int, default=1000, help="bootstrap samples for Pearson")
    p.add_argument("--n-tau", type=int, default=1000, help="bootstrap samples for Kendall's tau-a")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-rsatoolbox", action="store_true", help="insilico and NumPy only")
    p.add_argument("--quick", action="store_true", help="smoke run: 50 / 10 samples, 1 repeat")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(first_call(args.worker[0], int(args.worker[1]))))
        return
    if args.quick:
        args.n_corr, args.n_tau, args.repeats = 50, 10, 1
    models, data = load()
    rows = {}
    for method, n in (("corr", args.n_corr), ("tau-a", args.n_tau)):
        first = run_worker(__file__, method, n)["first_s"]
        diff = check_agreement(models, data, method, n)
        ours = {"first_s": first, **time_interleaved(models, data, method, n, args.repeats)}
        row = {"n": n, "insilico": ours, "agreement": diff, "numpy_ratio": ours["numpy_s"] / ours["insilico_s"]}
        line = (f"{method}: N={n}  insilico first {ours['first_s']:.2f} s, warm {ours['insilico_s']:.3f} s  "
                f"NumPy {ours['numpy_s']:.3f} s ({row['numpy_ratio']:.2f}x)")
        if not args.no_rsatoolbox:
            ref = run_rsatoolbox(models, data, method, n, ceilings=method != "tau-a")
            row.update(rsatoolbox=ref, ratio=ref["seconds"] / ours["insilico_s"])
            line += f"  rsatoolbox {ref['seconds']:.2f} s ({row['ratio']:.0f}x)"
        rows[method] = row
        print(line, flush=True)
        print("    same samples, NumPy vs insilico, max |difference|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))
        for k, name in enumerate(MODELS):
            print(f"    {name:8s} mean ± sd  insilico {ours['mean'][k]:+.4f} ± {ours['sd'][k]:.4f}   NumPy "
                  f"{ours['numpy_mean'][k]:+.4f} ± {ours['numpy_sd'][k]:.4f}"
                  + ("" if args.no_rsatoolbox else
                     f"   rsatoolbox {row['rsatoolbox']['mean'][k]:+.4f} ± {row['rsatoolbox']['sd'][k]:.4f}"))
    print(f"\n92 stimuli, 15 subject RDMs (Cichy IT), 3 fixed models; {environment()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": environment(), "models": MODELS, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
