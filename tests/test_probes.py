import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico.data.stimuli import gabor
from insilico.models import ConvNet
from insilico.probes.lesion import ablation_curve, mask_sweep, single_unit_sweep
from insilico.probes.rf import grating_tuning, orientation_selectivity
from insilico.subject import InputSpec, make_subject
from tracing import at_most_traces


def test_single_unit_sweep_equals_loop(tiny_convnet, images):
    labels = jnp.arange(6) % 5
    ds = single_unit_sweep(tiny_convnet, images, "conv2", labels=labels, batch_size=4)
    intact = el.record(tiny_convnet, images)[0]
    for u in range(6):
        out, _ = el.run(tiny_convnet, images, {"conv2": el.lesion(jnp.eye(6)[u])})
        assert ds.agreement.values[u] == pytest.approx(float(jnp.mean(out.argmax(-1) == intact.argmax(-1))))
        assert ds.accuracy.values[u] == pytest.approx(float(jnp.mean(out.argmax(-1) == labels)))
        assert ds.logit_change.values[u] == pytest.approx(float(jnp.mean(jnp.abs(out - intact))), rel=1e-5)
    assert ds.attrs["intact_agreement"] == 1.0


def test_mean_ablation_sweep(tiny_convnet, images):
    ds = single_unit_sweep(tiny_convnet, images, "fc1", mode="mean")
    _, rec = el.record(tiny_convnet, images, "fc1")
    mean = rec["fc1"].mean(0)
    intact = el.record(tiny_convnet, images)[0]
    out, _ = el.run(tiny_convnet, images, {"fc1": el.mean_ablation(jnp.eye(8)[3], mean)})
    assert ds.logit_change.values[3] == pytest.approx(float(jnp.mean(jnp.abs(out - intact))), rel=1e-5)
    with pytest.raises(ValueError, match="unknown ablation mode 'bogus'; valid: zero, mean, noise"):
        single_unit_sweep(tiny_convnet, images, "fc1", mode="bogus")
    with pytest.raises(el.SiteError, match="valid: conv1"):
        single_unit_sweep(tiny_convnet, images, "conv7")


def test_tuning_recovers_gabor_orientation():
    """Units whose filters are Gabors at 30 and 120 degrees prefer those orientations."""
    model = ConvNet(widths=(2,), kernels=(11,), pools=None, fc=(), num_classes=2, norm=False, mean=(0.5,),
                    std=(1.0,))
    v = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 33, 33, 1)))
    kernel = np.stack([np.asarray(gabor(11, o, 0.15, sigma=2.5))[..., 0] - 0.5 for o in (30.0, 120.0)], -1)
    params = jax.tree.map(lambda a: a, v["params"])
    params["conv1"]["conv"]["kernel"] = jnp.asarray(kernel[:, :, None, :])
    params["conv1"]["conv"]["bias"] = jnp.zeros(2)
    s = make_subject("gabors", model, {"params": params}, InputSpec((33, 33, 1)))
    tuning = grating_tuning(s, "conv1", orientations=range(0, 180, 5), sfs=(0.1, 0.15, 0.2),
                            phases=range(0, 360, 45))["conv1"]
    sel = orientation_selectivity(tuning)
    pref = sel.preferred_orientation.values
    assert abs(pref[0] - 30) < 5 and abs(pref[1] - 120) < 5
    assert np.all(sel.preferred_sf.values == 0.15)
    assert np.all(sel.osi.values > 0.5)


def test_sweep_compiles_once_per_site(tiny_convnet, images):
    single_unit_sweep(tiny_convnet, images, "conv1", batch_size=2)
    with at_most_traces(0):
        for seed in range(3):
            x = jax.random.uniform(jax.random.PRNGKey(seed), images.shape)
            single_unit_sweep(tiny_convnet, x, "conv1", batch_size=2)


