"""Bad arguments to the electrode and the probes are refused before anything is computed, with an error that names
the argument, the bad value and what is valid. One parametrized test per class of mistake."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from insilico import electrode as el
from insilico.probes import _loop, brain, importance, rf
from insilico.validation import ArgumentError, InputError
from tracing import at_most_traces

NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def x(tiny_convnet):
    """Six 8x8x3 images in the subject's bounds [0, 1] (conv1: 4 channels, conv2: 6, fc1: 8; 5 classes)."""
    return jax.random.uniform(jax.random.PRNGKey(2), (6, 8, 8, 3))


def _raises(error, match, call):
    with at_most_traces(0), pytest.raises(error, match=match):     # caught before anything is traced
        call()


# ---- edits -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: el.lesion(7), r"mask must be a mask with values in \[0, 1\]; got values in \[7, 7\].*unit index"),
    (lambda: el.lesion(jnp.full(4, -0.5)), r"mask must be a mask with values in \[0, 1\]"),
    (lambda: el.lesion(jnp.ones(4).at[1].set(NAN)), r"mask contains 1 NaN/inf"),
    (lambda: el.mean_ablation(jnp.ones(4) * 2, 0.0), r"mask must be a mask"),
    (lambda: el.mean_ablation(jnp.ones(4), jnp.zeros(4).at[2].set(INF)), r"mean contains 1 NaN/inf .* \(2,\)"),
    (lambda: el.clamp(jnp.eye(4)[0], NAN), r"value contains 1 NaN/inf"),
    (lambda: el.clamp(jnp.arange(4.0), 1.0), r"mask must be a mask with values in \[0, 1\]; got values in \[0, 3\]"),
    (lambda: el.gain(INF), r"g contains 1 NaN/inf"),
    (lambda: el.gain(1.0, bias=NAN), r"bias contains 1 NaN/inf"),
    (lambda: el.noise(NAN), r"std contains 1 NaN/inf"),
    (lambda: el.noise(jnp.array([0.1, -0.2])), r"std must be a number ≥ 0; got -0.2 \(index \(1,\)"),
    (lambda: el.unit_edits(0), r"n_units must be an integer ≥ 1; got 0"),
    (lambda: el.unit_edits(2.5), r"n_units must be an integer"),
    (lambda: el.unit_edits(4, "silence"), r"kind must be one of 'lesion', 'clamp'; got 'silence'"),
    (lambda: el.unit_edits(4, "clamp", NAN), r"value contains 1 NaN/inf"),
    (lambda: el.unit_edits(4, "clamp", jnp.ones(3)), r"value must be a scalar or one value per unit \(4,\)"),
    (lambda: el.unit_edits(4, "lesion", 2.0), r"value is for kind='clamp' \(a lesion clamps to 0\)"),
])
def test_edit_values_are_checked(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


@pytest.mark.parametrize("field, value, match", [
    ("clamp_mask", jnp.full(4, 7.0), r"clamp_mask of the edit for 'conv1' must be a mask with values in \[0, 1\]"),
    ("gain", jnp.ones(4).at[0].set(NAN), r"gain of the edit for 'conv1' contains 1 NaN/inf"),
    ("bias", jnp.full(4, INF), r"bias of the edit for 'conv1' contains 4 NaN/inf"),
    ("clamp_value", jnp.full(4, NAN), r"clamp_value of the edit for 'conv1' contains"),
    ("noise_std", jnp.full(4, -1.0), r"noise_std of the edit for 'conv1' must be a number ≥ 0; got -1.0"),
])
def test_edits_handed_to_run_are_checked(tiny_convnet, x, field, value, match):
    """An Edit built by hand (not by a constructor) is checked by run and validate."""
    edit = el.Edit(**{**{f: jnp.zeros(4) for f in ("clamp_mask", "clamp_value", "bias", "noise_std")},
                      "gain": jnp.ones(4), field: value})
    _raises(ArgumentError, match, lambda: el.run(tiny_convnet, x, {"conv1": edit}))
    with pytest.raises(ArgumentError, match=match):
        el.validate(tiny_convnet, edits={"conv1": edit})


def test_edit_constructors_still_trace_under_vmap_and_jit(tiny_convnet, x):
    """The value checks pass traced values through: constructors work inside jit and vmap."""
    masks = jnp.eye(4)
    lesions = jax.vmap(el.lesion)(masks)
    assert lesions.shape == (4, 4)
    made = jax.jit(jax.vmap(lambda m, v, s, g: (el.clamp(m, v), el.mean_ablation(m, v), el.noise(s * m),
                                                 el.gain(g, bias=v))))(masks, jnp.arange(4.0), jnp.ones(4),
                                                                       jnp.ones((4, 4)))
    assert [e.shape for e in made] == [(4, 4)] * 4
    out = jax.jit(jax.vmap(lambda m: el.run(tiny_convnet, x, {"conv1": el.lesion(m)})[0]))(masks)
    assert out.shape == (4, 6, 5)
    edits = jax.jit(lambda v: el.unit_edits(4, "clamp", v))(jnp.float32(2.0))
    assert float(edits.clamp_value[0, 0]) == 2.0
    # recording under grad (images traced, values not inspected) still works: no bounds check on tracers
    assert jax.grad(lambda im: el.record(tiny_convnet, im, "fc1")[1]["fc1"].sum())(x).shape == x.shape


# ---- images ------------------------------------------------------------------------------------------------------
def _nan(x):
    return jnp.asarray(x).at[1, 2, 3, 0].set(NAN)


IMAGE_CALLS = {
    "record": lambda s, x: el.record(s, x),
    "run": lambda s, x: el.run(s, x, {"conv1": el.gain(jnp.ones(4))}, record="fc1"),
    "sample": lambda s, x: el.sample(s, x, "fc1", n_samples=2, key=KEY),
    "site_means": lambda s, x: el.site_means(s, x, "conv2", batch_size=2),
    "record_sites": lambda s, x: brain.record_sites(s, x, ["fc1"]),
    "rsa_by_site": lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((len(x), len(x)))}, sites=["fc1"]),
    "taylor_importance": lambda s, x: importance.taylor_importance(s, x, "conv1", np.zeros(len(x), int)),
    "input_gradients": lambda s, x: rf.input_gradients(s, "conv1", x),
    "exemplars": lambda s, x: rf.exemplars(s, "conv1", x, progress=False),
    "receptive_field_size": lambda s, x: rf.receptive_field_size(s, "conv1", x),
}


