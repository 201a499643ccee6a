"""The loop driver (scan vs host, early stop), metamer losses and scales, controversial stimuli for any two scores."""
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico.probes import _loop
from insilico.probes import synthesis as syn
from insilico.validation import ArgumentError

from conftest import assert_close


@dataclass(frozen=True)
class _Count:
    steps: int

    def init(self, x):
        return x

    def step(self, state, i, x):
        return state + 1, state

    def done(self, state):
        return jnp.all(state >= 5)

    def finish(self, state, x):
        return state


def test_drive_scan_and_host_agree_and_host_stops_early():
    x = jnp.zeros(3)
    out_scan, tr_scan = _loop.drive(_Count(8), x, loop="scan")
    assert out_scan.tolist() == [8, 8, 8] and tr_scan[:, 0].tolist() == list(range(8))
    out_host, tr_host = _loop.drive(_Count(8), x, loop="host", check_every=1)
    assert out_host.tolist() == [5, 5, 5]                     # stopped once every sample was done
    assert tr_host.shape == tr_scan.shape and tr_host[:, 0].tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    with pytest.raises(ValueError, match="loop must be one of"):
        _loop.drive(_Count(2), x, loop="python")


@pytest.mark.parametrize("probe", ["pgd", "metamers", "deepfool", "controversial"])
def test_scan_and_host_loops_give_the_same_result(tiny_convnet, probe):
    x = syn.quantize(jax.random.uniform(jax.random.key(0), (4, 8, 8, 3)))
    y = jnp.asarray(el.record(tiny_convnet, x)[0].argmax(-1))
    k = jax.random.key(1)
    run = {"pgd": lambda loop: syn.pgd(tiny_convnet, x, y, 0.1, steps=6, restarts=2, key=k, loop=loop).images,
           "metamers": lambda loop: syn.metamers(tiny_convnet, "conv2", x[:2], n_seeds=2, steps=40, lr=0.02,
                                                 tol=0.0, key=k, loop=loop).images,
           "deepfool": lambda loop: syn.deepfool(tiny_convnet, x, y, max_iter=5, loop=loop).images_float,
           "controversial": lambda loop: syn.controversial(tiny_convnet, tiny_convnet, [(0, 1), (2, 3)], steps=10,
                                                           key=k, loop=loop).images}[probe]
    a, b = (np.asarray(syn.quantize(jnp.asarray(run(loop).values))) for loop in ("scan", "host"))
    assert np.abs(a - b).max() <= 1 / 255 + 1e-6 and np.mean(a == b) > 0.98        # 8-bit, up to float rounding


def test_metamer_losses(tiny_convnet):
    targets = syn.quantize(jax.random.uniform(jax.random.key(2), (1, 8, 8, 3)))
    k = jax.random.key(3)
    for loss in ("relative", "relative_per_site", "mse", "l1", "cosine"):
        m = syn.metamers(tiny_convnet, ["conv1", "conv2"], targets, steps=150, lr=0.02, tol=0.0, loss=loss, key=k)
        tr = m.error_trace.values[0, 0]
        assert m.attrs["loss"] == loss and tr[-1] < 0.5 * tr[0], loss          # every loss reduces the error
    custom = lambda reps, goals: sum(jnp.sum((r - g) ** 2) for r, g in zip(reps, goals))  # noqa: E731
    m = syn.metamers(tiny_convnet, "conv2", targets, steps=200, lr=0.02, tol=1e-2, loss=custom, key=k)
    assert m.rel_error.values[0, 0] <= 1e-2
    with pytest.raises(ValueError, match="loss must be one of"):
        syn.metamers(tiny_convnet, "conv2", targets, loss="huber", key=k)


def test_metamers_coarse_to_fine_over_scales(tiny_convnet):
    targets = syn.quantize(jax.random.uniform(jax.random.key(4), (1, 8, 8, 3)))
    start = jnp.full((1, 1, 8, 8, 3), 0.5)                       # mid-grey: no clipping in the first stage
    m = syn.metamers(tiny_convnet, "conv2", targets, steps=4, lr=0.01, tol=0.0, start=start,
                     coarse_to_fine="scales", scales=(4, 1))
    m2 = syn.metamers(tiny_convnet, "conv2", targets, steps=2, lr=0.01, tol=0.0, start=start,
                      coarse_to_fine="scales", scales=(4, 4))
    d = (m2.images.values - 0.5)[0, 0]                          # after the coarse stage only: constant 4x4 blocks
    blocks = d.reshape(2, 4, 2, 4, 3)
    assert np.abs(d).max() > 1e-3 and np.allclose(blocks, blocks.mean((1, 3), keepdims=True), atol=1e-6)
    d4 = (m.images.values - 0.5)[0, 0].reshape(2, 4, 2, 4, 3)     # the fine stage adds structure inside blocks
    assert not np.allclose(d4, d4.mean((1, 3), keepdims=True), atol=1e-4)
    with pytest.raises(ValueError, match="divide the image size"):
        syn.metamers(tiny_convnet, "conv2", targets, coarse_to_fine="scales", scales=(3,), key=jax.random.key(0))


