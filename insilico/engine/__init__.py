"""The engine: one way to run many things through one compiled function, in three forms on one chunk loop.

- **map** (:func:`run_sweep`): ``fn(item, shared)`` for every item (edits, units, seeds, ε), vmapped in batches
  a memory budget sets, sharded over devices and hosts, streamed to a resumable store.
- **fold** (:func:`fold`, :func:`map_batches`): stimuli streamed in batches through one compiled step, reduced on
  the fly (means, Gram blocks, STA/STC, running top-k) or gathered batch by batch (recordings).
- **program** (:func:`drive`, :func:`run_programs`): iterative optimization as init / step / finish with per-item
  convergence — ``lax.scan`` on accelerators, a host loop over one compiled step on CPU — over many items in
  memory-bounded, resumable chunks; :func:`run_shrinking` when finished items should stop costing anything
  (their batch shrinks into bucket-sized batches as they leave).

Probes use these and write no batch loops of their own. The engine knows nothing of models: it depends only on
:mod:`insilico.validation`.
"""
from .chunks import run_chunks
from .fold import EmptyStream, Stream, fold, map_batches
from .host import on_host, to_device
from .map import initialize_distributed, run_sweep
from .memory import choose_batch_size
from .program import LOOPS, drive, filter_jit, join_static, resolve_loop, run_programs, split_static
from .shrinking import run_shrinking
from .store import SweepError

__all__ = ["run_sweep", "fold", "map_batches", "Stream", "EmptyStream", "drive", "run_programs", "run_chunks",
           "run_shrinking", "choose_batch_size", "initialize_distributed", "filter_jit", "split_static",
           "join_static", "resolve_loop", "LOOPS", "SweepError", "on_host", "to_device"]
