"""The engine's fold and program forms: equal to a Python loop, chunked equals whole, resume and refusal, sharding."""
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.engine import EmptyStream, Stream, SweepError, drive, fold, map_batches, run_programs
from insilico.validation import ArgumentError


def add_moments(acc, x, scale):
    return {"n": acc["n"] + x.shape[0], "s": acc["s"] + scale * x.sum(0), "ss": acc["ss"] + (x ** 2).sum(0)}


def test_fold_equals_numpy_over_uneven_batches():
    x = np.random.default_rng(0).normal(size=(103, 4)).astype(np.float32)
    zero = {"n": jnp.int32(0), "s": jnp.zeros(4), "ss": jnp.zeros(4)}
    acc = fold(add_moments, zero, x, 2.0, batch_size=16)                   # 6 full batches and one of 7
    assert int(acc["n"]) == 103
    np.testing.assert_allclose(acc["s"], 2.0 * x.sum(0), rtol=1e-5)
    np.testing.assert_allclose(acc["ss"], (x ** 2).sum(0), rtol=1e-5)
    streamed = fold(add_moments, zero, Stream([x[:50], x[50:]]), 2.0)     # the same images as a stream
    np.testing.assert_allclose(streamed["s"], acc["s"], rtol=1e-5)


def noise_sum(acc, i, key):
    return acc + jax.random.normal(jax.random.fold_in(key, i), (8,)).sum()


def test_fold_over_batch_indices_draws_each_batch_from_its_index():
    key = jax.random.key(3)
    total = fold(noise_sum, jnp.float32(0), 5, key)
    expected = sum(float(jax.random.normal(jax.random.fold_in(key, i), (8,)).sum()) for i in range(5))
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)


def double(x, offset):
    return {"y": 2 * x + offset, "norm": jnp.linalg.norm(x, axis=-1)}


def test_map_batches_cuts_and_pads_but_keeps_every_stimulus_once():
    x = np.random.default_rng(1).normal(size=(23, 3)).astype(np.float32)
    out = map_batches(double, x, 1.0, batch_size=8)
    np.testing.assert_allclose(out["y"], 2 * x + 1, rtol=1e-6)
    np.testing.assert_allclose(out["norm"], np.linalg.norm(x, axis=-1), rtol=1e-5)
    parts = map_batches(double, Stream([x[:5], x[5:]]), 1.0, batch_size=8)   # 5, then 18 = 8 + 8 + 2 (padded)
    np.testing.assert_allclose(parts["y"], out["y"], rtol=1e-6)


def test_fold_and_map_refuse_bad_data():
    with pytest.raises(EmptyStream, match="empty Stream"):
        map_batches(double, Stream([]), 0.0)
    with pytest.raises(ArgumentError, match="leading"):
        fold(add_moments, {}, (np.zeros((3, 2)), np.zeros((4, 2))), 1.0)
    with pytest.raises(ArgumentError, match="batch_size"):
        fold(add_moments, {}, np.zeros((3, 2)), 1.0, batch_size=0)
    with pytest.raises(ArgumentError, match="iterable of batches"):
        Stream(np.zeros((3, 2)))
    uneven = {"a": np.zeros((4, 2)), "b": np.zeros((5, 2))}
    with pytest.raises(ArgumentError, match=r"leading \(stimulus\) axis; got leading axes \[4, 5\]"):
        map_batches(lambda d: d, uneven)                       # was 4 rows of b, silently
    with pytest.raises(ArgumentError, match=r"batch 1 of the Stream .* got leading axes \[2, 3\]"):
        map_batches(lambda d: d, Stream([uneven["a"][:2], {"a": np.zeros((2, 1)), "b": np.zeros((3, 1))}]))
    with pytest.raises(ArgumentError, match="a number of batches .* is for fold"):
        map_batches(lambda d: d, 3)
    with pytest.raises(ArgumentError, match="non-empty"):
        map_batches(lambda d: d, np.zeros((0, 2)))


@dataclass(frozen=True)
class Toward:
    """Each item moves a fraction ``rate`` of the way to its target per step; stops when within 1e-3."""
    steps: int
    rate: float

    def init(self, gain, target, start):
        return start, jnp.full(target.shape[:1], -1, jnp.int32)

    def step(self, state, i, gain, target, start):
        x, done = state
        moved = x + self.rate * (target - x)
        x = jnp.where((done >= 0)[:, None], x, moved)                  # a finished item stays where it is
        err = jnp.abs(x - target).max(-1)
        return (x, jnp.where((done < 0) & (err < 1e-3), i, done)), err * gain

    def done(self, state):
        return jnp.all(state[1] >= 0)

    def finish(self, state, gain, target, start):
        return {"x": state[0] * gain, "at": state[1]}


@pytest.fixture
def problem():
    target = jax.random.normal(jax.random.key(0), (37, 3)) * jnp.linspace(0.1, 10, 37)[:, None]
    return target, jnp.zeros((37, 3))


