"""Demo section on what insilico refuses: mistakes named, a stale results store refused, inflated scores
flagged."""
from __future__ import annotations

import numpy as np
import xarray as xr

from .. import electrode as el
from ..probes import featurevis as fv
from ..probes import synthesis as syn
from ..probes.lesion import single_unit_sweep
from ._core import Context, conv_sites, key


def _refusal(call) -> str:
    """The first line of the error ``call`` raises, or a note that it returned (which would be a bug)."""
    try:
        call()
    except Exception as e:                  # the point is to show the message, whatever its type
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    return "returned without an error"


def nothing_silent_section(ctx: Context):
    """What insilico refuses: mistakes a user makes, a results store rerun with other inputs, and a CCA-family
    score computed with too many dimensions."""
    import tempfile
    import warnings

    import jax.numpy as jnp
    import matplotlib.pyplot as plt

    from ..analysis import similarity
    from ..report.style import legend_outside

    name, subject = next(iter(ctx.subjects.items()))
    x = np.asarray(ctx.stimuli(subject)["patches"][:32])
    site = conv_sites(subject)[-1]
    n = subject.sites[site][-1]
    mistakes = [
        ("an index where a mask belongs: lesion(7)", lambda: el.run(subject, x, {site: el.lesion(7)})),
        ("0–255 pixels", lambda: el.record(subject, x * 255, site)),
        ("an empty batch", lambda: el.record(subject, x[:0], site)),
        ("a NaN noise scale", lambda: el.noise(jnp.full(n, jnp.nan))),
        (f"labels outside 0..{subject.n_outputs - 1}",
         lambda: single_unit_sweep(subject, x, site, labels=np.full(len(x), subject.n_outputs), progress=False)),
        (f"unit {n} of a {n}-unit site", lambda: fv.visualize(subject, fv.channel(site), [n], steps=4,
                                                             key=key(0))),
        ("a NaN attack budget", lambda: syn.pgd(subject, x, np.zeros(len(x), int), eps=float("nan"),
                                                key=key(0))),
    ]
    rows = [(what, _refusal(call)) for what, call in mistakes]
    with tempfile.TemporaryDirectory() as store:
        single_unit_sweep(subject, x[:16], site, store=store, progress=False)
        rows.append(("the same lesion-sweep store rerun on 32 images instead of 16",
                     _refusal(lambda: single_unit_sweep(subject, x, site, store=store, progress=False))))

    rng = np.random.default_rng(0)
    widths, scores, warned = (5, 10, 20, 40, 60, 80, 99, 150), [], []
    for w in widths:                            # two independent noise populations: the true similarity is 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores.append(similarity.svcca(rng.normal(size=(100, w)), rng.normal(size=(100, w))))
        warned.append(any(issubclass(c.category, similarity.InflatedScoreWarning) for c in caught))
    a = rng.normal(size=(100, 50))
    b = a @ rng.normal(size=(50, 50)) * 0.1 + rng.normal(size=(100, 50))
    s = ctx.section("Nothing silent", "Does insilico refuse a mistake instead of returning a wrong "
                    "number that looks right?", "A wrong number that looks right is worse than a crash. Each mistake "
                    f"below, made on {name}/{site}, is refused with a message naming the argument, the bad "
                    "value and what is valid; a results store refuses a rerun whose inputs changed instead "
                    "of returning its old numbers. Numbers are honest by construction too: CKA is computed "
                    f"in float64 on centred features (CKA {similarity.cka(a, b):.6f}, with an offset of 1000 "
                    f"on one side {similarity.cka(a + 1000, b):.6f}), and CCA-family scores warn when the "
                    "dimensions make them meaningless.")
    s.tables.append(("Mistakes and what insilico answers (first line of the error)", ("mistake", "answer"), rows))
    fig, ax = plt.subplots(figsize=(8.0, 3.4), layout="constrained")
    ax.plot(widths, scores, "o-", color="0.3", label="SVCCA of two independent populations")
    ax.scatter([w for w, f in zip(widths, warned) if f], [v for v, f in zip(scores, warned) if f], s=80,
               facecolors="none", edgecolors="tab:red", linewidths=2, label="InflatedScoreWarning raised", zorder=3)
    ax.set(xlabel="units per population (100 stimuli)", ylabel="SVCCA", ylim=(0, 1.05),
           title="Unrelated populations look similar when wide")
    legend_outside(ax)
    ctx.report.figure(s, fig, "svcca_inflation", "SVCCA between two independent Gaussian populations (true "
                      "similarity 0) over 100 stimuli, by width. The score climbs towards 1 as the widths approach "
                      "the number of stimuli; insilico warns (red circles) once the two subspaces must share "
                      "directions.")
    refused = sum(not answer.startswith("returned") for _, answer in rows)
    i99 = widths.index(99)
    ctx.put("nothing_silent", "svcca_independent", xr.DataArray(scores, dims="width", coords={"width": list(widths)},
                                                                attrs={"n_stimuli": 100}), file="nothing_silent")
    ctx.put("nothing_silent", "inflated_warning", xr.DataArray(np.asarray(warned, np.int8), dims="width",
                                                               coords={"width": list(widths)}), file="nothing_silent")
    ctx.put("nothing_silent", "refused", xr.DataArray(np.asarray([not a.startswith("returned") for _, a in rows],
                                                                 np.int8), dims="mistake",
                                                      coords={"mistake": [w for w, _ in rows]}), file="nothing_silent")
    stale = "the stale store among them" if not rows[-1][1].startswith("returned") else "the stale store NOT among them"
    s.takeaway = (f"{refused} of {len(rows)} mistakes ({stale}) are refused with a named "
                  f"error; SVCCA of two independent populations reaches {scores[i99]:.2f} at 99 units over 100 "
                  f"stimuli, and a warning flags {sum(warned)} of the {len(widths)} widths.")
