"""Representational similarity analysis (Kriegeskorte, Mur & Bandettini 2008): RDMs, RDM comparators, noise ceilings
and resampling — every bootstrap one compiled call per block of samples (a new sample count compiles nothing).

Conventions follow rsatoolbox so numbers agree with it: squared Euclidean and Mahalanobis distances are divided by
the number of channels; correlation distance is 1 − r; comparators return similarities. RDMs are square arrays
(..., n, n); :func:`upper` gives the condensed upper-triangle vectors (row-major, as ``scipy.spatial.distance.
squareform``).

Resampling without materializing resampled RDMs: a bootstrap sample of stimuli with counts kᵢ turns the RDM vector
into the original pairs (i < j) with multiplicities kᵢkⱼ (a stimulus drawn twice contributes no pair with itself,
as rsatoolbox masks those entries). Means and correlations become weighted sums, ranks become cumulative weights
in a presorted order, and Kendall's τ-a a quadratic form — so 1,000 samples are a few matrix products.

One concept per module:

- ``rdm``: patterns → RDMs (:func:`rdm`, :func:`rdm_jax`), :func:`upper`, :func:`square`;
- ``compare``: the comparators (:func:`compare`) and their weighted forms;
- ``ceiling``: :func:`noise_ceiling`;
- ``inference``: :func:`bootstrap`, :func:`permutation_test`;
- ``tau_bootstrap``: τ-a of every bootstrap sample as quadratic forms;
- ``fit``: :func:`fit_weighted`.

Use every name from the package: ``rsa.rdm`` and ``rsa.compare`` are the functions (bound here once their modules
are loaded), not the modules of the same names.
"""
# the private names (re-exported as ``x as x``) are internals the tests check against rsatoolbox and brute-force loops
from .ceiling import CEILING_METHODS, noise_ceiling
from .compare import COMPARATORS, compare
from .compare import _tau_a_exact as _tau_a_exact
from .fit import fit_weighted
from .inference import BOOTSTRAP_METHODS, bootstrap, permutation_test
from .inference import _boot as _boot
from .inference import _boot_ceilings as _boot_ceilings
from .rdm import RDM_METHODS, rdm, rdm_jax, square, upper
from .tau_bootstrap import _boot_tau_a as _boot_tau_a
from .tau_bootstrap import _float32_ranks as _float32_ranks
from .tau_bootstrap import _tau_forms as _tau_forms

__all__ = ["rdm", "rdm_jax", "upper", "square", "compare", "noise_ceiling", "bootstrap", "permutation_test",
           "fit_weighted", "RDM_METHODS", "COMPARATORS", "CEILING_METHODS", "BOOTSTRAP_METHODS"]
