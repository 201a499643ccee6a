"""Tuning curves of units to sinusoidal gratings (orientation x spatial frequency x phase).

For a convolutional site the recorded unit of each channel is the one at the centre of the map; for a dense
site every unit. Gratings fill the whole image, so the centre unit's receptive field sees the full pattern.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from functools import lru_cache

from .. import electrode as el
from ..data.stimuli import grating_set
from ..sweep import run_sweep


def _var(site: str) -> str:
    return site.replace("/", "__")


@lru_cache(maxsize=32)
def _centre_fn(subject, sites: tuple):
    """``(image, variables) -> {site: centre responses}`` for the sweep engine (one stimulus per item)."""
    def fn(image, variables):
        _, rec = el.run(subject, image[None], record=sites, variables=variables)
        return {_var(s): centre_units(rec[s])[0] for s in sites}
    return fn


def centre_units(activation):
    """(N, H, W, C) -> (N, C) at the centre position; (N, U) is returned unchanged."""
    if activation.ndim == 4:
        return activation[:, activation.shape[1] // 2, activation.shape[2] // 2, :]
    return activation


def grating_tuning(subject, sites: Sequence[str] | str, orientations: Sequence[float] = tuple(range(0, 180, 15)),
                   sfs: Sequence[float] = (0.05, 0.1, 0.2, 0.3), phases: Sequence[float] = (0, 90, 180, 270),
                   contrast: float = 1.0, batch_size: int | None = 256) -> dict:
    """Responses of every (centre) unit of ``sites`` to a grid of gratings in the subject's input size.

    Returns ``{site: DataArray (unit, orientation, sf, phase)}``. Orientation in degrees, sf in cycles/pixel.
    The stimuli run through the sweep engine, ``batch_size`` at a time.
    """
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    for site in sites:
        if site not in subject.sites:
            raise el.SiteError(f"unknown site {site!r}; valid: {', '.join(subject.sites)}")
    h, w, c = subject.input_spec.shape
    images, params = grating_set(h, orientations, sfs, phases, (contrast,), channels=c)
    ds = run_sweep(_centre_fn(subject, sites), images, subject.variables, dim="stimulus", batch_size=batch_size,
                   progress=False)
    shape = (len(orientations), len(sfs), len(phases))
    out = {}
    for s in sites:
        resp = ds[_var(s)].values.reshape(*shape, -1).transpose(3, 0, 1, 2)
        out[s] = xr.DataArray(resp, dims=("unit", "orientation", "sf", "phase"),
                              coords={"unit": np.arange(resp.shape[0]), "orientation": np.asarray(orientations, float),
                                      "sf": np.asarray(sfs, float), "phase": np.asarray(phases, float)},
                              name="response", attrs={"site": s, "subject": subject.name})
    return out


def orientation_selectivity(tuning: xr.DataArray) -> xr.Dataset:
    """Orientation tuning summary per unit from :func:`grating_tuning` output.

    The response to an (orientation, sf) pair is the maximum over phase (phase-invariant, complex-cell-like
    readout). At each unit's best sf: preferred orientation, and orientation selectivity
    OSI = |Σ r(θ) e^{2iθ}| / Σ r(θ) (1 − circular variance; 0 untuned, 1 responds to one orientation).
    """
    r = tuning.max("phase")
    best_sf = r.max("orientation").argmax("sf")
    curve = r.isel(sf=best_sf)
    theta = np.deg2rad(curve.orientation.values)
    vals = curve.values
    total = vals.sum(-1)
    vec = (vals * np.exp(2j * theta)).sum(-1)
    osi = np.where(total > 1e-8, np.abs(vec) / np.maximum(total, 1e-8), 0.0)
    pref = (np.rad2deg(np.angle(vec)) / 2) % 180
    return xr.Dataset({"osi": ("unit", osi), "preferred_orientation": ("unit", pref),
                       "preferred_sf": ("unit", tuning.sf.values[best_sf.values]),
                       "peak_response": ("unit", vals.max(-1)),
                       "curve": (("unit", "orientation"), vals)},
                      coords={"unit": tuning.unit.values, "orientation": curve.orientation.values})
