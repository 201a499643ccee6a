"""What the figure modules share: argument checks and image drawing."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ...validation import ArgumentError, check_finite

FAILED_COLOR = "#C00000"


def check_text(name: str, value) -> str:
    if not isinstance(value, str):
        raise ArgumentError(f"{name} must be a string; got {type(value).__name__} {value!r}")
    return value


def check_mapping(name: str, value, what: str) -> dict:
    if not isinstance(value, Mapping) or not value:
        got = "an empty mapping" if isinstance(value, Mapping) else type(value).__name__
        raise ArgumentError(f"{name} must be a non-empty mapping {{label: {what}}}; got {got}")
    return dict(value)


def check_dataset(name: str, ds, variables, producer: str) -> xr.Dataset:
    missing = [v for v in variables if not isinstance(ds, xr.Dataset) or v not in ds.variables]
    if missing:
        got = (type(ds).__name__ if not isinstance(ds, xr.Dataset)
               else f"a Dataset with {', '.join(map(str, ds.variables))}")
        raise ArgumentError(f"{name} must be a Dataset from {producer} (with {', '.join(variables)}); got {got}")
    return ds


def grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return -(-n // cols), cols


def hide(axes, used: int) -> None:
    for ax in list(np.ravel(axes))[used:]:
        ax.set_visible(False)


def as_image(img) -> tuple[np.ndarray, str | None]:
    """An (H, W, C) image as imshow data and colour map (grey for one channel)."""
    img = np.asarray(img, float)
    return (img[..., 0], "gray") if img.ndim == 3 and img.shape[-1] == 1 else (img, None)


def show(ax, img, normalize: bool = False):
    img = np.asarray(img, float)
    if normalize:
        img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    data, cmap = as_image(np.clip(img, 0, 1))
    ax.imshow(data, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def upsample(img, min_pixels: int = 160) -> np.ndarray:
    """Nearest-neighbour upsampling by a whole factor, so that small images stay crisp at any zoom."""
    img = np.asarray(img)
    f = max(1, -(-min_pixels // max(img.shape[:2])))
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def check_images(name: str, images, ndim=4) -> np.ndarray:
    a = check_finite(name, np.asarray(images, float), ndim=ndim)
    if a.shape[-1] not in (1, 3):
        raise ArgumentError(f"{name} must hold images (..., H, W, C) with 1 or 3 channels; got shape {a.shape}")
    return a


def check_values(name: str, values) -> np.ndarray:
    """Numbers (NaN allowed: a unit without the statistic) as a flat float array."""
    try:
        return np.asarray(values, float).ravel()
    except (TypeError, ValueError):
        raise ArgumentError(f"{name} must be numbers; got {values!r:.80}") from None
