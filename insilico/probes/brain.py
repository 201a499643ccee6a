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
    from ..report.figures import site_region_heatmap
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
        if arr.ndim != 3:               # e.g. (subjects, sessions, n, n): flattening would count sessions as subjects
            raise ValueError(f"region {name!r}: RDMs must be (subjects, {n}, {n}) or ({n}, {n}); got {arr.shape} "
                             f"(average other axes first, e.g. .mean('session'))")
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
        flat = np.asarray(feats[s]).reshape(n, -1)
        if np.all(np.ptp(flat, 0) == 0):               # the same response to every stimulus: no RDM to compare
            constant.append(s)
            continue
        site_rdm = rsa.rdm(feats[s], rdm_method)        # NaN features, a flat pattern: its own error
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
                     max_units: int | None = 2000, test_fraction: float = 0.1, key: PRNGKey,
                     batch_size: int = 128) -> xr.Dataset:
    """Held-out encoding predictivity of every region's neurons from every site (:func:`insilico.analysis.encoding.
    encode`): ``regions`` {name: responses (stimuli, neurons)} to ``images`` in the same order; ``ceilings``
    {name: per-neuron reliability} to normalize. Sites with more than ``max_units`` units are reduced to their top
    ``max_units`` principal components (fitted on the same stimuli; the split between train and test is not
    involved, as PCA is unsupervised). Returns a Dataset (site, region) with ``raw`` (median r over neurons),
    ``normalized`` and the per-split ``distribution`` (site, region, split). ``test_fraction``: the stimuli held
    out per split (at least 3 of them: a correlation over 2 is ±1)."""
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
            res = enc.encode(f, y, method=method, n_splits=n_splits, test_fraction=test_fraction, ceiling=c,
                             key=jax.random.fold_in(key, i))
            raw[i, j], norm[i, j], dist[i, j] = res.raw, res.normalized, res.distribution
            formula = getattr(res, "formula", None) or formula
    return xr.Dataset({"raw": (("site", "region"), raw), "normalized": (("site", "region"), norm),
                       "distribution": (("site", "region", "split"), dist)},
                      coords={"site": names, "region": rnames},
                      attrs={"subject": subject.name, "method": method, "n_splits": n_splits, "n_stimuli": len(x),
                             "normalization": formula})


def __getattr__(name: str):
    # site_region_heatmap lives in insilico.report.figures; imported here on first use, so probes never imports report.
    if name == "site_region_heatmap":
        from ..report.figures import site_region_heatmap
        return site_region_heatmap
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
