"""Grating tuning: responses of every (centre) unit to a grid of full-field gratings, and the tuning statistics
read from them (preferred orientation and spatial frequency, bandwidth, OSI, F1/F0)."""
from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import xarray as xr

from ...analysis import tuning as tn
from ...data.stimuli import grating_set
from ...engine import run_sweep
from ...validation import ArgumentError, check_finite, check_fraction, check_positive
from ._common import _batch_size, _centre_fn, _sites, _var


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
    if max(sfs) > 0.5:                  # above Nyquist a grating aliases to a lower frequency, or vanishes
        raise ArgumentError(f"sfs must be spatial frequencies in cycles/pixel up to 0.5 (Nyquist); got "
                            f"{[v for v in sfs if v > 0.5][:6]} (cycles/degree? multiply by degrees per pixel)")
    phases = tuple(check_finite("phases", phases, ndim=1).tolist())
    contrasts = check_finite("contrast", contrast, ndim=(0, 1))
    contrasts = tuple(check_fraction("contrast", c) for c in contrasts.reshape(-1))
    batch_size = _batch_size(batch_size)
    h, w, c = subject.input_spec.shape
    if h != w:
        raise ArgumentError(f"grating_tuning draws square gratings; {subject.name} takes {h}x{w} px images: "
                            f"give the subject a square input_spec (a crop or a resize of the stimuli)")
    images, _ = grating_set(h, orientations, sfs, phases, contrasts, channels=c)
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
    nan_if = lambda a: np.where(responsive, a, np.nan)
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
    check_finite("tuning", tuning.values)


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
