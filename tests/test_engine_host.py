"""Host-side bookkeeping compiles nothing: ``engine.to_device`` transfers instead of staging, and the shrinking
host loop's gathers, slices and joins run in NumPy on CPU, so a first run compiles only the program's own
functions."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tracing import compiled_programs

from insilico.engine import on_host, run_shrinking, to_device
from insilico.validation import ArgumentError

BOOKKEEPING = {"stage", "convert_element_type", "_take", "take", "dynamic_slice", "concatenate", "tile", "reshape"}
# the host loops move batches in NumPy on CPU only: on an accelerator they gather on the device (and compile that)
cpu_only = pytest.mark.skipif(not on_host(), reason="host-side bookkeeping is the CPU form")


def test_to_device_transfers_without_compiling(caplog):
    with compiled_programs(caplog) as names:
        a = to_device(np.arange(37 * 3, dtype=np.float64).reshape(37, 3))
        b = to_device([[1, 2, 3]] * 41)
        c = to_device(2.5, np.float32)
        d = to_device(np.int64(7))
    assert names == []
    assert isinstance(a, jax.Array) and a.dtype == jnp.float32 and a.shape == (37, 3)
    np.testing.assert_array_equal(a, np.arange(37 * 3).reshape(37, 3))
    assert b.dtype == jnp.int32 and b.shape == (41, 3) and c.dtype == jnp.float32 and float(c) == 2.5
    assert d.dtype == jnp.int32 and int(d) == 7
    e = jnp.ones(3)
    assert to_device(e) is e and to_device(e, np.int32).dtype == jnp.int32
    with pytest.raises(ArgumentError, match=r"a must be an array, a number or nested lists of numbers; got list"):
        to_device([[1, 2], [3]])
    with pytest.raises(ArgumentError, match=r"got str 'abc' \(dtype <U3: not numeric\)"):
        to_device("abc")
    with pytest.raises(ArgumentError, match=r"dtype must be a NumPy dtype .*; got 'nope'"):
        to_device([1], dtype="nope")


@dataclass(frozen=True)
class _Count:
    """Items count up by one a step and leave once they reach their goal."""
    steps: int = 9

    def init(self, goal):
        return jnp.zeros_like(goal)

    def step(self, state, i, goal):
        return state + 1, None

    def judge(self, state, goal):
        return state, state >= goal


@cpu_only
@pytest.mark.parametrize("shards", [1, 2])
def test_a_first_shrinking_run_compiles_only_the_programs_functions(caplog, shards):
    goal = np.arange(53, dtype=np.float32) % 7            # items leave after 0..6 steps: batches of many sizes
    with compiled_programs(caplog) as names:
        kept, left_at = run_shrinking(_Count(), (goal,), shards=shards, rows=8)
    np.testing.assert_array_equal(kept, goal)
    np.testing.assert_array_equal(left_at, goal.astype(np.int32))
    assert names and not BOOKKEEPING & set(names), names
    assert set(names) <= {"<lambda>"}                     # init, step and judge at each batch shape


@cpu_only
def test_a_first_lesion_sweep_and_visualization_compile_no_bookkeeping(tiny_convnet, caplog):
    """Images checked, padded and labelled on the host, the intact model's metrics in NumPy: a first sweep compiles
    the forward pass to the site, the lesions' shared values and the per-lesion body, nothing else; a first
    visualization its init, step and judge."""
    import jax

    from insilico.probes import featurevis as fv
    from insilico.probes import lesion

    x = np.asarray(jax.random.uniform(jax.random.key(9), (13, 8, 8, 3)))          # shapes no other test uses
    y = np.arange(13) % 5
    with compiled_programs(caplog) as names:
        ds = lesion.single_unit_sweep(tiny_convnet, x, "conv2", labels=y, progress=False)
    assert ds.sizes["unit"] == 6
    assert set(names) == {"_run", "fn", "body"}, names      # to the site; the lesions' shared values; per lesion
    with compiled_programs(caplog) as names:
        fv.visualize(tiny_convnet, fv.channel("conv1"), units=3, steps=2, key=jax.random.key(1), progress=False)
    assert names and set(names) <= {"<lambda>"}, names
