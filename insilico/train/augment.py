"""Data augmentation for image batches, jit-able, with one independent draw per sample."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .. import rng
from ..validation import ArgumentError, check_count, check_key


def _check(key, x, pad=0):
    """The key and a batch (N, H, W, C) (checked when concrete), and ``pad`` a count of pixels ≥ 0."""
    check_key("key", key)
    if getattr(x, "ndim", None) != 4:
        raise ArgumentError(f"x must be a batch of images (N, H, W, C); got shape {getattr(x, 'shape', type(x))}")
    return check_count("pad", pad, minimum=0)


def random_flip(key, x):
    """Flip each image of ``x`` (N, H, W, C) left-right with probability 1/2."""
    _check(key, x)
    flip = rng.bernoulli(key, 0.5, (x.shape[0], 1, 1, 1))
    return jnp.where(flip, x[:, :, ::-1, :], x)


def random_crop(key, x, pad: int = 4):
    """Pad each image by ``pad`` pixels (reflect) and crop back at a random offset per sample."""
    pad = _check(key, x, pad)
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offsets = rng.randint(key, (n, 2), 0, 2 * pad + 1)

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def flip_and_crop(key, x, pad: int = 4):
    """The standard CIFAR augmentation: random horizontal flip and random padded crop."""
    k1, k2 = jax.random.split(key)
    return random_crop(k2, random_flip(k1, x), pad)


def crop_only(key, x, pad: int = 2):
    """Random padded crop without flips (for digits, where flips change the class)."""
    return random_crop(key, x, pad)


AUGMENTATIONS = {"flip_crop": flip_and_crop, "crop": crop_only, "none": None}
