"""Retrace checks for tests: ``with at_most_traces(n):`` fails if the electrode's forward pass is traced more than
``n`` times inside the block (``chex.assert_max_traces`` around :func:`insilico.electrode.forward`, which every
probe calls through the module, so every compiled probe that runs a model is covered)."""
import contextlib
from unittest import mock

import chex

from insilico import electrode as el


@contextlib.contextmanager
def at_most_traces(n: int = 0):
    chex.clear_trace_counter()
    with mock.patch.object(el, "forward", chex.assert_max_traces(el.forward, n=n)):
        yield


@contextlib.contextmanager
def compiled_programs(caplog):
    """``with compiled_programs(caplog) as names:`` collects the names of the programs XLA compiles inside the
    block (``jit(<name>)`` of JAX's compile log)."""
    import logging
    import re

    import jax

    names: list = []
    caplog.clear()
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        yield names
    names += [m.group(1) for r in caplog.records
              if (m := re.search(r"Finished XLA compilation of jit\((.*?)\)", r.getMessage()))]
