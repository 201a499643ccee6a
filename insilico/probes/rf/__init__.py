"""Receptive fields of every unit of a site, one probe a module: grating tuning (:mod:`.gratings`), reverse
correlation (:mod:`.revcorr`), receptive-field size (:mod:`.size`), maximally activating exemplars and input
gradients (:mod:`.exemplars`), on the shared checks of :mod:`._common`.

For a convolutional site the unit of each channel is the one at the centre of the map (or, for exemplars, the
best position); for a dense site every unit. Gratings fill the whole image, so the centre unit's receptive field
sees the full pattern. Conventions of the stimuli (orientation, sf in cycles/pixel, phase) are those of
:mod:`insilico.data.stimuli`.
"""
from ._common import centre_units
from .exemplars import exemplars, input_gradients
from .gratings import grating_tuning, orientation_selectivity, tuning_summary
from .revcorr import reverse_correlation
from .size import receptive_field_size

__all__ = ["centre_units", "exemplars", "grating_tuning", "input_gradients", "orientation_selectivity",
           "receptive_field_size", "reverse_correlation", "tuning_summary"]