def test_pairwise_masks_and_unit_subsets(tiny_convnet, images):
    pairs = [(0, 1), (2, 5), (3, 4)]
    masks = jnp.stack([jnp.zeros(6).at[jnp.array(p)].set(1.0) for p in pairs])
    ds = mask_sweep(tiny_convnet, images, "conv2", masks)
    intact = el.record(tiny_convnet, images)[0]
    for i, m in enumerate(masks):
        out, _ = el.run(tiny_convnet, images, {"conv2": el.lesion(m)})
        assert ds.logit_change.values[i] == pytest.approx(float(jnp.mean(jnp.abs(out - intact))), rel=1e-5)
    sub = single_unit_sweep(tiny_convnet, images, "conv2", units=[4, 1])
    full = single_unit_sweep(tiny_convnet, images, "conv2")
    assert list(sub.unit.values) == [4, 1]
    np.testing.assert_allclose(sub.logit_change.values, full.logit_change.values[[4, 1]], rtol=1e-6)
    with pytest.raises(ValueError, match=r"units must be channel indices in \[0, 6\)"):
        single_unit_sweep(tiny_convnet, images, "conv2", units=[7])
    with pytest.raises(ValueError, match=r"masks must be \(M, 6\)"):
        mask_sweep(tiny_convnet, images, "conv2", jnp.ones((3, 5)))


