"""What the neural-data loaders share: finding a dataset's folder under ``INSILICO_DATA`` (with an error naming
what is missing), the row-aligned :class:`Recording` of images and responses, and the conventional
(presentation, neuroid[, repetition]) response array."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from .._paths import DataNotFoundError, data_dir


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


class Recording(NamedTuple):
    """Stimulus images and the responses to them, row-aligned: ``images[i]`` was shown in presentation ``i``.

    ``images``: float32 (presentation, H, W, C) in [0, 1]; ``responses``: :class:`xarray.DataArray`
    (presentation, neuroid). Unpacks as ``images, responses = tang2018()``.
    """

    images: np.ndarray
    responses: xr.DataArray


def _responses(values: np.ndarray, stimulus_id, neuroid_id, region: str | list[str], *, name: str,
               attrs: dict, presentation: dict | None = None, neuroid: dict | None = None,
               repetition: bool = False) -> xr.DataArray:
    """A (presentation, neuroid[, repetition]) DataArray with the conventional coordinates."""
    dims = ("presentation", "neuroid", "repetition")[:values.ndim]
    if values.ndim != 2 + repetition:
        raise ValueError(f"{name}: expected {2 + repetition} dims, got shape {values.shape}")
    n_neuroid = values.shape[1]
    regions = [region] * n_neuroid if isinstance(region, str) else list(region)
    coords: dict[str, Any] = {"stimulus_id": ("presentation", np.asarray(stimulus_id)),
              "neuroid_id": ("neuroid", np.asarray(neuroid_id, str)),
              "region": ("neuroid", np.asarray(regions, str))}
    coords.update({k: ("presentation", np.asarray(v)) for k, v in (presentation or {}).items()})
    coords.update({k: ("neuroid", np.asarray(v)) for k, v in (neuroid or {}).items()})
    if repetition:
        coords["repetition"] = np.arange(values.shape[2])
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)
