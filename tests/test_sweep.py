"""The sweep engine: equals a loop, bounded batches, sharding over fake devices, resume after a kill."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.sweep import SweepError, choose_batch_size, run_sweep


def metric(item, shared):
    w, b = item
    return {"score": jnp.tanh(shared @ w + b).sum(), "vec": jnp.sin(w * b)}


@pytest.fixture
def items():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return jax.random.normal(k1, (37, 5)), jax.random.normal(k2, (37,))


def test_equals_python_loop(items):
    shared = jnp.arange(15.0).reshape(3, 5) / 10
    ds = run_sweep(metric, items, shared, dim="lesion", batch_size=4, chunk_size=8, progress=False)
    assert ds.score.dims == ("lesion",) and ds.vec.dims == ("lesion", "vec_1") and ds.sizes["lesion"] == 37
    for i in range(37):
        ref = metric((items[0][i], items[1][i]), shared)
        np.testing.assert_allclose(ds.score.values[i], ref["score"], rtol=1e-5)
        np.testing.assert_allclose(ds.vec.values[i], ref["vec"], rtol=1e-5)
    assert ds.attrs["n_chunks"] == 5


def test_batch_size_follows_memory_budget():
    def big(e, x):
        return {"m": jnp.sort((jnp.outer(x, x) * e).ravel())[7]}       # materializes a 4 MB matrix per item

    budgets = (1e7, 1e8, 1e9)
    sizes = [choose_batch_size(big, jnp.ones(4), jnp.ones(1000), budget_bytes=b) for b in budgets]
    assert sizes[0] < sizes[1] < sizes[2]
    for b, size in zip(budgets, sizes):                    # B items of 4 MB each (+ sort workspace) fit
        assert size == 1 or size * 4e6 <= b


def test_bad_sweeps(items, tmp_path):
    with pytest.raises(SweepError, match="empty sweep"):
        run_sweep(metric, (jnp.zeros((0, 5)), jnp.zeros((0,))), jnp.ones((3, 5)), progress=False)
    with pytest.raises(SweepError, match="same leading"):
        run_sweep(metric, (jnp.zeros((4, 5)), jnp.zeros((3,))), jnp.ones((3, 5)), progress=False)
    nan_at_5 = (items[0], items[1].at[5].set(jnp.nan))
    with pytest.raises(SweepError, match="metric 'score' is NaN for item 5"):
        run_sweep(metric, nan_at_5, jnp.ones((3, 5)), batch_size=4, progress=False)
    run_sweep(metric, items, jnp.ones((3, 5)), store=tmp_path, batch_size=4, progress=False)
    with pytest.raises(SweepError, match="holds another sweep"):
        run_sweep(metric, (items[0] + 1, items[1]), jnp.ones((3, 5)), store=tmp_path, batch_size=4, progress=False)


SLEEP = 0.0                       # seconds per item; the killed run sleeps, the resumed one does not


def squares(i, shared):
    if SLEEP:
        jax.debug.callback(lambda v: time.sleep(SLEEP), i)
    return {"sq": (i * shared) ** 2}


SLOW = textwrap.dedent("""
    import importlib, sys
    sys.path.insert(0, sys.argv[2])
    import jax.numpy as jnp
    from insilico.sweep import run_sweep
    tests = importlib.import_module(sys.argv[3])
    tests.SLEEP = 0.15
    run_sweep(tests.squares, jnp.arange(40.0), jnp.float32(3.0), batch_size=1, chunk_size=4, store=sys.argv[1],
              progress=False)
""")


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    """The same sweep (same function, items and shared values) killed part-way resumes from its chunks."""
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", SLOW, str(store), os.path.dirname(__file__), squares.__module__])
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store.glob("chunk_*.nc"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(store.glob("chunk_*.nc")))
    assert 3 <= done < 10, "the sweep must be killed part-way"
    ds = run_sweep(squares, jnp.arange(40.0), jnp.float32(3.0), batch_size=1, chunk_size=4, store=store,
                   progress=False)
    assert ds.attrs["resumed_chunks"] == done
    np.testing.assert_allclose(ds.sq.values, (np.arange(40.0) * 3) ** 2)
    assert len(list(store.glob("chunk_*.nc"))) == 10 and not list(store.glob("*.tmp"))


SHARDED = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    assert len(jax.devices()) == 8, jax.devices()
    from insilico.sweep import run_sweep
    from insilico import electrode as el
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject
    def metric(item, shared):
        w, b = item
        return {"score": jnp.tanh(shared @ w + b).sum()}
    items = (jax.random.normal(jax.random.PRNGKey(0), (37, 5)), jnp.linspace(-1, 1, 37))
    shared = jnp.ones((3, 5))
    one = run_sweep(metric, items, shared, batch_size=2, devices=jax.devices()[:1], progress=False)
    eight = run_sweep(metric, items, shared, batch_size=2, progress=False)
    assert eight.attrs["devices"] == 8
    np.testing.assert_allclose(one.score.values, eight.score.values, rtol=1e-6)
    m = ConvNet(widths=(4, 6), kernels=3, fc=(8,), num_classes=5)
    s = make_subject("t", m, m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3))), InputSpec((8, 8, 3)))
    x = jax.random.uniform(jax.random.PRNGKey(1), (16, 8, 8, 3))
    def lesion(edit, x):
        return {"out": el.run(s, x, {"conv2": edit})[0].mean(0)}
    a = run_sweep(lesion, el.unit_edits(6), x, batch_size=1, devices=jax.devices()[:1], progress=False)
    b = run_sweep(lesion, el.unit_edits(6), x, batch_size=1, progress=False)
    np.testing.assert_allclose(a.out.values, b.out.values, rtol=1e-5, atol=1e-6)
    print("SHARDED-OK")
""")


