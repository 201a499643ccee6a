"""Receptive fields of every unit of a site: grating tuning, reverse correlation, receptive-field size,
maximally activating exemplars and input gradients.

For a convolutional site the unit of each channel is the one at the centre of the map (or, for exemplars, the
best position); for a dense site every unit. Gratings fill the whole image, so the centre unit's receptive field
sees the full pattern. Conventions of the stimuli (orientation, sf in cycles/pixel, phase) are those of
:mod:`insilico.data.stimuli`.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import electrode as el
from ..validation import (ArgumentError, check_count, check_finite, check_fraction, check_indices, check_key,
                          check_positive)
from ..analysis import tuning as tn
from ..data.stimuli import grating_set
from ..sweep import run_sweep


def _var(site: str) -> str:
    return site.replace("/", "__")


@lru_cache(maxsize=32)
def _centre_fn(sites: tuple):
    """``(image, subject) -> {site: centre responses}`` for the sweep engine (one stimulus per item)."""
    def fn(image, subject):
        _, rec = el.forward(subject, image[None], record=sites)
        return {_var(s): centre_units(rec[s])[0] for s in sites}
    return fn


def centre_units(activation):
    """(N, H, W, C) -> (N, C) at the centre position; (N, U) is returned unchanged."""
    if activation.ndim == 4:
        return activation[:, activation.shape[1] // 2, activation.shape[2] // 2, :]
    return activation


def _sites(subject, sites) -> tuple:
    el.validate(subject, purpose="receptive fields")
    if sites is None:
        raise ArgumentError(f"sites must name one or more sites of {subject.name}; got None. Valid: "
                            f"{', '.join(subject.sites)}")
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    el.validate(subject, sites=sites, purpose="receptive fields")
    return sites


def _site(subject, site) -> str:
    """One site name (a string) of ``subject``."""
    if not isinstance(site, str):
        raise ArgumentError(f"site must be one site name (a string) of {getattr(subject, 'name', 'the subject')}; "
                            f"got {site!r}")
    return _sites(subject, site)[0]


def _batch_size(batch_size):
    return None if batch_size is None else check_count("batch_size", batch_size)


def _units(subject, site: str, units):
    """``units`` (None: all) as checked indices into the channels of ``site``."""
    n = subject.sites[site][-1]
    if units is None:
        return np.arange(n)
    if not hasattr(units, "__len__") and np.ndim(units) != 0:
        units = list(units)                                               # a generator or other iterable
    return check_indices(f"units (of {site!r}, {n} units)", units, n)


def _images(subject, images, name: str = "images"):
    """``images`` as a checked float32 batch of the subject's input, inside its pixel bounds."""
    x = jnp.asarray(images) if hasattr(images, "dtype") else np.asarray(images)
    el.validate(subject, x, name=name, in_bounds=True)
    return jnp.asarray(x, jnp.float32)


def grating_tuning(subject, sites: Sequence[str] | str, orientations: Sequence[float] = tuple(range(0, 180, 15)),
                   sfs: Sequence[float] = (0.05, 0.1, 0.2, 0.3), phases: Sequence[float] = (0, 90, 180, 270),
                   contrast: float | Sequence[float] = 1.0, batch_size: int | None = 256,
                   progress: bool = False) -> dict:
    """Responses of every (centre) unit of ``sites`` to a grid of gratings in the subject's input size.

    Returns ``{site: DataArray (unit, orientation, sf, phase[, contrast])}`` (a contrast axis when ``contrast``
    is a sequence). Orientation in degrees, sf in cycles/pixel, phase in degrees. The gratings span the subject's
    pixel bounds (mean grey at their middle). The stimuli run through the sweep engine, ``batch_size`` at a time.
    """
    sites = _sites(subject, sites)
    orientations = tuple(check_finite("orientations", orientations, ndim=1).tolist())
    sfs = tuple(check_positive("each of sfs (cycles/pixel)", sf) for sf in check_finite("sfs", sfs, ndim=1))
    phases = tuple(check_finite("phases", phases, ndim=1).tolist())
    contrasts = check_finite("contrast", contrast, ndim=(0, 1))
    contrasts = tuple(check_fraction("contrast", c) for c in contrasts.reshape(-1))
    batch_size = _batch_size(batch_size)
    h, w, c = subject.input_spec.shape
    images, params = grating_set(h, orientations, sfs, phases, contrasts, channels=c)
    lo, hi = subject.input_spec.bounds                      # gratings in [0, 1] span the subject's pixel range
    images = lo + (hi - lo) * jnp.asarray(images)
    ds = run_sweep(_centre_fn(sites), images, subject, dim="stimulus", batch_size=batch_size,
                   progress=progress, desc="gratings")
    dims = ["orientation", "sf", "phase", "contrast"]
    values = [orientations, sfs, phases, contrasts]
    out = {}
    for s in sites:
        resp = ds[_var(s)].values.reshape(*map(len, values), -1)
        resp = np.moveaxis(resp, -1, 0)
        coords = {d: np.asarray(v, float) for d, v in zip(dims, values)}
        da = xr.DataArray(resp, dims=("unit", *dims), coords={"unit": np.arange(resp.shape[0]), **coords},
                          name="response", attrs={"site": s, "subject": subject.name})
        out[s] = da.isel(contrast=0, drop=True) if np.ndim(contrast) == 0 else da
    return out


