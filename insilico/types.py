"""Array shapes of insilico's public API: jaxtyping annotations, one alias per kind of array a probe takes or gives.

They document each axis for readers and type checkers (which see the array type: ``jax.Array``, ``np.ndarray`` or
any array-like); nothing checks shapes at run time. Axis names mean the same in every alias:

* ``n`` images (the batch); ``h w c`` an image's height, width and channels (the subject's input shape);
* ``*out`` the shape of one image's output (``(classes,)`` for a classifier);
* ``*unit`` the unit shape of a site: ``(c,)`` for a dense site, ``(h', w', c)`` for a convolutional one;
  ``units`` units counted flat; ``*param`` the shape of one parameter (a kernel, a bias);
* ``samples`` Monte-Carlo draws; ``masks`` perturbations stacked on a leading axis; ``*orders`` stacked orders;
* ``*batch`` any leading axes (the broadcast shape of a stimulus's parameters);
* ``stimuli units`` a response matrix, one row per stimulus; ``neurons`` recorded cells; ``*subjects`` one
  matrix per subject (or none); ``components`` principal axes or canonical directions.

Example::

    from insilico.types import Images, Outputs

    def logits(subject, x: Images) -> Outputs: ...
"""
from __future__ import annotations

import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Key, UInt32

__all__ = ["Images", "Labels", "PRNGKey",
           "Outputs", "Activations", "SampledOutputs", "SampledActivations", "UnitArray", "SiteShapes",
           "UnitMask", "UnitValues", "Masks", "ParamMasks", "UnitIndices", "Orders", "Fractions",
           "ImageBatch", "ImageArray", "ImageStack", "StimulusParam", "StimulusParams", "Flags",
           "Responses", "ResponseMatrix", "Features", "Gram", "Spectrum", "Correlations", "Scalar", "RDMs",
           "NeuronResponses", "Reliabilities"]

# What a subject takes.
Images = Float[ArrayLike, "n h w c"]
"""A batch of images in the subject's pixel bounds, channels last (NumPy or JAX)."""
Labels = Int[ArrayLike, " n"]
"""One class index per image."""
PRNGKey = Key[Array, ""] | UInt32[Array, "2"]
"""A JAX PRNG key: typed (``jax.random.key``) or raw (``jax.random.PRNGKey``)."""

# What a forward pass gives.
Outputs = Float[Array, "n *out"]
"""The model's output per image (class logits for a classifier)."""
Activations = Float[Array, "n *unit"]
"""A site's activation per image."""
SampledOutputs = Float[Array, "samples n *out"]
"""Outputs of independent Monte-Carlo draws of a stochastic subject."""
SampledActivations = Float[Array, "samples n *unit"]
"""A site's activation in independent Monte-Carlo draws."""
UnitArray = Float[Array, "*unit"]
"""One value per unit of a site (a mean over images, for example)."""
SiteShapes = dict[str, tuple[int, ...]]
"""The sites of a subject in call order, each with its unit shape (batch axis excluded)."""

# Perturbations.
UnitMask = Float[ArrayLike, "*unit"]
"""Per-unit weights in [0, 1] at a site, broadcast over its units (``(c,)`` for whole channels)."""
UnitValues = Float[ArrayLike, "*unit"]
"""Per-unit values at a site (a clamp value, a gain, a noise scale), broadcast over its units; a scalar for all."""
Masks = Float[ArrayLike, "masks *unit"]
"""A stack of unit masks, one row per perturbation."""
ParamMasks = Float[ArrayLike, "masks *param"]
"""A stack of multiplicative masks of one parameter (broadcast to its shape), one row per perturbation."""
UnitIndices = Int[ArrayLike, " units"]
"""Flat indices of units (channels, or positions × channels)."""
Orders = Int[ArrayLike, "*orders units"]
"""A permutation of a site's units, or a stack of them: the order in which they are removed."""
Fractions = Float[ArrayLike, " fractions"]
"""Fractions in [0, 1]."""

# Stimuli.
ImageBatch = Float[Array, "*batch h w c"]
"""Generated stimuli: images under any leading (parameter) axes, channels last."""
ImageArray = Float[Array, "n h w c"]
"""A batch of images as a JAX array."""
ImageStack = Float[np.ndarray, "n h w c"]
"""A batch of images as a NumPy array."""
StimulusParam = Float[ArrayLike, "*batch"]
"""A stimulus parameter: a number, or an array broadcast with the other parameters (its shape leads the images')."""
StimulusParams = Float[np.ndarray, " n"]
"""One parameter value per generated stimulus."""
Flags = Bool[np.ndarray, " n"]
"""One yes/no per image."""

# Analyses of representations.
Responses = Float[ArrayLike, "stimuli *units"]
"""Responses of units to stimuli, one row per stimulus (unit axes beyond the first are flattened)."""
ResponseMatrix = Float[np.ndarray, "stimuli units"]
"""Recorded responses, one row per stimulus, the units of a site flattened (float64)."""
Features = Float[Array | np.ndarray, "stimuli units"]
"""A response matrix as an array: NumPy in gives NumPy out, JAX gives JAX (and stays differentiable)."""
Gram = Float[Array | np.ndarray, "stimuli stimuli"]
"""A kernel (Gram) matrix between stimuli; NumPy in gives NumPy out, JAX gives JAX."""
Spectrum = Float[np.ndarray, " components"]
"""Eigenvalues, largest first."""
Correlations = Float[np.ndarray, " components"]
"""Canonical correlations, largest first."""
Scalar = Float[Array, ""]
"""A JAX scalar (differentiable)."""

# Brain data.
RDMs = Float[ArrayLike, "*subjects stimuli stimuli"]
"""Representational dissimilarity matrices over the same stimuli: one (stimuli, stimuli), or one per subject."""
NeuronResponses = Float[ArrayLike, "stimuli neurons"]
"""Recorded neurons' responses, one row per stimulus."""
Reliabilities = Float[ArrayLike, " neurons"]
"""One value per neuron (a noise ceiling or split-half reliability)."""