def test_sharded_over_8_fake_devices_equals_single_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "SHARDED-OK" in r.stdout, r.stderr[-3000:]


MULTIPROCESS = textwrap.dedent("""
    import sys, json
    from insilico.sweep import initialize_distributed, run_sweep
    initialize_distributed(sys.argv[1], 2, int(sys.argv[2]))
    import jax, jax.numpy as jnp
    def metric(item, shared):
        w, b = item
        return {"score": jnp.tanh(shared @ w + b).sum()}
    items = (jax.random.normal(jax.random.PRNGKey(0), (37, 5)), jnp.linspace(-1, 1, 37))
    ds = run_sweep(metric, items, jnp.ones((3, 5)), batch_size=2, chunk_size=8, store=sys.argv[3], progress=False)
    print("RESULT", json.dumps({"devices": ds.attrs["devices"], "score": ds.score.values.tolist()}))
""")


def test_two_processes_through_jax_distributed(tmp_path):
    import json
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, "-c", MULTIPROCESS, f"127.0.0.1:{port}", str(i), str(tmp_path / "s")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    results = []
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.split("RESULT", 1)[1]))
    items = (jax.random.normal(jax.random.PRNGKey(0), (37, 5)), jnp.linspace(-1, 1, 37))
    single = run_sweep(metric, items, jnp.ones((3, 5)), batch_size=2, progress=False)
    for r in results:
        assert r["devices"] == 2
        np.testing.assert_allclose(r["score"], single.score.values, rtol=1e-5)
    assert len(list((tmp_path / "s").glob("chunk_*.nc"))) == 5          # 37 items in chunks of 2 x 2 x 2


def test_a_store_refuses_another_model_with_the_same_weights_and_other_settings_objects(tmp_path):
    """The static part of ``shared`` (a subject's model and sites) and the settings objects a function holds are
    part of the fingerprint: the same weights under average pooling, a callable of another weight, an edited body
    are refused, never resumed."""
    from dataclasses import dataclass

    from insilico import electrode as el
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    model = ConvNet(widths=(4,), fc=(6,), num_classes=3)
    v = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    max_pool = make_subject("c", model, v, InputSpec((8, 8, 3)))
    avg_pool = make_subject("c", model.clone(pools="avg"), v, InputSpec((8, 8, 3)))
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 8, 8, 3))

    def logit(i, s):
        return {"logit": el.forward(s, x)[0][:, i].sum()}
    store = tmp_path / "s"
    first = run_sweep(logit, jnp.arange(3), max_pool, store=store, progress=False)
    again = run_sweep(logit, jnp.arange(3), max_pool, store=store, progress=False)
    assert again.attrs["resumed_chunks"] == 1 and np.array_equal(first.logit.values, again.logit.values)
    with pytest.raises(SweepError, match="the static part of shared differs"):
        run_sweep(logit, jnp.arange(3), avg_pool, store=store, progress=False)

    @dataclass(frozen=True)
    class Gain:
        g: float

        def __call__(self, i, s):
            return {"y": self.g * i}
    run_sweep(Gain(1.0), jnp.arange(3.0), None, store=tmp_path / "g", progress=False)
    with pytest.raises(SweepError, match="function"):
        run_sweep(Gain(2.0), jnp.arange(3.0), None, store=tmp_path / "g", progress=False)

    def f(i, s):
        return {"y": i + 1}
    run_sweep(f, jnp.arange(3.0), None, store=tmp_path / "f", progress=False)

    def f(i, s):                                                                   # the same name, edited
        return {"y": i + 2}
    with pytest.raises(SweepError, match="the function's code differs"):
        run_sweep(f, jnp.arange(3.0), None, store=tmp_path / "f", progress=False)


def test_batch_sizes_count_the_items_themselves():
    """A 4 MB item costs 4 MB a batch slot however little ``fn`` computes from it."""
    items = jnp.zeros((4, 1000, 1000))
    for compile in (True, False):
        b = choose_batch_size(lambda it, sh: jnp.sum(it), items, None, budget_bytes=100e6, max_batch=100000,
                              compile=compile)
        assert 1 <= b <= 25, b
