"""Neural recordings as labelled :mod:`xarray` objects (through ``INSILICO_DATA``).

Every loader takes ``root`` (the data directory; default ``$INSILICO_DATA``) and reads ``root/<dataset folder>``.

- :func:`goris2015`, :func:`goris2015_trials`: spatial-frequency tuning of 6 macaque V1/V2 units (Goris,
  Simoncelli & Movshon 2015): per-condition summaries and single trials.
- :func:`kriegeskorte2008`: human IT, monkey IT, model and similarity-judgement RDMs for the 92 object images.
- :func:`cichy2014`: EVC and IT fMRI RDMs of 15 subjects for the same 92 images.
- :func:`cowley2023`, :func:`cowley2023_images`: macaque V4 array responses to natural images (4 sessions).
- :func:`tang2018`: 9,500 binary pattern stimuli and 4 macaque V1 neurons.
- :func:`allen_v1`: mouse V1 (Allen Brain Observatory), 212 cells x 118 natural scenes.
- :func:`read_nwb_units`: spike times or a presentation x neuroid count matrix from an NWB file (needs ``pynwb``).

Conventions. Responses are :class:`xarray.DataArray` with dims ("presentation", "neuroid") (plus "repetition"
for single repeats), a ``stimulus_id`` coordinate on presentation (an int indexing the dataset's stimuli; row ``i``
of the images returned alongside is the stimulus of presentation ``i``), and ``neuroid_id`` (str) and ``region``
on neuroid. RDMs are square, symmetric, zero-diagonal (..., "stimulus_a", "stimulus_b") arrays.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from ..validation import ArgumentError, check_choice, check_count, check_finite
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
    coords = {"stimulus_id": ("presentation", np.asarray(stimulus_id)),
              "neuroid_id": ("neuroid", np.asarray(neuroid_id, str)),
              "region": ("neuroid", np.asarray(regions, str))}
    coords.update({k: ("presentation", np.asarray(v)) for k, v in (presentation or {}).items()})
    coords.update({k: ("neuroid", np.asarray(v)) for k, v in (neuroid or {}).items()})
    if repetition:
        coords["repetition"] = np.arange(values.shape[2])
    return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)


def _rdms(x, what: str, n: int = 92, tol: float = 1e-10) -> np.ndarray:
    """``x`` as float64 (..., n, n) RDMs: checked square and symmetric (to ``tol``, then symmetrized exactly) with
    a zero diagonal."""
    x = np.asarray(x, np.float64)
    if x.shape[-2:] != (n, n):
        raise ValueError(f"{what}: expected (..., {n}, {n}) RDMs, got shape {x.shape}")
    xt = np.swapaxes(x, -1, -2)
    asym = float(np.max(np.abs(x - xt))) if x.size else 0.0
    if not np.isfinite(x).all() or asym > tol or np.any(np.diagonal(x, axis1=-2, axis2=-1) != 0):
        raise ValueError(f"{what}: not a symmetric zero-diagonal finite RDM (max asymmetry {asym:.3g})")
    return (x + xt) / 2


# ---------------------------------------------------------------------------------------------- 92 images: RDMs

KRIEGESKORTE2008 = "kriegeskorte2008_92images"
_K_SUPP, _K_BRAIN, _K_MODELS, _K_BEHAV, _K_V1 = ("Kriegeskorte_Neuron2008_supplementalData.mat", "92_brainRDMs.mat",
                                                 "92_modelRDMs.mat", "92_behavRDMs.mat", "rdm92_V1model.mat")
_RDM_DIMS = ("stimulus_a", "stimulus_b")


def _stimulus_coords(categories: list[str] | None = None) -> dict:
    ids = np.arange(92)
    coords = {"stimulus_a": ids, "stimulus_b": ids}
    if categories is not None:
        coords["category_a"] = ("stimulus_a", np.asarray(categories, str))
        coords["category_b"] = ("stimulus_b", np.asarray(categories, str))
    return coords


def kriegeskorte2008(root: str | os.PathLike | None = None) -> xr.Dataset:
    """RDMs for the 92 object images of Kriegeskorte et al. 2008 (human and monkey IT, models, judgements).

    Read from ``root/kriegeskorte2008_92images`` (``root`` defaults to ``$INSILICO_DATA``). Every variable is a
    stack of float64 (..., stimulus_a, stimulus_b) matrices, square (92 x 92), symmetric and zero-diagonal, over
    the 92 images in the order of ``stimuli_92objs`` (the order of :func:`insilico.data.objects92`).

    Returns: ``xarray.Dataset``

    - coords ``stimulus_a``, ``stimulus_b``: stimulus ids 0..91; ``category_a``, ``category_b``: the stimulus's
      category, one of :data:`insilico.data.OBJECTS92_CATEGORIES` (ids 0-11 human body parts, 12-23 human
      faces, 24-35 nonhuman body parts, 36-47 nonhuman faces, 48-70 natural inanimate, 71-91 artificial
      inanimate);
    - ``human_it`` (subject, session, stimulus_a, stimulus_b), 4 x 2 x 92 x 92: human IT fMRI RDMs per subject
      (``subject`` 'BE', 'KO', 'SN', 'TI') and scanning session (``session`` 1, 2), from ``92_brainRDMs.mat``
      (stored float32). Dissimilarity 1 - Pearson r between voxel response patterns;
    - ``human_it_group`` (stimulus_a, stimulus_b): the group human IT RDM of the paper's Figure 1
      ('hITvisStim_316vx', 316 voxels), stored as a condensed upper triangle (4186 values, ``squareform``
      order) and returned square. It equals the mean of ``human_it`` over subjects and sessions;
    - ``monkey_it`` (stimulus_a, stimulus_b): monkey IT RDM ('mIT_674neurons', 674 neurons, Kiani et al. 2007),
      1 - Pearson r, stored condensed like ``human_it_group``;
    - ``model_rdms`` (model, stimulus_a, stimulus_b), 9 models: the 8 of ``92_modelRDMs.mat`` ('animacy' and
      'FaceBodyManmadeNatobj' are binary 0/1 category models; 'monkeyIT' is identical to ``monkey_it``;
      'EVA', 'HMAX', 'V1', 'Silhouette', 'RADON' are image-computable models) and 'HMAX_natImPatch'
      (``rdm92_HMAXnatImPatch`` of ``rdm92_V1model.mat``: HMAX with natural-image patches, a different RDM from
      'HMAX'). Dissimilarity measures differ between models, so compare them by rank;
    - ``judgements`` (judge, stimulus_a, stimulus_b), 16 x 92 x 92: human object-similarity judgement RDMs
      (Mur et al. 2013, ``judge`` 1..16 = 'simJudge | subject<k>'); small values (max about 0.03).

    License: the rsatoolbox demo data (MIT / LGPL repositories, no separate data license); cite Kriegeskorte et
    al. 2008, Kiani et al. 2007 (monkey IT) and Mur et al. 2013 (judgements). Example:
    ``ds = kriegeskorte2008(); ds.human_it_group.sel(stimulus_a=ds.category_a == "human face")``.
    """
    from scipy.io import loadmat
    from scipy.spatial.distance import squareform

    from .datasets import OBJECTS92_CATEGORIES

    folder = _folder(KRIEGESKORTE2008, [_K_SUPP, _K_BRAIN, _K_MODELS, _K_BEHAV, _K_V1], root)
    supp = loadmat(folder / _K_SUPP, simplify_cells=True, variable_names=["stimuli_92objs", "RDMs_mIT_hIT_fig1"])
    categories = [str(s["category"]) for s in supp["stimuli_92objs"]]
    unknown = sorted(set(categories) - set(OBJECTS92_CATEGORIES))
    if len(categories) != 92 or unknown:
        raise ValueError(f"{_K_SUPP}: expected 92 stimuli with categories in OBJECTS92_CATEGORIES; got "
                         f"{len(categories)} stimuli, unknown categories {unknown}")
    fig1 = {str(r["name"]): squareform(np.asarray(r["RDM"], np.float64).ravel()) for r in supp["RDMs_mIT_hIT_fig1"]}

    brain = loadmat(folder / _K_BRAIN)["RDMs"].reshape(-1)
    entries = {}
    for e in brain:                                      # names like 'hIT | BE | Session: 1'
        m = re.fullmatch(r"\s*hIT\s*\|\s*(\w+)\s*\|\s*Session:\s*(\d+)\s*", str(e["name"].item()))
        if m is None:
            raise ValueError(f"{_K_BRAIN}: unexpected RDM name {e['name'].item()!r}")
        entries[m[1], int(m[2])] = e["RDM"]
    subjects = sorted({k[0] for k in entries})
    sessions = sorted({k[1] for k in entries})
    human_it = np.stack([[entries[s, r] for r in sessions] for s in subjects])

    models = loadmat(folder / _K_MODELS, simplify_cells=True)["Models"]
    model_names = [str(m["name"]) for m in models] + ["HMAX_natImPatch"]
    extra = loadmat(folder / _K_V1, variable_names=["rdm92_HMAXnatImPatch"])["rdm92_HMAXnatImPatch"]
    model_rdms = np.stack([np.asarray(m["RDM"], np.float64) for m in models] + [extra])

    behav = loadmat(folder / _K_BEHAV, simplify_cells=True)["rdms_behav_92"]
    judges = [int(re.search(r"subject(\d+)", str(b["name"]))[1]) for b in behav]
    judgements = np.stack([b["RDM"] for b in behav])

    return xr.Dataset(
        {"human_it": (("subject", "session", *_RDM_DIMS), _rdms(human_it, "human_it"),
                      {"long_name": "human IT fMRI RDM per subject and session", "measure": "1 - Pearson r"}),
         "human_it_group": (_RDM_DIMS, _rdms(fig1["hITvisStim_316vx"], "human_it_group"),
                            {"long_name": "group human IT RDM (316 voxels)", "measure": "1 - Pearson r"}),
         "monkey_it": (_RDM_DIMS, _rdms(fig1["mIT_674neurons"], "monkey_it"),
                       {"long_name": "monkey IT RDM (674 neurons, Kiani et al. 2007)", "measure": "1 - Pearson r"}),
         "model_rdms": (("model", *_RDM_DIMS), _rdms(model_rdms, "model_rdms"),
                        {"long_name": "model RDMs (measures differ between models)"}),
         "judgements": (("judge", *_RDM_DIMS), _rdms(judgements, "judgements"),
                        {"long_name": "human similarity-judgement RDMs (Mur et al. 2013)"})},
        coords={**_stimulus_coords(categories), "subject": subjects, "session": sessions, "model": model_names,
                "judge": judges},
        attrs={"dataset": KRIEGESKORTE2008,
               "citation": "Kriegeskorte N, Mur M, Ruff DA, Kiani R, Bodurka J, Esteky H, Tanaka K, Bandettini PA "
                           "(2008). Matching categorical object representations in inferior temporal cortex of man "
                           "and monkey. Neuron 60(6):1126-1141.",
               "license": "rsatoolbox demo data (MIT; rsatoolbox_matlab LGPL-3), no separate data license: cite "
                          "the papers",
               "source": "rsagroup/rsatoolbox demos/92imageData"})


CICHY2014 = "cichy2014_fmri_rdms_92images"


def cichy2014(root: str | os.PathLike | None = None) -> xr.Dataset:
    """EVC and IT fMRI RDMs of 15 subjects (Cichy, Pantazis & Oliva 2014) for the 92 images.

    Read from ``root/cichy2014_fmri_rdms_92images/target_fmri_92.mat`` (the Algonauts 2019 training target; a
    MATLAB v7.3 file, so reading it needs ``h5py``). The stimuli are the 92 images of :func:`kriegeskorte2008`
    in the same order (the mean IT RDM correlates with Kriegeskorte's group hIT RDM at Spearman rho 0.56), so
    ``kriegeskorte2008().category_a`` labels them.

    Returns: ``xarray.Dataset`` with coords ``subject`` (1..15), ``stimulus_a``, ``stimulus_b`` (ids 0..91) and

    - ``evc`` (subject, stimulus_a, stimulus_b), 15 x 92 x 92: early visual cortex RDMs;
    - ``it`` (subject, stimulus_a, stimulus_b), 15 x 92 x 92: inferior temporal cortex RDMs.

    Both are float64 1 - Pearson r between voxel patterns, zero-diagonal; the file's matrices are symmetric up
    to rounding (1e-16) and are returned exactly symmetrized. License: Algonauts 2019 release, research use,
    cite Cichy et al. 2014 and Cichy et al. 2019 (arXiv:1905.05675).
    """
    name = "target_fmri_92.mat"
    folder = _folder(CICHY2014, [name], root)
    try:
        import h5py
    except ImportError:
        raise ImportError(f"cichy2014 reads {name}, a MATLAB v7.3 (HDF5) file: install h5py "
                          "(`pip install h5py`)") from None
    with h5py.File(folder / name, "r") as f:
        missing = [k for k in ("EVC_RDMs", "IT_RDMs") if k not in f]
        if missing:
            raise ValueError(f"{folder / name} lacks {', '.join(missing)}")
        evc, it = (np.asarray(f[k], np.float64).T for k in ("EVC_RDMs", "IT_RDMs"))   # HDF5 order is reversed
    dims = ("subject", *_RDM_DIMS)
    return xr.Dataset(
        {"evc": (dims, _rdms(evc, "evc"), {"long_name": "early visual cortex fMRI RDM", "measure": "1 - Pearson r"}),
         "it": (dims, _rdms(it, "it"), {"long_name": "inferior temporal cortex fMRI RDM", "measure": "1 - Pearson r"})},
        coords={"subject": np.arange(1, evc.shape[0] + 1), **_stimulus_coords()},
        attrs={"dataset": CICHY2014,
               "citation": "Cichy RM, Pantazis D, Oliva A (2014). Resolving human object recognition in space and "
                           "time. Nat Neurosci 17:455-462.",
               "license": "Algonauts Project 2019 release: research use, cite the papers",
               "source": "dnn-hvs/Algonauts-Challange Testing/92/target_fmri.mat"})


# ------------------------------------------------------------------------------------------------------ Cowley V4

COWLEY2023 = "cowley2023_v4"
# session -> (animal, repeats per image as reported by the data's readme)
COWLEY2023_SESSIONS = {"190923": ("WE", 14), "201025": ("PE", 12), "210225": ("PE", 6), "210325": ("PE", 8)}
_COWLEY_RAW = ("210325",)



def objects92_region_rdms(root: str | os.PathLike | None = None) -> dict:
    """The brain RDMs of the 92 object images by region, in the order of :func:`insilico.data.objects92`:
    ``{"human IT": (4, 92, 92), "monkey IT": (92, 92), "EVC": (15, 92, 92), "IT": (15, 92, 92)}`` — human IT of
    Kriegeskorte et al. 2008 (4 subjects, their two sessions averaged), monkey IT of Kiani et al. 2007 (one RDM),
    EVC and IT of the 15 subjects of Cichy et al. 2014. All 1 − Pearson r."""
    k, c = kriegeskorte2008(root), cichy2014(root)
    return {"human IT": k.human_it.mean("session").values, "monkey IT": k.monkey_it.values,
            "EVC": c.evc.values, "IT": c.it.values}

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
        members = {}
        for name in z.namelist():
            m = re.fullmatch(r"(?:.*/)?image(\d+)\.jpg", name)
            if m:
                members[int(m[1]) - 1] = name
        if not members or sorted(members) != list(range(len(members))):
            raise ValueError(f"{path}: expected images numbered image0001.jpg ... without gaps; found "
                             f"{len(members)} images")
        images = np.stack([np.asarray(Image.open(z.open(members[i])).convert("RGB")) for i in range(len(members))])
    return images.astype(np.float32) / 255.0


# ---------------------------------------------------------------------------------------------- Goris trials

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
            im = np.asarray(Image.open(io.BytesIO(tar.extractfile(members[f"pattern/{k + 1}.png"]).read())))
            if crop is not None:
                check_count("crop", crop, maximum=min(im.shape))
                r0, c0 = (im.shape[0] - crop) // 2, (im.shape[1] - crop) // 2
                im = im[r0:r0 + crop, c0:c0 + crop]
            if images is None:
                images = np.empty((n, *im.shape, 1), np.float32)
            images[k, ..., 0] = im
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
    side = int(round(np.sqrt(x.shape[1])))
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


# ----------------------------------------------------------------------------------------------------------- NWB

def read_nwb_units(path: str | os.PathLike, intervals=None, *, stimulus_column: str = "stimulus_id"):
    """Units (sorted spikes) of an NWB file: their spike times, or spike counts per stimulus presentation.

    Needs ``pynwb``. ``intervals``:

    - ``None``: return ``dict`` neuroid_id -> float64 array of the unit's spike times (s, sorted);
    - the name of a time-intervals table in the file (e.g. ``"trials"`` or one of ``nwbfile.intervals``), or an
      array (presentations, 2) of ``[start, stop)`` times (s): return an ``xarray.DataArray``
      (presentation, neuroid) of int spike counts in each interval, with coords ``stimulus_id`` (presentation:
      the table's ``stimulus_column`` if it has one, else 0..P-1), ``start_time``, ``stop_time``
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
            stim = (np.asarray(table[stimulus_column][:]) if stimulus_column in table.colnames
                    else np.arange(len(start)))
        else:
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