def tuning_summary(tuning: xr.DataArray, level: float = 0.5) -> xr.Dataset:
    """Per-unit tuning statistics from :func:`grating_tuning` output (unit, orientation, sf, phase[, contrast]).

    At the highest contrast: the phase-averaged response F0 and first harmonic F1 over phase give the
    modulation ratio F1/F0 (> 1: simple-cell-like, Skottun et al. 1991) at the unit's best (orientation, sf);
    the phase-invariant response (max over phase) gives the preferred orientation (doubled-angle vector
    average at the best sf), OSI, orientation half-width at ``level`` of the peak, the preferred sf (parabola
    on log2 sf) and the sf bandwidth in octaves (full width at ``level``; NaN when the curve does not fall that
    low inside the tested range). Units that never respond get NaN preferences.
    """
    _check_tuning(tuning)
    level = check_fraction("level", level, open_low=True, open_high=True)
    if "contrast" in tuning.dims:
        tuning = tuning.isel(contrast=int(np.argmax(tuning.contrast.values)))
    r = tuning.transpose("unit", "orientation", "sf", "phase").values
    ori, sfs, ph = (tuning[d].values for d in ("orientation", "sf", "phase"))
    inv = r.max(-1)                                                  # (unit, orientation, sf)
    n = r.shape[0]
    flat = inv.reshape(n, -1).argmax(-1)
    bo, bs = np.unravel_index(flat, inv.shape[1:])
    idx = np.arange(n)
    ori_curve = inv[idx, :, bs]                                      # (unit, orientation) at best sf
    sf_curve = inv[idx, bo, :]                                       # (unit, sf) at best orientation
    responsive = inv.reshape(n, -1).max(-1) > 1e-6
    nan_if = lambda a: np.where(responsive, a, np.nan)  # noqa: E731
    bw = tn.log_bandwidth(sfs, sf_curve, level)
    mod = tn.modulation_ratio(ph, r[idx, bo, bs, :]) if len(ph) > 2 else np.full(n, np.nan)
    return xr.Dataset(
        {"preferred_orientation": ("unit", nan_if(tn.vector_preferred_orientation(ori, ori_curve))),
         "osi": ("unit", tn.osi(ori, ori_curve)),
         "orientation_halfwidth": ("unit", nan_if(tn.circular_halfwidth(ori, ori_curve, level))),
         "preferred_sf": ("unit", nan_if(tn.preferred_log_peak(sfs, sf_curve))),
         "sf_bandwidth": ("unit", nan_if(bw["bandwidth_octaves"])),
         "modulation_ratio": ("unit", nan_if(mod)),
         "peak_response": ("unit", inv.reshape(n, -1).max(-1)),
         "orientation_curve": (("unit", "orientation"), ori_curve),
         "sf_curve": (("unit", "sf"), sf_curve)},
        coords={"unit": tuning.unit.values, "orientation": ori, "sf": sfs},
        attrs={"site": tuning.attrs.get("site", ""), "level": level})


def _check_tuning(tuning):
    """``tuning`` must be a :func:`grating_tuning` DataArray (unit, orientation, sf, phase[, contrast])."""
    dims = ("unit", "orientation", "sf", "phase")
    if not isinstance(tuning, xr.DataArray) or not set(dims) <= set(tuning.dims):
        got = f"a DataArray with dims {tuning.dims}" if isinstance(tuning, xr.DataArray) else type(tuning).__name__
        raise ArgumentError(f"tuning must be one site's DataArray from grating_tuning (dims {', '.join(dims)}"
                            f"[, contrast]); got {got}")
    if tuning.sizes["unit"] == 0:
        raise ArgumentError("tuning has no units (an empty unit axis)")


