"""The map form of the engine under its first name: ``from insilico.sweep import run_sweep`` keeps working.
See :mod:`insilico.engine`."""
from .engine.map import initialize_distributed, run_sweep
from .engine.memory import choose_batch_size
from .engine.store import SweepError

__all__ = ["run_sweep", "choose_batch_size", "initialize_distributed", "SweepError"]
