"""Gabor fits of 2-D filters (first-layer kernels, STAs, visualizations) and filter similarity.

Model (same conventions as :func:`insilico.data.stimuli.gabor`, generalised to an elliptical envelope and an
offset centre)::

    g(x, y) = amplitude · exp(-(u²/(2 sigma_x²) + v²/(2 sigma_y²))) · cos(2π sf u + phase) + offset
    u =  (x − cx) cos θ + (y − cy) sin θ          (along the modulation axis)
    v = −(x − cx) sin θ + (y − cy) cos θ          (along the bars)

Images are (H, W); pixel coordinates are x to the right and y *upwards*, origin at the image centre
((W−1)/2, (H−1)/2), so row ``i`` has y = (H−1)/2 − i. ``orientation`` θ is in degrees, 0 = vertical bars
(luminance varies along x), counter-clockwise positive; ``sf`` in cycles/pixel; ``phase`` in degrees.
(θ, φ) and (θ + 180°, −φ) describe the same Gabor, as do (A, φ) and (−A, φ + 180°); fits are returned
canonically with orientation in [0, 180), phase in [0, 360) and amplitude ≥ 0.

Multichannel filters (K, H, W, C) are reduced to their dominant colour component: ``c`` is the first right
singular vector of the (H·W, C) matrix ``M`` after subtracting each channel's spatial mean, with its sign chosen
so that the projection ``M c`` correlates positively with the channel-mean image ``M.mean(1)`` (a tie, i.e. a
channel-mean image with std under 1e-6 of that of ``M c``, makes the largest-magnitude entry of ``c`` positive).
``M c`` is what gets fitted (amplitude, offset, ``fitted`` and ``r2`` refer to it) and ``c`` is returned as the
``color`` variable.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any, cast

import numpy as np
import xarray as xr
from scipy.optimize import least_squares

from ..validation import ArgumentError, check_count, check_finite

try:                                        # small least-squares problems: multithreaded BLAS only adds overhead
    from threadpoolctl import threadpool_limits
except ImportError:                         # pragma: no cover
    threadpool_limits = None

PARAMS = ("cx", "cy", "sigma_x", "sigma_y", "orientation", "sf", "phase", "amplitude", "offset")
_DEFAULTS = {"cx": 0.0, "cy": 0.0, "phase": 0.0, "amplitude": 1.0, "offset": 0.0}


def _coords(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    x = np.arange(w, dtype=float) - (w - 1) / 2.0
    y = (h - 1) / 2.0 - np.arange(h, dtype=float)                # y grows upwards
    return x, y


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    x, y = _coords(shape)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    return xx, yy


def _terms(p: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> tuple[np.ndarray, ...]:
    """p = [cx, cy, sx, sy, θ (rad), sf, φ (rad), A, offset] -> intermediate terms of the model."""
    cx, cy, sx, sy, th, f, ph, _a, _o = p
    dx, dy, c, s = xx - cx, yy - cy, np.cos(th), np.sin(th)
    u, v = dx * c + dy * s, -dx * s + dy * c
    env = np.exp(-(u ** 2 / (2 * sx ** 2) + v ** 2 / (2 * sy ** 2)))
    arg = 2 * np.pi * f * u + ph
    return u, v, c, s, env, np.cos(arg), np.sin(arg)


def _model(p: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    _u, _v, _c, _s, env, cos, _sin = _terms(p, xx, yy)
    return p[7] * env * cos + p[8]


def _jac(p: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Analytic Jacobian of the flattened model with respect to p."""
    _cx, _cy, sx, sy, _th, f, _ph, a, _o = p
    u, v, c, s, env, cos, sin = _terms(p, xx, yy)
    ec, es = a * env * cos, a * env * sin
    gu = -ec * u / sx ** 2 - es * 2 * np.pi * f                 # ∂g/∂u
    gv = -ec * v / sy ** 2                                     # ∂g/∂v
    cols = [-gu * c + gv * s, -gu * s - gv * c, ec * u ** 2 / sx ** 3, ec * v ** 2 / sy ** 3,
            gu * v - gv * u, -es * 2 * np.pi * u, -es, env * cos, np.ones_like(u)]
    return np.stack([col.ravel() for col in cols], axis=1)