def orientation_selectivity(tuning: xr.DataArray) -> xr.Dataset:
    """Orientation tuning summary per unit from :func:`grating_tuning` output.

    The response to an (orientation, sf) pair is the maximum over phase (phase-invariant, complex-cell-like
    readout). At each unit's best sf: preferred orientation, and orientation selectivity
    OSI = |Σ r(θ) e^{2iθ}| / Σ r(θ) (1 − circular variance; 0 untuned, 1 responds to one orientation).
    """
    _check_tuning(tuning)
    if "contrast" in tuning.dims:
        tuning = tuning.isel(contrast=int(np.argmax(tuning.contrast.values)))
    r = tuning.max("phase")
    best_sf = r.max("orientation").argmax("sf")
    curve = r.isel(sf=best_sf)
    ori, vals = curve.orientation.values, curve.values
    osi, pref = tn.osi(ori, vals), tn.vector_preferred_orientation(ori, vals)
    return xr.Dataset({"osi": ("unit", osi), "preferred_orientation": ("unit", pref),
                       "preferred_sf": ("unit", tuning.sf.values[best_sf.values]),
                       "peak_response": ("unit", vals.max(-1)),
                       "curve": (("unit", "orientation"), vals)},
                      coords={"unit": tuning.unit.values, "orientation": curve.orientation.values})


# ------------------------------------------------------------------------------------------ reverse correlation

@partial(jax.jit, static_argnums=(0, 1))
def _revcorr_step(site: str, window: tuple | None, subject, acc, x, mean):
    """Accumulate response-weighted sums over one batch of noise images."""
    _, rec = el.forward(subject, x, record=(site,))
    r = centre_units(rec[site])                                      # (B, U)
    d = (x - mean).reshape(x.shape[0], -1)                           # (B, D)
    new = {"n": acc["n"] + x.shape[0], "r": acc["r"] + r.sum(0), "r2": acc["r2"] + (r ** 2).sum(0),
           "rx": acc["rx"] + r.T @ d}
    if window is not None:
        y0, x0, size = window
        w = (x - mean)[:, y0:y0 + size, x0:x0 + size, :].reshape(x.shape[0], -1)
        new["rxx"] = acc["rxx"] + jnp.einsum("bu,bd,be->ude", r, w, w)
    return new


