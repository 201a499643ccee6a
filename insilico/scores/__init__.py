"""Scoring any model against the brain through registered benchmarks.

A :class:`Benchmark` is data — region, stimuli and data loaders, metric ("rsa", "encoding", "tuning-shape"), how
the ceiling is computed, the site-selection rule, the data folders, the citation — and :data:`BENCHMARKS` holds
the registered ones (:func:`register`, :func:`get`, :func:`available`; insilico's own are registered on import,
from :mod:`insilico.scores.catalog`). :func:`score_model` runs benchmarks on a subject: the site that stands for
the model is chosen on one half of the stimuli (RSA) or neurons (encoding, tuning) and scored on the other, each
result carrying its raw score, ceiling, normalization formula, chosen site and bootstrap distribution (explicit
PRNG keys from the seed); finished benchmarks are stored with a fingerprint and reused only when it matches.
:func:`write_scorecard` writes ``scores.nc`` and ``scorecard.html``. The command is ``insilico score``.

    from insilico import zoo, scores
    results, skipped, identity = scores.score_model(zoo.load("cifar_convnet"), ["cichy2014-it"], "out")
"""
from . import catalog as catalog
from .benchmark import (
    BENCHMARKS,
    METRICS,
    Benchmark,
    MissingDataError,
    UnknownBenchmarkError,
    available,
    get,
    missing_data,
    register,
)
from .card import combine, compare_models, heatmap, write_scorecard
from .metrics import ks_distance, score_encoding, score_rsa, score_tuning, tuning_shape_score
from .run import (
    data_files,
    fingerprint,
    model_identity,
    model_settings,
    require_data,
    run_benchmark,
    score_model,
    weights_hash,
)
from .stimuli import RESIZE_METHODS, prepare_images, split_neurons, split_stimuli
from .task import task_accuracy

__all__ = ["BENCHMARKS", "METRICS", "RESIZE_METHODS", "Benchmark", "MissingDataError", "UnknownBenchmarkError",
           "available", "combine", "compare_models", "data_files", "fingerprint", "get", "heatmap", "ks_distance",
           "missing_data", "model_identity", "model_settings", "prepare_images", "register", "require_data",
           "run_benchmark", "score_encoding", "score_model", "score_rsa", "score_tuning", "split_neurons",
           "split_stimuli", "task_accuracy", "tuning_shape_score", "weights_hash", "write_scorecard"]
