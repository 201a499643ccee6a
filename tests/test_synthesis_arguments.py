"""Bad arguments to stimulus synthesis and feature visualization, one test per class of mistake: each is refused
before anything is compiled, with an error naming the argument. And metamers are judged on the 8-bit images they
return."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico.probes import featurevis as fv
from insilico.probes import synthesis as syn
from insilico.validation import ArgumentError

K = jax.random.key(0)


@pytest.fixture(scope="module")
def s(tiny_convnet):
    """The tiny ConvNet (8x8x3 images in [0, 1], sites conv1 (4 channels), conv2 (6), fc1 (8), 5 classes)."""
    return tiny_convnet


@pytest.fixture(scope="module")
def xy(tiny_convnet):
    x = syn.quantize(jax.random.uniform(jax.random.key(1), (3, 8, 8, 3)))
    return x, jnp.asarray([0, 1, 2])


def _raises(call, s, xy, error, match):
    with pytest.raises(error, match=match):
        call(s, *xy)


# -------------------------------------------------------------------------------- ε: NaN, inf, negative, lists
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.fgsm(s, x, y, float("nan")), r"eps must be a number ≥ 0; got nan"),
    (lambda s, x, y: syn.pgd(s, x, y, -0.1, key=K), r"eps must be a number ≥ 0; got -0.1"),
    (lambda s, x, y: syn.pgd(s, x, y, float("inf"), key=K), r"eps must be .*; got inf"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0, float("nan")], key=K), r"eps_values contains 1 NaN"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0.1, -0.1], key=K), r"eps_values must be radii ≥ 0"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [], key=K), r"eps_values is empty"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, 0.1, key=K), r"eps_values must have 1 dimension"),
], ids=["fgsm-nan", "pgd-negative", "pgd-inf", "sweep-nan", "sweep-negative", "sweep-empty", "sweep-scalar"])
def test_bad_eps(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ------------------------------------------------------------------- step sizes, learning rates, scales ≤ 0 / NaN
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.pgd(s, x, y, 0.1, step_size=0.0, key=K), r"step_size must be a number > 0; got 0"),
    (lambda s, x, y: syn.pgd(s, x, y, 0.1, step_size=float("nan"), key=K), r"step_size must be .*; got nan"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, lr=-0.01, key=K), r"lr must be a number > 0; got -0.01"),
    (lambda s, x, y: syn.controversial(s, s, lr=0.0, key=K), r"lr must be a number > 0; got 0"),
    (lambda s, x, y: syn.controversial_scores(syn.ResponseScore(s, "fc1", 0), syn.ResponseScore(s, "fc1", 1),
                                              (8, 8, 3), lr=float("nan"), key=K), r"lr must be .*; got nan"),
    (lambda s, x, y: syn.controversial_scores(syn.ResponseScore(s, "fc1", 0), syn.ResponseScore(s, "fc1", 1),
                                              (8, 8, 3), scale=(1.0, float("inf")), key=K), r"scale contains 1 NaN/inf"),
    (lambda s, x, y: syn.mad_competition(s, "conv1", s, "conv2", x, lr=0, key=K), r"lr must be a number > 0"),
    (lambda s, x, y: syn.mad_competition(s, "conv1", s, "conv2", x, noise=-0.1, key=K), r"noise must be a number > 0"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, lr=0, key=K, progress=False), r"lr must be a number > 0"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, memory_budget=-1, key=K), r"memory_budget must be"),
], ids=["pgd-step0", "pgd-stepnan", "metamer-lr", "controversial-lr", "scores-lr", "scores-scale", "mad-lr",
        "mad-noise", "featurevis-lr", "featurevis-memory"])
def test_bad_step_sizes(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ------------------------------------------------------------ step counts, restarts, seeds, samples: < 1 / not int
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.pgd(s, x, y, 0.1, steps=0, key=K), r"steps must be an integer ≥ 1; got 0"),
    (lambda s, x, y: syn.pgd(s, x, y, 0.1, restarts=2.5, key=K), r"restarts must be an integer ≥ 1; got 2.5"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0.1], steps=-3, key=K), r"steps must be an integer ≥ 1"),
    (lambda s, x, y: syn.deepfool(s, x, y, max_iter=0), r"max_iter must be an integer ≥ 1; got 0"),
    (lambda s, x, y: syn.eigendistortions(s, "conv2", x, n_iter=1.5, key=K), r"n_iter must be an integer"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, n_seeds=0, key=K), r"n_seeds must be an integer ≥ 1; got 0"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, steps=True, key=K), r"steps must be an integer ≥ 1; got True"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, coarse_to_fine="scales", scales=(4, 0), key=K),
     r"scales\[1\] must be an integer ≥ 1"),
    (lambda s, x, y: syn.controversial(s, s, n_seeds=0, key=K), r"n_seeds must be an integer ≥ 1"),
    (lambda s, x, y: syn.controversial_scores(syn.ResponseScore(s, "fc1", 0), syn.ResponseScore(s, "fc1", 1),
                                              (8, 8, 3), n_images=0, key=K), r"n_images must be an integer ≥ 1"),
    (lambda s, x, y: syn.mad_competition(s, "conv1", s, "conv2", x, steps=0, key=K), r"steps must be an integer"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, steps=0, key=K), r"steps must be an integer ≥ 1"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, n_seeds=1.5, key=K), r"n_seeds must be an integer"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 0, key=K), r"units \(a number of units\) must be"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, batch_size=0, key=K), r"batch_size must be"),
    (lambda s, x, y: fv.standard_transforms(0), r"size must be an integer ≥ 1; got 0"),
    (lambda s, x, y: fv.pyramid(s, levels=0), r"levels must be an integer ≥ 1; got 0"),
], ids=["pgd-steps", "pgd-restarts", "sweep-steps", "deepfool-iter", "eigen-iter", "metamer-seeds", "metamer-bool",
        "metamer-scales", "controversial-seeds", "scores-images", "mad-steps", "featurevis-steps", "featurevis-seeds",
        "featurevis-units", "featurevis-batch", "transforms-size", "pyramid-levels"])
def test_bad_counts(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# --------------------------------------------------------- fractions, thresholds, tolerances, levels out of range
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.metamers(s, "conv2", x, tol=-1e-3, key=K), r"tol must be a number ≥ 0; got -0.001"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, tol=float("nan"), key=K), r"tol must be a number ≥ 0; got nan"),
    (lambda s, x, y: syn.deepfool(s, x, y, overshoot=-0.02), r"overshoot must be a number ≥ 0; got -0.02"),
    (lambda s, x, y: syn.quantize(x, levels=1), r"levels must be an integer ≥ 2; got 1"),
    (lambda s, x, y: syn.quantize(x, bounds=(1.0, 0.0)), r"bounds must be two numbers \(lo, hi\) with lo < hi"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, steps=4, snapshots=[2, 5], key=K),
     r"snapshots\[1\] must be an integer ≥ 0 and ≤ 4; got 5"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, relu_override_steps=-1, key=K),
     r"relu_override_steps must be an integer ≥ 0"),
    (lambda s, x, y: fv.pixel(s, sd=-0.01), r"sd must be a number ≥ 0; got -0.01"),
    (lambda s, x, y: fv.RandomScale((1.0, 0.0)), r"scales must be zoom factors > 0"),
    (lambda s, x, y: fv.l2(epsilon=-1.0), r"epsilon must be a number ≥ 0"),
    (lambda s, x, y: fv.direction("conv2", np.ones(6), cossim_pow=-1), r"cossim_pow must be a number ≥ 0"),
    (lambda s, x, y: fv.alignment("conv2", decay_ratio=0), r"decay_ratio must be a number > 0"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, param=fv.pixel((8, 8, 3), bounds=(-1, 1)), key=K),
     r"renders pixels in \(-1.0, 1.0\), outside tiny's pixel bounds"),
], ids=["metamer-tol", "metamer-tolnan", "deepfool-overshoot", "quantize-levels", "quantize-bounds",
        "featurevis-snapshot", "featurevis-override", "param-sd", "scale-zero", "l2-epsilon", "cossim", "decay",
        "param-bounds"])
def test_out_of_range_settings(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ------------------------------------------------------------------- labels: out of range, wrong length, not ints
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.fgsm(s, x, jnp.asarray([0, 1, 5]), 0.1), r"labels must be class labels: .* \[0, 5\)"),
    (lambda s, x, y: syn.pgd(s, x, jnp.asarray([0, -1, 2]), 0.1, key=K), r"labels must be class labels"),
    (lambda s, x, y: syn.deepfool(s, x, y[:2]), r"labels must hold one label per image \(3\); got 2"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, np.asarray([0.0, 1.5, 2.0]), [0.1], key=K),
     r"labels must be class labels"),
    (lambda s, x, y: syn.fgsm(s, x, y[:, None], 0.1), r"labels must have 1 dimension"),
    (lambda s, x, y: syn.controversial(s, s, [(0, 7)], key=K), r"class_pairs\[:, 1\] .* indices in \[0, 5\)"),
    (lambda s, x, y: syn.controversial(s, s, [(0.5, 1)], key=K), r"class_pairs\[:, 0\] .* must be integer"),
    (lambda s, x, y: syn.controversial(s, s, [0, 1, 2], key=K), r"class_pairs must be .* pairs, shape \(P, 2\)"),
], ids=["fgsm-high", "pgd-negative", "deepfool-length", "sweep-fraction", "fgsm-2d", "pair-high", "pair-float",
        "pair-shape"])
def test_bad_labels(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ------------------------------------------ unit indices: out of range, not integers (explicit objective indices)
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2", 10 ** 6), 1, key=K),
     r"index \(channel\) \(of 'conv2' of tiny, which has 6\) must be indices in \[0, 6\)"),
    (lambda s, x, y: fv.channel("conv2", 3.5), r"index must be an integer ≥ 0; got 3.5"),
    (lambda s, x, y: fv.channel("conv2", -1), r"index must be an integer ≥ 0; got -1"),
    (lambda s, x, y: fv.visualize(s, fv.neuron("conv2", 0, x=100), 1, key=K), r"x \(of 'conv2' .* in \[0, \d\)"),
    (lambda s, x, y: fv.visualize(s, fv.neuron("fc1", 0, y=0), 1, key=K), r"y applies to convolutional sites"),
    (lambda s, x, y: fv.visualize(s, fv.class_logit("fc1", 8) - 0.1 * fv.total_variation(), 1, key=K),
     r"index \(channel\) \(of 'fc1' of tiny, which has 8\)"),
    (lambda s, x, y: fv.visualize(s, fv.direction("conv2", np.ones(5)), 1, key=K), r"vectors must have 6 entries"),
    (lambda s, x, y: fv.visualize(s, fv.direction("conv2", np.ones((2, 6))), [0, 2], key=K),
     r"units \(rows of the 2 direction vectors\) must be indices in \[0, 2\)"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), [0, 1.5], key=K), r"units must be integer indices"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), [], key=K), r"units is empty"),
    (lambda s, x, y: fv.visualize(s, fv.channel("conv2"), [-1], key=K),
     r"units \(channels of 'conv2', which has 6\) must be indices in \[0, 6\); got \[-1\]"),
    (lambda s, x, y: syn.ResponseScore(s, "conv2", 6, channel=True), r"unit \(an index into the 6 channels of conv2"),
    (lambda s, x, y: syn.ResponseScore(s, "fc1", 2.5), r"unit \(an index into the 8 units of fc1, or None\)"),
], ids=["channel-huge", "channel-float", "channel-negative", "neuron-x", "neuron-dense-y", "logit-in-sum",
        "direction-width", "direction-rows", "units-float", "units-empty", "units-negative", "score-channel",
        "score-float"])
def test_bad_unit_indices(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ------------------------------------------------------------- unknown norms, attacks, losses, methods, loops
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: syn.pgd(s, x, y, 0.1, norm="l1", key=K), r"norm must be one of 'linf', 'l2'; got 'l1'"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0.1], attack="cw", key=K), r"attack must be one of"),
    (lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0.1], norm="L2", key=K), r"norm must be one of"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, loss="huber", key=K), r"loss must be one of .* \(or a function"),
    (lambda s, x, y: syn.metamers(s, "conv2", x, coarse_to_fine="pixels", key=K), r"coarse_to_fine must be one"),
    (lambda s, x, y: syn.fgsm(s, x, y, 0.1, loop="gpu"), r"loop must be one of 'auto', 'scan', 'host'"),
    (lambda s, x, y: syn.deepfool(s, x, y, loop="device"), r"loop must be one of"),
    (lambda s, x, y: fv.ImageParam("fft", (8, 8, 3)), r"kind \(the parameterization\) must be one of"),
    (lambda s, x, y: fv.fourier(s, output="tanh"), r"output must be one of 'sigmoid', 'clip'"),
], ids=["pgd-norm", "sweep-attack", "sweep-norm", "metamer-loss", "metamer-c2f", "fgsm-loop", "deepfool-loop",
        "param-kind", "param-output"])
def test_unknown_choices(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# ---------------------------------------------------------------------- PRNG keys missing where randomness is used
@pytest.mark.parametrize("call", [
    lambda s, x, y: syn.pgd(s, x, y, 0.1),
    lambda s, x, y: syn.pgd(s, x, y, 0.1, restarts=2),
    lambda s, x, y: syn.accuracy_vs_eps(s, x, y, [0.1]),
    lambda s, x, y: syn.eigendistortions(s, "conv2", x, key=None),
    lambda s, x, y: syn.metamers(s, "conv2", x),
    lambda s, x, y: syn.controversial(s, s, key=None),
    lambda s, x, y: syn.mad_competition(s, "conv1", s, "conv2", x, key=None),
    lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, key=None),
    lambda s, x, y: fv.visualize(s, fv.channel("conv2"), 1, key=0),
    lambda s, x, y: fv.apply_transforms(fv.standard_transforms(8), None, x[0]),
], ids=["pgd", "pgd-restarts", "sweep", "eigen", "metamers", "controversial", "mad", "featurevis", "featurevis-int",
        "transforms"])
def test_missing_keys(s, xy, call):
    _raises(call, s, xy, ArgumentError, r"key must be a PRNG key \(e.g. jax.random.key\(0\)\)")


def test_restarts_without_random_starts_are_refused(s, xy):
    """From the clean image every restart is the same attack: the result recorded restarts it did not run."""
    _raises(lambda s, x, y: syn.pgd(s, x, y, 0.1, random_start=False, restarts=3, key=jax.random.key(0)), s, xy,
            ArgumentError, r"restarts=3 needs random_start=True")


# -------------------------------------------------------- empty batches and NaN images where nothing checked them
@pytest.mark.parametrize("call,error,match", [
    (lambda s, x, y: syn.quantize(x.at[0, 0, 0, 0].set(jnp.nan)), ArgumentError, r"x contains 1 NaN/inf"),
    (lambda s, x, y: fv.color_matrix(np.full((2, 4, 4, 3), np.nan)), ArgumentError, r"images contains 96 NaN"),
    (lambda s, x, y: fv.color_matrix(np.zeros((0, 4, 4, 3))), ArgumentError, r"images is empty"),
    (lambda s, x, y: fv.color_matrix(np.zeros((4, 4, 3))), ArgumentError, r"images must have 4 dimension"),
    (lambda s, x, y: fv.pixel(s, color=np.full((3, 3), np.nan)), ArgumentError, r"color contains 9 NaN"),
], ids=["quantize-nan", "color-nan", "color-empty", "color-ndim", "param-color"])
def test_nan_and_empty_inputs(s, xy, call, error, match):
    _raises(call, s, xy, error, match)


# ----------------------------------------- NaN/inf weights, constants and standardizations of objectives and scores
@pytest.mark.parametrize("call,match", [
    (lambda s, x, y: fv.channel("conv2") * float("nan"), r"the weight of channel\(conv2\) must be a number"),
    (lambda s, x, y: fv.channel("conv2") - float("inf"), r"the number - channel\(conv2\) must be a number"),
    (lambda s, x, y: fv.channel("conv2") / 0, r"the divisor of channel\(conv2\) must be a non-zero number"),
    (lambda s, x, y: fv.l1(float("nan")), r"constant must be a number; got nan"),
    (lambda s, x, y: fv.direction("conv2", [1.0, np.nan, 0, 0, 0, 0]), r"vectors contains 1 NaN/inf"),
    (lambda s, x, y: fv.Pad(2, value=float("nan")), r"value must be a number; got nan"),
    (lambda s, x, y: syn.ResponseScore(s, "fc1", 0, mean=float("nan")), r"mean must be a number; got nan"),
    (lambda s, x, y: syn.ResponseScore(s, "fc1", 0, std=0.0), r"std must be a number > 0; got 0"),
], ids=["weight-nan", "offset-inf", "divide-zero", "l1-nan", "direction-nan", "pad-nan", "score-mean", "score-std"])
def test_non_finite_objective_terms(s, xy, call, match):
    _raises(call, s, xy, ArgumentError, match)


# -------------------------------------------------------------------------------- metamers judged on 8-bit images
def test_metamers_report_the_error_of_the_8bit_images_they_return(s):
    targets = syn.quantize(jax.random.uniform(jax.random.key(8), (2, 8, 8, 3)))
    tol = 2e-2
    m = syn.metamers(s, "conv2", targets, n_seeds=2, steps=60, lr=0.02, tol=tol, key=jax.random.key(9))
    images = m.images.values
    assert np.array_equal(images, np.asarray(syn.quantize(images)))                # the returned images are 8-bit
    _, rec = el.record(s, jnp.asarray(images.reshape(-1, 8, 8, 3)), "conv2")
    _, goal = el.record(s, targets, "conv2")
    a = np.asarray(rec["conv2"], np.float64).reshape(2, 2, -1)
    g = np.asarray(goal["conv2"], np.float64).reshape(2, 1, -1)
    err = ((a - g) ** 2).sum(-1) / (g ** 2).sum(-1)
    np.testing.assert_allclose(m.rel_error.values, err, rtol=1e-4)                # reported = recomputed
    converged = m.converged_at.values >= 0
    assert converged.any()
    assert np.array_equal(converged, m.rel_error.values <= tol)                   # converged ⇔ within tol
    assert (m.converged_at.values <= 60).all() and m.attrs["quantized"] == "8-bit"
