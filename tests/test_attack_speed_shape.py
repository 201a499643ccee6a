"""Adversarial attacks as one flat batch compiled once per shape: ε values, step sizes and step counts are data
(a new list or count compiles nothing when the batch bucket is the same), the network sees every (ε, restart,
image) row in one batch (no vmap over ε or restarts), and the concurrent slices of a batch change no result."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tracing import at_most_traces

from insilico import electrode as el
from insilico.engine import shrinking
from insilico.engine.shrinking import run_shrinking
from insilico.probes import synthesis as syn
from insilico.probes.synthesis import _pgd
from insilico.validation import ArgumentError

K = jax.random.key(0)


def _batch(subject, n, seed=0):
    x = syn.quantize(jax.random.uniform(jax.random.key(seed), (n, 8, 8, 3)))
    return x, jnp.asarray(el.record(subject, x)[0].argmax(-1))       # the model is right on every clean image


def test_new_eps_list_step_size_and_steps_compile_nothing_without_early_stop(tiny_convnet):
    x, y = _batch(tiny_convnet, 3)
    kw = dict(early_stop=False, loop="host")
    syn.accuracy_vs_eps(tiny_convnet, x, y, [0.01 * i for i in range(7)], steps=2, key=K, **kw)   # 21 rows: 24
    with at_most_traces(0):                                   # 8 ε x 3 images = 24 rows: the same bucket
        syn.accuracy_vs_eps(tiny_convnet, x, y, [0.005 * i for i in range(8)], steps=5, key=K, **kw)
        syn.accuracy_vs_eps(tiny_convnet, x, y, [0.3] * 8, attack="fgsm", **kw)      # no random start: the same


def test_new_eps_list_and_steps_compile_nothing_with_early_stop(tiny_convnet):
    x, y = _batch(tiny_convnet, 12)
    # radii below half an 8-bit level: no rounded iterate leaves its clean image, so no pair stops early and
    # both sweeps run batches of 24 pairs (ε = 0 pairs are not attacked)
    syn.accuracy_vs_eps(tiny_convnet, x, y, [0.0, 1e-3, 1.5e-3], steps=2, key=K, loop="host")
    with at_most_traces(0):
        curve = syn.accuracy_vs_eps(tiny_convnet, x, y, [5e-4, 1.2e-3], steps=6, key=jax.random.key(1), loop="host")
    assert curve.attrs["early_stop"] == 1 and (curve.accuracy.values == 1).all()


@pytest.mark.parametrize("loop", ["host", "scan"])
def test_pgd_step_count_size_and_eps_are_data(tiny_convnet, loop):
    x, y = _batch(tiny_convnet, 6)
    syn.pgd(tiny_convnet, x, y, 0.05, steps=2, restarts=2, key=K, loop=loop)
    with at_most_traces(0):
        a = syn.pgd(tiny_convnet, x, y, 0.2, steps=7, step_size=0.01, restarts=2, key=K, loop=loop)
        b = syn.pgd(tiny_convnet, x, y, 0.2, steps=7, step_size=0.05, restarts=2, key=K, loop=loop)
    assert a.attrs["steps"] == 7 and not np.array_equal(a.images.values, b.images.values)   # the new size is used


def test_the_network_sees_every_row_in_one_batch(tiny_convnet, monkeypatch):
    """ε × restarts × images are one batch axis of the network's input: no vmap over ε or restarts."""
    x, y = _batch(tiny_convnet, 5)
    seen, forward = [], el.forward

    def spy(subject, images, *a, **k):
        seen.append(images.shape)
        return forward(subject, images, *a, **k)

    monkeypatch.setattr(shrinking, "default_shards", lambda: 1)
    monkeypatch.setattr(el, "forward", spy)
    _pgd._compiled_loop.cache_clear()
    shrinking._compiled.cache_clear()
    _pgd._attack(tiny_convnet, x, y, [0.01, 0.02, 0.05], 0.01, jax.random.key(3), norm="linf", steps=2, restarts=2,
                 targeted=False, rand_init=True, loop="host", buckets=True)
    _pgd._attack(tiny_convnet, x, y, [0.01, 0.02, 0.05], 0.01, jax.random.key(3), norm="linf", steps=2, restarts=2,
                 targeted=False, rand_init=True, loop="scan", buckets=True)
    assert seen and set(seen) == {(32, 8, 8, 3)}              # 3 ε x 2 restarts x 5 images = 30 rows: bucket 32


