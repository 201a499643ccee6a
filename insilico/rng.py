"""Random draws of many-dimensional shapes, drawn flat and reshaped.

``uniform(key, shape)`` and the others return exactly ``jax.random.uniform(key, shape)`` (and so on) — for every
key implementation (threefry, rbg) and either threefry mode, the bits of a shape are those of its flat size in
row-major order — but XLA:CPU compiles the random bits of a shape of rank 3 or more for about half a second
(more under ``vmap``), and those of a flat one in a tenth of that. Every random image, start or noise field of
the library is drawn through here.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["uniform", "normal", "randint", "bernoulli"]


def _flat(shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    shape = tuple(int(d) for d in shape)
    return shape, (math.prod(shape),)


def uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0):
    """``jax.random.uniform(key, shape, dtype, minval, maxval)``, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.uniform(key, flat, dtype, minval, maxval).reshape(shape)


def normal(key, shape, dtype=jnp.float32):
    """``jax.random.normal(key, shape, dtype)``, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.normal(key, flat, dtype).reshape(shape)


def randint(key, shape, minval, maxval, dtype=jnp.int32):
    """``jax.random.randint(key, shape, minval, maxval, dtype)``, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.randint(key, flat, minval, maxval, dtype).reshape(shape)


def bernoulli(key, p, shape):
    """``jax.random.bernoulli(key, p, shape)``, drawn flat."""
    shape, flat = _flat(shape)
    return jax.random.bernoulli(key, p, flat).reshape(shape)