@pytest.mark.parametrize("bad, match", [
    (lambda x: x * 255, r"must lie in tiny's pixel bounds \[0.0, 1.0\]; got values in \[.*, 25\d"),
    (lambda x: x - 0.5, r"must lie in tiny's pixel bounds \[0.0, 1.0\]; got values in \[-0.4"),
    (lambda x: x[:0], r"is an empty batch \(0 images\)"),
    (_nan, r"contains 1 NaN/inf value\(s\), the first at index \(1, 2, 3, 0\)"),
], ids=["0-255", "centred", "empty", "nan"])
@pytest.mark.parametrize("call", list(IMAGE_CALLS.values()), ids=list(IMAGE_CALLS))
def test_bad_images_are_refused(tiny_convnet, x, call, bad, match):
    _raises(InputError, match, lambda: call(tiny_convnet, bad(x)))


def test_images_at_the_bounds_are_accepted(tiny_convnet, x):
    edge = jnp.asarray(x).at[0].set(0.0).at[1].set(1.0)
    assert el.record(tiny_convnet, edge)[0].shape == (6, 5)


# ---- counts --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda s, x: el.sample(s, x, n_samples=0, key=KEY), r"n_samples must be an integer ≥ 1; got 0"),
    (lambda s, x: el.sample(s, x, n_samples=2.5, key=KEY), r"n_samples must be an integer ≥ 1; got 2.5"),
    (lambda s, x: el.site_means(s, x, "fc1", batch_size=0), r"batch_size must be an integer ≥ 1; got 0"),
    (lambda s, x: brain.record_sites(s, x, batch_size=-1), r"batch_size must be an integer ≥ 1; got -1"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((6, 6))}, n_boot=-5), r"n_boot must be an integer ≥ 0"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((6, 2))}, n_splits=0, key=KEY),
     r"n_splits must be an integer ≥ 1; got 0"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((6, 2))}, max_units=0, key=KEY),
     r"max_units must be an integer ≥ 1; got 0"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 0, key=KEY, progress=False), r"n_images must be .* ≥ 1"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 64, key=KEY, batch_size=0), r"batch_size must be .* ≥ 1"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 64, key=KEY, stc=True, window=99), r"window must be .* ≤ 8"),
    (lambda s, x: rf.receptive_field_size(s, "conv1", key=KEY, n_images=0), r"n_images must be .* ≥ 1; got 0"),
    (lambda s, x: rf.exemplars(s, "conv1", x, k=0), r"k must be an integer ≥ 1; got 0"),
    (lambda s, x: rf.exemplars(s, "conv1", x, batch_size=0), r"batch_size must be an integer ≥ 1; got 0"),
    (lambda s, x: rf.grating_tuning(s, "conv1", batch_size=0), r"batch_size must be an integer ≥ 1; got 0"),
    (lambda s, x: rf.grating_tuning(s, "conv1", sfs=(0.1, 0.7)), r"cycles/pixel up to 0.5 \(Nyquist\); got \[0.7\]"),
    (lambda s, x: importance.random_orders(KEY, 0, 4), r"n_orders must be an integer ≥ 1; got 0"),
    (lambda s, x: importance.random_orders(KEY, 2, 1.5), r"n_units must be an integer ≥ 1; got 1.5"),
])
def test_counts_below_one_are_refused(tiny_convnet, x, call, match):
    _raises(ArgumentError, match, lambda: call(tiny_convnet, x))


