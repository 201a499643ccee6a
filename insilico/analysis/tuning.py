"""Tuning-curve statistics for model units and real cells — pure numpy, vectorised over leading axes.

Every function takes the sampled stimulus values (last axis) and ``responses`` of shape (..., n) and reduces
the last axis. Nothing is subtracted from the responses: subtract a baseline (e.g. the spontaneous rate)
first if the statistic should be relative to it.

- :func:`preferred_log_peak`, :func:`log_bandwidth`: peak and full bandwidth (octaves) of a curve over a
  positive, roughly log-spaced variable such as spatial frequency;
- :func:`circular_halfwidth`, :func:`vector_preferred_orientation`, :func:`osi`: orientation tuning over [0, 180);
- :func:`modulation_ratio`: F1/F0 over one cycle of spatial phase (simple cells > 1, complex cells < 1).

Arguments are checked (:class:`~insilico.validation.ArgumentError`): ``level`` in (0, 1), stimulus values that
match the responses' last axis, no empty curves; non-finite responses are missing samples for the log-axis
functions (as documented there) and an error for the circular ones.
"""
from __future__ import annotations

import numpy as np

from ..validation import ArgumentError, check_finite, check_fraction

__all__ = ["preferred_log_peak", "log_bandwidth", "circular_halfwidth", "modulation_ratio",
           "vector_preferred_orientation", "osi"]


def _numeric(name: str, value) -> np.ndarray:
    """``value`` as a float array (NaN/inf allowed: missing samples), not empty and at least 1-D."""
    try:
        a = np.asarray(value, float)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{name} must be a numeric array; got {type(value).__name__} ({e})") from None
    if a.ndim == 0 or a.size == 0:
        raise ArgumentError(f"{name} must hold at least one sample along its last axis; got shape {a.shape}")
    return a