def test_controversial_scores_between_two_units(tiny_convnet):
    ref = jax.random.uniform(jax.random.key(5), (64, 8, 8, 3))
    a = syn.ResponseScore(tiny_convnet, "fc1", 1).standardized(ref)
    b = syn.ResponseScore(tiny_convnet, "fc1", 2).standardized(ref)
    r = syn.controversial_scores(a, b, (8, 8, 3), n_seeds=2, steps=100, lr=0.1, key=jax.random.key(6))
    assert r.images.shape == (2, 2, 1, 8, 8, 3) and (r.margin.values > 1).all()
    # scores recomputed with the electrode on the returned 8-bit images
    imgs = jnp.asarray(r.images.values.reshape(-1, 8, 8, 3))
    fc1 = np.asarray(el.record(tiny_convnet, imgs, "fc1")[1]["fc1"])
    assert_close(r.score_a.values.ravel(), (fc1[:, 1] - a.mean) / a.std, rtol=1e-4, atol=1e-4)
    assert_close(r.score_b.values.ravel(), (fc1[:, 2] - b.mean) / b.std, rtol=1e-4, atol=1e-4)
    assert (r.score_a.values[0] > r.score_b.values[0]).all() and (r.score_a.values[1] < r.score_b.values[1]).all()
    with pytest.raises(el.InputError, match="constant 0 to all 64 reference images"):
        syn.ResponseScore(tiny_convnet, "fc1", 0).standardized(ref)                # a dead unit
    with pytest.raises(ArgumentError, match=r"unit \(an index into the 8 units of fc1, or None\) .* got 8"):
        syn.ResponseScore(tiny_convnet, "fc1", 8)
    with pytest.raises(el.SiteError, match="valid"):
        syn.ResponseScore(tiny_convnet, "fc9")


def _rdm(x):
    """Correlation-distance RDM (upper triangle) of patterns (n, features), differentiable."""
    from insilico.analysis import rsa

    return rsa.rdm_jax(x)[np.triu_indices(x.shape[0], 1)]


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return jnp.vdot(a, b) / jnp.sqrt(jnp.vdot(a, a) * jnp.vdot(b, b))


def test_controversial_stimulus_sets_separate_two_fits_to_a_target_rdm(tiny_convnet):
    """A set of 5 images whose conv2 RDM fits a 'brain' RDM while the fc1 RDM does not, and the reverse."""
    brain = jnp.asarray(np.random.default_rng(0).random(10), jnp.float32)

    def fit(site):
        def score(images):
            _, rec = el.forward(tiny_convnet, images, record=(site,))
            return _corr(_rdm(rec[site].reshape(images.shape[0], -1)), brain)
        score.__name__ = f"{site} RDM fit"
        return score

    r = syn.controversial_scores(fit("conv2"), fit("fc1"), (8, 8, 3), n_images=5, steps=150, lr=0.1,
                                 key=jax.random.key(7))
    assert r.attrs["score_a"] == "conv2 RDM fit" and r.images.shape == (2, 1, 5, 8, 8, 3)
    assert (r.margin.values > 0.3).all()                    # each fit > 0.3 where wanted, < -0.3 where not
    sa, sb = r.score_a.values[:, 0], r.score_b.values[:, 0]
    assert sa[0] > 0.3 > -0.3 > sb[0] and sb[1] > 0.3 > -0.3 > sa[1]


def test_controversial_scores_input_checks(tiny_convnet):
    a = syn.ResponseScore(tiny_convnet, "fc1", 0)
    with pytest.raises(el.InputError, match="return a scalar"):
        syn.controversial_scores(a, lambda im: im.mean(0), (8, 8, 3), key=jax.random.key(0))
    with pytest.raises(el.InputError, match=r"shape must be \(H, W, C\)"):
        syn.controversial_scores(a, a, (1, 8, 8, 3), key=jax.random.key(0))
    with pytest.raises(ArgumentError, match=r"scale\[1\] must be a number > 0; got 0"):
        syn.controversial_scores(a, a, (8, 8, 3), scale=(1, 0), key=jax.random.key(0))


