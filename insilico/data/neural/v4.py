"""Macaque V4 Utah-array responses to natural images (Cowley, Stan, Pillow & Smith 2023): the responses of a
session (:func:`cowley2023`, repeat-averaged or single repeats) and its stimulus images
(:func:`cowley2023_images`)."""
from __future__ import annotations

import os
import re

import numpy as np
import xarray as xr

from ...validation import check_choice
from ._common import _folder, _responses

COWLEY2023 = "cowley2023_v4"
# session -> (animal, repeats per image as reported by the data's readme)
COWLEY2023_SESSIONS = {"190923": ("WE", 14), "201025": ("PE", 12), "210225": ("PE", 6), "210325": ("PE", 8)}
_COWLEY_RAW = ("210325",)


def _cowley_session(session) -> str:
    if isinstance(session, (bool, np.bool_)) or not isinstance(session, (str, int, np.integer)):
        check_choice("session", session, COWLEY2023_SESSIONS)
    return check_choice("session", str(session), COWLEY2023_SESSIONS)


def cowley2023(session: str, root: str | os.PathLike | None = None, raw: bool = False) -> xr.DataArray:
    """Macaque V4 Utah-array responses to natural images (Cowley, Stan, Pillow & Smith 2023), one session.

    ``session``: one of :data:`COWLEY2023_SESSIONS` — '190923' (monkey WE, 33 neurons x 1200 images),
    '201025' (PE, 89 x 1200), '210225' (PE, 55 x 1200), '210325' (PE, 50 x 640; images from Bashivan, Kar &
    DiCarlo 2019). Read from ``root/cowley2023_v4`` (``root`` defaults to ``$INSILICO_DATA``).

    Returns: ``xarray.DataArray`` (presentation, neuroid) of spike counts in a 100 ms bin averaged over repeats
    (``responses_repeat_averaged/responses_<session>.npy``, stored (neuron, image)), float64, with coords

    - ``stimulus_id`` (presentation): image index 0..N-1, the row of :func:`cowley2023_images` (file
      ``image{stimulus_id + 1:04d}.jpg``); ``image_file`` (presentation): that file name;
    - ``neuroid_id`` (neuroid): '<session>_<k>' (k = row in the file, zero-padded); ``region`` 'V4';
      ``session`` and ``animal`` (neuroid).

    With ``raw=True`` (only session '210325') the single repeats instead: (presentation, neuroid, repetition),
    640 x 50 x 10, integer counts as float64, NaN where an image had fewer repeats (6-10 per image, the same for
    every neuron), with an extra ``n_repeats`` coordinate (presentation). Its NaN-mean over repetition equals
    the averaged responses.

    License: GPL-3 repository (cowleygroup/V4_compact_models); cite Cowley et al. 2023. Example:
    ``r = cowley2023("190923"); x = cowley2023_images("190923")[r.stimulus_id.values]``.
    """
    session = _cowley_session(session)
    raw = check_choice("raw", raw, (False, True))
    if raw and session not in _COWLEY_RAW:
        raise ValueError(f"raw repeats exist only for Cowley 2023 session(s) {', '.join(_COWLEY_RAW)}; "
                         f"got {session!r} (use raw=False for the repeat-averaged responses)")
    rel = f"responses_raw/responses_{session}.npy" if raw else f"responses_repeat_averaged/responses_{session}.npy"
    values = np.load(_folder(COWLEY2023, [rel], root) / rel)
    n_neuroid, n_images = values.shape[:2]
    animal, repeats = COWLEY2023_SESSIONS[session]
    presentation = {"image_file": [f"image{i + 1:04d}.jpg" for i in range(n_images)]}
    values = np.swapaxes(values, 0, 1).astype(np.float64)
    if raw:
        counts = np.isfinite(values).sum(-1)                              # (presentation, neuroid)
        if not (counts == counts[:, :1]).all():
            raise ValueError(f"{rel}: the number of repeats differs between neurons for the same image")
        presentation["n_repeats"] = counts[:, 0]
    width = len(str(n_neuroid - 1))
    return _responses(
        values, np.arange(n_images), [f"{session}_{k:0{width}d}" for k in range(n_neuroid)], "V4",
        name="spike_count", repetition=raw, presentation=presentation,
        neuroid={"session": [session] * n_neuroid, "animal": [animal] * n_neuroid},
        attrs={"units": "spikes per 100 ms bin" + ("" if raw else ", mean over repeats"),
               "dataset": COWLEY2023, "session": session, "repeats_per_image": repeats,
               "citation": "Cowley BR, Stan PL, Pillow JW, Smith MA (2023). Compact deep neural network models of "
                           "visual cortex. bioRxiv 2023.11.",
               "license": "GPL-3 (cowleygroup/V4_compact_models); cite the paper"})


def cowley2023_images(session: str, root: str | os.PathLike | None = None) -> np.ndarray:
    """The stimulus images of a :func:`cowley2023` session: float32 (N, 112, 112, 3) RGB in [0, 1].

    Row ``i`` is ``images/images_<session>.zip`` member ``image{i + 1:04d}.jpg`` (at the zip root, or in a
    folder ``images_<session>/`` for '190923'), i.e. ``stimulus_id == i`` in :func:`cowley2023`. N = 1200, or
    640 for '210325' (grey-scale objects on natural backgrounds, stored as RGB JPEG).
    """
    import zipfile

    from PIL import Image

    session = _cowley_session(session)
    rel = f"images/images_{session}.zip"
    path = _folder(COWLEY2023, [rel], root) / rel
    with zipfile.ZipFile(path) as z:
        members: dict[int, str] = {}
        for name in z.namelist():
            m = re.fullmatch(r"(?:.*/)?image(\d+)\.jpg", name)
            if m:
                if int(m[1]) - 1 in members:                 # one number twice: which image is row i?
                    raise ValueError(f"{path}: image number {int(m[1])} appears twice ({members[int(m[1]) - 1]} and "
                                     f"{name}); the archive does not say which is the stimulus")
                members[int(m[1]) - 1] = name
        if not members or sorted(members) != list(range(len(members))):
            raise ValueError(f"{path}: expected images numbered image0001.jpg ... without gaps; found "
                             f"{len(members)} images")
        images = np.stack([np.asarray(Image.open(z.open(members[i])).convert("RGB")) for i in range(len(members))])
    return images.astype(np.float32) / 255.0
