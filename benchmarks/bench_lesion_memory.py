"""Peak memory of a lesion sweep is flat in the number of lesions: 100 vs 10,000 random group lesions of
cifar_convnet/conv3 on 256 images, each in a fresh process (peak RSS), plus lesions per second.

    python benchmarks/bench_lesion_memory.py [--write]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, peak_rss_mb, run_worker, update_docs  # noqa: E402

MODEL, SITE, N_IMAGES, CHUNK = "cifar_convnet", "conv3", 256, 256


def worker(n_masks, batch_size):
    import jax
    import jax.numpy as jnp

    from insilico import zoo
    from insilico.data.stimuli import natural_patches
    from insilico.probes.lesion import mask_sweep

    s = zoo.load(MODEL)
    x = natural_patches(jax.random.PRNGKey(0), N_IMAGES, 32, 3, scale=4)
    masks = jax.random.bernoulli(jax.random.PRNGKey(1), 0.1, (int(n_masks), 128)).astype(jnp.float32)
    base = peak_rss_mb()
    kwargs = dict(batch_size=int(batch_size), chunk_size=CHUNK, progress=False)
    mask_sweep(s, x, SITE, masks[:CHUNK], **kwargs)             # compile (the same chunk shape) outside timing
    t = time.perf_counter()
    ds = mask_sweep(s, x, SITE, masks, **kwargs)
    dt = time.perf_counter() - t
    print(json.dumps({"n_masks": int(n_masks), "seconds": dt, "lesions_per_s": int(n_masks) / dt,
                      "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base,
                      "mean_agreement": float(ds.agreement.mean())}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--write", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("N_MASKS", "BATCH"))
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker)
    r = {n: run_worker(__file__, n, args.batch_size) for n in (100, 10_000)}
    ratio = r[10_000]["peak_rss_mb"] / r[100]["peak_rss_mb"]
    line = (f"lesion_memory: 100 masks {r[100]['peak_rss_mb']:.0f} MB, 10,000 masks {r[10_000]['peak_rss_mb']:.0f} MB, "
            f"ratio {ratio:.2f}x; {r[10_000]['lesions_per_s']:.0f} lesions/s")
    print(line)
    if args.write:
        import jax

        body = (f"`python benchmarks/bench_lesion_memory.py --write` — {environment()}.\n"
                f"Random group lesions (10% of channels each) of `{MODEL}/{SITE}` on {N_IMAGES} photo patches, "
                f"`lax.map` batch {args.batch_size}, chunks of {CHUNK}; each size in a fresh process, timed after a "
                f"compiling call; 'RSS growth' = peak minus the RSS after loading model and images.\n\n"
                "| lesions | time | lesions/s | peak RSS | RSS growth |\n|---|---|---|---|---|\n"
                + "\n".join(f"| {n:,} | {v['seconds']:.1f} s | {v['lesions_per_s']:.0f} | {v['peak_rss_mb']:.0f} MB | "
                            f"{v['peak_rss_mb'] - v['rss_before_mb']:.0f} MB |" for n, v in r.items())
                + f"\n\nPeak memory ratio 10,000 / 100 lesions: **{ratio:.2f}x** (target ≤ 1.2x).")
        update_docs(f"Lesion sweep memory ({jax.devices()[0].platform.upper()})", body)


if __name__ == "__main__":
    main()