def reverse_correlation(subject, site: str, n_images: int = 8192, *, key, std: float = 0.15,
                        batch_size: int = 256, stc: bool = False, window: int | None = None,
                        progress: bool = True) -> xr.Dataset:
    """Spike-triggered average (and optionally covariance) of every (centre) unit of ``site`` from Gaussian
    white noise (mean at the middle of the pixel bounds, ``std`` per pixel, clipped to the bounds).

    STA = Σ r (x − μ) / Σ r: for a linear-nonlinear unit it is proportional to the linear filter (Bussgang;
    Chichilnisky 2001). STC (``stc=True``) is computed in a ``window`` x ``window`` crop around the map centre
    (default: the site's theoretical receptive field, at most 16 px): Σ r (x−μ−STA)(x−μ−STA)ᵀ / Σ r − σ²I
    (Schwartz et al. 2006), with its eigenvalues and leading eigenvectors; complex-cell-like units show
    large positive eigenvalues with a flat STA. Noise batch ``i`` is drawn from ``fold_in(key, i)``.
    Returns ``sta`` (unit, y, x, channel), ``n_spikes`` (Σ r), ``mean_rate`` and with ``stc`` the
    ``stc_eigenvalues`` (unit, component) and ``stc_eigenvectors`` (unit, component, wy, wx, channel).
    """
    from tqdm.auto import tqdm

    site = _site(subject, site)
    n_images = check_count("n_images", n_images)
    check_key("key", key)
    std = check_positive("std", std)
    batch_size = check_count("batch_size", batch_size)
    if window is not None:
        window = check_count("window", window, maximum=min(subject.input_spec.shape[:2]))
    h, w, c = subject.input_spec.shape
    lo, hi = subject.input_spec.bounds
    mean = 0.5 * (lo + hi)
    n_units = subject.sites[site][-1]
    win = None
    if stc:
        size = window or min(16, int(receptive_field_size(subject, site, key=jax.random.fold_in(key, 0x5EED))
                                     ["theoretical_size"].values[0]))
        size = int(min(size, h, w))
        win = ((h - size) // 2, (w - size) // 2, size)
    acc = {"n": jnp.zeros(()), "r": jnp.zeros(n_units), "r2": jnp.zeros(n_units),
           "rx": jnp.zeros((n_units, h * w * c))}
    if win:
        acc["rxx"] = jnp.zeros((n_units, win[2] ** 2 * c, win[2] ** 2 * c))
    n_batches = math.ceil(n_images / batch_size)
    for i in tqdm(range(n_batches), desc=f"reverse correlation {site}", disable=not progress):
        x = jnp.clip(mean + std * (hi - lo) * jax.random.normal(jax.random.fold_in(key, i), (batch_size, h, w, c)),
                     lo, hi)
        acc = _revcorr_step(site, win, subject, acc, x, mean)
    acc = {k: np.asarray(v, np.float64) for k, v in acc.items()}
    spikes = acc["r"]
    safe = np.where(spikes > 0, spikes, 1.0)
    sta = (acc["rx"] / safe[:, None]).reshape(n_units, h, w, c)
    sta[spikes <= 0] = 0.0
    ds = xr.Dataset({"sta": (("unit", "y", "x", "channel"), sta.astype(np.float32)),
                     "n_spikes": ("unit", spikes), "mean_rate": ("unit", spikes / acc["n"])},
                    coords={"unit": np.arange(n_units)},
                    attrs={"site": site, "subject": subject.name, "n_images": int(acc["n"]), "std": std})
    if win:
        y0, x0, size = win
        s_w = sta[:, y0:y0 + size, x0:x0 + size, :].reshape(n_units, -1)
        cov = acc["rxx"] / safe[:, None, None] - np.einsum("ud,ue->ude", s_w, s_w)
        cov -= (std * (hi - lo)) ** 2 * np.eye(cov.shape[-1])[None]
        vals, vecs = np.linalg.eigh(cov)
        order = np.argsort(-np.abs(vals), axis=-1)[:, :8]
        vals = np.take_along_axis(vals, order, -1)
        vecs = np.take_along_axis(vecs, order[:, None, :], -1).transpose(0, 2, 1)
        ds["stc_eigenvalues"] = (("unit", "component"), vals)
        ds["stc_eigenvectors"] = (("unit", "component", "wy", "wx", "channel"),
                                  vecs.reshape(n_units, -1, size, size, c).astype(np.float32))
        ds.attrs["stc_window"] = (y0, x0, size)
    return ds


# ------------------------------------------------------------------------------------------ receptive-field size

@partial(jax.jit, static_argnums=0)
def _centre_grad(site: str, subject, images):
    """|d(sum over channels of the centre unit of ``site``)/d image| summed over input channels: (N, H, W)."""
    def unit_sum(x):
        _, rec = el.forward(subject, x[None], record=(site,))
        return centre_units(rec[site]).sum()
    return jax.vmap(lambda x: jnp.abs(jax.grad(unit_sum)(x)).sum(-1))(images)


def receptive_field_size(subject, sites: Sequence[str] | str | None = None, images=None, *, key=None,
                         n_images: int = 32, mass: float = 0.95) -> xr.Dataset:
    """Theoretical and effective receptive-field size of the centre unit of each site, in input pixels.

    The gradient of the centre unit (summed over channels) with respect to the input is taken for each of
    ``images`` (default: ``n_images`` uniform white-noise images from ``key``). *Theoretical RF*: the bounding
    box of the pixels with a non-zero gradient for any image (the union over images fills in paths that a
    ReLU or max-pool closed for one input); ``theoretical_size`` is its larger side, ``clipped`` marks a field
    that reaches the image border (the true size may then be larger). *Effective RF* (Luo et al. 2016): the mean
    |gradient| map; ``effective_size`` is 2√2 × the gradient-weighted RMS distance from its centroid (the
    1/e² diameter of a Gaussian), ``area_size`` the side of a square holding ``mass`` of the gradient.
    Returns a Dataset over ``site`` with these and the maps ``erf`` (site, y, x).
    """
    el.validate(subject, purpose="receptive_field_size")
    sites = _sites(subject, tuple(subject.sites) if sites is None else sites)
    mass = check_fraction("mass", mass, open_low=True)
    h, w, c = subject.input_spec.shape
    if images is None:
        if key is None:
            raise ArgumentError("receptive_field_size needs images or a PRNG key for white-noise images: pass "
                                "images=... or key=jax.random.key(0); got neither")
        check_key("key", key)
        n_images = check_count("n_images", n_images)
        lo, hi = subject.input_spec.bounds
        images = jax.random.uniform(key, (n_images, h, w, c), minval=lo, maxval=hi)
    else:
        images = _images(subject, images)
    yy, xx = np.mgrid[0:h, 0:w]
    rows = {k: [] for k in ("theoretical_size", "clipped", "effective_size", "area_size", "erf")}
    for site in sites:
        g = np.asarray(_centre_grad(site, subject, images), np.float64)      # (N, H, W)
        support = (g > 0).any(0)
        if support.any():
            ys, xs = np.nonzero(support)
            theo = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
            clipped = ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1
        else:
            theo, clipped = 0, False
        erf = g.mean(0)
        total = erf.sum()
        p = erf / total if total > 0 else erf
        cy, cx = (p * yy).sum(), (p * xx).sum()
        rms = math.sqrt(((yy - cy) ** 2 + (xx - cx) ** 2).ravel() @ p.ravel()) if total > 0 else 0.0
        sorted_mass = np.cumsum(np.sort(p.ravel())[::-1])
        area = int(np.searchsorted(sorted_mass, mass) + 1) if total > 0 else 0
        for k, v in zip(rows, (theo, clipped, 2 * math.sqrt(2) * rms, math.sqrt(area), erf)):
            rows[k].append(v)
    return xr.Dataset({"theoretical_size": ("site", np.asarray(rows["theoretical_size"], float)),
                       "clipped": ("site", np.asarray(rows["clipped"], bool)),
                       "effective_size": ("site", np.asarray(rows["effective_size"])),
                       "area_size": ("site", np.asarray(rows["area_size"])),
                       "erf": (("site", "y", "x"), np.stack(rows["erf"]).astype(np.float32)),
                       "depth": ("site", [list(subject.sites).index(s) + 1 for s in sites])},
                      coords={"site": list(sites)}, attrs={"subject": subject.name, "mass": mass})


# ------------------------------------------------------------------------------------------------ exemplars

@lru_cache(maxsize=32)
def _best_position_fn(site: str):
    def fn(image, subject):
        _, rec = el.forward(subject, image[None], record=(site,))
        a = rec[site][0]
        if a.ndim == 1:
            return {"score": a, "pos": jnp.zeros((a.shape[0], 2), jnp.int32)}
        flat = a.reshape(-1, a.shape[-1])
        i = flat.argmax(0)
        return {"score": flat.max(0), "pos": jnp.stack([i // a.shape[1], i % a.shape[1]], -1).astype(jnp.int32)}
    return fn


def _crop(image, cy: float, cx: float, size: int, fill: float):
    h, w, c = image.shape
    out = np.full((size, size, c), fill, np.float32)
    y0, x0 = int(round(cy - (size - 1) / 2)), int(round(cx - (size - 1) / 2))
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(h, y0 + size), min(w, x0 + size)
    if ye > ys and xe > xs:
        out[ys - y0:ye - y0, xs - x0:xe - x0] = image[ys:ye, xs:xe]
    return out


def exemplars(subject, site: str, images, k: int = 9, *, units: Sequence[int] | None = None, crop: bool = True,
              crop_size: int | None = None, batch_size: int | None = 256, progress: bool = True) -> xr.Dataset:
    """The ``k`` most and least activating images of ``images`` (N, H, W, C; an array, or an iterable of such
    batches streamed one after another) for every unit of ``site``.

    A conv unit's score for an image is its maximum over positions; the exemplar is cropped to the site's
    theoretical receptive field (``crop_size``, default from :func:`receptive_field_size`) around that
    position, mapped to input pixels. Returns ``top_index``/``bottom_index`` (unit, rank) into the stream,
    ``top_score``/``bottom_score``, ``top_position`` (unit, rank, yx) in the site's map and, with ``crop``, the
    ``top_crop``/``bottom_crop`` images (unit, rank, cy, cx, channel).
    """
    site = _site(subject, site)
    k = check_count("k", k)
    units = _units(subject, site, units)
    batch_size = _batch_size(batch_size)
    if crop_size is not None:
        crop_size = check_count("crop_size", crop_size)
    batches = [images] if hasattr(images, "shape") else images
    fn = _best_position_fn(site)
    scores, positions, kept, offset = [], [], [], 0
    for i, batch in enumerate(batches):
        batch = np.asarray(_images(subject, batch, "images" if hasattr(images, "shape") else f"images batch {i}"))
        ds = run_sweep(fn, batch, subject, dim="image", batch_size=batch_size, progress=progress,
                       desc=f"exemplars {site}")
        s, p = ds["score"].values, ds["pos"].values                      # (n, U), (n, U, 2)
        scores.append(s)
        positions.append(p)
        kept.append(batch)
        offset += len(batch)
    if not scores:
        raise el.InputError("images is an empty stream (no batches); pass at least one image")
    s = np.concatenate(scores)                                           # a reduction over images; kept small
    p = np.concatenate(positions)
    k = min(k, len(s))
    order = np.argsort(-s[:, units], axis=0, kind="stable")              # (N, U)
    top, bottom = order[:k].T, order[::-1][:k].T                         # (U, k)
    pick = lambda idx: (np.take_along_axis(s[:, units].T, idx, 1),  # noqa: E731
                        np.stack([p[idx[i], u] for i, u in enumerate(units)]))
    ts, tp = pick(top)
    bs, bp = pick(bottom)
    out = xr.Dataset({"top_index": (("unit", "rank"), top), "top_score": (("unit", "rank"), ts),
                      "top_position": (("unit", "rank", "yx"), tp),
                      "bottom_index": (("unit", "rank"), bottom), "bottom_score": (("unit", "rank"), bs),
                      "bottom_position": (("unit", "rank", "yx"), bp)},
                     coords={"unit": units, "rank": np.arange(k)}, attrs={"site": site, "subject": subject.name})
    if crop:
        allimg = np.concatenate(kept)
        h, w, _ = subject.input_spec.shape
        shape = subject.sites[site]
        conv = len(shape) == 3
        size = crop_size or (int(receptive_field_size(subject, site, allimg[:32])
                                 ["theoretical_size"].values[0]) if conv else h)
        size = max(1, min(size, h))
        fill = 0.5 * sum(subject.input_spec.bounds)
        for which, idx, pos in (("top", top, tp), ("bottom", bottom, bp)):
            crops = np.zeros((len(units), k, size, size, allimg.shape[-1]), np.float32)
            for i in range(len(units)):
                for j in range(k):
                    if conv:
                        cy = (pos[i, j, 0] + 0.5) * h / shape[0] - 0.5
                        cx = (pos[i, j, 1] + 0.5) * w / shape[1] - 0.5
                        crops[i, j] = _crop(allimg[idx[i, j]], cy, cx, size, fill)
                    else:
                        crops[i, j] = _crop(allimg[idx[i, j]], (h - 1) / 2, (w - 1) / 2, size, fill)
            out[f"{which}_crop"] = (("unit", "rank", "cy", "cx", "channel"), crops)
    return out


# ------------------------------------------------------------------------------------------- gradient images

@partial(jax.jit, static_argnums=0)
def _unit_jacobian(site: str, subject, images):
    """Jacobian of the centre units of ``site`` w.r.t. each image: (N, U, H, W, C)."""
    def units_of(x):
        _, rec = el.forward(subject, x[None], record=(site,))
        return centre_units(rec[site])[0]
    return jax.vmap(jax.jacrev(units_of))(images)


def input_gradients(subject, site: str, images, units: Sequence[int] | None = None) -> xr.DataArray:
    """Input gradient ∂r_u/∂x of every (centre) unit ``u`` of ``site`` around each of ``images``:
    DataArray (unit, image, y, x, channel). Positive = increasing the pixel raises the response."""
    site = _site(subject, site)
    units = _units(subject, site, units)
    x = _images(subject, images)
    jac = np.asarray(_unit_jacobian(site, subject, x))                   # (N, U, H, W, C)
    return xr.DataArray(jac[:, units].transpose(1, 0, 2, 3, 4), dims=("unit", "image", "y", "x", "channel"),
                        coords={"unit": units}, name="gradient", attrs={"site": site, "subject": subject.name})
