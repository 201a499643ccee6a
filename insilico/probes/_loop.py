"""The program driver under its first name; it lives in :mod:`insilico.engine.program`."""
from ..engine.program import LOOPS, Static, drive, filter_jit, join_static, resolve_loop, run_programs, split_static

__all__ = ["LOOPS", "Static", "drive", "filter_jit", "join_static", "resolve_loop", "run_programs", "split_static"]