def test_a_new_learning_rate_compiles_nothing_in_controversial_stimuli_and_mad(tiny_convnet):
    from tracing import at_most_traces

    other = tiny_convnet.replace(variables=jax.tree.map(lambda a: a * 0.8, tiny_convnet.variables), name="other")
    kw = dict(n_seeds=1, steps=3, key=jax.random.key(0), loop="host")
    slow = syn.controversial(tiny_convnet, other, [(0, 1)], lr=0.001, **kw)
    with at_most_traces(0):
        fast = syn.controversial(tiny_convnet, other, [(0, 1)], lr=0.2, **kw)
    assert not np.allclose(slow.objective.values, fast.objective.values)          # the new rate is used
    again = syn.controversial(tiny_convnet, other, [(0, 1)], lr=0.001, **kw)
    np.testing.assert_array_equal(slow.images.values, again.images.values)
    x = syn.quantize(jax.random.uniform(jax.random.key(11), (2, 8, 8, 3)) * 0.6 + 0.2)
    kw = dict(noise=0.05, steps=3, key=jax.random.key(12), loop="host")
    slow = syn.mad_competition(tiny_convnet, "conv1", tiny_convnet, "conv2", x, lr=0.001, **kw)
    with at_most_traces(0):
        fast = syn.mad_competition(tiny_convnet, "conv1", tiny_convnet, "conv2", x, lr=0.05, **kw)
    assert not np.allclose(slow.images.values, fast.images.values)


def test_rounding_keeps_off_grid_images_near_and_in_bounds(tiny_convnet):
    """Clean images off the 8-bit grid: L2 rounding moves no pixel more than half a level from the clean image
    (it moved one up to a whole level), L∞'s step back stays inside the pixel bounds (it went a float step above
    1), and ε = 0 is judged on the same image with early stopping and without."""
    x = np.asarray(jax.random.uniform(jax.random.key(0), (12, 8, 8, 3)))
    y = np.asarray(el.run(tiny_convnet, x)[0]).argmax(-1)
    k = jax.random.key(1)
    l2 = syn.pgd(tiny_convnet, x, y, 0.0, norm="l2", steps=2, key=k)
    assert np.abs(l2.images.values - x).max() * 255 <= 0.5 + 1e-3
    on_grid = np.round(x * 255) / 255
    linf = syn.pgd(tiny_convnet, on_grid.astype(np.float32), y, 0.5 / 255, norm="linf", steps=5, restarts=2, key=k)
    assert linf.images.values.max() <= 1.0 and linf.images.values.min() >= 0.0
    early = syn.accuracy_vs_eps(tiny_convnet, x, y, [0.0, 2 / 255], steps=2, key=k, early_stop=True)
    plain = syn.accuracy_vs_eps(tiny_convnet, x, y, [0.0, 2 / 255], steps=2, key=k, early_stop=False)
    assert early.accuracy.values[0] == plain.accuracy.values[0] == syn.pgd(tiny_convnet, x, y, 0.0, steps=1,
                                                                            key=k).attrs["accuracy"]
    targeted = syn.pgd(tiny_convnet, x, (y + 1) % 5, 4 / 255, steps=2, targeted=True, key=k)
    assert np.isnan(targeted.attrs["clean_accuracy"])                    # its labels are the targets


def test_metamer_losses_and_controversial_scores_are_checked(tiny_convnet):
    t = np.asarray(jax.random.uniform(jax.random.key(0), (1, 8, 8, 3)))
    k = jax.random.key(1)
    out = syn.metamers(tiny_convnet, ["fc1", "conv1"], t, loss="cosine", coarse_to_fine="sites", steps=4, key=k)
    assert np.isfinite(out.rel_error.values).all()                     # the gradient at a switched-off site is 0
    with pytest.raises(ArgumentError, match="loss must return one number"):
        syn.metamers(tiny_convnet, ["fc1"], t, loss=lambda reps, goals: reps[0] - goals[0], steps=2, key=k)
    score = syn.ResponseScore(tiny_convnet, "fc1", 1)
    with pytest.raises(el.InputError, match=r"shape \(16, 16, 3\) is not the input of score_a's subject tiny"):
        syn.controversial_scores(score, score, (16, 16, 3), steps=2, key=k)
    with pytest.raises(el.InputError, match="bounds .* leave the pixel range of score_a's subject"):
        syn.controversial_scores(score, score, (8, 8, 3), bounds=(-1.0, 2.0), steps=2, key=k)