def test_a_sweep_equals_one_attack_per_eps_bit_for_bit(tiny_convnet):
    x, y = _batch(tiny_convnet, 5)
    eps = [0.02, 0.1, 0.3]
    for loop in ("host", "scan"):
        images, fooled = _pgd._attack(tiny_convnet, x, y, eps, [e / 2 for e in eps], K, norm="l2", steps=3,
                                      restarts=2, targeted=False, rand_init=True, loop=loop, buckets=True)
        for e, img, f in zip(eps, images, fooled):
            one = syn.pgd(tiny_convnet, x, y, e, norm="l2", steps=3, step_size=e / 2, restarts=2, key=K, loop=loop)
            assert np.array_equal(img, one.images.values) and np.array_equal(f, one.success.values)


@pytest.mark.parametrize("stop_early", [True, False])
def test_concurrent_slices_change_nothing(tiny_convnet, stop_early):
    x, y = _batch(tiny_convnet, 12)
    eps = np.repeat(np.float32([0.01, 0.05, 0.2]), 12)
    items = (jnp.zeros((36, 8, 8, 3)), jnp.tile(x, (3, 1, 1, 1)), jnp.tile(y, 3), jnp.asarray(eps),
             jnp.asarray(eps / 4))
    runs = [run_shrinking(_pgd._RowPGD("linf", False), items, (tiny_convnet,), steps=4, stop_early=stop_early,
                          shards=k) for k in (1, 2, 3)]
    for kept, left in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(kept, runs[0][0])) and np.array_equal(left, runs[0][1])
    assert (runs[0][1] < 4).any() == stop_early               # items left early only when stopping early


