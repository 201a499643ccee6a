"""Neural recordings as labelled :mod:`xarray` objects (through ``INSILICO_DATA``), one dataset family a module.

Every loader takes ``root`` (the data directory; default ``$INSILICO_DATA``) and reads ``root/<dataset folder>``.

- :mod:`.tuning` — :func:`goris2015`, :func:`goris2015_trials`: spatial-frequency tuning of 6 macaque V1/V2 units
  (Goris, Simoncelli & Movshon 2015): per-condition summaries and single trials.
- :mod:`.rdms` — :func:`kriegeskorte2008`: human IT, monkey IT, model and similarity-judgement RDMs for the 92
  object images; :func:`cichy2014`: EVC and IT fMRI RDMs of 15 subjects for the same 92 images;
  :func:`objects92_region_rdms`: the brain RDMs of both by region.
- :mod:`.v4` — :func:`cowley2023`, :func:`cowley2023_images`: macaque V4 array responses to natural images
  (4 sessions).
- :mod:`.v1` — :func:`tang2018`: 9,500 binary pattern stimuli and 4 macaque V1 neurons; :func:`allen_v1`: mouse V1
  (Allen Brain Observatory), 212 cells x 118 natural scenes.
- :mod:`.nwb` — :func:`read_nwb_units`: spike times or a presentation x neuroid count matrix from an NWB file
  (needs ``pynwb``).
- :mod:`._common` — what they share: the dataset folder check, :class:`Recording`, the response array.

Conventions. Responses are :class:`xarray.DataArray` with dims ("presentation", "neuroid") (plus "repetition"
for single repeats), a ``stimulus_id`` coordinate on presentation (an int indexing the dataset's stimuli; row ``i``
of the images returned alongside is the stimulus of presentation ``i``), and ``neuroid_id`` (str) and ``region``
on neuroid. RDMs are square, symmetric, zero-diagonal (..., "stimulus_a", "stimulus_b") arrays.
"""
from ._common import Recording
from .nwb import read_nwb_units
from .rdms import CICHY2014, KRIEGESKORTE2008, cichy2014, kriegeskorte2008, objects92_region_rdms
from .tuning import GORIS2015, GORIS2015_UNITS, goris2015, goris2015_trials
from .v1 import ALLEN_V1, TANG2018, TANG2018_NEURONS, allen_v1, tang2018
from .v4 import COWLEY2023, COWLEY2023_SESSIONS, cowley2023, cowley2023_images

__all__ = ["ALLEN_V1", "CICHY2014", "COWLEY2023", "COWLEY2023_SESSIONS", "GORIS2015", "GORIS2015_UNITS",
           "KRIEGESKORTE2008", "TANG2018", "TANG2018_NEURONS", "Recording", "allen_v1", "cichy2014", "cowley2023",
           "cowley2023_images", "goris2015", "goris2015_trials", "kriegeskorte2008", "objects92_region_rdms",
           "read_nwb_units", "tang2018"]
