"""Receptive-field size: theoretical (where the gradient of the centre unit reaches) and effective (Luo et al.
2016: where most of its mass lies), in input pixels."""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from ... import electrode as el
from ... import rng
from ...validation import ArgumentError, check_count, check_fraction, check_key
from ._common import _images, _sites, centre_units


@partial(jax.jit, static_argnums=0)
def _centre_grad(site: str, subject, images):
    """|d(sum over channels of the centre unit of ``site``)/d image| summed over input channels: (N, H, W)."""
    def unit_sum(x):
        _, rec = el.forward(subject, x[None], record=(site,))
        return centre_units(rec[site]).sum()
    return jax.vmap(lambda x: jnp.abs(jax.grad(unit_sum)(x)).sum(-1))(images)


def receptive_field_size(subject, sites: Sequence[str] | str | None = None, images=None, *, key=None,
                         n_images: int = 32, mass: float = 0.95) -> xr.Dataset:
    """Theoretical and effective receptive-field size of the centre unit of each site, in input pixels.

    The gradient of the centre unit (summed over channels) with respect to the input is taken for each of
    ``images`` (default: ``n_images`` uniform white-noise images from ``key``). *Theoretical RF*: the bounding
    box of the pixels with a non-zero gradient for any image (the union over images fills in paths that a
    ReLU or max-pool closed for one input); ``theoretical_size`` is its larger side, ``clipped`` marks a field
    that reaches the image border (the true size may then be larger). *Effective RF* (Luo et al. 2016): the mean
    |gradient| map; ``effective_size`` is 2√2 × the gradient-weighted RMS distance from its centroid (the
    1/e² diameter of a Gaussian), ``area_size`` the side of a square holding ``mass`` of the gradient.
    ``centre_y``/``centre_x``: the centre of the theoretical field's bounding box in input pixels (with "SAME"
    padding and even strides a field is not centred on the image: the centre unit of a 16-px map sees pixels
    14-18 of a 32-px image); a site whose centre unit reaches no pixel gets the image centre.
    Returns a Dataset over ``site`` with these and the maps ``erf`` (site, y, x).
    """
    el.validate(subject, purpose="receptive_field_size")
    sites = _sites(subject, tuple(subject.sites) if sites is None else sites)
    mass = check_fraction("mass", mass, open_low=True)
    h, w, c = subject.input_spec.shape
    if images is None:
        if key is None:
            raise ArgumentError("receptive_field_size needs images or a PRNG key for white-noise images: pass "
                                "images=... or key=jax.random.key(0); got neither")
        check_key("key", key)
        n_images = check_count("n_images", n_images)
        lo, hi = subject.input_spec.bounds
        images = rng.uniform(key, (n_images, h, w, c), minval=lo, maxval=hi)
    else:
        images = _images(subject, images)
    yy, xx = np.mgrid[0:h, 0:w]
    rows: dict[str, list] = {k: [] for k in ("theoretical_size", "clipped", "effective_size", "area_size", "erf",
                                              "centre")}
    for site in sites:
        g = np.asarray(_centre_grad(site, subject, images), np.float64)      # (N, H, W)
        support = (g > 0).any(0)
        if support.any():
            ys, xs = np.nonzero(support)
            theo = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
            clipped = ys.min() == 0 or xs.min() == 0 or ys.max() == h - 1 or xs.max() == w - 1
            centre = ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2)
        else:
            theo, clipped, centre = 0, False, ((h - 1) / 2, (w - 1) / 2)
        erf = g.mean(0)
        total = erf.sum()
        p = erf / total if total > 0 else erf
        cy, cx = (p * yy).sum(), (p * xx).sum()
        rms = math.sqrt(((yy - cy) ** 2 + (xx - cx) ** 2).ravel() @ p.ravel()) if total > 0 else 0.0
        sorted_mass = np.cumsum(np.sort(p.ravel())[::-1])
        area = min(int(np.searchsorted(sorted_mass, mass) + 1), p.size) if total > 0 else 0   # float sums < 1
        for k, v in zip(rows, (theo, clipped, 2 * math.sqrt(2) * rms, math.sqrt(area), erf, centre)):
            rows[k].append(v)
    return xr.Dataset({"theoretical_size": ("site", np.asarray(rows["theoretical_size"], float)),
                       "clipped": ("site", np.asarray(rows["clipped"], bool)),
                       "effective_size": ("site", np.asarray(rows["effective_size"])),
                       "area_size": ("site", np.asarray(rows["area_size"])),
                       "erf": (("site", "y", "x"), np.stack(rows["erf"]).astype(np.float32)),
                       "centre_y": ("site", np.asarray([c[0] for c in rows["centre"]], float)),
                       "centre_x": ("site", np.asarray([c[1] for c in rows["centre"]], float)),
                       "depth": ("site", [list(subject.sites).index(s) + 1 for s in sites])},
                      coords={"site": list(sites)}, attrs={"subject": subject.name, "mass": mass})
