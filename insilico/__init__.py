"""insilico: a differentiable in-silico electrophysiology lab on JAX/Flax."""
from .compilation import enable_by_default as _enable_compilation_cache

__version__ = "0.1.0"

_enable_compilation_cache()       # XLA's persistent cache under $INSILICO_CACHE/xla (INSILICO_COMPILATION_CACHE=0: off)
