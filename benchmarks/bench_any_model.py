"""Probing a model written with plain Flax layers: insilico on an NNX and a Linen CNN vs what a Flax user would
otherwise write, on the same weights.

    python benchmarks/bench_any_model.py [--repeats 5] [--write]

The model: conv 5x5/32 → ReLU → pool → conv 3x3/64 → ReLU → pool → conv 3x3/128 → ReLU → dense 256 → ReLU →
dense 10 on 32x32x3 images, written twice (``flax.nnx`` and ``flax.linen``) with the same weights.

1. record: every layer's output for 1,024 images — insilico ``electrode.record`` (NNX and Linen subjects) vs
   Flax's own intermediates: ``nnx.capture(..., method_outputs=nnx.Intermediate)`` under ``nnx.jit`` and Linen's
   ``apply(..., capture_intermediates=True)`` under ``jax.jit``.
2. lesion: all 128 single-channel lesions of the third conv layer on 256 images, accuracy per lesion —
   insilico ``single_unit_sweep`` (NNX and Linen) vs a jitted function of a channel mask that zeroes the
   channel's kernel and bias (the same silencing for a conv followed by ReLU), called once per channel, and the
   same function mapped over all 128 masks in one compiled ``lax.map`` (32 at a time, as the sweep does).
Results are checked equal before timing; each measurement is the median of repeats after a first (compiling)
call, each side in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, run_worker, timed, update_docs  # noqa: E402

N_RECORD, N_LESION = 1024, 256


def models():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class NNXNet(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(3, 32, (5, 5), rngs=rngs)
            self.conv2 = nnx.Conv(32, 64, (3, 3), rngs=rngs)
            self.conv3 = nnx.Conv(64, 128, (3, 3), rngs=rngs)
            self.fc1 = nnx.Linear(128 * 16, 256, rngs=rngs)
            self.out = nnx.Linear(256, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), (2, 2))
            x = nnx.max_pool(nnx.relu(self.conv2(x)), (2, 2), (2, 2))
            x = nnx.max_pool(nnx.relu(self.conv3(x)), (2, 2), (2, 2))
            return self.out(nnx.relu(self.fc1(x.reshape(x.shape[0], -1))))

    class LinenNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(nn.relu(nn.Conv(32, (5, 5), name="conv1")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(64, (3, 3), name="conv2")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(128, (3, 3), name="conv3")(x)), (2, 2), (2, 2))
            return nn.Dense(10, name="out")(nn.relu(nn.Dense(256, name="fc1")(x.reshape(x.shape[0], -1))))

    nnx_model = NNXNet(nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(nnx_model, nnx.Param))
    linen_model = LinenNet()
    variables = {"params": jax.tree.map(jnp.asarray, params)}
    return nnx_model, linen_model, variables


def data(n):
    import jax

    from insilico.data.stimuli import natural_patches

    x = natural_patches(jax.random.key(0), n, 32, 3, scale=4)
    return x


def subjects():
    from insilico.subject import InputSpec, make_subject

    nnx_model, linen_model, variables = models()
    spec = InputSpec((32, 32, 3))
    return (make_subject("nnx", nnx_model, None, spec), make_subject("linen", linen_model, variables, spec),
            nnx_model, linen_model, variables)


def make(bench: str, side: str):
    """A no-argument function that runs the benchmark once and blocks on its result."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from insilico import electrode as el
    from insilico.probes.lesion import single_unit_sweep

    s_nnx, s_linen, nnx_model, linen_model, variables = subjects()
    if bench == "record":
        x = data(N_RECORD)
        if side in ("insilico_nnx", "insilico_linen"):
            s = s_nnx if side == "insilico_nnx" else s_linen
            return lambda: jax.block_until_ready(el.record(s, x))
        if side == "flax_nnx":
            @nnx.jit
            def capture(model, x):
                return nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
            return lambda: jax.block_until_ready(jax.tree.leaves(capture(nnx_model, x)))
        fn = jax.jit(lambda v, x: linen_model.apply(v, x, capture_intermediates=True, mutable=["intermediates"]))
        return lambda: jax.block_until_ready(fn(variables, x))
    x = data(N_LESION)
    labels = np.asarray(el.record(s_linen, x)[0].argmax(-1))
    if side in ("insilico_nnx", "insilico_linen"):
        s = s_nnx if side == "insilico_nnx" else s_linen
        return lambda: single_unit_sweep(s, x, "conv3", labels=labels, batch_size=32, progress=False).accuracy.values

    @jax.jit
    def accuracy(v, mask):
        keep = 1.0 - mask
        p = v["params"]
        conv3 = {"kernel": p["conv3"]["kernel"] * keep, "bias": p["conv3"]["bias"] * keep}
        out = linen_model.apply({"params": {**p, "conv3": conv3}}, x)
        return jnp.mean(out.argmax(-1) == labels)

    eye = jnp.eye(128)
    if side == "jax_map":
        mapped = jax.jit(lambda v: jax.lax.map(lambda m: accuracy(v, m), eye, batch_size=32))
        return lambda: np.asarray(mapped(variables))
    return lambda: np.array([float(accuracy(variables, eye[u])) for u in range(128)])


