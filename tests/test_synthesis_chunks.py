"""Metamers, controversial stimuli, MAD competition and eigendistortions in chunks: the results of any chunking
equal the unchunked run, a run killed after its first chunk resumes from it (reusing it) to the same result,
and a rerun with a changed setting is refused naming the setting."""
import jax
import numpy as np
import pytest

from insilico.engine import program
from insilico.engine.store import SweepError
from insilico.probes import synthesis as syn
from insilico.validation import ArgumentError

K = jax.random.key(0)


class Killed(Exception):
    """Stands for the kill of a run while it computes a chunk."""


def _equal(a, b, atol=1e-6):
    """Every variable equal: integers (convergence steps) exactly, floats to float round-off."""
    assert list(a.data_vars) == list(b.data_vars)
    for name in a.data_vars:
        x, y = a[name].values, b[name].values
        if np.issubdtype(x.dtype, np.floating):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def _resumed(monkeypatch, store, run, computed: int):
    """Run ``run(store)`` killed while computing its second chunk, then again: returns the second run's result
    after checking that the first chunk was kept and reused and ``computed`` chunks were computed."""
    real, calls = program.drive, []

    def drive(*args, **kwargs):
        calls.append(1)
        if kill and len(calls) == 2:
            raise Killed
        return real(*args, **kwargs)

    kill = True
    monkeypatch.setattr(program, "drive", drive)
    with pytest.raises(Killed):
        run(store)
    first = next(store.rglob("chunk_00000.nc"))
    assert [p.name for p in first.parent.glob("chunk_*")] == ["chunk_00000.nc"]      # the finished chunk only
    written = first.stat().st_mtime_ns
    kill, calls[:] = False, []
    ds = run(store)
    assert len(calls) == computed and first.stat().st_mtime_ns == written      # chunk 0 reused, not recomputed
    return ds


@pytest.fixture(scope="module")
def targets(tiny_convnet):
    return syn.quantize(jax.random.uniform(jax.random.key(1), (5, 8, 8, 3)))


def test_metamers_in_chunks(tiny_convnet, targets, tmp_path, monkeypatch):
    run = lambda store=None, lr=0.02, **kw: syn.metamers(tiny_convnet, "conv2", targets, n_seeds=2, steps=40, lr=lr,
                                                         tol=2e-2, key=K, loop="host", store=store, **kw)
    whole = run()
    converged = whole.converged_at.values
    assert (converged >= 0).any() and len(set(converged[converged >= 0].tolist())) > 2   # samples stop apart
    _equal(run(chunk_size=2), whole)          # per-sample convergence does not depend on the chunk
    store = tmp_path / "metamers"
    _equal(_resumed(monkeypatch, store, lambda s: run(s, chunk_size=2), computed=2), whole)
    with pytest.raises(SweepError, match=r"holds another sweep: lr: 0\.02 then, 0\.03 now"):
        run(store, lr=0.03, chunk_size=2)
    _equal(run(store, lr=0.03, chunk_size=2, overwrite=True), run(lr=0.03))


def test_controversial_in_chunks(tiny_convnet, tmp_path, monkeypatch):
    other = tiny_convnet.replace(variables=jax.tree.map(lambda a: a * 0.8, tiny_convnet.variables), name="other")
    pairs = [(0, 1), (3, 2), (4, 0)]
    run = lambda store=None, b=other, **kw: syn.controversial(tiny_convnet, b, pairs, n_seeds=2, steps=8, key=K,
                                                              store=store, **kw)
    whole = run()
    store = tmp_path / "controversial"
    _equal(_resumed(monkeypatch, store, lambda s: run(s, chunk_size=4), computed=1), whole)
    weaker = other.replace(variables=jax.tree.map(lambda a: a * 0.9, other.variables))
    with pytest.raises(SweepError, match=r"holds another sweep: weights_b differs\. To run"):
        run(store, b=weaker, chunk_size=4)


def test_controversial_scores_in_chunks(tiny_convnet, tmp_path):
    a, b = syn.ResponseScore(tiny_convnet, "fc1", 1), syn.ResponseScore(tiny_convnet, "fc1", 2)
    run = lambda store=None, score_b=b, **kw: syn.controversial_scores(a, score_b, (8, 8, 3), n_seeds=3, steps=6,
                                                                       lr=0.1, key=K, store=store, **kw)
    _equal(run(chunk_size=4), run())
    store = tmp_path / "scores"
    run(store, chunk_size=4)
    with pytest.raises(SweepError, match=r"score_b: 'tiny/fc1 unit 2' then, 'tiny/fc1 unit 3' now"):
        run(store, score_b=syn.ResponseScore(tiny_convnet, "fc1", 3), chunk_size=4)


def test_mad_competition_in_chunks(tiny_convnet, targets, tmp_path, monkeypatch):
    run = lambda store=None, noise=0.05, **kw: syn.mad_competition(tiny_convnet, "conv1", tiny_convnet, "conv2",
                                                                   targets, noise=noise, steps=4, key=K,
                                                                   store=store, **kw)
    whole = run()
    store = tmp_path / "mad"
    _equal(_resumed(monkeypatch, store, lambda s: run(s, chunk_size=2), computed=2), whole, atol=1e-5)
    with pytest.raises(SweepError, match=r"noise: 0\.05 then, 0\.1 now"):
        run(store, noise=0.1, chunk_size=2)


def test_eigendistortions_in_chunks(tiny_convnet, targets, tmp_path, monkeypatch):
    run = lambda store=None, n_iter=8, **kw: syn.eigendistortions(tiny_convnet, "conv1", targets, n_iter=n_iter,
                                                                  key=K, store=store, **kw)
    whole = run()
    store = tmp_path / "eigen"
    # killed in the second chunk of the largest eigenvalue's iteration: its first chunk is reused, then its last
    # and both chunks of the least eigenvalue's iteration are computed
    _equal(_resumed(monkeypatch, store, lambda s: run(s, chunk_size=3), computed=3), whole)
    assert sorted(p.name for p in store.iterdir()) == ["max", "min"]
    with pytest.raises(SweepError, match=r"n_iter: 8 then, 9 now"):
        run(store, n_iter=9, chunk_size=3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(chunk_size=0), r"chunk_size must be an integer ≥ 1; got 0"),
    (dict(chunk_size=2.5), r"chunk_size must be an integer ≥ 1; got 2.5"),
    (dict(memory_budget=0), r"memory_budget must be a number > 0; got 0"),
    (dict(store=3), r"store must be a directory \(a str or os.PathLike path\) or None; got int 3"),
    (dict(overwrite="yes"), r"overwrite must be one of False, True; got 'yes'"),
], ids=["chunk-zero", "chunk-float", "budget", "store-int", "overwrite"])
def test_bad_chunking_arguments(tiny_convnet, targets, kwargs, match):
    calls = [lambda: syn.metamers(tiny_convnet, "conv2", targets, key=K, **kwargs),
             lambda: syn.controversial(tiny_convnet, tiny_convnet, key=K, **kwargs),
             lambda: syn.mad_competition(tiny_convnet, "conv1", tiny_convnet, "conv2", targets, key=K, **kwargs),
             lambda: syn.eigendistortions(tiny_convnet, "conv1", targets, key=K, **kwargs)]
    for call in calls:
        with pytest.raises(ArgumentError, match=match):
            call()
