"""Reverse correlation: the spike-triggered average and covariance of every (centre) unit from white noise,
accumulated batch by batch on the engine's fold (memory of one batch, whatever the number of images)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ... import rng
from ...engine import fold
from ...validation import check_count, check_key, check_positive
from ._common import _site, centre_units, window_start
from .size import receptive_field_size


def _revcorr_step(acc, i, site: str, window: tuple | None, subject, key, noise: tuple):
    """Accumulate response-weighted sums over noise batch ``i`` (drawn from ``fold_in(key, i)``)."""
    mean, scale, lo, hi, shape = noise
    x = jnp.clip(mean + scale * rng.normal(jax.random.fold_in(key, i), shape), lo, hi)
    _, rec = el.forward(subject, x, record=(site,))
    r = centre_units(rec[site])                                      # (B, U)
    d = (x - mean).reshape(x.shape[0], -1)                           # (B, D)
    new = {"n": acc["n"] + x.shape[0], "r": acc["r"] + r.sum(0), "r2": acc["r2"] + (r ** 2).sum(0),
           "rx": acc["rx"] + r.T @ d}
    if window is not None:
        y0, x0, size = window
        w = (x - mean)[:, y0:y0 + size, x0:x0 + size, :].reshape(x.shape[0], -1)
        new["rxx"] = acc["rxx"] + jnp.einsum("bu,bd,be->ude", r, w, w)
        new["xx"] = acc["xx"] + w.T @ w                               # the noise's own (clipped) covariance
    return new


def reverse_correlation(subject, site: str, n_images: int = 8192, *, key, std: float = 0.15,
                        batch_size: int = 256, stc: bool = False, window: int | None = None,
                        progress: bool = True) -> xr.Dataset:
    """Spike-triggered average (and optionally covariance) of every (centre) unit of ``site`` from Gaussian
    white noise (mean at the middle of the pixel bounds, ``std`` per pixel, clipped to the bounds).

    STA = Σ r (x − μ) / Σ r: for a linear-nonlinear unit it is proportional to the linear filter (Bussgang;
    Chichilnisky 2001); NaN for a unit whose summed response is ≤ 0 (never active, or signed responses that
    cancel: record a rectified site). STC (``stc=True``) is computed in a ``window`` x ``window`` crop centred on
    the centre unit's receptive field (default: the site's theoretical receptive field, at most 16 px):
    Σ r (x−μ−STA)(x−μ−STA)ᵀ / Σ r minus the noise's own covariance, measured over the same images (clipped to the
    bounds, its variance is below σ²) (Schwartz et al. 2006), with its eigenvalues and leading eigenvectors;
    complex-cell-like units show large positive eigenvalues with a flat STA. Noise batch ``i`` is drawn from
    ``fold_in(key, i)``; ``n_images`` is rounded up to whole batches of ``batch_size`` (attrs ``n_images`` says
    how many were shown).
    Returns ``sta`` (unit, y, x, channel), ``n_spikes`` (Σ r), ``mean_rate`` and with ``stc`` the
    ``stc_eigenvalues`` (unit, component) and ``stc_eigenvectors`` (unit, component, wy, wx, channel).
    """
    site = _site(subject, site)
    n_images = check_count("n_images", n_images)
    check_key("key", key)
    std = check_positive("std", std)
    batch_size = check_count("batch_size", batch_size)
    if window is not None:
        window = check_count("window", window, maximum=min(subject.input_spec.shape[:2]))
    h, w, c = subject.input_spec.shape
    lo, hi = subject.input_spec.bounds
    mean = 0.5 * (lo + hi)
    n_units = subject.sites[site][-1]
    win = None
    if stc:
        field = receptive_field_size(subject, site, key=jax.random.fold_in(key, 0x5EED))
        size = int(min(window or min(16, int(field["theoretical_size"].values[0])), h, w))
        inside = lambda centre, n: min(max(window_start(centre, size), 0), n - size)      # within the image
        win = (inside(field["centre_y"].values[0], h), inside(field["centre_x"].values[0], w), size)
    acc = {"n": jnp.zeros(()), "r": jnp.zeros(n_units), "r2": jnp.zeros(n_units),
           "rx": jnp.zeros((n_units, h * w * c))}
    if win:
        acc["rxx"] = jnp.zeros((n_units, win[2] ** 2 * c, win[2] ** 2 * c))
        acc["xx"] = jnp.zeros((win[2] ** 2 * c, win[2] ** 2 * c))
    noise = (mean, std * (hi - lo), lo, hi, (batch_size, h, w, c))
    acc = fold(_revcorr_step, acc, math.ceil(n_images / batch_size), site, win, subject, key, noise,
               progress=progress, desc=f"reverse correlation {site}")
    sums = {k: np.asarray(v, np.float64) for k, v in acc.items()}
    spikes = sums["r"]
    safe = np.where(spikes > 0, spikes, 1.0)
    sta = (sums["rx"] / safe[:, None]).reshape(n_units, h, w, c)
    sta[spikes <= 0] = np.nan               # Σ r ≤ 0: no spike-triggered average (a silent or signed unit)
    ds = xr.Dataset({"sta": (("unit", "y", "x", "channel"), sta.astype(np.float32)),
                     "n_spikes": ("unit", spikes), "mean_rate": ("unit", spikes / sums["n"])},
                    coords={"unit": np.arange(n_units)},
                    attrs={"site": site, "subject": subject.name, "n_images": int(sums["n"]), "std": std})
    if win:
        y0, x0, size = win
        s_w = sta[:, y0:y0 + size, x0:x0 + size, :].reshape(n_units, -1)
        cov = sums["rxx"] / safe[:, None, None] - np.einsum("ud,ue->ude", s_w, s_w)
        cov -= sums["xx"][None] / sums["n"]          # clipping makes the noise's variance less than σ²
        vals, vecs = np.linalg.eigh(np.where(spikes[:, None, None] > 0, cov, 0.0))
        vals[spikes <= 0], vecs[spikes <= 0] = np.nan, np.nan
        order = np.argsort(-np.abs(vals), axis=-1)[:, :8]
        vals = np.take_along_axis(vals, order, -1)
        vecs = np.take_along_axis(vecs, order[:, None, :], -1).transpose(0, 2, 1)
        ds["stc_eigenvalues"] = (("unit", "component"), vals)
        ds["stc_eigenvectors"] = (("unit", "component", "wy", "wx", "channel"),
                                  vecs.reshape(n_units, -1, size, size, c).astype(np.float32))
        ds.attrs["stc_window"] = (y0, x0, size)
    return ds
