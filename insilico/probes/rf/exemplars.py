"""Exemplars: the most and least activating images of every unit, found by streaming images through the engine,
cropped to the unit's receptive field; and input gradients, the pixel change that raises a unit's response."""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ...engine import EmptyStream, Stream, map_batches
from ...validation import check_count
from ._common import _batch_size, _images, _site, _units, centre_units, window_start
from .size import receptive_field_size


def _best_position(image, subject, site: str):
    """Each unit's best score over positions of ``site`` for one image, and where it is (y, x) in the map."""
    _, rec = el.forward(subject, image[None], record=(site,))
    a = rec[site][0]
    if a.ndim == 1:
        return {"score": a, "pos": jnp.zeros((a.shape[0], 2), jnp.int32)}
    flat = a.reshape(-1, a.shape[-1])
    i = flat.argmax(0)
    return {"score": flat.max(0), "pos": jnp.stack([i // a.shape[1], i % a.shape[1]], -1).astype(jnp.int32)}


def _best_positions(images, subject, site: str):
    return jax.vmap(_best_position, in_axes=(0, None, None))(images, subject, site)


def _crop(image, cy: float, cx: float, size: int, fill: float):
    h, w, c = image.shape
    out = np.full((size, size, c), fill, np.float32)
    y0, x0 = window_start(cy, size), window_start(cx, size)
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
    position's field: the centre unit's field (where its input gradient reaches) moved by the site's stride.
    Returns ``top_index``/``bottom_index`` (unit, rank) into the stream, ``top_score``/``bottom_score``,
    ``top_position`` (unit, rank, yx) in the site's map and, with ``crop``, the ``top_crop``/``bottom_crop``
    images (unit, rank, cy, cx, channel).
    """
    site = _site(subject, site)
    k = check_count("k", k)
    units = _units(subject, site, units)
    batch_size = _batch_size(batch_size)
    if crop_size is not None:
        crop_size = check_count("crop_size", crop_size)
    single = hasattr(images, "shape")
    kept: list = []

    def checked(batches):                                  # each batch checked, and kept for the crops
        for i, batch in enumerate(batches):
            kept.append(np.asarray(_images(subject, batch, "images" if single else f"images batch {i}")))
            yield kept[-1]

    try:
        out = map_batches(_best_positions, Stream(checked([images] if single else images)), subject, site,
                          batch_size=batch_size or 256, progress=progress, desc=f"exemplars {site}")
    except EmptyStream:
        raise el.InputError("images is an empty stream (no batches); pass at least one image") from None
    s, p = out["score"], out["pos"]                                    # (N, U), (N, U, 2): small per image
    k = min(k, len(s))
    order = np.argsort(-s[:, units], axis=0, kind="stable")              # (N, U)
    top, bottom = order[:k].T, order[::-1][:k].T                         # (U, k)
    pick = lambda idx: (np.take_along_axis(s[:, units].T, idx, 1),
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
        field = receptive_field_size(subject, site, allimg[:32]) if conv else None
        size = crop_size or (int(field["theoretical_size"].values[0]) if field is not None else h)
        size = max(1, min(size, h))
        fill = 0.5 * sum(subject.input_spec.bounds)
        for which, idx, pos in (("top", top, tp), ("bottom", bottom, bp)):
            crops = np.zeros((len(units), k, size, size, allimg.shape[-1]), np.float32)
            for i in range(len(units)):
                for j in range(k):
                    if field is not None:        # the centre unit's field moved by the stride per position
                        cy = field["centre_y"].values[0] + (pos[i, j, 0] - shape[0] // 2) * h / shape[0]
                        cx = field["centre_x"].values[0] + (pos[i, j, 1] - shape[1] // 2) * w / shape[1]
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
