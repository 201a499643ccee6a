"""Figures of model sites against brain regions: the site × region matrix of RSA or encoding scores."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ...validation import ArgumentError
from ..style import caption
from ._common import check_text

_METHOD_LABELS = {"tau-a": "Kendall τ-a", "rho-a": "Spearman ρ-a", "spearman": "Spearman ρ", "corr": "Pearson r",
                  "cosine": "cosine similarity", "corr_cov": "whitened Pearson r", "cosine_cov": "whitened cosine",
                  "ridge": "ridge", "pls": "PLS"}


def _two_places(v: float) -> str:
    """``v`` to two decimals, without a minus sign on a value that rounds to zero."""
    text = f"{v:.2f}"
    return text[1:] if text == "-0.00" else text


def _region_labels(ds: xr.Dataset) -> tuple[list, list]:
    """Column labels with each region's noise ceiling ("ceiling 0.30–0.45"), or why it has none, and the notes
    for the caption."""
    labels = [str(r) for r in ds.region.values]
    notes: list[str] = []
    if "ceiling_lower" not in ds:
        return labels, notes
    n_subjects = (np.isfinite(ds.per_subject.values).any(axis=0).sum(-1) if "per_subject" in ds
                  else np.full(len(labels), -1))
    out = []
    for r, lo, hi, n in zip(labels, ds.ceiling_lower.values, ds.ceiling_upper.values, n_subjects):
        if np.isfinite(lo) and np.isfinite(hi):
            out.append(f"{r}\nceiling {lo:.2f}–{hi:.2f}")
        else:
            why = "one subject" if n == 1 else "not computed"
            out.append(f"{r}\nno ceiling\n({why})")
            notes.append(f"{r} has no noise ceiling ({why}{': a ceiling needs two or more' if n == 1 else ''})")
    return out, notes


def site_region_heatmap(ds: xr.Dataset, var: str = "score", title: str = ""):
    """Matrix plot (sites × regions) of ``ds[var]`` from :func:`insilico.probes.brain.rsa_by_site` or
    :func:`insilico.probes.brain.encoding_by_site`: site names down the side, each cell annotated (with its 95%
    interval when ``ds`` has ``ci_low``/``ci_high``), the colour bar labelled with the comparison method, and each
    region's noise ceiling under its name ("ceiling 0.30–0.45") — or "no ceiling (one subject)" where there is
    none; a missing value is never printed as NaN."""
    if not isinstance(ds, xr.Dataset) or ds.get(var) is None or ds[var].dims != ("site", "region"):
        valid = [str(v) for v in ds.data_vars if ds[v].dims == ("site", "region")] if isinstance(ds, xr.Dataset) else []
        raise ArgumentError(f"var must name a (site, region) variable of a Dataset from rsa_by_site or "
                            f"encoding_by_site; got {var!r}{' (valid: ' + ', '.join(valid) + ')' if valid else ''}")
    check_text("title", title)

    v = np.asarray(ds[var].values, float)
    with_ci = var == "score" and "ci_low" in ds and "ci_high" in ds
    n_sites, n_regions = v.shape
    fig, ax = plt.subplots(figsize=(2.2 + 1.35 * n_regions, 1.6 + (0.5 if with_ci else 0.36) * n_sites),
                           layout="constrained")
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(v), cmap="viridis", aspect="auto", vmin=lo, vmax=hi if hi > lo else lo + 1)
    for (i, j), val in np.ndenumerate(v):
        if not np.isfinite(val):
            ax.text(j, i, "—", ha="center", va="center", fontsize=9, color="0.4")
            continue
        text = _two_places(val)
        if with_ci and np.isfinite(ds.ci_low.values[i, j]) and np.isfinite(ds.ci_high.values[i, j]):
            text += f"\n[{_two_places(ds.ci_low.values[i, j])}, {_two_places(ds.ci_high.values[i, j])}]"
        bright = (val - lo) / (hi - lo) > 0.6 if hi > lo else False
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color="black" if bright else "white")
    labels, notes = _region_labels(ds)
    ax.set_xticks(range(n_regions), labels)
    ax.set_yticks(range(n_sites), [str(s) for s in ds.site.values])
    ax.set_xlabel("brain region")
    ax.set_ylabel("model site (input → output)")
    ax.xaxis.set_ticks_position("top")
    ax.xaxis.set_label_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    method = str(ds.attrs.get("method", ""))
    what = _METHOD_LABELS.get(method, method)
    if "ceiling_lower" in ds:
        cbar = f"{what} (mean over subjects)"
    else:
        cbar = f"{var.replace('_', ' ')} held-out r ({what})" if what else var
    fig.colorbar(im, ax=ax, shrink=0.9, label=cbar)
    ax.set_title(title or f"{ds.attrs.get('subject', 'model')}: sites vs regions")
    if with_ci:
        notes.insert(0, f"Brackets: 95% interval from {ds.attrs.get('n_boot', '')} bootstrap samples of the stimuli")
    if ds.attrs.get("constant_sites"):
        notes.append(f"— : constant responses, no RDM ({ds.attrs['constant_sites']})")
    elif not np.isfinite(v).all():
        notes.append("— : no value")
    if notes:
        caption(fig, "\n".join(n + "." for n in notes))
    return fig
