"""Sorted spikes from NWB files: each unit's spike times, or spike counts per stimulus presentation as a
(presentation, neuroid) response array (:func:`read_nwb_units`, needs ``pynwb``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...validation import ArgumentError, check_finite
from ._common import _responses


def read_nwb_units(path: str | os.PathLike, intervals=None, *, stimulus_column: str | None = None):
    """Units (sorted spikes) of an NWB file: their spike times, or spike counts per stimulus presentation.

    Needs ``pynwb``. ``intervals``:

    - ``None``: return ``dict`` neuroid_id -> float64 array of the unit's spike times (s, sorted);
    - the name of a time-intervals table in the file (e.g. ``"trials"`` or one of ``nwbfile.intervals``), or an
      array (presentations, 2) of ``[start, stop)`` times (s): return an ``xarray.DataArray``
      (presentation, neuroid) of int spike counts in each interval, with coords ``stimulus_id`` (presentation:
      the table's ``stimulus_column`` — by default "stimulus_id" if the table has it, else 0..P-1; a column named
      explicitly must exist), ``start_time``, ``stop_time``
      (presentation), ``neuroid_id`` and ``region`` (neuroid).

    ``neuroid_id`` is the units table's ``unit_name`` column if present, else its row id (as str). ``region`` is
    the units table's ``location``/``brain_area``/``region`` column if present, else the ``location`` of each
    unit's first electrode, else 'unknown'.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError:
        raise ImportError("read_nwb_units needs pynwb (`pip install pynwb`)") from None

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NWB file not found: {path}")
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units
        if units is None or len(units) == 0:
            raise ValueError(f"{path} has no units table (no sorted spikes)")
        cols = set(units.colnames)
        ids = [str(v) for v in (units["unit_name"][:] if "unit_name" in cols else units.id[:])]
        spikes = [np.sort(np.asarray(units["spike_times"][i], np.float64)) for i in range(len(units))]
        area_col = next((c for c in ("location", "brain_area", "region") if c in cols), None)
        if area_col is not None:
            regions = [str(v) for v in units[area_col][:]]
        elif "electrodes" in cols:
            regions = []
            for i in range(len(units)):
                el = units["electrodes"][i]
                regions.append(str(el["location"].iloc[0]) if len(el) and "location" in el else "unknown")
        else:
            regions = ["unknown"] * len(units)
        if intervals is None:
            return dict(zip(ids, spikes))
        if isinstance(intervals, str):
            table = nwb.intervals.get(intervals) if nwb.intervals else None
            if table is None:
                raise KeyError(f"{path} has no time-intervals table {intervals!r}; tables: "
                               f"{', '.join(nwb.intervals or []) or 'none'}")
            start, stop = np.asarray(table["start_time"][:], float), np.asarray(table["stop_time"][:], float)
            check_finite(f"the start and stop times of {intervals!r}", np.r_[start, stop])
            column = "stimulus_id" if stimulus_column is None else stimulus_column
            if stimulus_column is not None and column not in table.colnames:     # a typo must not mean 0..P-1
                raise ArgumentError(f"stimulus_column {column!r} is not a column of {intervals!r}; columns: "
                                    f"{', '.join(table.colnames)}")
            stim = np.asarray(table[column][:]) if column in table.colnames else np.arange(len(start))
        else:
            if stimulus_column is not None:
                raise ArgumentError("stimulus_column names a column of an intervals table; with an array of "
                                    "intervals the presentations are numbered 0..P-1")
            bounds = check_finite("intervals", intervals, ndim=2).astype(float)
            if bounds.shape[1] != 2:
                raise ArgumentError(f"intervals must be a table name or a (presentations, 2) array of [start, stop) "
                                    f"times; got shape {bounds.shape}")
            start, stop, stim = bounds[:, 0], bounds[:, 1], np.arange(len(bounds))
    if np.any(stop < start):
        first = int(np.argmax(stop < start))
        raise ArgumentError(f"intervals: stop times must not precede start times; presentation {first} has start "
                            f"{start[first]} and stop {stop[first]}")
    counts = np.stack([np.searchsorted(s, stop, "left") - np.searchsorted(s, start, "left") for s in spikes], 1)
    return _responses(counts.astype(np.int64), stim, ids, regions, name="spike_count",
                      presentation={"start_time": start, "stop_time": stop},
                      attrs={"units": "spikes in [start_time, stop_time)", "source": str(path)})
