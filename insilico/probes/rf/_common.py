"""What every receptive-field probe checks and shares: site and unit arguments, images, the centre unit of a map."""
from __future__ import annotations

import math
from functools import lru_cache

import jax.numpy as jnp
import numpy as np

from ... import electrode as el
from ...validation import ArgumentError, check_count, check_indices


def _var(site: str) -> str:
    return site.replace("/", "__")


@lru_cache(maxsize=32)
def _centre_fn(sites: tuple):
    """``(image, subject) -> {site: centre responses}`` for the sweep engine (one stimulus per item)."""
    def fn(image, subject):
        _, rec = el.forward(subject, image[None], record=sites)
        return {_var(s): centre_units(rec[s])[0] for s in sites}
    return fn


def centre_units(activation):
    """(N, H, W, C) -> (N, C) at the centre position; (N, U) is returned unchanged."""
    if activation.ndim == 4:
        return activation[:, activation.shape[1] // 2, activation.shape[2] // 2, :]
    return activation


def window_start(centre: float, size: int) -> int:
    """The first pixel of a ``size``-pixel window centred on ``centre`` (a pixel, or halfway between two): rounded
    half up, never to even, so that windows of neighbouring units move one stride each."""
    return int(math.floor(centre - (size - 1) / 2 + 0.5))


def _sites(subject, sites) -> tuple:
    el.validate(subject, purpose="receptive fields")
    if sites is None:
        raise ArgumentError(f"sites must name one or more sites of {subject.name}; got None. Valid: "
                            f"{', '.join(subject.sites)}")
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    if not sites:
        raise ArgumentError(f"sites must name one or more sites of {subject.name}; got none. Valid: "
                            f"{', '.join(subject.sites)}")
    el.validate(subject, sites=sites, purpose="receptive fields")
    return sites


def _site(subject, site) -> str:
    """One site name (a string) of ``subject``."""
    if not isinstance(site, str):
        raise ArgumentError(f"site must be one site name (a string) of {getattr(subject, 'name', 'the subject')}; "
                            f"got {site!r}")
    return _sites(subject, site)[0]


def _batch_size(batch_size):
    return None if batch_size is None else check_count("batch_size", batch_size)


def _units(subject, site: str, units):
    """``units`` (None: all) as checked indices into the channels of ``site``."""
    n = subject.sites[site][-1]
    if units is None:
        return np.arange(n)
    if not hasattr(units, "__len__") and hasattr(units, "__iter__"):
        units = list(units)                                               # a generator or other iterable
    return check_indices(f"units (of {site!r}, {n} units)", units, n)


def _images(subject, images, name: str = "images"):
    """``images`` as a checked float32 batch of the subject's input, inside its pixel bounds."""
    x = jnp.asarray(images) if hasattr(images, "dtype") else np.asarray(images)
    el.validate(subject, x, name=name, in_bounds=True)
    return jnp.asarray(x, jnp.float32)
