"""Tuning-curve statistics for model units and real cells — pure numpy, vectorised over leading axes.

Every function takes the sampled stimulus values (last axis) and ``responses`` of shape (..., n) and reduces
the last axis. Nothing is subtracted from the responses: subtract a baseline (e.g. the spontaneous rate)
first if the statistic should be relative to it.

- :func:`preferred_log_peak`, :func:`log_bandwidth`: peak and full bandwidth (octaves) of a curve over a
  positive, roughly log-spaced variable such as spatial frequency;
- :func:`circular_halfwidth`, :func:`vector_preferred_orientation`, :func:`osi`: orientation tuning over [0, 180);
- :func:`modulation_ratio`: F1/F0 over one cycle of spatial phase (simple cells > 1, complex cells < 1).
"""
from __future__ import annotations

import numpy as np

__all__ = ["preferred_log_peak", "log_bandwidth", "circular_halfwidth", "modulation_ratio",
           "vector_preferred_orientation", "osi"]


def _log_curve(values, responses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log2(values) and responses broadcast to a common (..., n); samples that are not finite are missing."""
    r = np.asarray(responses, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log2(np.asarray(values, float))
    x, r = np.broadcast_arrays(x, r)
    valid = np.isfinite(x) & np.isfinite(r)
    return x, np.where(valid, r, -np.inf), valid


def _take(a: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, i[..., None], -1)[..., 0]


def preferred_log_peak(values, responses) -> np.ndarray:
    """Peak location of a tuning curve over positive, roughly log-spaced ``values`` (e.g. c/deg), shape (...).

    The parabola in log2(value) through the largest sample and its two neighbours gives the peak (exact for
    a curve that is quadratic in log2(value), however spaced); at an edge of the sampled range, or next to a
    missing (non-finite) sample, the location of the largest sample is returned. ``values`` (n,) or
    broadcastable to ``responses`` (..., n); rows without any finite sample give NaN.
    """
    x, r, valid = _log_curve(values, responses)
    n = r.shape[-1]
    i = np.argmax(r, -1)
    im, ip = np.clip(i - 1, 0, n - 1), np.clip(i + 1, 0, n - 1)
    inner = (i > 0) & (i < n - 1) & _take(valid, im) & _take(valid, ip)
    x0, x1, x2 = _take(x, im), _take(x, i), _take(x, ip)
    y0, y1, y2 = (np.where(inner, _take(r, j), 0.0) for j in (im, i, ip))
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.clip(x1 - 0.5 * num / den, np.minimum(x0, x2), np.maximum(x0, x2))
    peak = np.where(inner & (den != 0), vertex, x1)       # den == 0: flat top, keep the sample
    return np.where(valid.any(-1), 2.0 ** peak, np.nan)


def _crossing(x_in, r_in, x_out, r_out, level):
    """Where the line from (x_in, r_in > level) to (x_out, r_out <= level) meets ``level``."""
    with np.errstate(divide="ignore", invalid="ignore"):   # only where the caller masks the result out
        return x_in + (r_in - level) / (r_in - r_out) * (x_out - x_in)


def log_bandwidth(values, responses, level: float = 0.5) -> dict[str, np.ndarray]:
    """Full width of a tuning curve at ``level`` x its peak response, in octaves (log2 axis).

    From the largest sample the curve is followed outwards on each side, linearly interpolated in log2(value),
    to where it first falls to ``level`` x peak. A side on which it does not (open-ended curve, or a missing
    sample reached first) gives a NaN cut-off there and a NaN bandwidth; so do rows whose peak is <= 0.
    Nothing is subtracted: pass ``rate - spontaneous`` to measure relative to a baseline.

    Returns: dict of arrays shaped (...): ``peak`` (:func:`preferred_log_peak`), ``peak_response`` (largest
    sample, the reference for ``level``), ``low`` and ``high`` (cut-off values, in the units of ``values``)
    and ``bandwidth_octaves`` = log2(high / low).
    """
    x, r, valid = _log_curve(values, responses)
    n = r.shape[-1]
    i = np.argmax(r, -1)
    top = _take(r, i)
    thr = (level * top)[..., None]
    stop = (r <= thr) | ~valid                            # the walk outwards ends at these samples
    idx = np.arange(n)
    left = np.where(stop & (idx < i[..., None]), idx, -1).max(-1)
    right = np.where(stop & (idx > i[..., None]), idx, n).min(-1)
    cuts = {}
    for name, j, inner in (("low", left, left + 1), ("high", right, right - 1)):
        jc, ic = np.clip(j, 0, n - 1), np.clip(inner, 0, n - 1)
        ok = (j >= 0) & (j < n) & _take(valid, jc) & (top > 0)
        cut = _crossing(_take(x, ic), _take(r, ic), _take(x, jc), _take(r, jc), thr[..., 0])
        cuts[name] = np.where(ok, 2.0 ** cut, np.nan)
    return {"peak": preferred_log_peak(values, responses), "peak_response": np.where(valid.any(-1), top, np.nan),
            **cuts, "bandwidth_octaves": np.log2(cuts["high"] / cuts["low"])}


def circular_halfwidth(orientations_deg, responses, level: float = 0.5) -> np.ndarray:
    """Orientation-tuning half-width (deg) at ``level`` x peak for a curve over [0, 180), shape (...).

    From the largest sample the curve is followed both ways round the circle (period 180 deg), with linear
    interpolation, to where it first falls to ``level`` x peak; the half-width is half the angle between the
    two crossings. ``level=0.5`` is the half-width at half height; 1/sqrt(2) is another common convention
    (e.g. Ringach et al. 2002). NaN when the curve never falls to the level, or its peak is <= 0.
    ``orientations_deg`` (n,) distinct angles in increasing order (mod 180); ``responses`` (..., n).
    """
    theta = np.mod(np.asarray(orientations_deg, float), 180.0)
    r = np.asarray(responses, float)
    n = r.shape[-1]
    i = np.argmax(r, -1)[..., None]
    top = np.take_along_axis(r, i, -1)
    below = r <= level * top
    step = np.arange(1, n)                                # offsets 1 .. n-1 round the circle
    half = []
    for sign in (1, -1):
        j = np.mod(i + sign * step, n)                    # (..., n-1) sample indices walked through
        hit = np.take_along_axis(below, j, -1)
        k = np.where(hit.any(-1), hit.argmax(-1), 0)      # first sample at or below the level
        j_out, j_in = _take(j, k), np.where(k > 0, _take(j, np.maximum(k - 1, 0)), i[..., 0])
        ang = lambda jj: np.mod(sign * (theta[jj] - theta[i[..., 0]]), 180.0)   # angle from the peak
        cross = _crossing(ang(j_in), _take(r, j_in), ang(j_out), _take(r, j_out), level * top[..., 0])
        half.append(np.where(hit.any(-1) & (top[..., 0] > 0), cross, np.nan))
    return (half[0] + half[1]) / 2


def modulation_ratio(phases_deg, responses) -> np.ndarray:
    """F1/F0 of responses to one full cycle of equally spaced ``phases_deg`` (..., n) -> (...).

    F0 = mean response, F1 = 2 |mean(r e^{-i phi})| (amplitude of the first harmonic), so r = a + b cos(phi -
    phi0) gives b/a. > 1: simple-cell-like, < 1: complex-cell-like. 0 where F0 <= 0 (no response), never NaN.
    """
    r = np.asarray(responses, float)
    phi = np.deg2rad(np.asarray(phases_deg, float))
    f0 = r.mean(-1)
    f1 = 2 * np.abs((r * np.exp(-1j * phi)).mean(-1))
    return np.divide(f1, f0, out=np.zeros(np.shape(f0)), where=f0 > 0)


def _doubled(orientations_deg, responses) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(responses, float)
    return (r * np.exp(2j * np.deg2rad(np.asarray(orientations_deg, float)))).sum(-1), r.sum(-1)


def vector_preferred_orientation(orientations_deg, responses) -> np.ndarray:
    """Preferred orientation (deg, in [0, 180)) from the doubled-angle vector average, shape (...)."""
    z, _ = _doubled(orientations_deg, responses)
    pref = np.mod(np.rad2deg(np.angle(z)) / 2, 180.0)
    return np.where(pref >= 180.0, 0.0, pref)             # mod of a tiny negative angle rounds to 180


def osi(orientations_deg, responses) -> np.ndarray:
    """Orientation selectivity |sum r e^{2i theta}| / sum r (0 = untuned, 1 = one orientation); 0 where sum r <= 0."""
    z, total = _doubled(orientations_deg, responses)
    return np.divide(np.abs(z), total, out=np.zeros(np.shape(total)), where=total > 0)
