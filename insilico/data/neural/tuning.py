"""Spatial-frequency tuning of 6 macaque V1/V2 units (Goris, Simoncelli & Movshon 2015): the per-condition
summaries (:func:`goris2015`) and the single trials behind them (:func:`goris2015_trials`)."""
from __future__ import annotations

import os

import numpy as np
import xarray as xr

from ._common import _folder

GORIS2015 = "goris2015_v1v2_gratings"
GORIS2015_UNITS = ("m620r12", "m620r35", "m624l54", "m625r58", "m625r62", "m627r58")


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


def goris2015_trials(root: str | os.PathLike | None = None) -> xr.Dataset:
    """Single trials of the SF-tuning experiments of the 6 units of :func:`goris2015` (``S.sf.exp.trial``).

    The units were recorded one at a time, each with its own trials and SFs, so trials are not shared between
    units: the result is one long table over all units' trials (dim ``trial``, 356 = 83 + 45 + 52 + 57 + 34 + 85),
    in unit order then the stored trial order, rather than a presentation x neuroid matrix.

    Returns: ``xarray.Dataset`` with dims (trial, spike)

    - coords (trial): ``unit``, ``area`` ('V1' | 'V2'), ``trial_num`` (the file's trial number), ``block_id``,
      ``blank`` (True for blank trials: no grating, the spontaneous rate), ``sf`` (c/deg, NaN when blank),
      ``sf_index`` (the column of ``goris2015().sf`` for that unit, -1 when blank), ``ori`` (deg), ``tf`` (Hz),
      ``con`` (contrast), ``ph`` (phase, deg) of the grating;
    - ``spike_count`` (trial): int spikes in the trial; ``duration`` (trial): s (about 1 s);
    - ``rate`` (trial): ``spike_count / duration``, spikes/s; averaged over a unit's trials at one ``sf_index``
      it equals ``goris2015().rate_mean`` (and over blank trials, ``spont_mean``);
    - ``f1`` (trial): complex first-harmonic (temporal frequency) response coefficient as stored;
      ``abs(f1)`` is the F1 amplitude;
    - ``spike_times`` (trial, spike): spike times in s from trial onset, NaN-padded to the longest trial.

    License as :func:`goris2015` (internal use only). Example:
    ``t = goris2015_trials(); t.rate.where(t.unit == "m620r35", drop=True).groupby("sf_index").mean()``.
    """
    from scipy.io import loadmat

    folder = _folder(GORIS2015, ["dataList.mat", *(f"{u}_sf.mat" for u in GORIS2015_UNITS)], root)
    listing = loadmat(folder / "dataList.mat", simplify_cells=True)["N"]
    areas = dict(zip(listing["unitName"], listing["unitType"]))
    cols: dict[str, list] = {k: [] for k in ("unit", "area", "trial_num", "block_id", "sf", "sf_index", "ori", "tf",
                                            "con", "ph", "spike_count", "duration", "f1")}
    spikes: list[np.ndarray] = []
    for u in GORIS2015_UNITS:
        exp = loadmat(folder / f"{u}_sf.mat", simplify_cells=True)["S"]["sf"]["exp"]
        t = exp["trial"]
        n = np.size(t["num"])
        first = {k: np.atleast_1d(np.asarray(t[k][0], float)) for k in ("sf", "ori", "tf", "con", "ph")}
        tested = np.atleast_1d(np.asarray(exp["sf"], float))
        sf_index = np.full(n, -1)
        for j, f in enumerate(tested):
            sf_index[np.isclose(first["sf"], f, rtol=1e-6)] = j
        if np.any((sf_index < 0) & np.isfinite(first["sf"])):
            raise ValueError(f"{u}_sf.mat: trial SFs not among the tested SFs {tested}")
        times = [np.atleast_1d(np.asarray(s, float)) for s in t["spikeTimes"]]
        counts = np.asarray(t["spikeCount"], np.int64)
        if [x.size for x in times] != counts.tolist():
            raise ValueError(f"{u}_sf.mat: spikeCount disagrees with the number of spikeTimes")
        cols["unit"] += [u] * n
        cols["area"] += [str(areas[u])] * n
        cols["trial_num"].append(np.asarray(t["num"], np.int64))
        cols["block_id"].append(np.asarray(t["blockID"], np.int64))
        cols["sf_index"].append(sf_index)
        for k in ("sf", "ori", "tf", "con", "ph"):
            cols[k].append(first[k])
        cols["spike_count"].append(counts)
        cols["duration"].append(np.asarray(t["duration"], float))
        cols["f1"].append(np.asarray(t["f1"], complex))
        spikes += times
    c = {k: np.asarray(v) if k in ("unit", "area") else np.concatenate(v) for k, v in cols.items()}
    spike_times = np.full((len(spikes), max(x.size for x in spikes)), np.nan)
    for i, x in enumerate(spikes):
        spike_times[i, :x.size] = x
    tr = "trial"
    return xr.Dataset(
        {"spike_count": (tr, c["spike_count"]),
         "duration": (tr, c["duration"], {"units": "s"}),
         "rate": (tr, c["spike_count"] / c["duration"], {"units": "spikes/s"}),
         "f1": (tr, c["f1"], {"long_name": "first-harmonic response coefficient (complex, as stored)"}),
         "spike_times": ((tr, "spike"), spike_times, {"units": "s from trial onset", "fill": "NaN"})},
        coords={"unit": (tr, c["unit"]), "area": (tr, c["area"]), "trial_num": (tr, c["trial_num"]),
                "block_id": (tr, c["block_id"]), "blank": (tr, ~np.isfinite(c["sf"])),
                "sf": (tr, c["sf"], {"units": "c/deg"}), "sf_index": (tr, c["sf_index"]),
                "ori": (tr, c["ori"], {"units": "deg"}), "tf": (tr, c["tf"], {"units": "Hz"}),
                "con": (tr, c["con"]), "ph": (tr, c["ph"], {"units": "deg"})},
        attrs={"dataset": GORIS2015, "experiment": "S.sf.exp (spatial-frequency tuning)",
               "citation": "Goris RLT, Simoncelli EP, Movshon JA (2015). Neuron 88(4):819-831.",
               "license": "redistribution not granted; internal use only (see PROVENANCE.md)"})
