"""Neural recordings as labelled :mod:`xarray` datasets (through ``INSILICO_DATA``).

:func:`goris2015`: spatial-frequency tuning of 6 macaque V1/V2 units (Goris, Simoncelli & Movshon 2015).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from ._paths import DataNotFoundError, data_dir

GORIS2015 = "goris2015_v1v2_gratings"
GORIS2015_UNITS = ("m620r12", "m620r35", "m624l54", "m625r58", "m625r62", "m627r58")


def _folder(name: str, files: list[str], root: str | os.PathLike | None) -> Path:
    """``root/name`` (``root`` defaults to ``INSILICO_DATA``), with an error naming both when files are missing."""
    try:
        base = Path(root).expanduser() if root is not None else data_dir()
    except DataNotFoundError as e:
        raise DataNotFoundError(f"dataset {name!r} needs INSILICO_DATA: {e}") from None
    folder = base / name
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise DataNotFoundError(
            f"dataset {name!r} not found: {folder} lacks {', '.join(missing)} "
            f"(set INSILICO_DATA to the directory holding {name}/, or pass root=)")
    return folder


def goris2015(root: str | os.PathLike | None = None) -> xr.Dataset:
    """SF-tuning experiments (``<unit>_sf.mat``, ``S.sf.exp``) of the 6 units of Goris et al. 2015.

    Drifting gratings at the unit's preferred orientation, one spatial frequency per trial. ``root`` is the
    data directory (default ``$INSILICO_DATA``); the files are read from ``root/goris2015_v1v2_gratings``.

    The tested spatial frequencies differ between units: five units were tested at the same 11 log-spaced
    values 0.1–10 c/deg, but m625r58 at 10 values 2.3–8 c/deg. Hence the second dimension is ``sf_index``
    and ``sf`` is a 2-D (unit, sf_index) coordinate; m625r58's last column is NaN in every variable
    (``n_passes`` 0), so ``np.isfinite(ds.sf)`` masks the tested conditions.

    Returns: ``xarray.Dataset`` with dims (unit, sf_index)

    - coords ``unit`` (names, e.g. 'm620r12'), ``area`` ('V1' | 'V2', from ``dataList.mat``), ``sf`` (c/deg),
      ``ori`` (preferred orientation as stored, deg in [0, 360): a
      drift direction, e.g. 230), ``size`` (grating diameter, deg);
    - ``rate_mean``, ``rate_var`` (unit, sf_index): mean / variance of the stimulus firing rate (spikes/s);
    - ``mod_ratio`` (unit, sf_index): F1/F0 modulation ratio (``modRatioGeoMean``; NaN where the rate is 0);
    - ``n_passes`` (unit, sf_index): stimulus repeats per SF;
    - ``spont_mean``, ``spont_var`` (unit): spontaneous (blank-trial) rate mean / variance (spikes/s).

    Redistribution is not granted: the data were provided to the ``lacerbi/infbench`` authors with permission;
    use internally only (see the dataset's PROVENANCE.md). Example: ``ds = goris2015(); ds.rate_mean.sel(
    unit="m620r35")``.
    """
    from scipy.io import loadmat

    folder = _folder(GORIS2015, ["dataList.mat", *(f"{u}_sf.mat" for u in GORIS2015_UNITS)], root)
    listing = loadmat(folder / "dataList.mat", simplify_cells=True)["N"]
    areas = dict(zip(listing["unitName"], listing["unitType"]))
    exps = [loadmat(folder / f"{u}_sf.mat", simplify_cells=True)["S"]["sf"]["exp"] for u in GORIS2015_UNITS]
    n_sf = max(np.size(e["sf"]) for e in exps)

    def per_sf(key: str, fill=np.nan) -> np.ndarray:
        out = np.full((len(exps), n_sf), fill, float)
        for i, e in enumerate(exps):
            v = np.atleast_1d(np.asarray(e[key], float))
            out[i, :v.size] = v
        return out

    def per_unit(key: str) -> np.ndarray:
        return np.array([float(e[key]) for e in exps])

    cdims = ("unit", "sf_index")
    return xr.Dataset(
        {"rate_mean": (cdims, per_sf("stimRateMean"), {"units": "spikes/s"}),
         "rate_var": (cdims, per_sf("stimRateVar"), {"units": "(spikes/s)^2"}),
         "mod_ratio": (cdims, per_sf("modRatioGeoMean"), {"long_name": "F1/F0 modulation ratio"}),
         "n_passes": (cdims, per_sf("nStimPasses", 0).astype(int)),
         "spont_mean": ("unit", per_unit("sponRateMean"), {"units": "spikes/s"}),
         "spont_var": ("unit", per_unit("sponRateVar"), {"units": "(spikes/s)^2"})},
        coords={"unit": list(GORIS2015_UNITS),
                "area": ("unit", [str(areas[u]) for u in GORIS2015_UNITS]),
                "sf": (cdims, per_sf("sf"), {"units": "c/deg"}),
                "ori": ("unit", per_unit("ori"), {"units": "deg"}),
                "size": ("unit", per_unit("size"), {"units": "deg"})},
        attrs={"dataset": GORIS2015,
               "citation": "Goris RLT, Simoncelli EP, Movshon JA (2015). Origin and function of tuning "
                           "diversity in macaque visual cortex. Neuron 88(4):819-831.",
               "license": "redistribution not granted (provided by R. Goris to the infbench authors); "
                          "internal use only, ask before publishing derived results",
               "source": "lacerbi/infbench matlab/problems/goris2015 (<unit>_sf.mat, S.sf.exp)"})