class _Program:
    """A do-nothing iterative program for the driver."""

    def __init__(self, steps):
        self.steps = steps

    def __hash__(self):
        return hash(self.steps)

    init = staticmethod(lambda a: a)
    step = staticmethod(lambda s, i, a: (s, None))
    finish = staticmethod(lambda s, a: s)


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, r"steps \(of _Program\) must be an integer ≥ 1; got 0"),
    ({"steps": NAN}, r"steps \(of _Program\) must be an integer"),
    ({"check_every": 0}, r"check_every must be an integer ≥ 1; got 0"),
    ({"loop": "gpu"}, r"loop must be one of 'auto', 'scan', 'host'; got 'gpu'"),
])
def test_driver_settings_are_checked(kwargs, match):
    steps = kwargs.pop("steps", 3)
    with pytest.raises(ArgumentError, match=match):
        _loop.drive(_Program(steps), jnp.zeros(2), **kwargs)


# ---- numbers: fractions, thresholds, scales ---------------------------------------------------------------------
def _tuning():
    return xr.DataArray(np.ones((2, 3, 2, 4)), dims=("unit", "orientation", "sf", "phase"),
                        coords={"orientation": [0.0, 60.0, 120.0], "sf": [0.1, 0.2], "phase": [0, 90, 180, 270]})


@pytest.mark.parametrize("call, match", [
    (lambda s, x: rf.receptive_field_size(s, "conv1", x, mass=NAN),
     r"mass must be a number > 0.0 and ≤ 1.0; got nan"),
    (lambda s, x: rf.receptive_field_size(s, "conv1", x, mass=1.5),
     r"mass must be a number > 0.0 and ≤ 1.0; got 1.5"),
    (lambda s, x: rf.tuning_summary(_tuning(), level=NAN), r"level must be a number > 0.0 and < 1.0; got nan"),
    (lambda s, x: rf.tuning_summary(_tuning(), level=1.0), r"level must be a number > 0.0 and < 1.0; got 1.0"),
    (lambda s, x: rf.tuning_summary(np.ones((2, 3))), r"tuning must be one site's DataArray from grating_tuning"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 64, key=KEY, std=NAN), r"std must be a number > 0; got nan"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 64, key=KEY, std=-0.1), r"std must be a number > 0; got -0.1"),
    (lambda s, x: rf.grating_tuning(s, "conv1", contrast=2.0),
     r"contrast must be a number ≥ 0.0 and ≤ 1.0; got 2.0"),
    (lambda s, x: rf.grating_tuning(s, "conv1", sfs=(0.1, 0.0)),
     r"each of sfs \(cycles/pixel\) must be a number > 0; got 0.0"),
    (lambda s, x: rf.grating_tuning(s, "conv1", orientations=(0, NAN)), r"orientations contains 1 NaN/inf"),
    (lambda s, x: importance.order_by(jnp.array([1.0, NAN])), r"scores contains 1 NaN/inf"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.full((6, 2), NAN)}, key=KEY), r"region 'r' contains 12"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.full((6, 6), INF)}), r"region 'r' contains 36 NaN/inf"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((6, 6))}, method="pearson"),
     r"method must be one of 'corr', .*; got 'pearson'"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((2, 6, 6))}, method="corr_cov"),
     r"method \(for noise ceilings .*\) must be one of 'corr'"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((6, 6))}, rdm_method="pearson"),
     r"rdm_method must be one of 'correlation'"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((6, 2))}, method="lasso", key=KEY),
     r"method must be one of 'ridge', 'pls'; got 'lasso'"),
    (lambda s, x: el.site_means(s, x, "fc1", over="channels"), r"over must be one of 'images', 'space'"),
])
def test_numbers_and_choices_out_of_range_are_refused(tiny_convnet, x, call, match):
    _raises(ArgumentError, match, lambda: call(tiny_convnet, x))


