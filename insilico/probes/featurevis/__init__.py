"""Feature visualization by gradient ascent (activation maximization), for every unit of a layer at once.

Three parts compose, as in Lucid (Olah, Mordvintsev & Schubert 2017), a module each:

* :mod:`~.param`: an image **parameterization** (:class:`ImageParam`: pixels, 1/f-scaled Fourier
  coefficients, a Laplacian pyramid or a CPPN; colour decorrelated with a matrix estimated from natural images;
  squashed into the subject's declared pixel bounds by a sigmoid or a straight-through clip),
* :mod:`~.transforms`: random **transformations** applied before every step (pad, jitter, scale, rotate; a
  fresh draw per image),
* :mod:`~.objectives`: an **objective** (:class:`Objective`) built from small pieces that compose with ``+``,
  ``-`` and ``*``;

and :mod:`~.render` puts them together: :func:`visualize` optimizes ``n_seeds`` images for each requested unit
with Adam, all units of a chunk in one compiled program run by :func:`insilico.engine.run_programs`, so a whole
layer is one call whose memory is bounded by chunking. Defaults follow Olah et al. 2017 (Adam lr 0.05, 1/f Fourier
parameterization with decorrelated colour, pad/jitter/scale/rotate/jitter with offsets scaled from their 128 px
to the subject's input size, redirected ReLU gradients for the first 16 steps) except the number of steps
(Olah: 2,560; here 512 as in Lucid's ``render_vis``).

Every argument is checked before anything is compiled — explicit unit, channel and position indices in
objectives against the subject's sites when :func:`visualize` is called — and a bad one raises
:class:`~insilico.validation.ArgumentError` naming it, its value and what is valid.

Example::

    from insilico.probes import featurevis as fv
    result = fv.visualize(subject, fv.channel("conv2"), units=range(64), n_seeds=2, steps=256, key=key)
    result.images  # (unit, step, seed, y, x, channel)
"""
from .objectives import (
    Objective,
    alignment,
    channel,
    class_logit,
    deepdream,
    direction,
    diversity,
    l1,
    l2,
    neuron,
    total_variation,
)
from .param import ImageParam, color_matrix, cppn, default_param, fourier, pixel, pyramid
from .render import OptimizationError, visualize
from .transforms import Jitter, Pad, RandomAffine, RandomRotate, RandomScale, apply_transforms, standard_transforms

__all__ = ["ImageParam", "pixel", "fourier", "pyramid", "cppn", "color_matrix", "default_param",
           "Pad", "Jitter", "RandomScale", "RandomRotate", "RandomAffine", "standard_transforms", "apply_transforms",
           "Objective", "neuron", "channel", "direction", "deepdream", "class_logit", "total_variation", "l1", "l2",
           "alignment", "diversity", "visualize", "OptimizationError"]