def _get(params: Any, key: str) -> float:
    try:
        raw = params[key]
    except (KeyError, IndexError):            # only an absent key takes the default
        if key in _DEFAULTS:
            return _DEFAULTS[key]
        raise KeyError(f"gabor params lack required key {key!r}") from None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ArgumentError(f"gabor params[{key!r}] must be a number; got {raw!r:.40}") from None
    if not np.isfinite(value) or (key in ("sigma_x", "sigma_y") and value <= 0) or (key == "sf" and value < 0):
        valid = "a number > 0" if key.startswith("sigma") else "a number ≥ 0" if key == "sf" else "a finite number"
        raise ArgumentError(f"gabor params[{key!r}] must be {valid}; got {value}")
    return value


def gabor_filter(shape: int | tuple[int, int], params: Mapping[str, float] | Any) -> np.ndarray:
    """(H, W) Gabor from a params dict/record/Dataset row (keys as in :data:`PARAMS`, angles in degrees;
    cx, cy, phase, offset default to 0 and amplitude to 1)."""
    dims = (shape, shape) if np.isscalar(shape) else tuple(cast(tuple[int, int], shape))
    if len(dims) != 2:
        raise ArgumentError(f"shape must be an int or (H, W); got {shape!r}")
    h, w = (check_count(f"shape[{i}]", v) for i, v in enumerate(dims))
    p = np.array([_get(params, k) for k in PARAMS])
    p[[4, 6]] = np.deg2rad(p[[4, 6]])
    return _model(p, *_grid((h, w)))


