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

from ..validation import ArgumentError

__all__ = ["on_host", "to_device"]


def on_host() -> bool:
    """Whether the default backend's arrays live in host memory (CPU)."""
    return jax.default_backend() == "cpu"


def to_device(a, dtype=None) -> jax.Array:
    """``a`` (a NumPy array, number or nested lists of numbers) as a JAX array of ``dtype`` (default: its own,
    made canonical as ``jnp.asarray`` would: float64 becomes float32 unless x64 is enabled), transferred rather
    than staged: no compiled program for a new shape. A JAX array of that dtype is returned as it is (one of
    another dtype is converted on its device, which compiles a conversion)."""
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise ArgumentError(f"dtype must be a NumPy dtype (np.float32, 'int32', ...); got {dtype!r}") from None
    if isinstance(a, jax.Array):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    try:
        host = np.asarray(a, dtype)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"a must be an array, a number or nested lists of numbers"
                            f"{'' if dtype is None else f' convertible to {dtype}'}; got {type(a).__name__} "
                            f"{a!r:.80} ({e})") from None
    if host.dtype.kind not in "biufc":
        raise ArgumentError(f"a must be an array, a number or nested lists of numbers; got {type(a).__name__} "
                            f"{a!r:.80} (dtype {host.dtype}: not numeric)")
    return jax.device_put(host)