def test_noise_ablation(tiny_convnet, images):
    with pytest.raises(ValueError, match="needs a PRNG key"):
        mask_sweep(tiny_convnet, images, "fc1", jnp.eye(8), mode="noise")
    a = mask_sweep(tiny_convnet, images, "fc1", jnp.eye(8), mode="noise", key=jax.random.PRNGKey(0))
    b = mask_sweep(tiny_convnet, images, "fc1", jnp.eye(8), mode="noise", key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(a.logit_change.values, b.logit_change.values)
    _, rec = el.record(tiny_convnet, images, "fc1")
    moving = np.asarray(rec["fc1"].std(0)) > 0
    assert np.all(a.logit_change.values[moving] > 0)


def test_ablation_curve_matches_masks(tiny_convnet, images):
    from insilico.probes.importance import order_by, random_orders
    labels = jnp.arange(6) % 5
    orders = {"random": random_orders(jax.random.PRNGKey(0), 3, 6), "fixed": jnp.array([5, 4, 3, 2, 1, 0])}
    ds = ablation_curve(tiny_convnet, images, "conv2", orders, labels, fractions=[0, 0.5, 1.0])
    assert list(ds.order.values) == ["random/0", "random/1", "random/2", "fixed"]
    assert list(ds.n_removed.values) == [0, 3, 6]
    np.testing.assert_allclose(ds.agreement.sel(fraction=0.0).values, 1.0)
    out, _ = el.run(tiny_convnet, images, {"conv2": el.lesion(jnp.zeros(6).at[jnp.array([5, 4, 3])].set(1))})
    assert ds.accuracy.sel(order="fixed", fraction=0.5).item() == pytest.approx(float(jnp.mean(out.argmax(-1) == labels)))
    everything = ds.logit_change.sel(fraction=1.0).values
    np.testing.assert_allclose(everything, everything[0], rtol=1e-6)      # all orders end with all removed
    assert list(order_by(jnp.array([0.1, 0.9, 0.5]))) == [1, 2, 0]
    with pytest.raises(ValueError, match="must be a permutation"):
        ablation_curve(tiny_convnet, images, "conv2", {"bad": jnp.array([0, 0, 1, 2, 3, 4])})


def test_importance_scores(tiny_convnet, images):
    from insilico.probes.importance import l1_weight_norm, taylor_importance
    k = tiny_convnet.params["conv2"]["conv"]["kernel"]
    np.testing.assert_allclose(l1_weight_norm(tiny_convnet, "conv2"), np.abs(k).sum((0, 1, 2)), rtol=1e-6)
    labels = jnp.arange(6) % 5
    t = taylor_importance(tiny_convnet, images, "conv2", labels)
    # reference: per-image finite differences of the loss w.r.t. each channel's gain
    import optax

    def loss(g, i):
        out, _ = el.run(tiny_convnet, images[i:i + 1], {"conv2": el.gain(g)})
        return float(optax.softmax_cross_entropy_with_integer_labels(out, labels[i:i + 1]).sum())

    eps, ref = 1e-2, np.zeros(6)
    for i in range(6):
        for u in range(6):
            g = np.ones(6, np.float32)
            g[u] += eps
            up = loss(jnp.asarray(g), i)
            g[u] -= 2 * eps
            ref[u] += abs((up - loss(jnp.asarray(g), i)) / (2 * eps)) / 16 / 6      # 16 positions (4x4)
    np.testing.assert_allclose(t, ref, rtol=0.05, atol=1e-4)


def test_per_class_accuracy_and_loss(tiny_convnet, images):
    import optax
    labels = jnp.array([0, 1, 1, 2, 2, 2])
    ds = single_unit_sweep(tiny_convnet, images, "conv1", labels=labels)
    assert ds.class_accuracy.dims == ("unit", "class") and ds.class_accuracy.shape == (4, 5)
    out, _ = el.run(tiny_convnet, images, {"conv1": el.lesion(jnp.eye(4)[2])})
    correct = np.asarray(out.argmax(-1) == labels)
    expected = [correct[np.asarray(labels) == k].mean() if (labels == k).any() else 0.0 for k in range(5)]
    np.testing.assert_allclose(ds.class_accuracy.values[2], expected, rtol=1e-6)
    loss = optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()
    assert ds.loss.values[2] == pytest.approx(float(loss), rel=1e-5)
    assert ds.intact_class_accuracy.dims == ("class",)


def test_spatial_single_units(tiny_convnet, images):
    ds = single_unit_sweep(tiny_convnet, images, "conv2", spatial=True, units=[0, 37, 95])
    assert list(ds.y.values) == [0, 1, 3] and list(ds.channel.values) == [0, 1, 5]
    intact = el.record(tiny_convnet, images)[0]
    mask = jnp.zeros((4, 4, 6)).at[1, 2, 1].set(1.0)                    # flat index 37 = (1, 2, 1)
    out, _ = el.run(tiny_convnet, images, {"conv2": el.lesion(mask)})
    assert ds.logit_change.values[1] == pytest.approx(float(jnp.mean(jnp.abs(out - intact))), rel=1e-5)
    full = single_unit_sweep(tiny_convnet, images, "conv2", spatial=True)
    assert full.sizes["unit"] == 96
    with pytest.raises(ValueError, match=r"flat unit indices in \[0, 96\)"):
        single_unit_sweep(tiny_convnet, images, "conv2", spatial=True, units=[96])


def test_synapse_sweep_equals_loop(tiny_convnet, images):
    from insilico.probes.lesion import synapse_sweep
    masks = jnp.zeros((4, 1, 1, 4, 6))
    masks = masks.at[0, :, :, 0, :].set(1).at[1, :, :, :, 2].set(1).at[2, :, :, 1, 3].set(1)   # mask 3: nothing cut
    ds = synapse_sweep(tiny_convnet, images, "conv2/conv/kernel", masks, progress=False)
    intact = el.record(tiny_convnet, images)[0]
    for i in range(4):
        v = el.lesion_synapses(tiny_convnet.variables, {"conv2/conv/kernel": 1.0 - masks[i]})
        out, _ = el.run(tiny_convnet, images, variables=v)
        assert ds.logit_change.values[i] == pytest.approx(float(jnp.mean(jnp.abs(out - intact))), rel=1e-5, abs=1e-6)
    assert ds.logit_change.values[3] < 1e-5 < ds.logit_change.values[0]          # float noise vs a real cut
    with pytest.raises(KeyError, match="unknown parameter path"):
        synapse_sweep(tiny_convnet, images, "conv9/kernel", masks)
    with pytest.raises(ValueError, match="broadcastable to its shape"):
        synapse_sweep(tiny_convnet, images, "conv2/conv/kernel", jnp.ones((2, 5)))


def test_many_sites_in_one_sweep(tiny_convnet, images):
    both = single_unit_sweep(tiny_convnet, images, ["conv1", "conv2"])
    assert both.sizes["unit"] == 10 and list(both.site.values) == ["conv1"] * 4 + ["conv2"] * 6
    assert list(both.channel.values) == [0, 1, 2, 3, 0, 1, 2, 3, 4, 5]
    for site in ("conv1", "conv2"):
        alone = single_unit_sweep(tiny_convnet, images, site)
        np.testing.assert_allclose(both.logit_change.where(both.site == site, drop=True).values,
                                   alone.logit_change.values, rtol=1e-5, atol=1e-7)


def test_forward_from_a_given_site_activation_equals_the_whole_pass(tiny_convnet, images):
    _, rec = el.run(tiny_convnet, images, record="conv1")
    edits = {"conv2": el.lesion(jnp.eye(6)[2])}
    whole, _ = jax.jit(lambda s, x: el.forward(s, x, edits))(tiny_convnet, images)
    given, _ = jax.jit(lambda s, x, a: el.forward(s, x, edits, given={"conv1": a}))(tiny_convnet, images,
                                                                                    rec["conv1"])
    np.testing.assert_allclose(np.asarray(given), np.asarray(whole), rtol=1e-6, atol=1e-6)
    other, _ = el.forward(tiny_convnet, images, given={"conv1": jnp.zeros_like(rec["conv1"])})  # it is used
    assert not np.allclose(np.asarray(other), np.asarray(whole))


@pytest.mark.parametrize("sites, mode", [(("conv2",), "zero"), (("conv1", "conv2"), "mean"), (("conv2",), "noise")])
def test_lesion_sweeps_from_the_computed_prefix_equal_the_whole_network(tiny_convnet, images, sites, mode,
                                                                        monkeypatch):
    from insilico.probes import lesion

    labels = np.arange(len(images)) % 5
    kw = dict(labels=labels, mode=mode, key=jax.random.key(3), batch_size=2, progress=False, method="plain")
    prefixed = single_unit_sweep(tiny_convnet, images, list(sites), **kw)
    intact_and_prefix = lesion._intact_and_prefix
    monkeypatch.setattr(lesion, "_intact_and_prefix",                        # every lesion runs the whole network
                        lambda *a: (intact_and_prefix(*a)[0], {}))
    whole = single_unit_sweep(tiny_convnet, images, list(sites), **kw)
    np.testing.assert_array_equal(prefixed.accuracy.values, whole.accuracy.values)
    np.testing.assert_allclose(prefixed.logit_change.values, whole.logit_change.values, rtol=1e-5, atol=1e-6)


def test_intact_metrics_on_the_host_equal_the_compiled_metrics():
    """The intact model's metrics (NumPy on the host) equal the compiled per-lesion metrics of the same logits:
    counts and fractions exactly, the loss to float32 rounding; padding rows (weight 0) count for nothing."""
    from insilico.probes.lesion_metrics import intact_metrics, metrics
    from insilico.validation import ArgumentError

    rng = np.random.default_rng(0)
    logits = (3 * rng.normal(size=(24, 10))).astype(np.float32)
    labels = np.where(rng.random(24) < 0.6, logits.argmax(-1), rng.integers(0, 10, 24)).astype(np.int32)
    for weight in (None, (np.arange(24) < 19).astype(np.float32)):
        want = jax.jit(metrics)(logits, logits, (labels, weight))
        got = intact_metrics(logits, (labels, weight))
        assert set(got) == set(want) and 0 < got["accuracy"] < 1
        for k in ("agreement", "logit_change", "accuracy"):
            assert got[k] == float(want[k]), k
        np.testing.assert_array_equal(got["class_accuracy"], np.asarray(want["class_accuracy"]))
        assert got["loss"] == pytest.approx(float(want["loss"]), rel=1e-6)
    assert set(intact_metrics(logits, (None, None))) == {"agreement", "logit_change"}
    with pytest.raises(ArgumentError, match=r"one shape \(images, classes\); got logits \(24, 9\), intact"):
        metrics(logits[:, :9], logits, (labels, None))
    with pytest.raises(ArgumentError, match=r"labels must hold one value per image \(24\); got shape \(23,\)"):
        intact_metrics(logits, (labels[:23], None))
    with pytest.raises(ArgumentError, match="target must be a pair"):
        intact_metrics(logits, labels)
