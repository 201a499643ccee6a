"""XLA's persistent compilation cache, on by default: a program compiled once (a feature-visualization loop, a
lesion sweep, an attack) is read back from disk by the next process instead of being compiled again.

``import insilico`` points JAX at ``$INSILICO_CACHE/xla`` (default ``~/.cache/insilico/xla``) unless the user
chose a cache already (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) or turned it off with
``INSILICO_COMPILATION_CACHE=0``. Every program is stored, however quickly it compiled (a session's many small
programs add up: a cold session of loading a model, a feature visualization, a lesion sweep and an attack took
14.4 s the first time and 5.5 s in the next process on a 2-core CPU), and the cache is capped at :data:`MAX_BYTES`
(JAX drops the least recently used entries beyond it). Entries are keyed by JAX
itself on the program, the XLA flags, the backend and the versions, so a stale entry is never used.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["MAX_BYTES", "enable", "default_path", "path"]

MAX_BYTES = 4 * 1024 ** 3             # the cache's size cap
_OFF = ("0", "false", "no", "off")


def default_path() -> Path:
    """``$INSILICO_CACHE/xla``, or ``~/.cache/insilico/xla``."""
    return Path(os.environ.get("INSILICO_CACHE", Path.home() / ".cache" / "insilico")).expanduser() / "xla"


def path() -> str | None:
    """The directory JAX caches compiled programs in now (None: no persistent cache)."""
    if "jax" in sys.modules:
        import jax

        return getattr(jax.config, "jax_compilation_cache_dir", None)
    return os.environ.get("JAX_COMPILATION_CACHE_DIR")


def enable(directory: str | os.PathLike | None = None) -> Path:
    """Cache compiled programs in ``directory`` (default :func:`default_path`), capped at :data:`MAX_BYTES`, every
    program however quickly it compiled (unless ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` says otherwise).
    Before JAX is imported this sets the environment JAX reads at import (so ``import insilico`` stays free of
    importing JAX); after, it updates ``jax.config``."""
    target = Path(directory).expanduser() if directory is not None else default_path()
    settings = {"JAX_COMPILATION_CACHE_DIR": str(target), "JAX_COMPILATION_CACHE_MAX_SIZE": str(MAX_BYTES),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": os.environ.get(
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")}
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_compilation_cache_dir", settings["JAX_COMPILATION_CACHE_DIR"])
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(settings["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
        # JAX opens its cache once, at the first compilation: a cache opened already keeps its old directory
        # until it is reset (the next compilation opens the new one)
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()
    else:
        os.environ.update(settings)
    return target


def enable_by_default() -> None:
    """What ``import insilico`` does: :func:`enable` unless a cache is chosen already or the user said no."""
    if os.environ.get("INSILICO_COMPILATION_CACHE", "1").strip().lower() in _OFF or path():
        return
    enable()
