"""The per-site computations every benchmark runs on a model, in one place: each site's RDM of the stimuli
(:func:`site_rdms`) and each site's held-out encoding predictivity of every neuron (:func:`encoding_scores`).

Both stream the stimuli through the model in bounded memory (:mod:`insilico.probes.streaming`): RDMs exactly, from
Gram blocks accumulated in float64; encoding by ridge regression from per-fold moments (sites wider than
:data:`MAX_UNITS` projected to their top principal components, fitted on the stimuli themselves — no response
enters them), K-fold over the images with α per neuron by inner cross-validation. Here they are only put into
the form the metrics take: ``{site: RDM}`` and ``{site: (splits, neurons) held-out r}``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..probes import streaming

__all__ = ["site_rdms", "encoding_scores", "MAX_UNITS"]

#: sites wider than this are reduced to their top MAX_UNITS principal components before the ridge regression, as
#: experiments/v4_encoding.py does
MAX_UNITS = 500


def site_rdms(subject, images, sites: Sequence[str], *, rdm_method: str) -> dict[str, np.ndarray]:
    """{site: (n, n) float64 RDM of the site's responses to ``images``} (``rdm_method``: "correlation" or
    "euclidean"). A site whose responses are constant across channels for some stimulus has no correlation RDM
    and is left out."""
    out = streaming.site_rdms(subject, images, list(sites), rdm_method=rdm_method)
    return {s: np.asarray(out[s], np.float64) for s in sites if s in out and np.isfinite(out[s]).all()}


def encoding_scores(subject, images, responses, sites: Sequence[str], *, n_splits: int, key) -> dict[str, np.ndarray]:
    """{site: (n_splits, neurons) held-out Pearson r of each neuron in each of ``n_splits`` folds of the images}
    (folds dealt from ``key``; the same folds for every site)."""
    y = np.asarray(getattr(responses, "values", responses), np.float64)
    ds = streaming.encoding_scores(subject, images, y, list(sites), n_splits=n_splits, dims=MAX_UNITS, key=key)
    return {s: np.asarray(ds.r.sel(site=s).transpose("split", "neuroid").values, np.float64) for s in sites}