@pytest.mark.parametrize("shards", [1, 2])
def test_a_row_limit_cuts_large_batches_into_calls_and_changes_nothing(tiny_convnet, monkeypatch, shards):
    """With ``rows``, no compiled call sees more than ``rows`` items per slice; the results are those without it."""
    x, y = _batch(tiny_convnet, 12)
    eps = np.repeat(np.float32([0.01, 0.05, 0.2]), 12)
    items = (jnp.zeros((36, 8, 8, 3)), jnp.tile(x, (3, 1, 1, 1)), jnp.tile(y, 3), jnp.asarray(eps),
             jnp.asarray(eps / 4))
    whole = run_shrinking(_pgd._RowPGD("linf", False), items, (tiny_convnet,), steps=4, shards=shards, rows=None)
    seen, forward = [], el.forward

    def spy(subject, images, *a, **k):
        seen.append(images.shape[0])
        return forward(subject, images, *a, **k)

    monkeypatch.setattr(el, "forward", spy)
    shrinking._compiled.cache_clear()
    cut = run_shrinking(_pgd._RowPGD("linf", False), items, (tiny_convnet,), steps=4, shards=shards, rows=8)
    assert all(np.array_equal(a, b) for a, b in zip(cut[0], whole[0])) and np.array_equal(cut[1], whole[1])
    assert seen and max(seen) <= 8
    for n in (1, 7, 16, 17, 36, 100, 1000):                   # every item in a call; padding only in the last one
        layout = shrinking._layout(n, shards, True, 8)
        assert shrinking._total(layout) >= n and all(size <= 8 * k and size % k == 0 for size, k in layout)
        assert shrinking._total(layout[:-1]) < n and all(size == 8 * shards for size, _ in layout[:-1])
    for n in (134, 152, 190, 300, 1652):                        # above 4 grains a slice: at most a grain padded
        assert 0 <= shrinking._total(shrinking._layout(n, shards, True, 128)) - n < shrinking.GRAIN * shards
    for n, k, rows in ((33, 5, 8), (257, 5, 64), (17, 1, 20), (6, 1, 5), (520, 8, 128)):    # any cut: the cap holds
        for buckets in (True, False):
            layout = shrinking._layout(n, k, buckets, rows)
            assert shrinking._total(layout) >= n and all(size // s <= rows and size % s == 0 for size, s in layout)
    with pytest.raises(ArgumentError, match="rows must be"):
        run_shrinking(_Count(), (jnp.ones(4), jnp.ones(4)), rows=2)


class _Count:
    """Counts up by ``by`` per step; done once past ``stop``; counts its own traces."""
    traces = 0

    def __init__(self):
        self.steps = 3

    def __hash__(self):
        return 0

    def __eq__(self, other):
        return isinstance(other, _Count)

    def init(self, by, stop):
        return jnp.zeros_like(by)

    def step(self, c, i, by, stop):
        _Count.traces += 1
        return c + by, None

    def judge(self, c, by, stop):
        return c, c > stop


def test_run_shrinking_steps_are_an_argument_and_the_layout_is_checked():
    by, stop = jnp.arange(1.0, 13.0), jnp.full(12, 1000.0)
    kept, left = run_shrinking(_Count(), (by, stop), shards=1)
    assert np.array_equal(kept, 3 * np.arange(1.0, 13.0)) and (left == 3).all()
    traces = _Count.traces
    kept, left = run_shrinking(_Count(), (by * 2, stop), steps=7, shards=1)        # new values and step count
    assert _Count.traces == traces and np.array_equal(kept, 14 * np.arange(1.0, 13.0)) and (left == 7).all()
    kept, left = run_shrinking(_Count(), (by, jnp.full(12, 20.0)), steps=30, shards=1)
    assert np.array_equal(left, np.ceil(21 / np.arange(1.0, 13.0)))               # each leaves once past 20
    kept, left = run_shrinking(_Count(), (by, jnp.full(12, 20.0)), steps=5, stop_early=False, buckets=False,
                               shards=1)
    assert (left == 5).all() and np.array_equal(kept, 5 * np.arange(1.0, 13.0))    # judged only at the end
    with pytest.raises(ArgumentError, match="shards must be"):
        run_shrinking(_Count(), (by, stop), shards=0)
    with pytest.raises(ArgumentError, match="stop_early must be one of"):
        run_shrinking(_Count(), (by, stop), stop_early="yes")
    with pytest.raises(ArgumentError, match=r"steps \(of _Count\) must be"):
        run_shrinking(_Count(), (by, stop), steps=0)
    from insilico.engine.shrinking import first_call_bytes
    from insilico.engine.store import SweepError

    for run in (run_shrinking, first_call_bytes):              # the sizing checks what the run checks
        with pytest.raises(TypeError, match="items and shared must be tuples of arguments; got list"):
            run(_Count(), [by, stop])
        with pytest.raises(SweepError, match="zero items"):
            run(_Count(), (by[:0], stop[:0]))
        with pytest.raises(SweepError, match="same leading"):
            run(_Count(), (by, stop[:5]))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="host-side bookkeeping is the CPU form")
def test_a_first_attack_compiles_only_its_own_programs(tiny_convnet, caplog):
    """Rows are tiled, gathered, sliced and joined on the host (NumPy on CPU): a first PGD, FGSM and ε sweep
    compile only their own programs — random starts, the rows' init, step and judge (``<lambda>``), predictions."""
    from tracing import compiled_programs

    x, y = _batch(tiny_convnet, 11, seed=7)                    # shapes no other test uses
    x, y = np.asarray(x), np.asarray(y)
    with compiled_programs(caplog) as names:
        syn.pgd(tiny_convnet, x, y, 0.05, steps=3, key=K)
    assert set(names) == {"_unit_starts", "<lambda>", "_predict"}, names
    with compiled_programs(caplog) as names:
        syn.fgsm(tiny_convnet, x[:10], y[:10], 0.05)
        syn.pgd(tiny_convnet, x[:9], y[:9], 0.05, steps=2, random_start=False)
    assert set(names) == {"<lambda>", "_predict"}, names
    with compiled_programs(caplog) as names:
        syn.accuracy_vs_eps(tiny_convnet, x, y, [0.0, 0.02, 0.1], steps=3, key=K)
    assert set(names) <= {"<lambda>", "_unit_starts"} and "<lambda>" in names, names
