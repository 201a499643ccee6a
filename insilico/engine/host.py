"""Moving arrays between the host and the device without compiling.

Outside a compiled function, ``jnp.asarray`` of a NumPy array or a Python number, ``jnp.int32(i)`` and every
``jnp`` gather, slice or concatenation compile a small program for each new shape and dtype (0.01–0.05 s each on
CPU): a probe's first call paid a dozen of them. :func:`to_device` transfers instead (``jax.device_put``, no
program), and :func:`on_host` says when the engine's host loops may move their batches in NumPy: on CPU, where a
device array is host memory and ``np.asarray`` of it copies nothing.
"""
from __future__ import annotations

import jax
import numpy as np

__all__ = ["on_host", "to_device"]


def on_host() -> bool:
    """Whether the default backend's arrays live in host memory (CPU)."""
    return jax.default_backend() == "cpu"


def to_device(a, dtype=None) -> jax.Array:
    """``a`` (array, NumPy array, number or nested lists) as a JAX array of ``dtype`` (default: its own, made
    canonical as ``jnp.asarray`` would: float64 becomes float32 unless x64 is enabled), transferred rather than
    staged: no compiled program for a new shape. A JAX array of the right dtype is returned as it is."""
    if isinstance(a, jax.Array):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return jax.device_put(np.asarray(a, dtype))
