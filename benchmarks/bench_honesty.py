"""What honesty costs: the argument checks and the self-verifying sweep store, timed against the same work
without them.

    python benchmarks/bench_honesty.py [--repeats 7] [--write]

1. record: every site of cifar_convnet for 256 images — ``electrode.record`` (checks the subject, the sites,
   the images' shape, finiteness and pixel bounds, then runs the compiled program) vs the unchecked pure core
   ``electrode.forward`` under ``jax.jit`` (what a user who skipped the checks would call).
2. lesion sweep: all 128 single-channel lesions of cifar_convnet/conv3 on 256 images — ``single_unit_sweep``
   without a store, with a fresh store (hashing the weights, images, labels and settings once, writing every
   chunk with its checksum), and resuming that store (verifying the manifest and every chunk's fingerprint,
   item range and checksum instead of computing). The store side is what replaces "no guarantee": a sweep rerun
   with other inputs is refused instead of returning the old numbers.
Each measurement is the median of repeats after a first (compiling) call, in one process; results of the
checked and unchecked sides are compared before timing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, timed, update_docs  # noqa: E402

MODEL, SITE, N_RECORD, N_LESION = "cifar_convnet", "conv3", 256, 256


def record_times(repeats: int) -> dict:
    import jax

    from insilico import electrode as el
    from insilico import zoo
    from insilico.data.stimuli import natural_patches

    s = zoo.load(MODEL)
    x = natural_patches(jax.random.PRNGKey(0), N_RECORD, 32, 3, scale=4)
    sites = tuple(s.sites)
    core = jax.jit(lambda subject, images: el.forward(subject, images, record=sites))

    checked_out = el.record(s, x, sites)
    core_out = core(s, x)
    for site in sites:
        np.testing.assert_allclose(np.asarray(checked_out[1][site]), np.asarray(core_out[1][site]),
                                   rtol=1e-5, atol=1e-5)
    _, checked, _ = timed(lambda: jax.block_until_ready(el.record(s, x, sites)), repeats)
    _, unchecked, _ = timed(lambda: jax.block_until_ready(core(s, x)), repeats)
    return {"checked": checked, "unchecked": unchecked}


def sweep_times(repeats: int) -> dict:
    import jax

    from insilico import zoo
    from insilico.data.stimuli import natural_patches
    from insilico.probes.lesion import single_unit_sweep

    s = zoo.load(MODEL)
    x = natural_patches(jax.random.PRNGKey(0), N_LESION, 32, 3, scale=4)
    kwargs = dict(batch_size=16, chunk_size=32, progress=False)
    root = tempfile.mkdtemp(prefix="insilico-bench-store-")
    try:
        plain = single_unit_sweep(s, x, SITE, **kwargs)
        counter = iter(range(10 ** 6))

        def fresh():                                      # a new store each call: hash, compute, write
            single_unit_sweep(s, x, SITE, store=os.path.join(root, f"fresh{next(counter)}"), **kwargs)

        resume_dir = os.path.join(root, "resume")
        stored = single_unit_sweep(s, x, SITE, store=resume_dir, **kwargs)
        resumed = single_unit_sweep(s, x, SITE, store=resume_dir, **kwargs)
        assert resumed.attrs["resumed_chunks"] == resumed.attrs["n_chunks"]
        assert (stored.agreement.values == plain.agreement.values).all()
        assert (resumed.agreement.values == plain.agreement.values).all()
        _, no_store, _ = timed(lambda: single_unit_sweep(s, x, SITE, **kwargs), repeats)
        _, with_store, _ = timed(fresh, repeats)
        _, resume, _ = timed(lambda: single_unit_sweep(s, x, SITE, store=resume_dir, **kwargs), repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"no_store": no_store, "fresh_store": with_store, "resume": resume,
            "n_chunks": int(plain.attrs["n_chunks"])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    import jax

    rec = record_times(args.repeats)
    swp = sweep_times(args.repeats)
    print(f"record {N_RECORD} images, every site: checked {rec['checked'] * 1e3:.1f} ms, unchecked core "
          f"{rec['unchecked'] * 1e3:.1f} ms ({rec['checked'] / rec['unchecked']:.2f}x)")
    print(f"128 lesions x {N_LESION} images: no store {swp['no_store']:.2f} s, fresh verified store "
          f"{swp['fresh_store']:.2f} s ({swp['fresh_store'] / swp['no_store']:.2f}x), resume "
          f"{swp['resume']:.3f} s ({swp['no_store'] / swp['resume']:.0f}x faster than recomputing)")
    if args.write:
        body = (f"`python benchmarks/bench_honesty.py --repeats {args.repeats} --write` — {environment()}.\n\n"
                "| work | with checks | without | ratio |\n|---|---|---|---|\n"
                f"| `record`, every site of {MODEL}, {N_RECORD} images | {rec['checked'] * 1e3:.1f} ms "
                f"(`electrode.record`: subject, sites, shape, finiteness, pixel bounds) | "
                f"{rec['unchecked'] * 1e3:.1f} ms (`jax.jit(electrode.forward)`) | "
                f"{rec['checked'] / rec['unchecked']:.2f}x |\n"
                f"| 128 single-channel lesions of {SITE}, {N_LESION} images, {swp['n_chunks']} chunks | "
                f"{swp['fresh_store']:.2f} s (fresh store: content hashes of weights, images and settings, "
                f"every chunk written with its checksum) | {swp['no_store']:.2f} s (no store) | "
                f"{swp['fresh_store'] / swp['no_store']:.2f}x |\n"
                f"| the same sweep rerun on its store | {swp['resume']:.3f} s (manifest and every chunk verified) "
                f"| {swp['no_store']:.2f} s (recomputing) | {swp['no_store'] / swp['resume']:.0f}x faster |\n\n"
                "The checks run before the compiled program and reduce on the device (one read of the batch's "
                "minimum and maximum); a store hashes its inputs once per call. A sweep rerun with other images, "
                "labels, weights or settings is refused naming what differs — the guarantee the store's cost buys.")
        update_docs(f"What honesty costs ({jax.devices()[0].platform.upper()})", body)


if __name__ == "__main__":
    main()
