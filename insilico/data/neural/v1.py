"""V1 responses to images, as :class:`Recording` ``(images, responses)``: 9,500 binary patterns and 4 macaque
neurons (Tang et al. 2018), and 118 natural scenes and 212 mouse cells of the Allen Brain Observatory
(:func:`allen_v1`)."""
from __future__ import annotations

import os

import numpy as np

from ...validation import check_choice, check_count
from ._common import Recording, _folder, _responses

# ------------------------------------------------------------------------------------------------------- Tang V1

TANG2018 = "tang2018_v1_pattern_stimuli"
TANG2018_NEURONS = ("neu75", "neu255", "neu381", "neu504")


def tang2018(root: str | os.PathLike | None = None, crop: int | None = None) -> Recording:
    """9,500 binary pattern stimuli and 4 macaque V1 neurons (monkey A) of Tang et al. 2018.

    Read from ``root/tang2018_v1_pattern_stimuli``: ``pattern_stimuli_png.tar.gz`` (member ``pattern/<k>.png``
    is stimulus ``k - 1``) and ``neurons/neu{75,255,381,504}.npy``.

    ``crop``: keep the central ``crop x crop`` pixels (the neurons' receptive fields lie in the central 40 x 40,
    rows/cols 60:100, which the authors' demo uses). The full set is 160 x 160 and takes about 1 GB as float32.

    Returns: :class:`Recording` ``(images, responses)``

    - ``images``: float32 (9500, H, W, 1), values 0 or 1 as displayed: 1 = white background, 0 = the black
      pattern (the authors' models use ``1 - images``);
    - ``responses``: ``xarray.DataArray`` (presentation, neuroid) 9500 x 4, float64 trial-averaged two-photon
      calcium responses as stored (unit not stated; ranges about -0.2 .. 1.2); coords ``stimulus_id`` 0..9499,
      ``neuroid_id`` ('neu75', 'neu255', 'neu381', 'neu504'), ``region`` 'V1'.

    License: not stated (leelabcnbc/Fixed_Kernel_CNN); research use, cite Tang et al. 2018.
    """
    import io
    import tarfile

    from PIL import Image

    if crop is not None:
        crop = check_count("crop", crop)
    archive = "pattern_stimuli_png.tar.gz"
    folder = _folder(TANG2018, [archive, *(f"neurons/{n}.npy" for n in TANG2018_NEURONS)], root)
    y = np.concatenate([np.load(folder / "neurons" / f"{n}.npy").reshape(-1, 1) for n in TANG2018_NEURONS], 1)
    n = y.shape[0]
    with tarfile.open(folder / archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        missing = [f"pattern/{k}.png" for k in range(1, n + 1) if f"pattern/{k}.png" not in members]
        if missing:
            raise ValueError(f"{folder / archive} lacks {len(missing)} of {n} stimuli, e.g. {missing[0]}")
        images = None
        for k in range(n):
            member = tar.extractfile(members[f"pattern/{k + 1}.png"])
            if member is None:                             # members holds regular files only
                raise ValueError(f"{folder / archive}: pattern/{k + 1}.png is not a regular file")
            im = np.asarray(Image.open(io.BytesIO(member.read())))
            if crop is not None:
                check_count("crop", crop, maximum=min(im.shape))
                r0, c0 = (im.shape[0] - crop) // 2, (im.shape[1] - crop) // 2
                im = im[r0:r0 + crop, c0:c0 + crop]
            if images is None:
                images = np.empty((n, *im.shape, 1), np.float32)
            images[k, ..., 0] = im
    if images is None:                                   # n == 0: no responses stored
        raise ValueError(f"{folder / 'neurons'}: the response files hold no stimuli")
    responses = _responses(y.astype(np.float64), np.arange(n), list(TANG2018_NEURONS), "V1", name="response",
                           attrs={"units": "trial-averaged calcium response (as stored)", "dataset": TANG2018,
                                  "citation": "Tang S, Lee TS, Li M, et al. (2018). Complex pattern selectivity in "
                                              "macaque primary visual cortex revealed by large-scale two-photon "
                                              "imaging. Current Biology 28(1):38-48.",
                                  "license": "not stated; research use, cite the paper"})
    return Recording(images, responses)


# ----------------------------------------------------------------------------------------------------- Allen V1

ALLEN_V1 = "allen_boc_v1_natural_scenes_31px"


def allen_v1(root: str | os.PathLike | None = None, split: str = "train") -> Recording:
    """Mouse V1 (Allen Brain Observatory, Cux2 layer 2/3, 275 um): 212 cells x 118 natural scenes at 31 x 31 px.

    Read from ``root/allen_boc_v1_natural_scenes_31px``. ``split``: 'train' (100 scenes) or 'test' (18 scenes),
    the files' random split (rows are permuted scenes, not the first 100), or 'all' (both, sorted by scene).

    Returns: :class:`Recording` ``(images, responses)``

    - ``images``: float32 (N, 31, 31, 1) in [0, 1] (stored 0..255, resized from the 918 x 1174 scenes);
    - ``responses``: ``xarray.DataArray`` (presentation, neuroid) N x 212, float64 mean response over the 50
      repeats (mean dF/F, apparently in percent; range about -54 .. 263); coords ``stimulus_id``: the scene
      index 0..117 (the row of ``all_input_scenes_118_961.npy``, found by matching the pixels),
      ``neuroid_id`` 'cell000'..'cell211' (column order of the files; Allen cell ids are not stored),
      ``region`` 'V1' (VISp).

    License: Allen Institute terms of use (research use, cite de Vries et al. 2020).
    """
    splits = {"train": ("train",), "test": ("test",), "all": ("train", "test")}
    check_choice("split", split, splits)
    scenes_file = "all_input_scenes_118_961.npy"
    files = [f"Allen_{s}_{io}.npy" for s in splits[split] for io in ("input", "output")]
    folder = _folder(ALLEN_V1, [scenes_file, *files], root)
    scenes = np.load(folder / scenes_file)
    x = np.concatenate([np.load(folder / f"Allen_{s}_input.npy") for s in splits[split]])
    y = np.concatenate([np.load(folder / f"Allen_{s}_output.npy") for s in splits[split]])
    lookup = {row.tobytes(): i for i, row in enumerate(scenes)}
    if len(lookup) != len(scenes) or x.shape[0] != y.shape[0]:
        raise ValueError(f"{folder}: duplicate scenes, or inputs and outputs with different row counts")
    try:
        ids = np.array([lookup[row.tobytes()] for row in x])
    except KeyError:
        raise ValueError(f"{folder}: an input row matches none of the 118 scenes in {scenes_file}") from None
    order = np.argsort(ids, kind="stable") if split == "all" else np.arange(len(ids))
    side = round(np.sqrt(x.shape[1]))
    images = (x[order].reshape(-1, side, side, 1) / 255.0).astype(np.float32)
    responses = _responses(y[order].astype(np.float64), ids[order], [f"cell{k:03d}" for k in range(y.shape[1])],
                           "V1", name="response",
                           attrs={"units": "mean dF/F over 50 repeats (as stored, apparently percent)",
                                  "dataset": ALLEN_V1, "split": split,
                                  "structure": "VISp, Cux2-CreERT2, 275 um; experiment container 511510667",
                                  "citation": "de Vries SEJ, Lecoq JA, Buice MA, et al. (2020). A large-scale "
                                              "standardized physiological survey reveals functional organization of "
                                              "the mouse visual cortex. Nat Neurosci 23:138-151.",
                                  "license": "Allen Institute terms of use: research use, cite the paper"})
    return Recording(images, responses)
