"""Dimensionality of a representation (stimuli × units): PCA spectrum, participation ratio, the power-law exponent of
the eigenspectrum (Stringer et al. 2019) and the TwoNN intrinsic dimension (Facco et al. 2017)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ..types import Responses, Spectrum
from ..validation import ArgumentError, check_finite, check_fraction, check_number

__all__ = ["pca_spectrum", "participation_ratio", "powerlaw_exponent", "two_nn"]


def _responses(x, what: str, min_stimuli: int = 3) -> np.ndarray:
    x = check_finite("x", x).astype(np.float64)
    if x.ndim < 2:
        raise ValueError(f"{what}: responses must be (stimuli, units, ...); got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    if x.shape[0] < min_stimuli:
        raise ValueError(f"{what} needs at least {min_stimuli} stimuli; got {x.shape[0]}")
    if np.all(np.ptp(x, 0) == 0):                   # exactly: a constant's std may round to 1e-17
        raise ValueError(f"{what}: every unit responds identically to all stimuli (constant responses)")
    return x


def pca_spectrum(x: Responses) -> Spectrum:
    """Eigenvalues of the unit covariance (variance along each principal axis), largest first: min(stimuli,
    units) of them (those past stimuli − 1 are 0)."""
    x = _responses(x, "pca_spectrum", 2)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    return s ** 2 / (x.shape[0] - 1)


def participation_ratio(x: Responses) -> float:
    """(Σλ)² / Σλ² of the covariance eigenvalues: how many dimensions the variance is spread over (1 …
    min(units, stimuli − 1))."""
    lam = pca_spectrum(x)
    return float(lam.sum() ** 2 / np.sum(lam ** 2))


def powerlaw_exponent(x: Responses, fit_range: tuple[int, int] = (10, 500)) -> dict:
    """Exponent α of a power law λₙ ∝ n^(−α) fitted to the eigenspectrum by least squares in log-log coordinates
    over ranks ``fit_range`` (1-based, inclusive; clipped to the available ranks, at least 3 needed). Returns
    {"alpha", "r2", "ranks"}: Stringer et al. 2019 found α ≈ 1 in mouse V1 for natural images."""
    if not isinstance(fit_range, (tuple, list)) or len(fit_range) != 2:
        raise ArgumentError(f"fit_range must be a pair (first rank, last rank); got {fit_range!r}")
    first = check_number("fit_range[0]", fit_range[0], low=1, integer=True)
    last = check_number("fit_range[1]", fit_range[1], low=first + 2, integer=True)
    lam = pca_spectrum(x)
    lo, hi = first, min(last, int(np.sum(lam > lam[0] * 1e-12)))
    if hi - lo + 1 < 3:
        raise ValueError(f"powerlaw_exponent needs at least 3 non-zero eigenvalues in ranks {fit_range}; the "
                         f"spectrum has {int(np.sum(lam > 0))} (more stimuli or a lower fit range)")
    n = np.arange(lo, hi + 1)
    lx, ly = np.log(n), np.log(lam[lo - 1:hi])
    slope, icpt = np.polyfit(lx, ly, 1)
    r2 = 1 - np.sum((ly - (slope * lx + icpt)) ** 2) / np.sum((ly - ly.mean()) ** 2)
    return {"alpha": float(-slope), "r2": float(r2), "ranks": (int(lo), int(hi))}


def two_nn(x: Responses, discard: float = 0.1) -> float:
    """TwoNN intrinsic dimension (Facco et al. 2017): from μ = r₂/r₁ (distances to each point's second and first
    nearest neighbours), the slope of −log(1 − F(μ)) against log μ through the origin, after discarding the
    ``discard`` fraction of largest μ (in [0, 1); the largest μ, whose empirical F is 1, never enters the fit, so
    ``discard=0`` keeps every other point). Duplicate points are an error (r₁ = 0)."""
    discard = check_fraction("discard", discard, open_high=True)
    x = _responses(x, "two_nn", 4)
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    d.sort(1)
    r1, r2 = d[:, 0], d[:, 1]
    if np.any(r1 == 0):
        raise ValueError(f"two_nn: {int(np.sum(r1 == 0))} stimuli have an identical twin (zero distance); "
                         "remove duplicate rows")
    mu = np.sort(r2 / r1)
    n = len(mu)
    keep = min(int(np.floor(n * (1 - discard))), n - 1)            # F(μ_n) = 1: −log(1 − F) is infinite
    if keep < 2:
        raise ArgumentError(f"discard must leave at least 2 of the {n} stimuli for the fit; got {discard} "
                            f"(keeps {max(keep, 0)})")
    f = np.arange(1, n + 1) / n
    lx, ly = np.log(mu[:keep]), -np.log(1 - f[:keep])
    return float(np.dot(lx, ly) / np.dot(lx, lx))
