"""Representational dissimilarity matrices (RDMs) of the 92 object images: human and monkey IT, models and
similarity judgements (Kriegeskorte et al. 2008), EVC and IT fMRI of 15 subjects (Cichy et al. 2014), and the
brain RDMs of both by region (:func:`objects92_region_rdms`)."""
from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import xarray as xr

from ._common import _folder

KRIEGESKORTE2008 = "kriegeskorte2008_92images"
_K_SUPP, _K_BRAIN, _K_MODELS, _K_BEHAV, _K_V1 = ("Kriegeskorte_Neuron2008_supplementalData.mat", "92_brainRDMs.mat",
                                                 "92_modelRDMs.mat", "92_behavRDMs.mat", "rdm92_V1model.mat")
_RDM_DIMS = ("stimulus_a", "stimulus_b")


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


def _stimulus_coords(categories: list[str] | None = None) -> dict:
    ids = np.arange(92)
    coords: dict[str, Any] = {"stimulus_a": ids, "stimulus_b": ids}
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

    from ..datasets import OBJECTS92_CATEGORIES

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
    judges = []
    for b in behav:                                      # names like 'subject3'
        m = re.search(r"subject(\d+)", str(b["name"]))
        if m is None:
            raise ValueError(f"{_K_BEHAV}: unexpected judgement RDM name {str(b['name'])!r}")
        judges.append(int(m[1]))
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


def objects92_region_rdms(root: str | os.PathLike | None = None) -> dict:
    """The brain RDMs of the 92 object images by region, in the order of :func:`insilico.data.objects92`:
    ``{"human IT": (4, 92, 92), "monkey IT": (92, 92), "EVC": (15, 92, 92), "IT": (15, 92, 92)}`` — human IT of
    Kriegeskorte et al. 2008 (4 subjects, their two sessions averaged), monkey IT of Kiani et al. 2007 (one RDM),
    EVC and IT of the 15 subjects of Cichy et al. 2014. All 1 − Pearson r."""
    k, c = kriegeskorte2008(root), cichy2014(root)
    return {"human IT": k.human_it.mean("session").values, "monkey IT": k.monkey_it.values,
            "EVC": c.evc.values, "IT": c.it.values}