def check() -> str:
    import jax
    from flax import nnx

    from insilico import electrode as el

    s_nnx, s_linen, nnx_model, linen_model, variables = subjects()
    x = data(64)
    out_n, rec_n = el.record(s_nnx, x)
    out_l, rec_l = el.record(s_linen, x)
    np.testing.assert_allclose(out_n, out_l, rtol=1e-4, atol=1e-5)
    _, inter = linen_model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"])
    for site in s_linen.sites:
        np.testing.assert_allclose(rec_l[site], inter["intermediates"][site]["__call__"][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rec_n[site], rec_l[site], rtol=1e-4, atol=1e-5)
    _, captured = nnx.capture(nnx_model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    for site in s_nnx.sites:
        np.testing.assert_allclose(rec_n[site], _captured(captured, site), rtol=1e-5, atol=1e-6)
    lesions = [np.asarray(make("lesion", side)()) for side in ("insilico_nnx", "insilico_linen", "jax_loop",
                                                               "jax_map")]
    for other in (lesions[0], lesions[1], lesions[3]):
        np.testing.assert_allclose(other, lesions[2], atol=1.5 / N_LESION)
    del jax
    return (f"recordings of all {len(s_linen.sites)} sites equal across insilico NNX, insilico Linen and Linen's "
            f"capture_intermediates (1e-4); lesion accuracies equal on 128/128 channels")


def _captured(state, site):
    """The output of ``site``'s ``__call__`` in what ``nnx.capture(method_outputs=...)`` returned."""
    node = state[site]["__call__"]
    value = node.get_value() if hasattr(node, "get_value") else node
    return value[0] if isinstance(value, tuple) else value


def worker(bench, side, repeats):
    fn = make(bench, side)
    first, median, times = timed(fn, int(repeats))
    print(json.dumps({"first_s": first, "median_s": median, "times": times}))


SIDES = {"record": ("insilico_nnx", "insilico_linen", "flax_nnx", "flax_linen"),
         "lesion": ("insilico_nnx", "insilico_linen", "jax_loop", "jax_map")}
LABELS = {"insilico_nnx": "insilico, NNX subject", "insilico_linen": "insilico, Linen subject",
          "flax_nnx": "`nnx.capture` under `nnx.jit`", "flax_linen": "Linen `capture_intermediates` under `jax.jit`",
          "jax_loop": "jitted mask function, Python loop over channels",
          "jax_map": "the mask function in one jitted `lax.map` over the 128 masks"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    p.add_argument("--worker", nargs=3, metavar=("BENCH", "SIDE", "REPEATS"))
    args = p.parse_args()
    if args.worker:
        return worker(*args.worker)
    note = check()
    print(note, flush=True)
    rows = []
    for bench, label in (("record", f"record every layer, {N_RECORD:,} images"),
                         ("lesion", f"128 single-channel lesions of conv3, {N_LESION} images")):
        r = {side: run_worker(__file__, bench, side, args.repeats) for side in SIDES[bench]}
        base = r["insilico_nnx"]["median_s"]
        for side in SIDES[bench]:
            ratio = r[side]["median_s"] / base
            line = (f"| {label} | {LABELS[side]} | {r[side]['median_s']:.3f} s (first call {r[side]['first_s']:.2f} s)"
                    f" | {ratio:.2f}x |")
            print(line, flush=True)
            rows.append(line)
    body = (f"`python benchmarks/bench_any_model.py --repeats {args.repeats} --write` — {environment()}.\n"
            "A CNN written with plain Flax layers (conv 5x5/32, 3x3/64, 3x3/128 with ReLU and 2x2 max pooling, "
            "dense 256, dense 10; 32x32x3 natural-image patches), once in NNX and once in Linen with the same "
            f"weights. Median of {args.repeats} runs after a first (compiling) call; each side in a fresh process. "
            f"{note}. 'time / insilico NNX' > 1 means slower than insilico on the NNX subject.\n\n"
            "| benchmark | side | time | time / insilico NNX |\n|---|---|---|---|\n" + "\n".join(rows))
    if args.write:
        import jax

        update_docs(f"Probing a model written with plain Flax layers ({jax.devices()[0].platform.upper()})", body)


if __name__ == "__main__":
    main()