# ---- unit indices ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("units, match", [
    ([10 ** 6], r"units \(of 'conv1', 4 units\) must be indices in \[0, 4\); got \[1000000\] out of range"),
    ([-1, 2], r"must be indices in \[0, 4\); got \[-1\] out of range"),
    ([1.5], r"must be integer indices in \[0, 4\); got 1.5 at position 0, not an integer"),
    ([], r"units \(of 'conv1', 4 units\) is empty"),
    ([NAN], r"contains 1 NaN/inf"),
], ids=["huge", "negative", "fractional", "empty", "nan"])
@pytest.mark.parametrize("probe", ["exemplars", "input_gradients"])
def test_unit_indices_are_checked(tiny_convnet, x, probe, units, match):
    call = {"exemplars": lambda: rf.exemplars(tiny_convnet, "conv1", x, units=units, progress=False),
            "input_gradients": lambda: rf.input_gradients(tiny_convnet, "conv1", x, units=units)}[probe]
    _raises(ArgumentError, match, call)


# ---- labels ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, match", [
    (np.zeros(5, int), r"labels must hold one label per image \(6\); got 5"),
    (np.full(6, 5), r"labels must be class labels: integers in \[0, 5\) for 5 classes; got \[5"),
    (np.full(6, -1), r"labels must be class labels: integers in \[0, 5\)"),
    (np.full(6, 0.5), r"labels must be class labels"),
    (np.zeros((6, 1), int), r"labels must have 1 dimension"),
], ids=["N-1", "n_classes", "negative", "fractional", "2-d"])
def test_labels_are_checked(tiny_convnet, x, labels, match):
    _raises(ArgumentError, match, lambda: importance.taylor_importance(tiny_convnet, x, "conv1", labels))


# ---- PRNG keys -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda s, x: el.sample(s, x, n_samples=2, key=None), r"key must be a PRNG key .*got None"),
    (lambda s, x: el.sample(s, x, n_samples=2, key=3), r"key must be a PRNG key .*got 3"),
    (lambda s, x: el.run(s, x, {"fc1": el.noise(0.1)}), r"noise edits at \['fc1'\] need a PRNG key"),
    (lambda s, x: el.run(s, x, {"fc1": el.noise(0.1)}, key=7), r"key must be a PRNG key .*got 7"),
    (lambda s, x: importance.random_orders(None, 2, 4), r"key must be a PRNG key .*got None"),
    (lambda s, x: rf.reverse_correlation(s, "conv1", 64, key=None), r"key must be a PRNG key .*got None"),
    (lambda s, x: rf.receptive_field_size(s, "conv1"), r"needs images or a PRNG key"),
    (lambda s, x: rf.receptive_field_size(s, "conv1", key=1.0), r"key must be a PRNG key .*got 1.0"),
    (lambda s, x: brain.rsa_by_site(s, x, {"r": np.ones((6, 6))}, n_boot=10), r"need a PRNG key.*got key=None"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((6, 2))}, key=None), r"key must be a PRNG key"),
])
def test_missing_or_invalid_keys_are_refused(tiny_convnet, x, call, match):
    _raises(ArgumentError, match, lambda: call(tiny_convnet, x))


# ---- mappings and shapes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((5, 2))}, key=KEY), ArgumentError,
     r"region 'r' must hold responses \(stimuli, neurons\) to the 6 images; got shape \(5, 2\)"),
    (lambda s, x: brain.encoding_by_site(s, x, {}, key=KEY), ArgumentError, r"regions must be a non-empty mapping"),
    (lambda s, x: brain.encoding_by_site(s, x, {"r": np.ones((6, 2))}, ceilings={"V9": 0.5}, key=KEY),
     ArgumentError, r"ceilings names region\(s\) \['V9'\] that are not in regions \(r\)"),
    (lambda s, x: rf.exemplars(s, "conv1", iter([]), progress=False), InputError, r"images is an empty stream"),
    (lambda s, x: rf.input_gradients(s, ["conv1"], x), ArgumentError, r"site must be one site name"),
    (lambda s, x: rf.grating_tuning(s, None), ArgumentError, r"sites must name one or more sites of tiny"),
    (lambda s, x: el.site_means(s, x, None), ArgumentError, r"sites must name one or more sites"),
    (lambda s, x: importance.l1_weight_norm(s, "conv1", param="conv9/kernel"), ArgumentError,
     r"param must be a parameter path of tiny; got 'conv9/kernel'"),
])
def test_mappings_and_shapes_are_checked(tiny_convnet, x, call, error, match):
    _raises(error, match, lambda: call(tiny_convnet, x))
