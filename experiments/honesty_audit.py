"""Does the lab refuse to lie? An audit of plausible user mistakes and injected faults across the public API.

    python experiments/honesty_audit.py --out results/honesty_audit [--quick] [--allow-failures]

Each case is one mistake a careful user could make — an index passed where a mask belongs (``el.lesion(7)``),
0–255 or NaN images, an empty batch, a single image without its batch axis, unknown sites, ε or step sizes that
are NaN or negative, labels outside the class range, unit indices out of range, bad analysis settings, bad data
and training arguments, bad command lines — or one injected fault: a sweep store rerun with changed images,
labels, weights, site, mode or settings, a corrupted or foreign chunk, a damaged manifest, a training run resumed
on other data or another objective, a NaN loss, a corrupted checkpoint, a fetch from http:// or through a
symbolic link or of a file larger than the registry says.

Every outcome is classified:
- clear: an exception whose message names the expected argument (or says what is wrong), or the expected
  warning where a warning is the right answer (e.g. SVCCA on more units than stimuli);
- obscure: any other exception (from inside JAX, an IndexError, ...) or a message that does not name it;
- silent: the call returned (or only warned) where it should have refused.

The model is the bundled ``mnist_convnet`` (28×28×1 images in [0, 1]; sites conv1 (16 channels), conv2 (32),
fc1 (128), logits (10)) on a few random images; training cases use a tiny MLP on random data. ``--quick`` runs
a deterministic subset (the first cases of every area and ~10 fast injections) in under a minute.

Writes results.json (every case: area, description, outcome, exception type, first line of the message), a
table per area to stdout, audit.png (clear/obscure/silent counts per area) and caption.txt to --out. Exits with
status 1 if any case is obscure or silent, unless --allow-failures.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insilico import electrode as el  # noqa: E402
from insilico import zoo  # noqa: E402
from insilico.report import style  # noqa: E402

style.use()
NAN, INF = float("nan"), float("inf")
OUTCOMES = ("clear", "obscure", "silent")
COLORS = {"clear": "#4c9a5b", "obscure": "#e0a040", "silent": "#c0392b"}
QUICK_PER_AREA = 4                 # --quick: the first cases of every area

# exception types that never make a clear answer to a user's mistake, whatever their message says
LOW_LEVEL = (ZeroDivisionError, IndexError, AttributeError, AssertionError, UnboundLocalError, NameError,
             RecursionError)


@dataclass
class Case:
    area: str
    description: str
    call: Callable
    expect: str                    # a fragment the message must contain (the argument's name, or what is wrong)
    kind: str = "case"             # "case" (a bad input) or "injection" (a fault injected into stored state)
    warning: type | None = None    # a warning category that is the right answer
    quick: bool = False


@dataclass
class Catalog:
    cases: list = field(default_factory=list)

    def add(self, area, description, call, expect, *, warning=None, quick=False, kind="case"):
        self.cases.append(Case(area, description, call, expect, kind, warning, quick))


# ------------------------------------------------------------------------------------------------ classification

def _low_level(e: BaseException) -> bool:
    module = type(e).__module__ or ""
    return type(e) in LOW_LEVEL or module.split(".")[0] in ("jax", "jaxlib", "flax", "optax")


def names(message: str, fragment: str) -> bool:
    """Whether ``message`` names ``fragment`` as a word of its own (``x`` in "x contains", not in "index")."""
    return re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", message) is not None


def classify(case: Case) -> dict:
    """Run one case and say whether its outcome is clear, obscure or silent."""
    t0 = time.perf_counter()
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            case.call()
        except SystemExit as e:                                    # the CLI: an exit status and a line on stderr
            error = e
        except Exception as e:                                     # noqa: BLE001 - classified below
            error = e
    seconds = time.perf_counter() - t0
    record = {"area": case.area, "kind": case.kind, "description": case.description, "expect": case.expect,
              "exception": None, "message": "", "seconds": round(seconds, 3)}
    if error is not None:
        message = getattr(error, "cli_stderr", None) if isinstance(error, SystemExit) else str(error)
        message = message or str(error)
        lines = message.strip().splitlines() or [""]
        shown = next((line for line in lines if line.startswith("error:") or ": error:" in line), lines[0])
        record["exception"] = type(error).__name__
        record["message"] = shown[:400]
        if isinstance(error, SystemExit):
            ok = error.code not in (0, None) and names(message, case.expect)
        else:
            ok = names(message, case.expect) and not _low_level(error)
        record["outcome"] = "clear" if ok else "obscure"
        if not ok:
            record["traceback"] = "".join(traceback.format_exception(error)[-3:])[-1500:]
        return record
    relevant = [w for w in caught if case.warning is not None and issubclass(w.category, case.warning)]
    if relevant and any(names(str(w.message), case.expect) for w in relevant):
        record["outcome"] = "clear"
        record["exception"] = relevant[0].category.__name__
        record["message"] = str(relevant[0].message).splitlines()[0][:400]
    else:
        record["outcome"] = "silent"
        if caught:
            record["exception"] = f"(warning only) {caught[0].category.__name__}"
            record["message"] = str(caught[0].message).splitlines()[0][:400]
    return record


def cli(argv):
    """A call of the ``insilico`` command; SystemExit carries what it printed on stderr."""
    def call():
        from insilico.cli import main

        err, out = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                main([str(a) for a in argv])
        except SystemExit as e:
            e.cli_stderr = err.getvalue().strip() or str(e.code)
            raise
    return call


# ------------------------------------------------------------------------------------------------- the mistakes

def bad_inputs(cat: Catalog, subject, x, y, key, work: Path):
    """Plausible mistakes with the public API, area by area."""
    from insilico.analysis import dimensionality as dim
    from insilico.analysis import encoding as enc
    from insilico.analysis import gabor, rsa, selectivity as sel, similarity as sim, tuning as tn
    from insilico.probes import brain, importance, rf
    from insilico.probes import featurevis as fv
    from insilico.probes import synthesis as syn
    from insilico.probes.lesion import ablation_curve, mask_sweep, single_unit_sweep, synapse_sweep

    s = subject
    k1, k2, k3 = jax.random.split(key, 3)
    nan_x = x.at[1, 5, 6, 0].set(NAN)

    # ---- electrode -------------------------------------------------------------------------------------------
    a = "electrode"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    add("lesion(7): an index where a mask belongs", lambda: el.lesion(7), "mask")
    add("record 0-255 float images", lambda: el.record(s, x * 255, "fc1"), "pixel bounds")
    add("record a single image without the batch axis", lambda: el.record(s, x[0], "fc1"), "single image")
    add("record an unknown site", lambda: el.record(s, x, "conv9"), "conv9")
    add("lesion mask with negative values", lambda: el.lesion(jnp.full(16, -0.5)), "mask")
    add("lesion mask holding NaN", lambda: el.lesion(jnp.ones(16).at[1].set(NAN)), "mask contains")
    add("mean_ablation mask of 2s", lambda: el.mean_ablation(jnp.ones(16) * 2, 0.0), "mask")
    add("mean_ablation with an inf mean", lambda: el.mean_ablation(jnp.ones(16), jnp.zeros(16).at[2].set(INF)),
        "mean")
    add("clamp to NaN", lambda: el.clamp(jnp.eye(16)[0], NAN), "value")
    add("clamp with an index array as mask", lambda: el.clamp(jnp.arange(16.0), 1.0), "mask")
    add("gain of inf", lambda: el.gain(INF), "g contains")
    add("gain with a NaN bias", lambda: el.gain(1.0, bias=NAN), "bias")
    add("noise std NaN", lambda: el.noise(NAN), "std")
    add("noise std negative", lambda: el.noise(jnp.array([0.1, -0.2])), "std")
    add("unit_edits with 0 units", lambda: el.unit_edits(0), "n_units")
    add("unit_edits with an unknown kind", lambda: el.unit_edits(4, "silence"), "kind")
    add("unit_edits clamp to NaN", lambda: el.unit_edits(4, "clamp", NAN), "value")
    add("record images centred on 0", lambda: el.record(s, x - 0.5, "fc1"), "pixel bounds")
    add("record an empty batch", lambda: el.record(s, x[:0], "fc1"), "empty batch")
    add("record uint8 images", lambda: el.record(s, (np.asarray(x) * 255).astype(np.uint8), "fc1"), "uint8")
    add("record NCHW images", lambda: el.record(s, x.transpose(0, 3, 1, 2), "fc1"), "does not match")
    add("record images without the channel axis", lambda: el.record(s, x[..., 0], "fc1"), "does not match")
    add("record RGB images on a grayscale model", lambda: el.record(s, jnp.repeat(x, 3, -1), "fc1"),
        "does not match")
    add("record images holding NaN", lambda: el.record(s, nan_x, "fc1"), "NaN")
    add("record a list of pixels", lambda: el.record(s, np.asarray(x).tolist(), "fc1"), "floating-point")
    add("record with a non-string site", lambda: el.record(s, x, ["conv1", 3]), "site names must be strings")
    add("record on something that is not a subject", lambda: el.record("mnist_convnet", x, "fc1"), "subject")
    add("run with an edit at an unknown site", lambda: el.run(s, x, {"conv9": el.lesion(jnp.ones(16))}), "conv9")
    add("run 0-255 images", lambda: el.run(s, x * 255, {"conv1": el.lesion(jnp.ones(16))}), "pixel bounds")
    add("run a noise edit without a key", lambda: el.run(s, x, {"fc1": el.noise(0.1)}), "PRNG key")
    add("run a noise edit with an int key", lambda: el.run(s, x, {"fc1": el.noise(0.1)}, key=7), "key")
    add("run a hand-made edit with clamp_mask 7", lambda: el.run(s, x, {"conv1": el.Edit(
        jnp.full(16, 7.0), jnp.zeros(16), jnp.ones(16), jnp.zeros(16), jnp.zeros(16))}), "clamp_mask")
    add("run a hand-made edit with negative noise", lambda: el.run(s, x, {"conv1": el.Edit(
        jnp.zeros(16), jnp.zeros(16), jnp.ones(16), jnp.zeros(16), jnp.full(16, -1.0))}), "noise_std")
    add("sample with n_samples 0", lambda: el.sample(s, x, "fc1", n_samples=0, key=k1), "n_samples")
    add("sample with n_samples 2.5", lambda: el.sample(s, x, "fc1", n_samples=2.5, key=k1), "n_samples")
    add("sample without a key", lambda: el.sample(s, x, "fc1", n_samples=2, key=None), "key")
    add("sample 0-255 images", lambda: el.sample(s, x * 255, "fc1", n_samples=2, key=k1), "pixel bounds")
    add("site_means with batch_size 0", lambda: el.site_means(s, x, "fc1", batch_size=0), "batch_size")
    add("site_means over channels", lambda: el.site_means(s, x, "fc1", over="channels"), "over")
    add("site_means without sites", lambda: el.site_means(s, x, None), "sites")
    add("site_means on an empty batch", lambda: el.site_means(s, x[:0], "fc1"), "empty batch")
    add("synapse_paths of an unknown site", lambda: el.synapse_paths(s, "conv9"), "conv9")

    # ---- lesion probes ---------------------------------------------------------------------------------------
    a = "lesion"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    lk = dict(progress=False, batch_size=8)
    add("mask_sweep with masks of 7s", lambda: mask_sweep(s, x, "conv2", 7 * jnp.eye(32), **lk), "masks")
    add("single_unit_sweep on an unknown site", lambda: single_unit_sweep(s, x, "conv9", **lk), "conv9")
    add("single_unit_sweep units out of range", lambda: single_unit_sweep(s, x, "conv2", units=[2, 40], **lk),
        "units")
    add("ablation_curve fraction 1.5", lambda: ablation_curve(s, x, "conv2", {"o": np.arange(32)},
                                                              fractions=[0.0, 1.5], **lk), "fractions")
    add("mask_sweep masks holding NaN", lambda: mask_sweep(s, x, "conv2", jnp.eye(32).at[2, 2].set(NAN), **lk),
        "masks")
    add("mask_sweep masks of the wrong width", lambda: mask_sweep(s, x, "conv2", jnp.eye(16), **lk), "masks")
    add("synapse_sweep masks holding NaN", lambda: synapse_sweep(s, x, "conv2/conv/kernel",
                                                                 jnp.full((2, 1, 1, 16, 32), NAN), **lk), "masks")
    add("synapse_sweep negative masks", lambda: synapse_sweep(s, x, "conv2/conv/kernel",
                                                              -jnp.ones((2, 1, 1, 16, 32)), **lk), "masks")
    add("synapse_sweep unknown parameter", lambda: synapse_sweep(s, x, "conv9/kernel",
                                                                 jnp.ones((2, 1, 1, 16, 32)), **lk), "conv9")
    add("single_unit_sweep fractional units", lambda: single_unit_sweep(s, x, "conv2", units=[0.5, 2], **lk),
        "units")
    add("single_unit_sweep negative unit", lambda: single_unit_sweep(s, x, "conv2", units=[2, -1], **lk), "units")
    add("ablation_curve fraction NaN", lambda: ablation_curve(s, x, "conv2", {"o": np.arange(32)},
                                                              fractions=[NAN], **lk), "fractions")
    add("ablation_curve order with repeats", lambda: ablation_curve(s, x, "conv2", {"o": [0, 0] + list(range(1, 31))},
                                                                    **lk), "order 'o'")
    add("ablation_curve unknown mode", lambda: ablation_curve(s, x, "conv2", {"o": np.arange(32)}, mode="bogus",
                                                              **lk), "mode")
    add("mask_sweep noise_scale NaN", lambda: mask_sweep(s, x, "conv2", jnp.eye(32), noise_scale=NAN, **lk),
        "noise_scale")
    add("mask_sweep noise_scale negative", lambda: mask_sweep(s, x, "conv2", jnp.eye(32), noise_scale=-1.0, **lk),
        "noise_scale")
    add("single_unit_sweep noise_scale inf", lambda: single_unit_sweep(s, x, "conv2", mode="noise", key=k1,
                                                                       noise_scale=INF, **lk), "noise_scale")
    add("single_unit_sweep labels out of class range", lambda: single_unit_sweep(
        s, x, "conv2", labels=jnp.arange(4) + 8, **lk), "labels")
    add("mask_sweep labels of the wrong length", lambda: mask_sweep(s, x, "conv2", jnp.eye(32),
                                                                    labels=jnp.zeros(3, int), **lk), "labels")
    add("synapse_sweep fractional labels", lambda: synapse_sweep(s, x, "conv2/conv/kernel", jnp.ones((2, 1, 1, 16, 32)),
                                                                 labels=jnp.full(4, 0.5), **lk), "labels")
    add("mask_sweep noise mode without a key", lambda: mask_sweep(s, x, "conv2", jnp.eye(32), mode="noise", **lk),
        "PRNG key")
    add("single_unit_sweep with an int key", lambda: single_unit_sweep(s, x, "conv2", key=3, **lk), "key")
    add("single_unit_sweep on an empty batch", lambda: single_unit_sweep(s, x[:0], "conv2", **lk), "empty batch")
    add("mask_sweep mean mode, empty reference", lambda: mask_sweep(s, x, "conv2", jnp.eye(32), mode="mean",
                                                                    reference=x[:0], **lk), "empty batch")
    add("single_unit_sweep 0-255 images", lambda: single_unit_sweep(s, x * 255, "conv2", **lk), "pixel bounds")
    add("single_unit_sweep batch_size 0", lambda: single_unit_sweep(s, x, "conv2", progress=False, batch_size=0),
        "batch_size")

    # ---- rf, importance, brain probes ------------------------------------------------------------------------
    a = "probes"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    add("exemplars k 0", lambda: rf.exemplars(s, "conv1", x, k=0, progress=False), "k must be")
    add("input_gradients units out of range", lambda: rf.input_gradients(s, "conv1", x, units=[10 ** 6]), "units")
    add("taylor_importance labels out of class range", lambda: importance.taylor_importance(s, x, "conv1",
                                                                                            np.full(4, 10)), "labels")
    add("reverse_correlation without a key", lambda: rf.reverse_correlation(s, "conv1", 64, key=None), "key")
    add("exemplars on 0-255 images", lambda: rf.exemplars(s, "conv1", x * 255, progress=False), "pixel bounds")
    add("exemplars unit -1", lambda: rf.exemplars(s, "conv1", x, units=[-1, 2], progress=False), "units")
    add("exemplars fractional unit", lambda: rf.exemplars(s, "conv1", x, units=[1.5], progress=False), "units")
    add("exemplars no units", lambda: rf.exemplars(s, "conv1", x, units=[], progress=False), "units")
    add("exemplars batch_size 0", lambda: rf.exemplars(s, "conv1", x, batch_size=0, progress=False), "batch_size")
    add("exemplars an empty stream", lambda: rf.exemplars(s, "conv1", iter([]), progress=False), "empty stream")
    add("input_gradients on a list of sites", lambda: rf.input_gradients(s, ["conv1"], x), "site")
    add("input_gradients NaN images", lambda: rf.input_gradients(s, "conv1", nan_x), "NaN")
    add("receptive_field_size mass 1.5", lambda: rf.receptive_field_size(s, "conv1", x, mass=1.5), "mass")
    add("receptive_field_size mass NaN", lambda: rf.receptive_field_size(s, "conv1", x, mass=NAN), "mass")
    add("receptive_field_size neither images nor key", lambda: rf.receptive_field_size(s, "conv1"),
        "needs images or a PRNG key")
    add("receptive_field_size n_images 0", lambda: rf.receptive_field_size(s, "conv1", key=k1, n_images=0),
        "n_images")
    add("reverse_correlation n_images 0", lambda: rf.reverse_correlation(s, "conv1", 0, key=k1, progress=False),
        "n_images")
    add("reverse_correlation std negative", lambda: rf.reverse_correlation(s, "conv1", 64, key=k1, std=-0.1,
                                                                          progress=False), "std")
    add("reverse_correlation STC window larger than the image",
        lambda: rf.reverse_correlation(s, "conv1", 64, key=k1, stc=True, window=99, progress=False), "window")
    add("grating_tuning contrast 2", lambda: rf.grating_tuning(s, "conv1", contrast=2.0), "contrast")
    add("grating_tuning spatial frequency 0", lambda: rf.grating_tuning(s, "conv1", sfs=(0.1, 0.0)), "sfs")
    add("grating_tuning above Nyquist", lambda: rf.grating_tuning(s, "conv1", sfs=(0.1, 0.7)), "sfs")
    add("grating_tuning NaN orientation", lambda: rf.grating_tuning(s, "conv1", orientations=(0, NAN)),
        "orientations")
    add("grating_tuning unknown site", lambda: rf.grating_tuning(s, "conv9"), "conv9")
    add("grating_tuning no site", lambda: rf.grating_tuning(s, None), "sites")
    add("tuning_summary level 1", lambda: rf.tuning_summary(_tuning(), level=1.0), "level")
    add("tuning_summary on a plain array", lambda: rf.tuning_summary(np.ones((2, 3))), "tuning")
    add("random_orders n_orders 0", lambda: importance.random_orders(k1, 0, 4), "n_orders")
    add("random_orders without a key", lambda: importance.random_orders(None, 2, 4), "key")
    add("order_by NaN scores", lambda: importance.order_by(jnp.array([1.0, NAN])), "scores")
    add("l1_weight_norm unknown parameter", lambda: importance.l1_weight_norm(s, "conv1", param="conv9/kernel"),
        "param")
    add("taylor_importance labels of the wrong length", lambda: importance.taylor_importance(
        s, x, "conv1", np.zeros(3, int)), "labels")
    add("taylor_importance 2-D labels", lambda: importance.taylor_importance(s, x, "conv1", np.zeros((4, 1), int)),
        "labels")
    add("record_sites batch_size -1", lambda: brain.record_sites(s, x, ["fc1"], batch_size=-1), "batch_size")
    add("record_sites unknown site", lambda: brain.record_sites(s, x, ["conv9"]), "conv9")
    add("rsa_by_site RDM of the wrong size", lambda: brain.rsa_by_site(s, x, {"r": np.ones((6, 6))}, sites=["fc1"]),
        "region 'r'")
    add("rsa_by_site RDM holding inf", lambda: brain.rsa_by_site(s, x, {"r": np.full((4, 4), INF)}, sites=["fc1"]),
        "region 'r'")
    add("rsa_by_site unknown method", lambda: brain.rsa_by_site(s, x, {"r": np.ones((4, 4))}, method="pearson"),
        "method")
    add("rsa_by_site bootstrap without a key", lambda: brain.rsa_by_site(s, x, {"r": np.ones((4, 4))}, n_boot=10),
        "PRNG key")
    add("encoding_by_site responses to other images", lambda: brain.encoding_by_site(
        s, x, {"r": np.ones((5, 2))}, key=k1), "region 'r'")
    add("encoding_by_site no regions", lambda: brain.encoding_by_site(s, x, {}, key=k1), "regions")
    add("encoding_by_site n_splits 0", lambda: brain.encoding_by_site(s, x, {"r": np.ones((4, 2))}, n_splits=0,
                                                                      key=k1), "n_splits")
    add("encoding_by_site unknown method", lambda: brain.encoding_by_site(s, x, {"r": np.ones((4, 2))},
                                                                          method="lasso", key=k1), "method")
    add("encoding_by_site ceiling of an unknown region", lambda: brain.encoding_by_site(
        s, x, {"r": np.ones((4, 2))}, ceilings={"V9": 0.5}, key=k1), "ceilings")

    # ---- synthesis -------------------------------------------------------------------------------------------
    a = "synthesis"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    add("fgsm ε NaN", lambda: syn.fgsm(s, x, y, NAN), "eps")
    add("pgd ε negative", lambda: syn.pgd(s, x, y, -0.1, key=k1), "eps")
    add("pgd steps 0", lambda: syn.pgd(s, x, y, 0.1, steps=0, key=k1), "steps")
    add("fgsm labels out of class range", lambda: syn.fgsm(s, x, jnp.asarray([0, 1, 2, 10]), 0.1), "labels")
    add("pgd ε inf", lambda: syn.pgd(s, x, y, INF, key=k1), "eps")
    add("pgd step_size 0", lambda: syn.pgd(s, x, y, 0.1, step_size=0.0, key=k1), "step_size")
    add("pgd step_size NaN", lambda: syn.pgd(s, x, y, 0.1, step_size=NAN, key=k1), "step_size")
    add("pgd restarts 2.5", lambda: syn.pgd(s, x, y, 0.1, restarts=2.5, key=k1), "restarts")
    add("pgd without a key", lambda: syn.pgd(s, x, y, 0.1), "key")
    add("pgd unknown norm", lambda: syn.pgd(s, x, y, 0.1, norm="l1", key=k1), "norm")
    add("pgd negative labels", lambda: syn.pgd(s, x, jnp.asarray([0, -1, 2, 3]), 0.1, key=k1), "labels")
    add("fgsm on 0-255 images", lambda: syn.fgsm(s, x * 255, y, 0.1), "bounds")
    add("fgsm on an empty batch", lambda: syn.fgsm(s, x[:0], y[:0], 0.1), "empty")
    add("fgsm on NaN images", lambda: syn.fgsm(s, nan_x, y, 0.1), "NaN")
    add("fgsm 2-D labels", lambda: syn.fgsm(s, x, y[:, None], 0.1), "labels")
    add("fgsm unknown loop", lambda: syn.fgsm(s, x, y, 0.1, loop="gpu"), "loop")
    add("accuracy_vs_eps NaN ε", lambda: syn.accuracy_vs_eps(s, x, y, [0, NAN], key=k1), "eps_values")
    add("accuracy_vs_eps negative ε", lambda: syn.accuracy_vs_eps(s, x, y, [0.1, -0.1], key=k1), "eps_values")
    add("accuracy_vs_eps no ε", lambda: syn.accuracy_vs_eps(s, x, y, [], key=k1), "eps_values")
    add("accuracy_vs_eps a scalar ε", lambda: syn.accuracy_vs_eps(s, x, y, 0.1, key=k1), "eps_values")
    add("accuracy_vs_eps steps -3", lambda: syn.accuracy_vs_eps(s, x, y, [0.1], steps=-3, key=k1), "steps")
    add("accuracy_vs_eps unknown attack", lambda: syn.accuracy_vs_eps(s, x, y, [0.1], attack="cw", key=k1),
        "attack")
    add("accuracy_vs_eps fractional labels", lambda: syn.accuracy_vs_eps(s, x, np.asarray([0.0, 1.5, 2.0, 3.0]),
                                                                         [0.1], key=k1), "labels")
    add("accuracy_vs_eps without a key", lambda: syn.accuracy_vs_eps(s, x, y, [0.1]), "key")
    add("deepfool max_iter 0", lambda: syn.deepfool(s, x, y, max_iter=0), "max_iter")
    add("deepfool overshoot negative", lambda: syn.deepfool(s, x, y, overshoot=-0.02), "overshoot")
    add("deepfool labels of the wrong length", lambda: syn.deepfool(s, x, y[:2]), "labels")
    add("metamers lr negative", lambda: syn.metamers(s, "conv2", x, lr=-0.01, key=k1), "lr")
    add("metamers n_seeds 0", lambda: syn.metamers(s, "conv2", x, n_seeds=0, key=k1), "n_seeds")
    add("metamers steps True", lambda: syn.metamers(s, "conv2", x, steps=True, key=k1), "steps")
    add("metamers tol NaN", lambda: syn.metamers(s, "conv2", x, tol=NAN, key=k1), "tol")
    add("metamers unknown loss", lambda: syn.metamers(s, "conv2", x, loss="huber", key=k1), "loss")
    add("metamers unknown site", lambda: syn.metamers(s, "conv9", x, steps=2, key=k1), "conv9")
    add("metamers without a key", lambda: syn.metamers(s, "conv2", x), "key")
    add("metamers on 0-255 targets", lambda: syn.metamers(s, "conv2", x * 255, steps=2, key=k1), "bounds")
    add("mad_competition lr 0", lambda: syn.mad_competition(s, "conv1", s, "conv2", x, lr=0, key=k1), "lr")
    add("mad_competition noise negative", lambda: syn.mad_competition(s, "conv1", s, "conv2", x, noise=-0.1,
                                                                      key=k1), "noise")
    add("controversial lr 0", lambda: syn.controversial(s, s, lr=0.0, key=k1), "lr")
    add("controversial class pair out of range", lambda: syn.controversial(s, s, [(0, 12)], key=k1), "class_pairs")
    add("controversial class pairs not pairs", lambda: syn.controversial(s, s, [0, 1, 2], key=k1), "class_pairs")
    add("eigendistortions n_iter 1.5", lambda: syn.eigendistortions(s, "conv2", x, n_iter=1.5, key=k1), "n_iter")
    add("eigendistortions without a key", lambda: syn.eigendistortions(s, "conv2", x, key=None), "key")
    add("quantize levels 1", lambda: syn.quantize(x, levels=1), "levels")
    add("quantize reversed bounds", lambda: syn.quantize(x, bounds=(1.0, 0.0)), "bounds")
    add("quantize NaN images", lambda: syn.quantize(nan_x), "x contains")
    add("ResponseScore unit out of range", lambda: syn.ResponseScore(s, "fc1", 128), "unit")
    add("ResponseScore std 0", lambda: syn.ResponseScore(s, "fc1", 0, std=0.0), "std")

    # ---- feature visualization -------------------------------------------------------------------------------
    a = "featurevis"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    vk = dict(key=k2, progress=False)
    add("channel objective with index 10**6", lambda: fv.visualize(s, fv.channel("conv2", 10 ** 6), 1, steps=2,
                                                                   **vk), "index")
    add("channel index 3.5", lambda: fv.channel("conv2", 3.5), "index")
    add("visualize steps 0", lambda: fv.visualize(s, fv.channel("conv2"), 1, steps=0, **vk), "steps")
    add("visualize without a key", lambda: fv.visualize(s, fv.channel("conv2"), 1, key=None, progress=False), "key")
    add("channel index -1", lambda: fv.channel("conv2", -1), "index")
    add("neuron x out of the map", lambda: fv.visualize(s, fv.neuron("conv2", 0, x=100), 1, steps=2, **vk), "x")
    add("neuron y on a dense site", lambda: fv.visualize(s, fv.neuron("fc1", 0, y=0), 1, steps=2, **vk), "y")
    add("class_logit 12 of 10 classes", lambda: fv.visualize(s, fv.class_logit("logits", 12), 1, steps=2, **vk),
        "index")
    add("class_logit out of range inside a sum", lambda: fv.visualize(
        s, fv.class_logit("fc1", 200) - 0.1 * fv.total_variation(), 1, steps=2, **vk), "index")
    add("direction of the wrong width", lambda: fv.visualize(s, fv.direction("conv2", np.ones(5)), 1, steps=2,
                                                             **vk), "vectors")
    add("direction NaN vector", lambda: fv.direction("conv2", [1.0, NAN] + [0.0] * 30), "vectors")
    add("visualize fractional units", lambda: fv.visualize(s, fv.channel("conv2"), [0, 1.5], steps=2, **vk),
        "units")
    add("visualize no units", lambda: fv.visualize(s, fv.channel("conv2"), [], steps=2, **vk), "units")
    add("visualize 0 units", lambda: fv.visualize(s, fv.channel("conv2"), 0, steps=2, **vk), "units")
    add("visualize lr 0", lambda: fv.visualize(s, fv.channel("conv2"), 1, lr=0, **vk), "lr")
    add("visualize n_seeds 1.5", lambda: fv.visualize(s, fv.channel("conv2"), 1, n_seeds=1.5, **vk), "n_seeds")
    add("visualize snapshot after the last step", lambda: fv.visualize(s, fv.channel("conv2"), 1, steps=4,
                                                                       snapshots=[2, 5], **vk), "snapshots")
    add("visualize unknown site", lambda: fv.visualize(s, fv.channel("conv9"), 1, steps=2, **vk), "conv9")
    add("visualize batch_size 0", lambda: fv.visualize(s, fv.channel("conv2"), 1, batch_size=0, **vk),
        "batch_size")
    add("objective weighted by NaN", lambda: fv.channel("conv2") * NAN, "weight")
    add("objective divided by 0", lambda: fv.channel("conv2") / 0, "divisor")
    add("l1 constant NaN", lambda: fv.l1(NAN), "constant")
    add("pixel param sd negative", lambda: fv.pixel(s, sd=-0.01), "sd")
    add("unknown parameterization", lambda: fv.ImageParam("fft", (28, 28, 1)), "kind")
    add("fourier output tanh", lambda: fv.fourier(s, output="tanh"), "output")
    add("param outside the pixel bounds", lambda: fv.visualize(
        s, fv.channel("conv2"), 1, steps=2, param=fv.pixel((28, 28, 1), bounds=(-1, 1)), **vk), "pixel bounds")
    add("standard_transforms size 0", lambda: fv.standard_transforms(0), "size")
    add("RandomScale reversed zoom", lambda: fv.RandomScale((1.0, 0.0)), "scales")
    add("color_matrix of an empty set", lambda: fv.color_matrix(np.zeros((0, 4, 4, 3))), "images")

    # ---- analysis ----------------------------------------------------------------------------------------------
    a = "analysis"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 12))
    Y = X @ rng.normal(size=(12, 9)) + 2.0 * rng.normal(size=(60, 9))
    R = np.abs(rng.normal(size=(20, 5)))
    labels = np.arange(20) % 4
    ori = np.arange(0, 180, 22.5)
    curve = np.cos(np.deg2rad(2 * ori)) + 1.5
    sf = 2.0 ** np.arange(-3, 3)
    sf_curve = np.exp(-np.log2(sf) ** 2)
    trials = rng.normal(size=(10, 3, 4))
    rdms = np.stack([rsa.rdm(np.random.default_rng(i).normal(size=(8, 6))) for i in range(3)])
    wide_a, wide_b = rng.normal(size=(40, 45)), rng.normal(size=(40, 5))

    def w(arr, index, value):
        arr = np.array(arr, float)
        arr[index] = value
        return arr

    add("cka on NaN features", lambda: sim.cka(w(X, (3, 2), NAN), Y), "x")
    add("svcca on more units than stimuli (warning)", lambda: sim.svcca(wide_a, wide_b), "inflated",
        warning=sim.InflatedScoreWarning)
    add("rdm unknown method", lambda: rsa.rdm(X, "manhattan"), "method")
    add("class_selectivity labels out of range", lambda: sel.class_selectivity(R, w(labels, 0, 4).astype(int), 4),
        "labels")
    add("cka y holding inf", lambda: sim.cka(X, w(Y, (0, 0), INF)), "y")
    add("cka on empty features", lambda: sim.cka(np.empty((0, 3)), np.empty((0, 3))), "x")
    add("cka unknown kernel", lambda: sim.cka(X, Y, kernel="poly"), "kernel")
    add("cka rbf threshold 0", lambda: sim.cka(X, Y, kernel="rbf", threshold=0.0), "threshold")
    add("cka on different numbers of stimuli", lambda: sim.cka(X, Y[:50]), "stimuli")
    add("cca on more units than stimuli (warning)", lambda: sim.cca(wide_a, wide_b), "inflated",
        warning=sim.InflatedScoreWarning)
    add("pwcca on widths exceeding the rank (warning)", lambda: sim.pwcca(rng.normal(size=(100, 60)),
                                                                          rng.normal(size=(100, 60))), "inflated",
        warning=sim.InflatedScoreWarning)
    add("canonical_correlations ill-posed (warning)", lambda: sim.canonical_correlations(wide_a, wide_b),
        "inflated", warning=sim.InflatedScoreWarning)
    add("svcca keep 0", lambda: sim.svcca(X, Y, keep=0.0), "keep")
    add("svcca keep 1.5", lambda: sim.svcca(X, Y, keep=1.5), "keep")
    add("procrustes alpha negative", lambda: sim.procrustes(X, Y, alpha=-0.1), "alpha")
    add("procrustes alpha NaN", lambda: sim.procrustes(X, Y, alpha=NAN), "alpha")
    add("procrustes unknown metric", lambda: sim.procrustes(X, Y, metric="cosine"), "metric")
    add("two_nn discard 1", lambda: dim.two_nn(X, discard=1.0), "discard")
    add("two_nn discard negative", lambda: dim.two_nn(X, discard=-0.1), "discard")
    add("participation_ratio inf", lambda: dim.participation_ratio(w(X, (1, 1), INF)), "x")
    add("powerlaw_exponent range from 0", lambda: dim.powerlaw_exponent(X, (0, 10)), "fit_range")
    add("powerlaw_exponent reversed range", lambda: dim.powerlaw_exponent(X, (5, 3)), "fit_range")
    add("encode unknown method", lambda: enc.encode(X, Y, method="lasso", key=k3), "method")
    add("encode unknown normalization", lambda: enc.encode(X, Y, normalization="ceiling", key=k3),
        "normalization")
    add("encode n_splits 0", lambda: enc.encode(X, Y, n_splits=0, key=k3), "n_splits")
    add("encode test_fraction 0", lambda: enc.encode(X, Y, test_fraction=0.0, key=k3), "test_fraction")
    add("encode test_fraction 1", lambda: enc.encode(X, Y, test_fraction=1.0, key=k3), "test_fraction")
    add("encode negative alpha", lambda: enc.encode(X, Y, alphas=[-1.0, 1.0], key=k3), "alphas")
    add("encode NaN alpha", lambda: enc.encode(X, Y, alphas=[NAN], key=k3), "alphas")
    add("encode without a key", lambda: enc.encode(X, Y, key=None), "key")
    add("encode infinite ceiling", lambda: enc.encode(X, Y, ceiling=np.full(9, INF), key=k3), "ceiling")
    add("encode NaN responses", lambda: enc.encode(X, w(Y, (2, 2), NAN), key=k3), "responses")
    add("encode features for other stimuli", lambda: enc.encode(X[:50], Y, key=k3), "stimuli")
    add("ridge_cv n_folds 1", lambda: enc.ridge_cv(X, Y, n_folds=1), "n_folds")
    add("pls n_components 0", lambda: enc.pls(X, Y, n_components=0), "n_components")
    add("pls tol negative", lambda: enc.pls(X, Y, tol=-1.0), "tol")
    add("split_half_reliability n_splits 0", lambda: enc.split_half_reliability(trials, n_splits=0, key=k3),
        "n_splits")
    add("split_half_reliability without a key", lambda: enc.split_half_reliability(trials, key=None), "key")
    add("split_half_reliability inf trial", lambda: enc.split_half_reliability(w(trials, (0, 0, 0), INF), key=k3),
        "trials")
    add("rdm poisson prior_lambda negative", lambda: rsa.rdm(R, "poisson", prior_lambda=-1.0), "prior_lambda")
    add("rdm NaN noise covariance", lambda: rsa.rdm(X, "mahalanobis", noise=np.full((12, 12), NAN)), "noise")
    add("compare unknown method", lambda: rsa.compare(rdms[0], rdms[1], "kendall"), "method")
    add("compare RDMs of different sizes", lambda: rsa.compare(rdms[0], rdms[0][:5, :5]), "RDMs")
    add("bootstrap n_samples 0", lambda: rsa.bootstrap(rdms[:1], rdms, n_samples=0, key=k3), "n_samples")
    add("bootstrap ci 1.5", lambda: rsa.bootstrap(rdms[:1], rdms, ci=1.5, key=k3), "ci")
    add("bootstrap without a key", lambda: rsa.bootstrap(rdms[:1], rdms, key=None), "key")
    add("permutation_test 0 permutations", lambda: rsa.permutation_test(rdms[:1], rdms, n_permutations=0, key=k3),
        "n_permutations")
    add("fit_weighted n_folds 1", lambda: rsa.fit_weighted(rdms, rdms, n_folds=1), "n_folds")
    add("class_means negative label", lambda: sel.class_means(R, w(labels, 0, -1).astype(int), 4), "labels")
    add("class_means fractional labels", lambda: sel.class_means(R, w(labels, 0, 1.5), 4), "labels")
    add("class_selectivity labels of the wrong length", lambda: sel.class_selectivity(R, labels[:7], 4), "labels")
    add("class_means n_classes 0", lambda: sel.class_means(R, labels, 0), "n_classes")
    add("class_selectivity NaN responses", lambda: sel.class_selectivity(w(R, (0, 0), NAN), labels, 4),
        "responses")
    add("category_dprime one category only", lambda: sel.category_dprime(R, np.ones(20, bool)), "is_a")
    add("lifetime_sparseness of nothing", lambda: sel.lifetime_sparseness(np.empty((0, 5))), "responses")
    add("spearman of different lengths", lambda: sel.spearman(R[:, 0], R[:5, 1]), "x and y")
    add("spearman_bootstrap n_boot 0", lambda: sel.spearman_bootstrap(R[:, 0], R[:, 1], k3, n_boot=0), "n_boot")
    add("spearman_bootstrap without a key", lambda: sel.spearman_bootstrap(R[:, 0], R[:, 1], None), "key")
    add("log_bandwidth level 0", lambda: tn.log_bandwidth(sf, sf_curve, level=0.0), "level")
    add("circular_halfwidth level 1.5", lambda: tn.circular_halfwidth(ori, curve, level=1.5), "level")
    add("circular_halfwidth lengths differ", lambda: tn.circular_halfwidth(ori[:5], curve), "orientations_deg")
    add("osi NaN response", lambda: tn.osi(ori, w(curve, 2, NAN)), "responses")
    add("preferred_log_peak lengths differ", lambda: tn.preferred_log_peak(sf[:4], sf_curve), "values")
    add("modulation_ratio of nothing", lambda: tn.modulation_ratio(np.empty(0), np.empty(0)), "phases_deg")
    add("fit_gabor n_starts 0", lambda: gabor.fit_gabor(np.ones((8, 8)), n_starts=0), "n_starts")
    add("fit_gabor of no filters", lambda: gabor.fit_gabor(np.empty((0, 8, 8))), "filters")
    add("gabor_filter sigma 0", lambda: gabor.gabor_filter(9, {"sigma_x": 0.0, "sigma_y": 2.0, "orientation": 0.0,
                                                               "sf": 0.2}), "sigma_x")
    add("gabor_similarity NaN filter", lambda: gabor.gabor_similarity(w(np.ones((5, 5)), (0, 0), NAN),
                                                                      np.ones((5, 5))), "a")

    # ---- data ----------------------------------------------------------------------------------------------------
    a = "data"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    from insilico.data import Dataset, allen_v1, cifar10, fetch, mnist_test, objects92, stimuli as st, tang2018
    from insilico.data.worlds import radial_amplitude, transform

    ds = Dataset(np.full((8, 4, 4, 3), 0.5, np.float32), np.arange(8, dtype=np.int32) % 4, ("a", "b", "c", "d"),
                 "t")
    add("fetch timeout 0", lambda: fetch("mnist_test", work / "unused", timeout=0), "timeout")
    add("cifar10 split 'val'", lambda: cifar10("val"), "split")
    add("grating size 0", lambda: st.grating(0, 0.0, 0.1), "size")
    add("white_noise without a key", lambda: st.white_noise(None, 2, (4, 4, 1)), "key")
    add("fetch timeout NaN", lambda: fetch("mnist_test", work / "unused", timeout=NAN), "timeout")
    add("fetch max_bytes 0", lambda: fetch("mnist_test", work / "unused", max_bytes=0), "max_bytes")
    add("fetch an unknown dataset", lambda: fetch("imagenet_full", work / "unused"), "imagenet_full")
    add("mnist_test split 'validation'", lambda: mnist_test("validation"), "split")
    add("objects92 size 0", lambda: objects92(size=0), "size")
    add("objects92 two channels", lambda: objects92(channels=2), "channels")
    add("allen_v1 split 'val'", lambda: allen_v1(split="val"), "split")
    add("tang2018 crop 2.5", lambda: tang2018(crop=2.5), "crop")
    add("Dataset.subset out of range", lambda: ds.subset([0, 8]), "index")
    add("Dataset.subset non-integer", lambda: ds.subset([0.5]), "index")
    add("Dataset.subset mask of the wrong length", lambda: ds.subset(np.ones(5, bool)), "index")
    add("Dataset.subset empty", lambda: ds.subset([]), "index")
    add("grating NaN orientation", lambda: st.grating(8, NAN, 0.1), "orientation")
    add("grating negative spatial frequency", lambda: st.grating(8, 0.0, -0.1), "sf")
    add("grating contrast 1.5", lambda: st.grating(8, 0.0, 0.1, contrast=1.5), "contrast")
    add("gabor sigma 0", lambda: st.gabor(8, 0.0, 0.1, sigma=0.0), "sigma")
    add("grating_set no orientations", lambda: st.grating_set(8, [], [0.1]), "orientations")
    add("white_noise n 0", lambda: st.white_noise(k3, 0, (4, 4, 1)), "n")
    add("white_noise std negative", lambda: st.white_noise(k3, 2, (4, 4, 1), std=-1.0), "std")
    add("pink_noise 2-D shape", lambda: st.pink_noise(k3, 2, (4, 4)), "shape")
    add("photos unknown name", lambda: st.photos(8, names=["dog"]), "names")
    add("natural_patches larger than the photos", lambda: st.natural_patches(k3, 2, 500, scale=4), "size * scale")
    add("transform unknown class", lambda: transform(ds, classes=["zebra"]), "classes")
    add("transform NaN class weight", lambda: transform(ds, class_weights={"a": NAN}, key=k3), "class_weights")
    add("transform reweighting without a key", lambda: transform(ds, class_weights={"a": 2.0}), "key")
    add("radial_amplitude n_bins 0", lambda: radial_amplitude(np.random.default_rng(1).random((2, 8, 8, 1)),
                                                              n_bins=0), "n_bins")

    # ---- training ------------------------------------------------------------------------------------------------
    a = "training"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    from insilico.train import TrainConfig, evaluate, fit, make_optimizer

    model, train, test, cfg = _toy_training()
    variables = jax.device_get(model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1))))
    add("TrainConfig epochs 0", lambda: TrainConfig(epochs=0), "epochs")
    add("TrainConfig lr NaN", lambda: TrainConfig(lr=NAN), "lr")
    add("TrainConfig unknown optimizer", lambda: replace(cfg, optimizer="rmsprop"), "optimizer")
    add("fit labels above the class range", lambda: fit(model, _relabel(train, 4), None, cfg, progress=False),
        "train.y")
    add("TrainConfig batch_size 0", lambda: TrainConfig(batch_size=0), "batch_size")
    add("TrainConfig batch_size 2.5", lambda: TrainConfig(batch_size=2.5), "batch_size")
    add("TrainConfig lr 0", lambda: TrainConfig(lr=0.0), "lr")
    add("TrainConfig momentum 1.5", lambda: TrainConfig(momentum=1.5), "momentum")
    add("TrainConfig warmup negative", lambda: TrainConfig(warmup=-0.1), "warmup")
    add("TrainConfig label_smoothing 2", lambda: TrainConfig(label_smoothing=2), "label_smoothing")
    add("TrainConfig weight_decay negative", lambda: TrainConfig(weight_decay=-1e-4), "weight_decay")
    add("TrainConfig unknown augment", lambda: TrainConfig(augment="rotate"), "augment")
    add("make_optimizer 0 steps", lambda: make_optimizer(cfg, 0), "steps")
    add("fit with a dict for a config", lambda: fit(model, train, None, {"epochs": 1}, progress=False), "cfg")
    add("fit negative label", lambda: fit(model, _relabel(train, -1), None, cfg, progress=False), "train.y")
    add("fit test labels out of range", lambda: fit(model, train, _with(test, y=test.y + 4), cfg, progress=False),
        "test.y")
    add("fit a NaN image", lambda: fit(model, _with(train, x=_nan_pixel(train.x)), None, cfg, progress=False),
        "train.x")
    add("fit an empty dataset", lambda: fit(model, _with(train, x=train.x[:0], y=train.y[:0]), None, cfg,
                                            progress=False), "train.x")
    add("fit a batch larger than the data", lambda: fit(model, train, None, replace(cfg, batch_size=41),
                                                        progress=False), "batch_size")
    add("evaluate labels out of range", lambda: evaluate(model, variables, test.x, test.y + 4), "y")
    add("evaluate labels of another length", lambda: evaluate(model, variables, test.x, test.y[:5]), "y")
    add("evaluate a NaN image", lambda: evaluate(model, variables, _nan_pixel(test.x), test.y), "x")
    add("evaluate batch_size 0", lambda: evaluate(model, variables, test.x, test.y, batch_size=0), "batch_size")

    # ---- zoo -------------------------------------------------------------------------------------------------------
    a = "zoo"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    add("load an unknown model", lambda: zoo.load("vgg99"), "vgg99")
    add("load weights that do not exist", lambda: zoo.load("mnist_convnet", weights=work / "nope" / "w.ckpt"),
        "weights")
    add("train an unknown recipe", lambda: zoo.train("alexnet", work / "w"), "recipe")
    add("train limit 0", lambda: zoo.train("mnist_convnet", work / "w", limit=0), "limit")
    add("train epochs 0", lambda: zoo.train("mnist_convnet", work / "w", epochs=0), "epochs")
    add("train into the installed package", lambda: zoo.train("mnist_convnet", zoo.WEIGHTS_DIR), "weights_dir")
    add("train checkpoints into the installed package", lambda: zoo.train(
        "mnist_convnet", work / "w", checkpoint_dir=zoo.WEIGHTS_DIR / "x"), "checkpoint_dir")
    add("load retrained weights for an untrained control", lambda: zoo.load("mnist_convnet_untrained",
                                                                            weights=work / "x.ckpt"), "weights")
    add("load a text file as weights", lambda: zoo.load("mnist_convnet", weights=_text_file(work / "w.ckpt")),
        "w.ckpt")

    # ---- the command line --------------------------------------------------------------------------------------
    a = "cli"
    add = lambda *args, **kw: cat.add(a, *args, **kw)                           # noqa: E731
    out = work / "cli_out"
    add("attack --eps nan", cli(["attack", "mnist_convnet", "--eps", "0", "nan", "--out", out]), "--eps")
    add("sweep --n 0", cli(["sweep", "mnist_convnet", "conv1", "--n", "0", "--out", out]), "--n")
    add("sites of an unknown model", cli(["sites", "vgg99"]), "vgg99")
    add("rsa --n-boot -1", cli(["rsa", "mnist_convnet", "--n-boot", "-1", "--out", out]), "--n-boot")
    add("attack --eps -0.1", cli(["attack", "mnist_convnet", "--eps", "-0.1", "--out", out]), "--eps")
    add("sweep --n 2.5", cli(["sweep", "mnist_convnet", "conv1", "--n", "2.5", "--out", out]), "--n")
    add("rf --steps 0", cli(["rf", "mnist_convnet", "conv1", "--steps", "0", "--out", out]), "--steps")
    add("controversial --seeds 0", cli(["controversial", "a", "b", "--seeds", "0", "--out", out]), "--seeds")
    add("train --epochs 0", cli(["train", "mnist_convnet", "--epochs", "0"]), "--epochs")
    add("sites with missing --weights", cli(["sites", "mnist_convnet", "--weights", work / "none.ckpt"]),
        "none.ckpt")
    add("attack --norm l1", cli(["attack", "mnist_convnet", "--norm", "l1", "--out", out]), "--norm")
    add("sweep an unknown site", cli(["sweep", "mnist_convnet", "conv9", "--n", "4", "--out", out]), "conv9")
    add("sweep --mode silence", cli(["sweep", "mnist_convnet", "conv1", "--mode", "silence", "--out", out]),
        "--mode")
    add("rf an unknown site", cli(["rf", "mnist_convnet", "conv9", "--n", "4", "--units", "1", "--steps", "1",
                                   "--out", out]), "conv9")
    add("controversial with an unknown model", cli(["controversial", "mnist_convnet", "nonexistent_model",
                                                    "--steps", "1", "--out", out]), "nonexistent_model")
    add("data verify an unknown dataset", cli(["data", "verify", "imagenet_full"]), "imagenet_full")
    add("data fetch an unknown dataset", cli(["data", "fetch", "imagenet_full", "--dest", work / "d"]),
        "imagenet_full")
    add("sweep more images than the test set holds", cli(["sweep", "mnist_convnet", "conv1", "--images",
                                                          "mnist-heldout", "--n", "5000", "--out", out]), "--n 5000")


# ------------------------------------------------------------------------------------------ helpers for the cases

def _tuning():
    import xarray as xr

    return xr.DataArray(np.ones((2, 3, 2, 4)), dims=("unit", "orientation", "sf", "phase"),
                        coords={"orientation": [0.0, 60.0, 120.0], "sf": [0.1, 0.2], "phase": [0, 90, 180, 270]})


def _toy_training():
    """A tiny MLP on 40 random 4x4 images of 4 classes (and 20 test images), one epoch of 4 batches."""
    from insilico.data import Dataset
    from insilico.models import MLP
    from insilico.train import TrainConfig

    def toy(n, seed, name):
        rng = np.random.default_rng(seed)
        return Dataset(rng.uniform(size=(n, 4, 4, 1)).astype(np.float32), rng.integers(0, 4, n).astype(np.int32),
                       ("a", "b", "c", "d"), name)

    cfg = TrainConfig(epochs=1, batch_size=10, lr=1e-2, optimizer="adam", augment="none", weight_decay=0.0)
    return MLP(widths=(8,), num_classes=4), toy(40, 0, "toy"), toy(20, 1, "toy test"), cfg


def _with(data, x=None, y=None, name=None):
    from insilico.data import Dataset

    return Dataset(data.x if x is None else x, data.y if y is None else y, data.class_names, name or data.name)


def _relabel(data, value):
    y = data.y.copy()
    y[0] = value
    return _with(data, y=y)


def _nan_pixel(x):
    x = np.array(x, copy=True)
    x[5 % len(x), 0, 0, 0] = np.nan
    return x


def _text_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("these are not weights\n")
    return path


# ------------------------------------------------------------------------------------------- the fault injections

def injections(cat: Catalog, subject, x, key, work: Path):
    """Faults injected into what a lab stores between runs: sweep stores, chunks, manifests, checkpoints, downloads."""
    import xarray as xr

    from insilico.probes.lesion import ablation_curve, single_unit_sweep
    from insilico.sweep import run_sweep

    k1, k2 = jax.random.split(key)
    counter = iter(range(10 ** 6))

    def fresh_dir(name):
        d = work / f"{name}_{next(counter)}"
        d.mkdir(parents=True)
        return d

    def add(area, description, call, expect, quick=False):
        cat.add(area, description, call, expect, quick=quick, kind="injection")

    # ---- a generic sweep store: rerun with any changed input ---------------------------------------------------
    items = jnp.linspace(0.1, 2.0, 12)
    shared = {"w": jnp.linspace(-1.0, 2.0, 5), "b": jnp.float32(0.5), "k": k1}
    ident = {"mode": "zero", "images": np.arange(20.0)}

    def metric(item, sh):
        return {"y": jnp.tanh(item * sh["w"]).sum() + sh["b"], "v": jnp.stack([item, item * sh["b"]])}

    def other_metric(item, sh):
        return {"y": jnp.cos(item * sh["w"]).sum() + sh["b"], "v": jnp.stack([item, item * sh["b"]])}

    def sweep(store=None, fn=metric, items=items, shared=shared, identity=ident, **kw):
        return run_sweep(fn, items, shared, batch_size=2, chunk_size=4, store=store, progress=False,
                         identity=identity, **kw)

    reference = sweep()

    def rerun(description, expect, quick=False, **change):
        def call():
            store = fresh_dir("store")
            sweep(store)
            sweep(store, **change)
        add("sweep store", f"rerun with {description}", call, expect, quick)

    rerun("other items", "items differ", quick=True, items=items * 2)
    rerun("a shared array changed by 1e-3", "shared['w']", quick=True, shared={**shared, "w": shared["w"] + 1e-3})
    rerun("another PRNG key", "shared['k'] differs", shared={**shared, "k": k2})
    rerun("a new shared entry", "shared['extra']", shared={**shared, "extra": jnp.zeros(2)})
    rerun("another metric function", "function", fn=other_metric)
    rerun("fewer items", "n: 12 then, 8 now", items=items[:8])
    rerun("another tag", "tag", tag="b")
    rerun("another mode setting", "mode: 'zero' then, 'mean' now", identity={**ident, "mode": "mean"})
    rerun("other images in the settings", "images differ", identity={**ident, "images": np.arange(20.0) + 1})
    rerun("a new setting", "seed: not set then, 3 now", identity={**ident, "seed": 3})

    # ---- corrupted chunks ----------------------------------------------------------------------------------------
    def flip_value(p):
        data = bytearray(p.read_bytes())
        at = bytes(data).find(np.array([reference.y.values[5]], ">f4").tobytes())      # NetCDF 3: big-endian
        data[at + 1] ^= 0xFF
        p.write_bytes(bytes(data))

    def edit_coords(p):
        with xr.open_dataset(p) as d:
            d = d.load()
        d.assign_coords(item=d.item.values + 1).to_netcdf(p)

    def from_other_store(p):
        other = fresh_dir("other")
        sweep(other, shared={**shared, "b": jnp.float32(0.25)})
        shutil.copy(other / p.name, p)

    damage = {
        "value bytes flipped": (flip_value, "fails its checksum", True),
        "header bytes flipped": (lambda p: p.write_bytes(b"XDF" + p.read_bytes()[3:]), "chunk_00001.nc", False),
        "truncated to half": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "chunk_00001.nc",
                              True),
        "item coordinates edited": (edit_coords, "expected 4:8", False),
        "a chunk from another store": (from_other_store, "belongs to another sweep", False),
        "a chunk copied over another": (lambda p: shutil.copy(p.with_name("chunk_00000.nc"), p), "holds items 0:4",
                                        False),
        "emptied to 0 bytes": (lambda p: p.write_bytes(b""), "chunk_00001.nc", False),
    }
    for what, (hurt, expect, quick) in damage.items():
        def call(hurt=hurt):
            store = fresh_dir("chunks")
            sweep(store)
            hurt(store / "chunk_00001.nc")
            sweep(store)
        add("chunk", f"chunk {what}", call, expect, quick)

    # ---- damaged manifests -----------------------------------------------------------------------------------------
    manifests = {
        "truncated JSON": (lambda t: t[: len(t) // 2], "is damaged", True),
        "JSON that is not a manifest": (lambda t: json.dumps({"hello": 1}), "is damaged", False),
        "binary garbage": (lambda t: "\x00\xff\x13", "is damaged", False),
        "of an older version (no chunk checksums)": (
            lambda t: json.dumps({"n": 12, "chunk_size": 4, "fingerprint": "0123abcd"}), "older version", False),
    }
    for what, (mangle, expect, quick) in manifests.items():
        def call(mangle=mangle):
            store = fresh_dir("manifest")
            sweep(store)
            m = store / "manifest.json"
            m.write_text(mangle(m.read_text()))
            sweep(store)
        add("manifest", f"manifest {what}", call, expect, quick)

    def nan_metric(item, sh):
        return {"y": jnp.where(item > 1.0, jnp.nan, item)}

    add("sweep store", "a metric that turns NaN mid-sweep", lambda: sweep(fresh_dir("nan"), fn=nan_metric),
        "is NaN for item")

    # ---- lesion-probe stores: images, labels, weights, site, mode and settings ----------------------------------
    lesion_base = dict(site="conv1", labels=None, mode="zero", units=None, key=None)
    lesion_store = {}

    def lesion_sweep(subj=subject, images=x, **kw):
        run = {**lesion_base, **kw}
        if "store" not in lesion_store:
            lesion_store["store"] = fresh_dir("lesion")
            single_unit_sweep(subject, x, lesion_base["site"], store=lesion_store["store"], batch_size=8,
                              progress=False, **{k: v for k, v in lesion_base.items() if k != "site"})
        site = run.pop("site")
        return single_unit_sweep(subj, images, site, store=lesion_store["store"], batch_size=8, progress=False, **run)

    heavier = subject.replace(variables=jax.tree.map(lambda v: v * 1.5, subject.variables))
    lesion_changes = {
        "other images": (dict(images=x * 0.5), "images differ"),
        "one pixel changed": (dict(images=x.at[0, 3, 3, 0].set(1.0 - x[0, 3, 3, 0])), "images differ"),
        "labels added": (dict(labels=jnp.arange(len(x)) % 10), "labels"),
        "other weights": (dict(subj=heavier), "weights differ"),
        "another site": (dict(site="conv2"), "sites"),
        "another mode": (dict(mode="mean"), "mode: 'zero' then, 'mean' now"),
        "a subset of units": (dict(units=[1, 2]), "units"),
        "a PRNG key": (dict(key=jax.random.PRNGKey(1)), "key"),
        "another noise_scale": (dict(noise_scale=2.0), "noise_scale"),
        "a reference set": (dict(reference=x), "reference"),
    }
    for what, (change, expect) in lesion_changes.items():
        add("sweep store", f"single_unit_sweep rerun with {what}", lambda change=change: lesion_sweep(**change),
            expect)

    def fractions_changed():
        store = fresh_dir("curve")
        orders = {"fixed": np.arange(32)}
        ablation_curve(subject, x, "conv2", orders, fractions=[0.0, 1.0], store=store, batch_size=8, progress=False)
        ablation_curve(subject, x, "conv2", orders, fractions=[0.0, 0.5], store=store, batch_size=8, progress=False)
    add("sweep store", "ablation_curve rerun with other fractions", fractions_changed, "fractions")

    def cli_rerun(second):
        def call():
            from insilico.cli import main

            store, out = fresh_dir("cli_store"), fresh_dir("cli_out")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                main(["sweep", "mnist_convnet", "conv1", "--n", "8", "--out", str(out), "--store", str(store)])
            cli([*second, "--out", out, "--store", store])()
        return call
    add("sweep store", "CLI sweep --n 8 then --n 16 on one store",
        cli_rerun(["sweep", "mnist_convnet", "conv1", "--n", "16"]), "images differ")
    add("sweep store", "CLI sweep rerun with --mode mean", cli_rerun(["sweep", "mnist_convnet", "conv1", "--n", "8",
                                                                      "--mode", "mean"]), "mode")

    # ---- training: resume, divergence, checkpoints -----------------------------------------------------------------
    from insilico.train import fit, save_checkpoint
    from insilico.train.objectives import Classification

    model, train, test, cfg = _toy_training()
    good = {}

    def good_checkpoint(d: Path) -> Path:
        if "bytes" not in good:
            g = fresh_dir("good")
            fit(model, train, test, cfg, checkpoint_dir=g, progress=False)
            good["bytes"] = (g / "last.ckpt").read_bytes()
        (d / "last.ckpt").write_bytes(good["bytes"])
        return d / "last.ckpt"

    def resume(description, expect, quick=False, mutate=None, **change):
        def call():
            d = fresh_dir("resume")
            path = good_checkpoint(d)
            if mutate:
                mutate(path)
            run = {"train": train, "test": test, "cfg": cfg, "objective": None, **change}
            fit(model, run["train"], run["test"], run["cfg"], checkpoint_dir=d, progress=False,
                objective=run["objective"])
        add("training", description, call, expect, quick)

    changed_x = train.x.copy()
    changed_x[7, 1, 2, 0] += 0.01
    changed_y = train.y.copy()
    changed_y[3] = (changed_y[3] + 1) % 4
    resume("resume on images changed in one pixel (same name)", "content differs", quick=True,
           train=_with(train, x=changed_x))
    resume("resume on one label changed (same name)", "content differs", train=_with(train, y=changed_y))
    resume("resume on other test data", "test data", test=_with(test, x=test.x[::-1].copy()))
    resume("resume with another objective", "objective", objective=Classification(label_smoothing=0.3))
    resume("resume with another learning rate", "config.lr", cfg=replace(cfg, lr=2e-2))

    def flip_byte(path, at):
        data = bytearray(path.read_bytes())
        data[at if at >= 0 else len(data) + at] ^= 0xFF
        path.write_bytes(bytes(data))

    resume("resume from a checkpoint with a flipped payload byte", "corrupt", quick=True,
           mutate=lambda p: flip_byte(p, -20))
    resume("resume from a truncated checkpoint", "last.ckpt",
           mutate=lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]))
    resume("resume from a checkpoint with bad magic bytes", "not an insilico checkpoint",
           mutate=lambda p: flip_byte(p, 0))

    class PoisonedBatch:
        """Classification whose loss is NaN for any batch holding a pixel above 1.5."""

        uses_labels = True

        def __call__(self, apply, xb, yb, key):
            loss, metrics = Classification(0.0)(apply, xb, yb, key)
            return loss + jnp.where(jnp.any(xb > 1.5), jnp.nan, 0.0), metrics

    poisoned_x = train.x.copy()
    poisoned_x[7, 0, 0, 0] = 2.0

    def diverge(description, expect, **change):
        def call():
            d = fresh_dir("diverge")
            path = good_checkpoint(d)
            before = path.read_bytes()
            run = {"train": train, "cfg": cfg, "objective": None, **change}
            try:
                fit(model, run["train"], test, run["cfg"], checkpoint_dir=d, resume=False, progress=False,
                    objective=run["objective"])
            finally:
                if path.read_bytes() != before:
                    raise RuntimeError("a diverged run overwrote the last good checkpoint")   # silent damage
        add("training", description, call, expect)

    diverge("a NaN loss injected into one batch", "loss is nan", train=_with(train, x=poisoned_x),
            objective=PoisonedBatch())
    diverge("an exploding learning rate", "loss is",
            cfg=replace(cfg, epochs=3, lr=1e30, optimizer="sgd", momentum=0.0))

    def nan_weights_checkpoint():
        from flax import serialization

        from insilico.train.checkpoint import _read

        d = fresh_dir("nanweights")
        path = good_checkpoint(d)
        header, payload = _read(path)
        state = serialization.msgpack_restore(payload)
        state["params"] = jax.tree.map(lambda v: np.full_like(np.asarray(v), np.nan), state["params"])
        save_checkpoint(path, state, header["meta"])
        result = fit(model, train, test, cfg, checkpoint_dir=d, progress=False)
        if not all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(result.variables)):
            return result                                   # handed back NaN weights: silent
        raise RuntimeError("resumed without the NaN weights and without saying so")
    add("training", "resume from a checkpoint holding NaN weights", nan_weights_checkpoint, "NaN")

    def other_architecture():
        from insilico.models import MLP

        d = fresh_dir("wrongmodel")
        good_checkpoint(d)
        fit(MLP(widths=(16,), num_classes=4), train, test, cfg, checkpoint_dir=d, progress=False)
    add("training", "resume with another architecture", other_architecture, "model")

    def zoo_corrupt_weights():
        d = fresh_dir("zoo_weights")
        path = d / "mnist_convnet.ckpt"
        shutil.copy(zoo.WEIGHTS_DIR / "mnist_convnet.ckpt", path)
        flip_byte(path, -100)
        zoo.load("mnist_convnet", weights=path)
    add("checkpoint", "zoo.load weights with a flipped byte", zoo_corrupt_weights, "corrupt")

    def zoo_nan_weights():
        from flax import serialization

        from insilico.train.checkpoint import _read

        path = fresh_dir("zoo_nan") / "mnist_convnet.ckpt"
        header, payload = _read(zoo.WEIGHTS_DIR / "mnist_convnet.ckpt")
        state = serialization.msgpack_restore(payload)
        state["params"] = jax.tree.map(lambda v: np.full_like(np.asarray(v), np.nan), state["params"])
        save_checkpoint(path, state, header["meta"])          # a well-formed file holding non-finite weights
        loaded = zoo.load("mnist_convnet", weights=path)
        return el.record(loaded, x, [])[0]
    add("checkpoint", "zoo.load weights holding NaN (valid checksum)", zoo_nan_weights, "NaN")

    def zoo_other_model_weights():
        d = fresh_dir("zoo_other")
        path = d / "mnist_convnet.ckpt"
        shutil.copy(zoo.WEIGHTS_DIR / "cifar_convnet.ckpt", path)
        zoo.load("mnist_convnet", weights=path)
    add("checkpoint", "zoo.load another model's weights", zoo_other_model_weights, "does not match the model")

    # ---- downloads ---------------------------------------------------------------------------------------------
    from insilico.data import fetch
    from insilico.data.registry import DATASETS

    name = "audit_ds"
    files = {"a.bin": bytes(range(256)) * 16, "sub/b.bin": b"beta" * 250}

    @contextlib.contextmanager
    def registered():
        DATASETS[name] = {"description": "audit", "citation": "none",
                          "files": {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()},
                          "sizes": {rel: len(d) for rel, d in files.items()}}
        try:
            yield
        finally:
            DATASETS.pop(name, None)

    def mirror():
        root = fresh_dir("mirror") / name
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root

    def fetch_from(source_fn, prepare=None):
        def call():
            with registered():
                dest = fresh_dir("dest")
                m = mirror()
                if prepare:
                    prepare(m, dest)
                fetch(name, dest, source=source_fn(m), progress=False, timeout=2)
        return call

    def symlink_at(rel):
        def prepare(m, dest):
            victim = dest.parent / f"victim_{next(counter)}.txt"
            victim.write_bytes(b"precious")
            (dest / name).mkdir(parents=True, exist_ok=True)
            (dest / name / rel).symlink_to(victim)
        return prepare

    def oversize(m, dest):
        (m / "a.bin").write_bytes(files["a.bin"] + b"z" * 10_000)

    def same_size_other_bytes(m, dest):
        (m / "a.bin").write_bytes(bytes(len(files["a.bin"])))

    add("fetch", "fetch from an http:// source", fetch_from(lambda m: "http://127.0.0.1:9/audit_ds"), "https://",
        quick=True)
    add("fetch", "fetch from an ftp:// source", fetch_from(lambda m: "ftp://127.0.0.1/pub"), "https://")
    add("fetch", "fetch through a symbolic link at the temporary path",
        fetch_from(lambda m: m.as_uri(), symlink_at("a.bin.part")), "symbolic link", quick=True)
    add("fetch", "fetch through a symbolic link at the destination",
        fetch_from(lambda m: m.as_uri(), symlink_at("a.bin")), "symbolic link")
    add("fetch", "fetch an oversized file:// source", fetch_from(lambda m: m.as_uri(), oversize), "more than",
        quick=True)
    add("fetch", "fetch a file whose sha256 differs", fetch_from(lambda m: m.as_uri(), same_size_other_bytes),
        "a.bin")
    add("fetch", "fetch from a mirror missing a file",
        fetch_from(lambda m: m.as_uri(), lambda m, dest: (m / "sub" / "b.bin").unlink()), "b.bin")
    add("fetch", "CLI fetch from an http:// source",
        lambda: _cli_fetch(registered, name, "http://127.0.0.1:9/x", fresh_dir("cli_dest")), "https://")


def _cli_fetch(registered, name, source, dest):
    with registered():
        cli(["data", "fetch", name, "--source", source, "--dest", dest])()


# ------------------------------------------------------------------------------------------------------ reporting

def tally(records):
    areas = list(dict.fromkeys(r["area"] for r in records))
    table = {a: {o: sum(1 for r in records if r["area"] == a and r["outcome"] == o) for o in OUTCOMES}
             for a in areas}
    return areas, table


def print_table(records, title):
    areas, table = tally(records)
    print(f"\n{title}")
    print(f"  {'area':<14} {'cases':>6} {'clear':>6} {'obscure':>8} {'silent':>7}")
    for a in areas:
        t = table[a]
        print(f"  {a:<14} {sum(t.values()):>6} {t['clear']:>6} {t['obscure']:>8} {t['silent']:>7}")
    tot = {o: sum(t[o] for t in table.values()) for o in OUTCOMES}
    print(f"  {'total':<14} {len(records):>6} {tot['clear']:>6} {tot['obscure']:>8} {tot['silent']:>7}")


def figure(records, path: Path, quick: bool):
    kinds = [("case", "bad inputs"), ("injection", "fault injections")]
    rows = []
    for kind, label in kinds:
        sub = [r for r in records if r["kind"] == kind]
        areas, table = tally(sub)
        rows += [(a, label, table[a]) for a in areas]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 2.2), layout="constrained")
    names = [f"{a}  [{'input' if label == 'bad inputs' else 'fault'}]" for a, label, _ in rows]
    left = np.zeros(len(rows))
    for o in OUTCOMES:
        counts = np.array([t[o] for _, _, t in rows], float)
        ax.barh(names, counts, left=left, color=COLORS[o], label=o, edgecolor="white", linewidth=0.5)
        left += counts
    for i, (_, _, t) in enumerate(rows):                 # the counts that matter, once per bar, after its end
        parts = [f"{o} {t[o]}" for o in OUTCOMES[1:] if t[o]]
        if parts:
            ax.text(left[i] + 0.3, i, ", ".join(parts), va="center", fontsize=9, color="0.15")
    ax.set_xlim(0, max(left.max(), 1) * 1.3)
    style.integer_ticks(ax, "x")
    ax.invert_yaxis()
    ax.set_xlabel("number of cases (count)")
    ax.set_ylabel("API area  [input = bad-argument case, fault = injected fault]")
    n_cases = sum(r["kind"] == "case" for r in records)
    n_inj = len(records) - n_cases
    tot = {o: sum(r["outcome"] == o for r in records) for o in OUTCOMES}
    ax.set_title(f"Honesty audit{' (quick subset)' if quick else ''}: {n_cases} bad inputs, {n_inj} fault "
                 f"injections\nclear {tot['clear']}, obscure {tot['obscure']}, silent {tot['silent']}")
    style.legend_outside(ax, title="outcome")
    caption = ("Each bar counts one area's audit cases by outcome. clear = refused with an error (or the expected "
               "warning) naming the argument or the fault; obscure = another exception, or a message that does not "
               "name it; silent = returned a result where it should have refused.")
    style.caption(fig, caption)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return caption


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/honesty_audit", help="output directory")
    p.add_argument("--quick", action="store_true", help="a deterministic subset (~40 cases, ~10 injections)")
    p.add_argument("--seed", type=int, default=0, help="seed of the PRNG key behind every random choice")
    p.add_argument("--allow-failures", action="store_true", help="exit 0 even if a case is obscure or silent")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    key = jax.random.key(args.seed)
    k_images, k_cases, k_faults = jax.random.split(key, 3)
    subject = zoo.load("mnist_convnet")
    x = jax.random.uniform(k_images, (4, *subject.input_spec.shape))          # 4 images in the bounds [0, 1]
    y = jnp.asarray([0, 1, 2, 3])

    with tempfile.TemporaryDirectory(prefix="honesty_audit_") as tmp:
        work = Path(tmp)
        cat = Catalog()
        bad_inputs(cat, subject, x, y, k_cases, work)
        injections(cat, subject, x, k_faults, work)
        cases = cat.cases
        if args.quick:
            seen: dict = {}
            chosen = []
            for c in cases:
                if c.kind == "case":
                    seen[c.area] = seen.get(c.area, 0) + 1
                    if seen[c.area] <= QUICK_PER_AREA:
                        chosen.append(c)
                elif c.quick:
                    chosen.append(c)
            cases = chosen
        records = []
        area = None
        for c in cases:
            if (c.kind, c.area) != area:
                area = (c.kind, c.area)
                n = sum(1 for d in cases if (d.kind, d.area) == area)
                print(f"[{time.perf_counter() - t_start:6.1f} s] {c.kind}s: {c.area} ({n})", flush=True)
            r = classify(c)
            records.append(r)
            if r["outcome"] != "clear":
                print(f"    {r['outcome'].upper()}: {c.description}: {r['exception']}: {r['message'][:200]}",
                      flush=True)

    wall = time.perf_counter() - t_start
    bad_in = [r for r in records if r["kind"] == "case"]
    faults = [r for r in records if r["kind"] == "injection"]
    print_table(bad_in, f"Bad inputs ({len(bad_in)})")
    print_table(faults, f"Fault injections ({len(faults)})")
    caption = figure(records, out / "audit.png", args.quick)
    summary = {o: sum(r["outcome"] == o for r in records) for o in OUTCOMES}
    result = {"config": {"quick": args.quick, "seed": args.seed, "subject": "mnist_convnet",
                         "jax_backend": jax.default_backend()},
              "wall_seconds": round(wall, 1),
              "counts": {"cases": {o: sum(r["outcome"] == o for r in bad_in) for o in OUTCOMES},
                         "injections": {o: sum(r["outcome"] == o for r in faults) for o in OUTCOMES}},
              "summary": summary, "results": records}
    (out / "results.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    (out / "caption.txt").write_text(
        f"audit.png: {caption}\n\nRun: {'--quick, ' if args.quick else ''}{len(bad_in)} bad inputs and "
        f"{len(faults)} fault injections on mnist_convnet and a tiny MLP; clear {summary['clear']}, obscure "
        f"{summary['obscure']}, silent {summary['silent']}; {wall:.0f} s.\n")
    print(f"\n{len(records)} cases in {wall:.1f} s; wrote {out / 'results.json'}, {out / 'audit.png'}")
    failed = summary["obscure"] + summary["silent"]
    if failed and not args.allow_failures:
        print(f"{failed} case(s) obscure or silent", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from insilico.cli import run_script

    sys.exit(run_script(main))
