"""The benchmarks insilico ships, built from the datasets under ``INSILICO_DATA`` (see each folder's
PROVENANCE.md): RSA on the 92 object images (human IT, monkey IT, Cichy EVC and IT, similarity judgements),
encoding of macaque V4 (4 sessions), mouse V1 and macaque V1 (pattern stimuli), and spatial-frequency tuning of
macaque V1/V2 cells. Importing :mod:`insilico.scores` registers them; nothing is read until a loader is called.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from ..data import neural
from .benchmark import Benchmark, register

_K, _C = neural.KRIEGESKORTE2008, neural.CICHY2014
_CITE_K = ("Kriegeskorte N, Mur M, Ruff DA, Kiani R, Bodurka J, Esteky H, Tanaka K, Bandettini PA (2008). Matching "
           "categorical object representations in inferior temporal cortex of man and monkey. Neuron 60:1126-1141.")
_CITE_C = ("Cichy RM, Pantazis D, Oliva A (2014). Resolving human object recognition in space and time. Nat Neurosci "
           "17:455-462.")
_CITE_COWLEY = ("Cowley BR, Stan PL, Pillow JW, Smith MA (2023). Compact deep neural network models of visual cortex. "
                "bioRxiv.")
_TAU = "Nili et al. 2014 noise ceiling of the {n} subject RDMs on the held-out stimuli (rsa.noise_ceiling, {m})"
COWLEY_SESSIONS = ("210325", "190923", "201025", "210225")
TANG_STIMULI = 1000          # the first 1,000 of the 9,500 pattern stimuli (memory of the sites' responses)


# ------------------------------------------------------------------------------------------------------ loaders

def objects92_stimuli():
    """The 92 photos at 175 px and their categories (the stratification of the stimulus split)."""
    from ..data import objects92

    d = objects92()
    return d.x, d.y


def human_it_rdms():
    return neural.kriegeskorte2008().human_it.mean("session").values          # 4 subjects, sessions averaged


def monkey_it_rdms():
    return neural.kriegeskorte2008().monkey_it.values[None]


def judgement_rdms():
    return neural.kriegeskorte2008().judgements.values


def cichy_rdms(region: str):
    return getattr(neural.cichy2014(), region).values


def cowley_stimuli(session: str):
    return neural.cowley2023_images(session), None


def cowley_responses(session: str):
    return neural.cowley2023(session)


def cowley_repeats(session: str):
    return neural.cowley2023(session, raw=True).values


def allen_stimuli():
    return neural.allen_v1(split="all").images, None


def allen_responses():
    return neural.allen_v1(split="all").responses


def tang_stimuli():
    return neural.tang2018(crop=40).images[:TANG_STIMULI], None


def tang_responses():
    return neural.tang2018(crop=40).responses.isel(presentation=slice(0, TANG_STIMULI))


def goris_gratings():
    """The cells' grating grid: their spatial frequencies (c/deg; the five units tested at the same 11), 12
    orientations and 8 phases."""
    sf = neural.goris2015().sf.values
    common = sf[np.isfinite(sf).all(1)][0]
    return {"sfs_cpd": tuple(float(s) for s in common), "orientations": tuple(range(0, 180, 15)),
            "phases": tuple(range(0, 360, 45))}


def goris_cells():
    return neural.goris2015()


# ---------------------------------------------------------------------------------------------- registrations

def _rsa(name, region, data, n, folders, citation, kind="neural", ceiling=None, description=""):
    register(Benchmark(
        name=name, region=region, kind=kind, stimuli=objects92_stimuli, data=data, metric="rsa",
        rdm_method="correlation", comparator="tau-a", selection="stimuli", folders=folders, citation=citation,
        ceiling=ceiling or _TAU.format(n=n, m="tau-a"), description=description))


_rsa("kriegeskorte2008-human-it", "human IT", human_it_rdms, 4, (_K,), _CITE_K,
     description="fMRI RDMs of 4 subjects (two sessions averaged) on the 92 object images")
_rsa("kriegeskorte2008-monkey-it", "monkey IT", monkey_it_rdms, 1, (_K,),
     _CITE_K + " Kiani R et al. (2007). J Neurophysiol 97:4296-4309.",
     ceiling="none: a single RDM (674 neurons, Kiani et al. 2007) has no between-subject ceiling",
     description="one RDM of 674 IT neurons on the 92 object images")
_rsa("cichy2014-evc", "EVC", partial(cichy_rdms, "evc"), 15, (_C, _K), _CITE_C,
     description="fMRI RDMs of early visual cortex, 15 subjects, the 92 object images")
_rsa("cichy2014-it", "IT", partial(cichy_rdms, "it"), 15, (_C, _K), _CITE_C,
     description="fMRI RDMs of inferior temporal cortex, 15 subjects, the 92 object images")
_rsa("mur2013-judgements", "behaviour", judgement_rdms, 16, (_K,),
     "Mur M, Meys M, Bodurka J, Goebel R, Bandettini PA, Kriegeskorte N (2013). Human object-similarity judgments "
     "reflect and transcend the primate-IT object representation. Front Psychol 4:128.", kind="behaviour",
     description="similarity-judgement RDMs of 16 subjects on the 92 object images")

for _i, _s in enumerate(COWLEY_SESSIONS):
    _raw = _s == "210325"
    register(Benchmark(
        name=f"cowley2023-v4-{_s}", region="V4", stimuli=partial(cowley_stimuli, _s),
        data=partial(cowley_responses, _s), metric="encoding", n_splits=10, selection="neurons",
        folders=(neural.COWLEY2023,), citation=_CITE_COWLEY, stream=10 * _i, version="2",
        ceiling_data=partial(cowley_repeats, _s) if _raw else None,
        ceiling=("split-half reliability of each held-out neuron's mean response over its 6-10 repeats "
                 "(Spearman-Brown corrected, 100 random halves; encoding.split_half_reliability), median over neurons"
                 if _raw else "none: only repeat-averaged responses are available for this session"),
        description=f"macaque V4 array, session {_s} (112 px natural images)"))

register(Benchmark(
    name="allen2020-mouse-v1", region="mouse V1", stimuli=allen_stimuli, data=allen_responses, metric="encoding",
    n_splits=10, selection="neurons", folders=(neural.ALLEN_V1,), version="2",
    citation="de Vries SEJ, Lecoq JA, Buice MA, et al. (2020). A large-scale standardized physiological survey "
             "reveals functional organization of the mouse visual cortex. Nat Neurosci 23:138-151.",
    ceiling="none: only the mean over the 50 repeats is stored (no single trials with their scenes)",
    description="212 VISp cells x 118 natural scenes at 31 px, grey"))
register(Benchmark(
    name="tang2018-v1", region="V1", stimuli=tang_stimuli, data=tang_responses, metric="encoding", n_splits=10,
    selection="neurons", folders=(neural.TANG2018,), version="2",
    citation="Tang S, Lee TS, Li M, et al. (2018). Complex pattern selectivity in macaque primary visual cortex "
             "revealed by large-scale two-photon imaging. Current Biology 28:38-48.",
    ceiling="none: only trial-averaged responses are stored",
    description=f"4 macaque V1 neurons x the first {TANG_STIMULI} binary patterns, central 40 px, as displayed "
                "(white background)"))
register(Benchmark(
    name="goris2015-v1v2-sf", region="V1/V2", stimuli=goris_gratings, data=goris_cells, metric="tuning-shape",
    selection="neurons", folders=(neural.GORIS2015,),
    citation="Goris RLT, Simoncelli EP, Movshon JA (2015). Origin and function of tuning diversity in macaque "
             "visual cortex. Neuron 88:819-831.",
    ceiling="none: 6 cells give no repeat-based ceiling of a distribution distance",
    options=(("visual_degrees", 4.0), ("level", 0.5)),
    description="spatial-frequency tuning of 5 V1 and 1 V2 cells; the model's input is taken to span "
                "visual_degrees, and it sees the cells' SFs between 1 cycle per image and Nyquist"))
