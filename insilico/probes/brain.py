"""Model sites against brain regions: record every site once, then score each site against each region — by RSA
(site RDM vs the region's subject RDMs, with noise ceilings and bootstrap intervals) or by encoding (held-out
predictivity of the region's neurons from the site's units).

Example (Khaligh-Razavi & Kriegeskorte 2014)::

    from insilico.data import objects92, cichy2014
    fmri = cichy2014()
    ds = rsa_by_site(subject, objects92(32).x, {"EVC": fmri.evc, "IT": fmri.it}, method="tau-a", key=key)
    site_region_heatmap(ds)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import electrode as el
from ..analysis import encoding as enc
from ..analysis import rsa
from ..engine import map_batches
from ..types import Images, NeuronResponses, PRNGKey, RDMs, Reliabilities, ResponseMatrix
from ..validation import ArgumentError, check_choice, check_count, check_finite, check_key

if TYPE_CHECKING:
    from ..subject import Subject

__all__ = ["record_sites", "rsa_by_site", "encoding_by_site", "site_region_heatmap"]


def _images(subject, images, sites, purpose: str):
    """``images`` checked as a batch of the subject's input (in its pixel bounds) and ``sites`` (None: every site)
    as site names: ``(float32 images, [site, ...])``."""
    el.validate(subject, purpose=purpose)
    sites = list(subject.sites) if sites is None else [sites] if isinstance(sites, str) else list(sites)
    x = jnp.asarray(images) if hasattr(images, "dtype") else np.asarray(images)
    el.validate(subject, x, sites=sites, in_bounds=True, purpose=purpose, name="images")
    return jnp.asarray(x, jnp.float32), sites


def record_sites(subject: Subject, images: Images, sites: Sequence[str] | None = None, *,
                 batch_size: int = 128) -> dict[str, ResponseMatrix]:
    """Responses of ``sites`` (default: every site) to ``images``, one forward pass per batch: {site: (stimuli,
    units) float64 array}."""
    batch_size = check_count("batch_size", batch_size)
    x, sites = _images(subject, images, sites, "record_sites")
    rec = map_batches(_record, x, subject, tuple(sites), batch_size=batch_size)
    return {s: np.asarray(rec[s], np.float64).reshape(len(x), -1) for s in sites}


def _record(x, subject, sites):
    return el.forward(subject, x, record=sites)[1]


def _check_regions(regions) -> None:
    if not isinstance(regions, Mapping) or not regions:
        raise ArgumentError(f"regions must be a non-empty mapping {{name: data}}; got "
                            f"{type(regions).__name__ if not isinstance(regions, Mapping) else 'an empty mapping'}")


def _region_rdms(regions: Mapping[str, RDMs | xr.DataArray], n: int) -> dict[str, np.ndarray]:
    _check_regions(regions)
    out = {}
    for name, r in regions.items():
        arr = check_finite(f"region {name!r}", r.values if isinstance(r, xr.DataArray) else r).astype(np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape[-2:] != (n, n):
            raise ValueError(f"region {name!r}: RDMs must be (subjects, {n}, {n}) over the same {n} stimuli; got "
                             f"{arr.shape}")
        out[name] = arr.reshape(-1, n, n)
    return out


def rsa_by_site(subject: Subject, images: Images, regions: Mapping[str, RDMs | xr.DataArray], *,
                sites: Sequence[str] | None = None, rdm_method: str = "correlation", method: str = "tau-a",
                n_boot: int = 0, key: PRNGKey | None = None, batch_size: int = 128) -> xr.Dataset:
    """RSA of every site against every region: the site's RDM (``rdm_method``) compared (``method``) with each
    subject RDM of the region, averaged over subjects. ``regions``: {name: RDMs (subjects, n, n) or (n, n)} over
    the same stimuli as ``images``, in the same order. With ``n_boot`` > 0, stimuli are bootstrapped (``key``)
    for 95% intervals.

    Returns a Dataset (site, region): ``score``, ``ci_low``/``ci_high`` (with ``n_boot``), ``per_subject``
    (site, region, subject; NaN-padded), and per region ``ceiling_lower``/``ceiling_upper``. A site whose
    responses are constant across stimuli is reported as NaN with its name in attrs["constant_sites"]."""
    x, sites = _images(subject, images, sites, "rsa_by_site")
    n = x.shape[0]
    batch_size = check_count("batch_size", batch_size)
    rdm_method = check_choice("rdm_method", rdm_method, rsa.RDM_METHODS)
    method = check_choice("method", method, rsa.COMPARATORS)
    n_boot = check_count("n_boot", n_boot, minimum=0)
    if n_boot and key is None:
        raise ArgumentError(f"n_boot={n_boot} bootstrap samples need a PRNG key: rsa_by_site(..., "
                            "key=jax.random.key(0)); got key=None")
    if n_boot:
        check_key("key", key)
    reg = _region_rdms(regions, n)
    if n_boot or any(r.shape[0] >= 2 for r in reg.values()):
        why = "bootstrap intervals" if n_boot else "noise ceilings (regions with several subjects)"
        check_choice(f"method (for {why})", method, rsa.CEILING_METHODS)
    feats = record_sites(subject, x, sites, batch_size=batch_size)
    names, rnames = list(feats), list(reg)
    max_subj = max(r.shape[0] for r in reg.values())
    score = np.full((len(names), len(rnames)), np.nan)
    per_subject = np.full((len(names), len(rnames), max_subj), np.nan)
    lo_ci, hi_ci = np.full_like(score, np.nan), np.full_like(score, np.nan)
    constant = []
    keys = jax.random.split(key, len(names)) if n_boot and key is not None else None   # n_boot needs a key
    for i, s in enumerate(names):
        try:
            site_rdm = rsa.rdm(feats[s], rdm_method)
        except ValueError:
            constant.append(s)
            continue
        for j, r in enumerate(rnames):
            sims = rsa.compare(site_rdm, reg[r], method)[0]
            per_subject[i, j, :len(sims)] = sims
            score[i, j] = sims.mean()
            if keys is not None:                         # n_boot > 0
                b = rsa.bootstrap(site_rdm, reg[r], method=method, n_samples=n_boot, with_ceiling=False,
                                  key=jax.random.fold_in(keys[i], j))
                lo_ci[i, j], hi_ci[i, j] = float(b.ci_low[0]), float(b.ci_high[0])
    ceil = np.full((len(rnames), 2), np.nan)
    for j, r in enumerate(rnames):
        if reg[r].shape[0] >= 2:
            ceil[j] = rsa.noise_ceiling(reg[r], method)
    ds = xr.Dataset({"score": (("site", "region"), score), "per_subject": (("site", "region", "subject"), per_subject),
                     "ceiling_lower": ("region", ceil[:, 0]), "ceiling_upper": ("region", ceil[:, 1])},
                    coords={"site": names, "region": rnames},
                    attrs={"subject": subject.name, "rdm_method": rdm_method, "method": method, "n_stimuli": n,
                           "n_boot": n_boot, "constant_sites": ", ".join(constant)})
    if n_boot:
        ds["ci_low"] = (("site", "region"), lo_ci)
        ds["ci_high"] = (("site", "region"), hi_ci)
    return ds


def encoding_by_site(subject: Subject, images: Images, regions: Mapping[str, NeuronResponses | xr.DataArray], *,
                     sites: Sequence[str] | None = None, method: str = "ridge", n_splits: int = 10,
                     ceilings: Mapping[str, Reliabilities | xr.DataArray] | None = None,
                     max_units: int | None = 2000, key: PRNGKey, batch_size: int = 128) -> xr.Dataset:
    """Held-out encoding predictivity of every region's neurons from every site (:func:`insilico.analysis.encoding.
    encode`): ``regions`` {name: responses (stimuli, neurons)} to ``images`` in the same order; ``ceilings``
    {name: per-neuron reliability} to normalize. Sites with more than ``max_units`` units are reduced to their top
    ``max_units`` principal components (fitted on the same stimuli; the split between train and test is not
    involved, as PCA is unsupervised). Returns a Dataset (site, region) with ``raw`` (median r over neurons),
    ``normalized`` and the per-split ``distribution`` (site, region, split)."""
    x, sites = _images(subject, images, sites, "encoding_by_site")
    batch_size = check_count("batch_size", batch_size)
    method = check_choice("method", method, ("ridge", "pls"))
    n_splits = check_count("n_splits", n_splits)
    if max_units is not None:
        max_units = check_count("max_units", max_units)
    check_key("key", key)
    _check_regions(regions)
    for name, y in regions.items():
        y = check_finite(f"region {name!r}", y, ndim=2)
        if y.shape[0] != x.shape[0]:
            raise ArgumentError(f"region {name!r} must hold responses (stimuli, neurons) to the {x.shape[0]} "
                                f"images; got shape {y.shape}")
    unknown = sorted(set(ceilings or {}) - set(regions))
    if unknown:
        raise ArgumentError(f"ceilings names region(s) {unknown} that are not in regions ({', '.join(regions)})")
    feats = record_sites(subject, x, sites, batch_size=batch_size)
    names, rnames = list(feats), list(regions)
    raw = np.full((len(names), len(rnames)), np.nan)
    norm, dist = np.full_like(raw, np.nan), np.full((len(names), len(rnames), n_splits), np.nan)
    formula = ""
    for i, s in enumerate(names):
        f = feats[s]
        f = f[:, f.std(0) > 0]
        if f.shape[1] == 0:
            continue
        if max_units is not None and f.shape[1] > max_units:
            fc = f - f.mean(0)
            u, sv, _ = np.linalg.svd(fc, full_matrices=False)
            f = u[:, :max_units] * sv[:max_units]
        for j, r in enumerate(rnames):
            y = regions[r]
            c = None if ceilings is None else ceilings.get(r)
            res = enc.encode(f, y, method=method, n_splits=n_splits, ceiling=c, key=jax.random.fold_in(key, i))
            raw[i, j], norm[i, j], dist[i, j] = res.raw, res.normalized, res.distribution
            formula = getattr(res, "formula", None) or formula
    return xr.Dataset({"raw": (("site", "region"), raw), "normalized": (("site", "region"), norm),
                       "distribution": (("site", "region", "split"), dist)},
                      coords={"site": names, "region": rnames},
                      attrs={"subject": subject.name, "method": method, "n_splits": n_splits, "n_stimuli": len(x),
                             "normalization": formula})


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
    """Matrix plot (sites × regions) of ``ds[var]`` from :func:`rsa_by_site` or :func:`encoding_by_site`: site
    names down the side, each cell annotated (with its 95% interval when ``ds`` has ``ci_low``/``ci_high``), the
    colour bar labelled with the comparison method, and each region's noise ceiling under its name ("ceiling
    0.30–0.45") — or "no ceiling (one subject)" where there is none; a missing value is never printed as NaN."""
    import matplotlib.pyplot as plt

    from ..report import style

    style.use()
    if not isinstance(ds, xr.Dataset) or ds.get(var) is None or ds[var].dims != ("site", "region"):
        valid = [str(v) for v in ds.data_vars if ds[v].dims == ("site", "region")] if isinstance(ds, xr.Dataset) else []
        raise ArgumentError(f"var must name a (site, region) variable of a Dataset from rsa_by_site or "
                            f"encoding_by_site; got {var!r}{' (valid: ' + ', '.join(valid) + ')' if valid else ''}")
    if not isinstance(title, str):
        raise ArgumentError(f"title must be a string; got {type(title).__name__} {title!r}")

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
        style.caption(fig, "\n".join(n + "." for n in notes))
    return fig
