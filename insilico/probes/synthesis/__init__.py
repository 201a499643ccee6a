"""Stimulus synthesis: adversarial examples (FGSM, PGD in L∞ and L2 with restarts and ε sweeps, DeepFool),
metamers, controversial stimuli (between two classifiers, or any two differentiable scores), MAD competition and
eigendistortions — one method a module on shared helpers (:mod:`._common`).

Every method is an iterative program (see :mod:`insilico.engine`) whose batch — images, ε values, restarts,
targets × seeds, class pairs — is vmapped into each compiled step; ``loop="scan"`` compiles the whole loop,
``"host"`` drives one compiled step from Python (faster on CPU, and stops early once every sample has
converged), ``"auto"`` picks host on CPU and scan elsewhere. :func:`metamers`, :func:`controversial`,
:func:`controversial_scores`, :func:`mad_competition` and :func:`eigendistortions` run their items (targets,
class pairs, directions, start images, images) in memory-bounded chunks (``chunk_size``, ``memory_budget``) and,
given a ``store`` directory, stream every finished chunk there so that a killed run resumes from its finished
chunks (:func:`insilico.engine.run_programs`); a result does not depend on its chunk beyond float round-off.
Images stay inside the subject's declared pixel bounds, and every image a function returns is an 8-bit quantized
image (what an experiment would show), with every number reported about it — success, predictions, distances,
representation errors, convergence, scores — measured on that 8-bit image, not on the float image the optimizer
produced: attacks (:func:`fgsm`, :func:`pgd`, :func:`accuracy_vs_eps`, :func:`deepfool`, which also returns its
float images as ``images_float``), :func:`metamers`, :func:`controversial`, :func:`controversial_scores` and
:func:`mad_competition`. :func:`eigendistortions` returns directions (unit vectors in pixel space, the Fisher
matrix's eigenvectors at the given image), not images, and is not quantized.

Every argument is checked before anything is compiled; a bad one raises
:class:`~insilico.validation.ArgumentError` (a bad image batch :class:`~insilico.validation.InputError`) naming
it, its value and what is valid.

Example::

    from insilico.probes import synthesis as syn
    adv = syn.pgd(subject, x, y, eps=8 / 255, key=jax.random.PRNGKey(0))     # Dataset: images, success, ...
    curve = syn.accuracy_vs_eps(subject, x, y, [0, 1/255, 2/255, 4/255, 8/255], key=key)
    m = syn.metamers(subject, "conv2", targets, n_seeds=4, key=key, store="runs/metamers")   # resumable
"""
from ._common import check_images, quantize
from ._pgd import _round_in_ball as _round_in_ball  # PGD's 8-bit rounding inside the ε ball (tests)
from .attacks import accuracy_vs_eps, fgsm, pgd
from .controversial import ResponseScore, controversial, controversial_scores
from .deepfool import deepfool
from .eigendistortions import eigendistortions
from .mad import mad_competition
from .metamers import METAMER_LOSSES, metamers

__all__ = ["quantize", "check_images", "fgsm", "pgd", "accuracy_vs_eps", "deepfool", "eigendistortions", "metamers",
           "METAMER_LOSSES", "controversial", "controversial_scores", "ResponseScore", "mad_competition"]
