"""Peak memory of metamers, controversial stimuli and MAD competition is flat in the number of items: 64 vs 4,096
items (targets × seeds, class pairs × seeds, start images) in chunks of the same size, each in a fresh process
(peak RSS), against 4,096 items in one chunk (what an unchunked run holds); then a resume check: a run with a
store is killed after some chunks and rerun, reusing them.

    python benchmarks/bench_synthesis_memory.py [--chunk 64] [--write]

A small untrained ConvNet (8 and 16 channels, 3x3 kernels, 32 hidden units, 10 classes) on 8x8 RGB images, so
the run is about compute per item, not model size; few steps (metamers 10, controversial stimuli 10, MAD 5).
Metamers: N/2 noise-image targets × 2 seeds, site conv2, every step run (tol 0). Controversial stimuli: 64 class
pairs × N/64 seeds between two differently initialized networks. MAD: N start images, conv1 vs conv2. Times
include compiling; 'RSS growth' is the peak minus the RSS after building the model and the inputs. Resume:
each probe with 4,096 items and a store in a fresh process, killed (SIGKILL) once 3 chunks are on disk, then
rerun: the chunks on disk are reused unchanged (file times), the rest computed, and the result equals an
uninterrupted run's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, peak_rss_mb, run_worker, update_docs

PROBES = ("metamers", "controversial", "mad")
SIZES = (64, 4096)
SHAPE = (8, 8, 3)


def subjects():
    """Two small ConvNets with different initial weights, on 8x8 RGB images in [0, 1]."""
    import jax
    import jax.numpy as jnp

    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    model = ConvNet(widths=(8, 16), kernels=(3, 3), fc=(32,), num_classes=10)
    return [make_subject(f"convnet{seed}", model, model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *SHAPE))),
                         InputSpec(SHAPE)) for seed in (0, 1)]


def probe(name: str, n: int):
    """``run(**chunking) -> Dataset`` for ``n`` items of probe ``name``, its inputs built."""
    import jax

    from insilico.probes import synthesis as syn

    a, b = subjects()
    key = jax.random.PRNGKey(0)
    if name == "metamers":
        targets = syn.quantize(jax.random.uniform(jax.random.PRNGKey(1), (n // 2, *SHAPE)))
        return lambda **kw: syn.metamers(a, "conv2", targets, n_seeds=2, steps=10, lr=0.02, tol=0.0, key=key, **kw)
    if name == "controversial":
        pairs = [(i, j) for i in range(10) for j in range(10) if i != j][:64]
        return lambda **kw: syn.controversial(a, b, pairs, n_seeds=n // 64, steps=10, key=key, **kw)
    images = syn.quantize(jax.random.uniform(jax.random.PRNGKey(1), (n, *SHAPE)) * 0.6 + 0.2)
    return lambda **kw: syn.mad_competition(a, "conv1", a, "conv2", images, noise=0.05, steps=5, key=key, **kw)


def digest(ds) -> str:
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(ds.data_vars):
        h.update(name.encode())
        h.update(ds[name].values.tobytes())
    return h.hexdigest()


def worker(name, n, chunk, store):
    n, chunk = int(n), int(chunk)
    run = probe(name, n)
    before = peak_rss_mb()
    on_disk = {}
    if store != "-":
        on_disk = {p.name: p.stat().st_mtime_ns for p in Path(store).glob("chunk_*.nc")}
    t = time.perf_counter()
    ds = run(chunk_size=chunk, store=None if store == "-" else store)
    seconds = time.perf_counter() - t
    reused = sum(1 for p in Path(store).glob("chunk_*.nc") if on_disk.get(p.name) == p.stat().st_mtime_ns) \
        if store != "-" else 0
    print(json.dumps({"probe": name, "n": n, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
                      "rss_before_mb": before, "digest": digest(ds), "reused": reused, "on_disk": len(on_disk)}))


def killed_after(name: str, n: int, chunk: int, store: str, chunks: int) -> int:
    """Start the worker with ``store``, SIGKILL it once ``chunks`` chunks are on disk; returns how many were."""
    proc = subprocess.Popen([sys.executable, __file__, "--worker", name, str(n), str(chunk), store],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and len(list(Path(store).glob("chunk_*.nc"))) < chunks:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(Path(store).glob("chunk_*.nc")))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chunk", type=int, default=64, help="items per chunk (the same for every size)")
    p.add_argument("--write", action="store_true")
    p.add_argument("--worker", nargs=4, metavar=("PROBE", "N", "CHUNK", "STORE"))
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker)
    cases = [(SIZES[0], args.chunk), (SIZES[1], args.chunk), (SIZES[1], SIZES[1])]
    runs = {(name, n, c): run_worker(__file__, name, n, c, "-") for name in PROBES for n, c in cases}
    rows = []
    for name in PROBES:
        small = runs[name, SIZES[0], args.chunk]["peak_rss_mb"]
        ratio, whole = (runs[name, SIZES[1], c]["peak_rss_mb"] / small for c in (args.chunk, SIZES[1]))
        rows.append((name, ratio, whole))
        for n, c in cases:
            r = runs[name, n, c]
            print(f"{name:14s} {n:5d} items in chunks of {c:4d}: {r['seconds']:6.1f} s, peak RSS "
                  f"{r['peak_rss_mb']:6.0f} MB (growth {r['peak_rss_mb'] - r['rss_before_mb']:5.0f} MB)", flush=True)
        print(f"{name:14s} peak ratio {SIZES[1]:,} / {SIZES[0]} items: {ratio:.2f}x ({whole:.2f}x in one chunk)",
              flush=True)
    resume = {}
    root = tempfile.mkdtemp(prefix="insilico-bench-synthesis-")
    try:
        for name in PROBES:
            store = os.path.join(root, name)
            at_kill = killed_after(name, SIZES[1], args.chunk, store, 3)
            r = run_worker(__file__, name, SIZES[1], args.chunk, store)
            same = r["digest"] == runs[name, SIZES[1], args.chunk]["digest"]
            resume[name] = {"at_kill": at_kill, "reused": r["reused"], "chunks": -(-SIZES[1] // args.chunk),
                            "same": same}
            print(f"resume {name}: killed with {at_kill} chunks on disk; rerun reused {r['reused']} of "
                  f"{resume[name]['chunks']} chunks; result {'equals' if same else 'DIFFERS FROM'} the "
                  "uninterrupted run's", flush=True)
            assert r["reused"] == at_kill > 0 and same, resume[name]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.write:
        import jax

        label = {"metamers": "metamers (targets × 2 seeds)", "controversial": "controversial (64 pairs × seeds)",
                 "mad": "MAD competition (start images)"}
        table = "\n".join(f"| {label[name]} | {n:,} | {-(-n // c)} × {c:,} | {r['seconds']:.1f} s | "
                          f"{r['peak_rss_mb']:.0f} MB | {r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB |"
                          for name in PROBES for n, c in cases for r in [runs[name, n, c]])
        ratios = ", ".join(f"{name} **{ratio:.2f}x** ({whole:.2f}x in one chunk)" for name, ratio, whole in rows)
        kills = "; ".join(f"{name}: killed with {r['at_kill']} of {r['chunks']} chunks on disk, {r['reused']} reused, "
                          f"result {'identical' if r['same'] else 'different'}" for name, r in resume.items())
        body = (f"`python benchmarks/bench_synthesis_memory.py --write` — {environment()}.\n"
                "A small untrained ConvNet (8 and 16 channels, 10 classes) on 8x8 RGB images; metamers of conv2 "
                "(10 steps, every step run), controversial stimuli between two initializations (10 steps), MAD "
                f"competition conv1 vs conv2 (5 steps); chunks of {args.chunk} items for every size, and {SIZES[1]:,} "
                "items in one chunk for comparison (the memory of an unchunked run); each run in a fresh process, its "
                "time including compilation; 'RSS growth' = peak minus the RSS after building the model and the "
                "inputs.\n\n"
                "| probe | items | chunks × items | time | peak RSS | RSS growth |\n|---|---|---|---|---|---|\n"
                + table + f"\n\nPeak memory ratio {SIZES[1]:,} / {SIZES[0]} items: {ratios} (target ≤ 1.2x). In "
                "chunks, what still grows with the items is what a probe takes and returns (every item's target or "
                "start, its images, errors and traces); in one chunk every step's activations and gradients of all "
                "items are live at once, which grows with the model and the image size.\n\n"
                f"Resume (4,096 items, a store, SIGKILL once 3 chunks were written, then rerun): {kills}.")
        update_docs(f"Synthesis memory in chunks ({jax.devices()[0].platform.upper()})", body)


if __name__ == "__main__":
    main()