def _broadcast(vname: str, v: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus values ``v`` and responses ``r`` broadcast together, the samples on the last axis."""
    try:
        out = np.broadcast_arrays(v, r)
    except ValueError:
        out = None
    if out is None or v.shape[-1] != r.shape[-1]:
        raise ArgumentError(f"{vname} (shape {v.shape}) must give one stimulus value per sample of responses "
                            f"(shape {r.shape}, samples on the last axis)")
    return out[0], out[1]


def _circular(aname: str, angles, responses) -> tuple[np.ndarray, np.ndarray]:
    """Finite angles and finite responses with one angle per sample (the last axis)."""
    a, r = check_finite(aname, angles).astype(float), check_finite("responses", responses).astype(float)
    if a.ndim == 0 or r.ndim == 0:
        raise ArgumentError(f"{aname} and responses must have the samples on their last axis; got shapes "
                            f"{a.shape} and {r.shape}")
    _broadcast(aname, a, r)
    return a, r


def _orientations(angles, responses) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_circular` for orientations: sorted mod 180 (the responses carried along), each orientation once
    (0 and 180 deg are one orientation: counted twice it would weigh double)."""
    a, r = _circular("orientations_deg", angles, responses)
    a, r = np.broadcast_arrays(np.mod(a, 180.0), r)
    order = np.argsort(a, -1, kind="stable")
    a, r = np.take_along_axis(a, order, -1), np.take_along_axis(r, order, -1)
    same = np.isclose(np.diff(a, axis=-1), 0.0, atol=1e-9)
    if same.any():
        k = int(np.argmax(same.reshape(-1, same.shape[-1]).any(0)))
        raise ArgumentError(f"orientations_deg must name each orientation once (mod 180 deg); "
                            f"{a.reshape(-1, a.shape[-1])[0, k]:g} deg appears twice")
    return a, r


def _log_curve(values, responses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log2(values) and responses broadcast to a common (..., n), sorted by value along the last axis (the
    responses carried along); samples that are not finite are missing. Values must be > 0 (a log axis)."""
    r = _numeric("responses", responses)
    v = _numeric("values", values)
    finite = v[np.isfinite(v)]
    if (finite <= 0).any():
        raise ArgumentError(f"values must be > 0 (a log2 axis: spatial frequencies, sizes); got "
                            f"{float(finite[finite <= 0][0]):g}")
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.log2(v)
    x, r = _broadcast("values", x, r)
    order = np.argsort(np.where(np.isfinite(x), x, np.inf), -1, kind="stable")     # walks outwards need the order
    x, r = np.take_along_axis(x, order, -1), np.take_along_axis(r, order, -1)
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
    and ``bandwidth_octaves`` = log2(high / low). ``level`` in (0, 1).
    """
    level = check_fraction("level", level, open_low=True, open_high=True)
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
    ``orientations_deg`` (n,) distinct angles mod 180, in any order; ``responses`` (..., n), finite;
    ``level`` in (0, 1).
    """
    level = check_fraction("level", level, open_low=True, open_high=True)
    if np.ndim(orientations_deg) != 1:
        raise ArgumentError(f"orientations_deg must be 1-D (n,); got shape {np.shape(orientations_deg)}")
    theta, r = _orientations(orientations_deg, responses)
    theta = theta.reshape(-1, theta.shape[-1])[0]
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
        ang = lambda jj, sign=sign: np.mod(sign * (theta[jj] - theta[i[..., 0]]), 180.0)   # angle from the peak
        cross = _crossing(ang(j_in), _take(r, j_in), ang(j_out), _take(r, j_out), level * top[..., 0])
        half.append(np.where(hit.any(-1) & (top[..., 0] > 0), cross, np.nan))
    return (half[0] + half[1]) / 2


def modulation_ratio(phases_deg, responses) -> np.ndarray:
    """F1/F0 of responses to one full cycle of equally spaced ``phases_deg`` (..., n) -> (...).

    F0 = mean response, F1 = 2 |mean(r e^{-i phi})| (amplitude of the first harmonic), so r = a + b cos(phi -
    phi0) gives b/a. > 1: simple-cell-like, < 1: complex-cell-like. NaN where F0 <= 0 (no mean response, or
    negative responses: the ratio is defined for rates). The phases must be n ≥ 3 equally spaced angles that
    cover one cycle (any order, any start), as F1 at the fundamental needs."""
    phases, r = _circular("phases_deg", phases_deg, responses)
    rows = np.sort(np.mod(np.broadcast_to(phases, r.shape).reshape(-1, r.shape[-1]), 360.0), -1)
    gaps = np.diff(np.concatenate([rows, rows[:, :1] + 360.0], -1), axis=-1)
    bad = ~np.isclose(gaps, 360.0 / rows.shape[-1], atol=1e-6).all(-1)              # every row, not the first
    if rows.shape[-1] < 3 or bad.any():
        p = rows[int(np.argmax(bad))]
        raise ArgumentError(f"phases_deg must be 3 or more equally spaced phases covering one cycle (e.g. 0, 45, "
                            f"..., 315); got {np.round(p, 3).tolist()[:10]}")
    phi = np.deg2rad(phases)
    f0 = r.mean(-1)
    f1 = 2 * np.abs((r * np.exp(-1j * phi)).mean(-1))
    return np.divide(f1, f0, out=np.full(np.shape(f0), np.nan), where=f0 > 0)


def _doubled(orientations_deg, responses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta, r = _orientations(orientations_deg, responses)
    return (r * np.exp(2j * np.deg2rad(theta))).sum(-1), r.sum(-1), np.asarray((r < 0).any(-1))


def vector_preferred_orientation(orientations_deg, responses) -> np.ndarray:
    """Preferred orientation (deg, in [0, 180)) from the doubled-angle vector average, shape (...)."""
    z, _, _ = _doubled(orientations_deg, responses)
    pref = np.mod(np.rad2deg(np.angle(z)) / 2, 180.0)
    return np.where(pref >= 180.0, 0.0, pref)             # mod of a tiny negative angle rounds to 180


def osi(orientations_deg, responses) -> np.ndarray:
    """Orientation selectivity |sum r e^{2i theta}| / sum r (0 = untuned, 1 = one orientation), each orientation
    once mod 180; 0 where every response is 0, NaN where a response is negative (the index is defined for rates:
    with negative samples it is unbounded)."""
    z, total, negative = _doubled(orientations_deg, responses)
    out = np.divide(np.abs(z), total, out=np.zeros(np.shape(total)), where=total > 0)
    return np.where(negative, np.nan, out)
