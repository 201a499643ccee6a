"""The per-site computations every benchmark runs on a model, in one place: each site's RDM of the stimuli
(:func:`site_rdms`) and each site's held-out encoding predictivity of every neuron (:func:`encoding_scores`).

Both record the sites with :func:`insilico.probes.brain.record_sites` (one forward pass per batch for all sites)
and hand the responses to :mod:`insilico.analysis.rsa` and :mod:`insilico.analysis.encoding`. A bounded-memory
implementation with the same names and signatures can replace these two functions here without any other change
in :mod:`insilico.scores`.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from ..analysis import encoding as enc
from ..analysis import rsa
from ..probes.brain import record_sites

__all__ = ["site_rdms", "encoding_scores", "MAX_UNITS"]

#: sites wider than this are reduced to their top MAX_UNITS principal components before the ridge regression
#: (fitted on all the stimuli: PCA is unsupervised, no response enters it), as experiments/v4_encoding.py does
MAX_UNITS = 500


def site_rdms(subject, images, sites: Sequence[str], *, rdm_method: str) -> dict[str, np.ndarray]:
    """{site: (n, n) float64 RDM of the site's responses to ``images``} (``rdm_method``: one of
    :data:`insilico.analysis.rsa.RDM_METHODS` that needs no noise model). A site whose responses are constant
    across channels for some stimulus has no correlation RDM and is left out."""
    feats = record_sites(subject, images, list(sites))
    out: dict[str, np.ndarray] = {}
    for s in sites:
        try:
            out[s] = rsa.rdm(feats[s], rdm_method)
        except ValueError:                       # a constant pattern: the distance is undefined
            continue
    return out


def encoding_scores(subject, images, responses, sites: Sequence[str], *, n_splits: int, key) -> dict[str, np.ndarray]:
    """{site: (n_splits, neurons) held-out Pearson r of each neuron in each random 90/10 split of the images}.

    Each site's units (constant ones dropped; the top :data:`MAX_UNITS` principal components of a wider site) are
    mapped to ``responses`` (stimuli, neurons) by :func:`insilico.analysis.encoding.encode` (ridge, α per neuron
    by 5-fold CV inside the training images) with the key ``fold_in(key, i)`` for the i-th site — the splits of
    :func:`insilico.probes.brain.encoding_by_site`. A site with no varying unit gives NaN."""
    y = np.asarray(getattr(responses, "values", responses), np.float64)
    feats = record_sites(subject, images, list(sites))
    out: dict[str, np.ndarray] = {}
    for i, s in enumerate(sites):
        f = feats[s]
        f = f[:, f.std(0) > 0]
        if f.shape[1] == 0:
            out[s] = np.full((n_splits, y.shape[1]), np.nan)
            continue
        if f.shape[1] > MAX_UNITS:
            u, sv, _ = np.linalg.svd(f - f.mean(0), full_matrices=False)
            f = u[:, :MAX_UNITS] * sv[:MAX_UNITS]
        res = enc.encode(f, y, method="ridge", n_splits=n_splits, key=jax.random.fold_in(key, i))
        out[s] = np.asarray(res.per_split, np.float64)
    return out