def _initial(f: np.ndarray, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Start [cx, cy, sx, sy, θ, sf] from the FFT amplitude peak and the spread of |f − median|."""
    h, w = f.shape
    ph_, pw_ = max(64, 4 * h), max(64, 4 * w)                  # zero-pad for a finer frequency grid
    amp = np.abs(np.fft.fft2(f - f.mean(), s=(ph_, pw_)))
    i, j = np.unravel_index(np.argmax(amp), amp.shape)
    kx, ky = np.fft.fftfreq(pw_)[j], -np.fft.fftfreq(ph_)[i]   # rows run downwards: flip the y frequency
    wgt = np.abs(f - np.median(f)) + 1e-12
    cx, cy = (wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()
    sigma = np.sqrt((wgt * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / (2 * wgt.sum()))
    return np.array([cx, cy, sigma, sigma, np.arctan2(ky, kx), min(np.hypot(kx, ky), 0.5)])


def _fit_one(f: np.ndarray, n_starts: int) -> tuple[np.ndarray, np.ndarray, float]:
    h, w = f.shape
    xx, yy = _grid((h, w))
    mu, sd = f.mean(), f.std()
    if sd == 0:                                                # constant filter: no Gabor to speak of
        return np.array([0, 0, 1, 1, 0, 0, 0, 0, mu], float), np.full_like(f, mu), np.nan
    z = ((f - mu) / sd).ravel()
    smax = 2.0 * max(h, w)
    lo = np.array([-w, -h, 0.3, 0.3, -np.inf, 0.0, -np.inf, -np.inf, -np.inf])
    hi = np.array([w, h, smax, smax, np.inf, 0.5, np.inf, np.inf, np.inf])
    init = _initial(f, xx, yy)
    init[2:4] = np.clip(init[2:4], 0.31, smax - 0.01)
    init[5] = np.clip(init[5], 1e-3, 0.499)
    fit = lambda p0, n: least_squares(lambda p: _model(p, xx, yy).ravel() - z, p0, jac=lambda p: _jac(p, xx, yy),
                                      bounds=(lo, hi), x_scale="jac", max_nfev=n, ftol=1e-6)
    starts = []
    for phase in np.linspace(0.0, np.pi, n_starts, endpoint=False):
        p0 = np.r_[init, phase, 1.0, 0.0]
        basis = _model(p0, xx, yy).ravel()                     # amplitude and offset by linear least squares
        p0[7:] = np.linalg.lstsq(np.stack([basis, np.ones_like(basis)], 1), z, rcond=None)[0]
        starts.append(fit(p0, 5))                              # short runs screen the starts ...
    starts = sorted(starts, key=lambda r: r.cost)[:2]          # ... and the best two are run to convergence
    best = min((fit(r.x, 200) if r.status == 0 else r for r in starts), key=lambda r: r.cost)
    p = best.x.copy()
    p[7:] = p[7:] * sd + np.array([0.0, mu])                   # undo the normalisation
    if p[7] < 0:
        p[7], p[6] = -p[7], p[6] + np.pi
    p[4] %= 2 * np.pi
    if p[4] >= np.pi:                                          # (θ, φ) ≡ (θ − 180°, −φ)
        p[4], p[6] = p[4] - np.pi, -p[6]
    p[4], p[6] = np.rad2deg(p[4]) % 180.0, np.rad2deg(p[6]) % 360.0
    fitted = best.fun.reshape(h, w) * sd + f
    return p, fitted, 1.0 - 2 * best.cost / (z ** 2).sum()


def _dominant_color(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) -> ((H, W) projection on the dominant colour vector, (C,) colour vector)."""
    m = f.reshape(-1, f.shape[-1])
    c = np.linalg.svd(m - m.mean(0), full_matrices=False)[2][0]
    proj, mean = m @ c, m.mean(1)
    if mean.std() > 1e-6 * proj.std():                         # sign of the correlation with the channel mean
        flip = np.dot(proj - proj.mean(), mean - mean.mean()) < 0
    else:                                                      # tie: no channel-mean signal to correlate with
        flip = c[np.argmax(np.abs(c))] < 0
    c = -c if flip else c
    return (m @ c).reshape(f.shape[:2]), c


def fit_gabor(filters: np.ndarray, n_starts: int = 4) -> xr.Dataset:
    """Least-squares Gabor fit of each filter of (H, W), (K, H, W) or (K, H, W, C) ``filters``.

    Each filter is fitted from ``n_starts`` deterministic starts (orientation and sf from the 2-D FFT peak,
    centre and sigma from |filter − median|, phases spread over [0°, 180°); amplitude and offset solved
    linearly) and the best fit is kept. Returns a Dataset over ``unit`` with the :data:`PARAMS`, ``r2`` (the
    coefficient of determination; NaN for a constant filter), ``fitted`` (unit, y, x) with y/x pixel
    coordinates, and for 4-D input ``color`` (unit, channel), the dominant colour vector (see module doc).
    """
    n_starts = check_count("n_starts", n_starts)
    a = np.asarray(filters, dtype=float)
    if a.ndim not in (2, 3, 4):
        raise ValueError(f"filters must be (H, W), (K, H, W) or (K, H, W, C); got ndim={a.ndim}")
    if not np.isfinite(a).all():
        raise ValueError(f"filters contain NaN or inf values (units {np.unique(np.nonzero(~np.isfinite(a))[0])})"
                         if a.ndim > 2 else "filter contains NaN or inf values")
    if a.size == 0:
        raise ArgumentError(f"filters is empty (shape {a.shape}); pass at least one filter")
    colors = None
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 4:
        a, colors = map(np.stack, zip(*(_dominant_color(f) for f in a)))
    if min(a.shape[1:]) < 2:
        raise ValueError(f"filters must be at least 2x2 pixels, got {a.shape[1:]}")
    with threadpool_limits(1) if threadpool_limits else nullcontext():
        params, fitted, r2 = map(np.array, zip(*(_fit_one(f, n_starts) for f in a)))
    x, y = _coords(a.shape[1:])
    ds = xr.Dataset({k: ("unit", params[:, i]) for i, k in enumerate(PARAMS)},
                    coords={"unit": np.arange(len(a)), "y": y, "x": x})
    ds["r2"] = ("unit", r2)
    ds["fitted"] = (("unit", "y", "x"), fitted)
    if colors is not None:
        ds["color"] = (("unit", "channel"), colors)
    ds.attrs["conventions"] = ("x right, y up, origin at image centre; orientation deg in [0,180), 0 = vertical "
                               "bars, CCW positive; sf cycles/px; phase deg in [0,360)")
    return ds


def gabor_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """|Pearson r| between filters, flattened. Two (H, W) filters give a float; otherwise a and b broadcast
    and the leading axis indexes filter pairs, e.g. (K, H, W[, C]) vs (K, H, W[, C]) or (H, W) -> (K,).
    Constant filters give NaN."""
    a, b = check_finite("a", a, ndim=(2, 3, 4)).astype(float), check_finite("b", b, ndim=(2, 3, 4)).astype(float)
    if a.ndim == 2 and b.ndim == 2:
        return float(_similarity(a[None], b[None])[0])
    return _similarity(a, b)


def _similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Pearson r| of checked float filters along the leading axis, after broadcasting a and b."""
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ArgumentError(f"a and b must be filters of the same size (or broadcast to it); got shapes {a.shape} "
                            f"and {b.shape}") from None
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs((a * b).sum(1) / np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1)))