def test_programs_in_chunks_equal_one_run(problem):
    whole, trace = drive(Toward(60, 0.3), 2.0, *problem, check_every=1)
    chunked, chunk_trace = run_programs(Toward(60, 0.3), problem, (2.0,), chunk_size=8, check_every=1)
    assert chunk_trace.shape == trace.shape == (60, 37)
    np.testing.assert_array_equal(chunked["at"], np.asarray(whole["at"]))
    np.testing.assert_allclose(chunked["x"], np.asarray(whole["x"]), rtol=1e-6)
    np.testing.assert_allclose(chunk_trace, np.asarray(trace), rtol=1e-6)


def test_program_store_resumes_and_refuses_other_settings(problem, tmp_path):
    calls = []

    def stop_at_second_chunk(result, trace, start):
        calls.append(start)
        if start == 8:
            raise KeyboardInterrupt                                     # the run is killed mid-way

    with pytest.raises(KeyboardInterrupt):
        run_programs(Toward(60, 0.3), problem, (2.0,), chunk_size=8, store=tmp_path, check=stop_at_second_chunk)
    assert sorted(p.name for p in tmp_path.glob("chunk_*.nc")) == ["chunk_00000.nc"]
    calls.clear()
    resumed, _ = run_programs(Toward(60, 0.3), problem, (2.0,), chunk_size=8, store=tmp_path,
                              check=lambda r, t, s: calls.append(s))
    assert calls == [8, 16, 24, 32]                                     # chunk 0 came from the store
    fresh, _ = run_programs(Toward(60, 0.3), problem, (2.0,), chunk_size=8)
    np.testing.assert_allclose(resumed["x"], fresh["x"], rtol=1e-6)
    with pytest.raises(SweepError, match=r"rate=0\.3\).* then.*rate=0\.5\)"):
        run_programs(Toward(60, 0.5), problem, (2.0,), chunk_size=8, store=tmp_path)
    with pytest.raises(SweepError, match=r"static: \('2.0',\) then, \('3.0',\) now"):      # a static argument
        run_programs(Toward(60, 0.3), problem, (3.0,), chunk_size=8, store=tmp_path)
    run_programs(Toward(4, 0.3), problem, (jnp.float32(2.0),), chunk_size=8, store=tmp_path / "array")
    with pytest.raises(SweepError, match="shared"):                                    # an array argument
        run_programs(Toward(4, 0.3), problem, (jnp.float32(3.0),), chunk_size=8, store=tmp_path / "array")


def test_program_chunk_size_follows_memory_budget(problem):
    target, start = (jnp.tile(a, (3, 1)) for a in problem)                  # 111 items: more than one chunk
    chunks = {"small": [], "large": []}

    def count(name):
        return lambda result, trace, start: chunks[name].append(len(result["x"]))

    _, small = run_programs(Toward(4, 0.3), (target, start), (1.0,), memory_budget=2e3, check=count("small"))
    _, large = run_programs(Toward(4, 0.3), (target, start), (1.0,), memory_budget=1e9, check=count("large"))
    assert len(chunks["small"]) > 1 and chunks["large"] == [111]            # a small budget cuts the items
    assert sum(chunks["small"]) == 111
    np.testing.assert_allclose(small, large, rtol=1e-6)


def test_program_nan_is_an_error(problem):
    target, start = problem
    with pytest.raises(SweepError, match="NaN for item 5"):
        run_programs(Toward(4, 0.3), (target.at[5].set(jnp.nan), start), (1.0,), chunk_size=4)


SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, sys
    sys.path.insert(0, sys.argv[1])
    from test_engine import Toward
    from insilico.engine import drive, run_programs
    target = jax.random.normal(jax.random.key(0), (37, 3))
    start = jnp.zeros((37, 3))
    whole, _ = drive(Toward(60, 0.3), 2.0, target, start, check_every=1)
    split, _ = run_programs(Toward(60, 0.3), (target, start), (2.0,), chunk_size=9, check_every=1)
    assert len(jax.devices()) == 4
    np.testing.assert_allclose(split["x"], np.asarray(whole["x"]), rtol=1e-6)
    print("SHARDED-OK")
""")


def test_programs_split_over_4_fake_devices_equal_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", SHARDED, os.path.dirname(__file__)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0 and "SHARDED-OK" in r.stdout, r.stderr[-3000:]


@pytest.mark.parametrize("bad, match", [(dict(chunk_size=0), "chunk_size"), (dict(memory_budget=-1.0), "memory_budget"),
                                        (dict(max_chunk=0), "max_chunk"), (dict(identity=["x"]), "identity"),
                                        (dict(loop="gpu"), "loop")])
def test_run_programs_names_a_bad_argument(problem, bad, match):
    with pytest.raises(ArgumentError, match=match):
        run_programs(Toward(4, 0.3), problem, (1.0,), **bad)
