"""The electrode's contracts: faithful recording, edits as data, vmap, one trace, gradients, clear errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from insilico import electrode as el
from conftest import assert_close
from tracing import at_most_traces


# ---- an independent NumPy forward pass of the tiny ConvNet -------------------------------------------------
def np_conv_same(x, kernel):
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, k - 1 - p), (p, k - 1 - p), (0, 0)))
    win = sliding_window_view(xp, (k, k), axis=(1, 2))           # N, H, W, C, kh, kw
    return np.einsum("nhwcij,ijco->nhwo", win, kernel)


def np_bn(x, bn, p):
    return (x - bn["mean"]) / np.sqrt(bn["var"] + 1e-5) * p["scale"] + p["bias"]


def np_pool(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def np_forward(subject, x):
    P = jax.tree.map(np.asarray, subject.variables["params"])
    S = jax.tree.map(np.asarray, subject.variables["batch_stats"])
    m = subject.model
    acts = {}
    h = (np.asarray(x, np.float64) - np.asarray(m.mean)) / np.asarray(m.std)
    for i in (1, 2):
        name = f"conv{i}"
        h = np.maximum(np_bn(np_conv_same(h, P[name]["conv"]["kernel"]), S[name]["bn"], P[name]["bn"]), 0)
        acts[name] = h
        h = np_pool(h)
    h = h.reshape(len(h), -1)
    h = np.maximum(h @ P["fc1"]["dense"]["kernel"] + P["fc1"]["dense"]["bias"], 0)
    acts["fc1"] = h
    acts["logits"] = h @ P["logits"]["dense"]["kernel"] + P["logits"]["dense"]["bias"]
    return acts


def test_sites_listed_in_order_with_shapes(tiny_convnet, tiny_resnet):
    assert tiny_convnet.sites == {"conv1": (8, 8, 4), "conv2": (4, 4, 6), "fc1": (8,), "logits": (5,)}
    assert list(tiny_resnet.sites) == ["conv1", "stage1/block1", "stage2/block1", "stage3/block1", "logits"]
    assert tiny_resnet.sites["stage3/block1"] == (2, 2, 8)


def test_recording_equals_handwritten_forward(tiny_convnet, images):
    out, rec = el.record(tiny_convnet, images)
    ref = np_forward(tiny_convnet, images)
    assert list(rec) == list(tiny_convnet.sites)
    for site in ref:
        assert_close(rec[site], ref[site], rtol=1e-4, atol=1e-5)
    assert_close(out, ref["logits"], rtol=1e-4, atol=1e-5)


def test_records_only_requested_sites(tiny_convnet, images):
    _, rec = el.record(tiny_convnet, images, ["fc1", "conv1"])
    assert list(rec) == ["fc1", "conv1"]
    _, rec = el.record(tiny_convnet, images, "conv2")
    assert list(rec) == ["conv2"]


def test_lesion_propagates_like_handwritten(tiny_convnet, images):
    """Silencing conv2 channel 3 equals the NumPy forward pass with that channel zeroed."""
    mask = jnp.zeros(6).at[3].set(1.0)
    out, rec = el.run(tiny_convnet, images, {"conv2": el.lesion(mask)}, record=["conv2"])
    assert float(jnp.abs(rec["conv2"][..., 3]).max()) == 0.0
    ref = np_forward(tiny_convnet, images)
    h = ref["conv2"].copy()
    h[..., 3] = 0
    P = jax.tree.map(np.asarray, tiny_convnet.params)
    h = np_pool(h).reshape(len(h), -1)
    h = np.maximum(h @ P["fc1"]["dense"]["kernel"] + P["fc1"]["dense"]["bias"], 0)
    assert_close(out, h @ P["logits"]["dense"]["kernel"] + P["logits"]["dense"]["bias"], rtol=1e-4, atol=1e-5)


def test_edit_kinds(tiny_convnet, images):
    _, base = el.record(tiny_convnet, images, "fc1")
    a = base["fc1"]
    mask = jnp.zeros(8).at[jnp.array([1, 5])].set(1.0)
    value = jnp.arange(8.0)
    cases = {
        "clamp": (el.clamp(mask, 2.5), jnp.where(mask > 0, 2.5, a)),
        "mean": (el.mean_ablation(mask, value), jnp.where(mask > 0, value, a)),
        "gain": (el.gain(value, bias=1.0), value * a + 1.0),
        "identity": (el.identity((8,)), a),
    }
    for kind, (edit, expected) in cases.items():
        _, rec = el.run(tiny_convnet, images, {"fc1": edit}, record="fc1")
        assert_close(rec["fc1"], expected)


def test_noise_needs_key_and_is_reproducible(tiny_convnet, images):
    with pytest.raises(ValueError, match="need a PRNG key"):
        el.run(tiny_convnet, images, {"fc1": el.noise(0.5)})
    k = jax.random.PRNGKey(3)
    edit = {"conv1": el.noise(0.5)}
    _, r1 = el.run(tiny_convnet, images, edit, record="conv1", key=k)
    _, r2 = el.run(tiny_convnet, images, edit, record="conv1", key=k)
    _, r0 = el.record(tiny_convnet, images, "conv1")
    _, r3 = el.run(tiny_convnet, images, edit, record="conv1", key=jax.random.PRNGKey(4))
    assert_close(r1["conv1"], r2["conv1"], rtol=0, atol=0)
    diff = np.asarray(r1["conv1"] - r0["conv1"])         # 1,536 draws: the std estimate is within ~0.01
    assert 0.46 < diff.std() < 0.54 and abs(diff.mean()) < 0.04
    assert not np.allclose(r1["conv1"], r3["conv1"])


def test_vmapped_edits_equal_python_loop(tiny_convnet, images):
    edits = el.unit_edits(6)                            # all single-channel lesions of conv2
    stacked = el.Edit.stack([el.lesion(jnp.eye(6)[u]) for u in range(6)])
    for a, b in zip(jax.tree.leaves(edits), jax.tree.leaves(stacked)):
        np.testing.assert_array_equal(a, b)
    sweep = jax.jit(jax.vmap(lambda e: el.run(tiny_convnet, images, {"conv2": e}, record="fc1")))
    outs, recs = sweep(edits)
    assert outs.shape == (6, 6, 5) and recs["fc1"].shape == (6, 6, 8)
    for u in range(6):
        out, rec = el.run(tiny_convnet, images, {"conv2": el.lesion(jnp.eye(6)[u])}, record="fc1")
        assert_close(outs[u], out)
        assert_close(recs["fc1"][u], rec["fc1"])


def test_many_edit_values_one_trace(tiny_convnet, images):
    el.run(tiny_convnet, images, {"conv1": el.gain(jnp.ones(4))}, record=("logits", "conv1"))
    with at_most_traces(0):
        for g in np.linspace(0.0, 2.0, 7):
            el.run(tiny_convnet, images, {"conv1": el.gain(jnp.full(4, g))}, record=("logits", "conv1"))
        for u in range(4):
            el.run(tiny_convnet, images, {"conv1": el.lesion(jnp.eye(4)[u])}, record=("logits", "conv1"))
    with at_most_traces(1):                                            # a new site set retraces, once
        for _ in range(2):
            el.run(tiny_convnet, images, {"conv2": el.gain(jnp.ones(6))}, record=("logits", "conv1"))
    with pytest.raises(AssertionError, match="traced > 0 times"), at_most_traces(0):     # the check can fail
        el.run(tiny_convnet, images, {"conv2": el.gain(jnp.ones(6))}, record=("logits",))


def test_gain_gradient_matches_finite_differences(tiny_convnet, images):
    def objective(g):
        out, _ = el.run(tiny_convnet, images, {"conv2": el.gain(g)})
        return jnp.sum(jax.nn.log_softmax(out)[:, 0])

    g0 = jnp.ones(6)
    grad = jax.grad(objective)(g0)
    eps = 1e-2
    fd = [(objective(g0.at[u].add(eps)) - objective(g0.at[u].add(-eps))) / (2 * eps) for u in range(6)]
    assert_close(grad, np.array(fd), rtol=2e-2, atol=2e-3)
    assert float(jnp.abs(grad).max()) > 1e-3


def test_run_inside_jit_vmap_over_keys(tiny_convnet, images):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    f = jax.jit(jax.vmap(lambda k: el.run(tiny_convnet, images, {"fc1": el.noise(0.1)}, record="fc1", key=k)[1]))
    recs = f(keys)["fc1"]
    for i in range(3):
        _, r = el.run(tiny_convnet, images, {"fc1": el.noise(0.1)}, record="fc1", key=keys[i])
        assert_close(recs[i], r["fc1"])


def test_resnet_nested_site_edit(tiny_resnet, images):
    mask = jnp.ones(6)
    out, rec = el.run(tiny_resnet, images, {"stage2/block1": el.lesion(mask)}, record=["stage3/block1"])
    # with all of stage2 silenced, stage3's output no longer depends on the image
    assert float(jnp.std(rec["stage3/block1"], axis=0).max()) < 1e-6


def test_synaptic_lesions(tiny_mlp, images):
    paths = el.synapse_paths(tiny_mlp, "fc1")
    assert paths == ["fc1/dense/bias", "fc1/dense/kernel"]
    kmask = jnp.ones((192, 12)).at[:, 4].set(0.0)
    v = el.lesion_synapses(tiny_mlp.variables, {"fc1/dense/kernel": kmask, "fc1/dense/bias": kmask[0]})
    _, rec = el.run(tiny_mlp, images, record="fc1", variables=v)
    assert float(jnp.abs(rec["fc1"][:, 4]).max()) == 0.0
    _, base = el.record(tiny_mlp, images, "fc1")
    assert_close(np.delete(rec["fc1"], 4, axis=1), np.delete(base["fc1"], 4, axis=1))
    # vmapped over a batch of synapse masks == loop
    masks = jnp.stack([jnp.ones((12, 7)).at[i].set(0.0) for i in range(3)])
    batched = jax.vmap(lambda m: el.run(tiny_mlp, images, variables=el.lesion_synapses(
        tiny_mlp.variables, {"fc2/dense/kernel": m}))[0])(masks)
    for i in range(3):
        single = el.run(tiny_mlp, images, variables=el.lesion_synapses(
            tiny_mlp.variables, {"fc2/dense/kernel": masks[i]}))[0]
        assert_close(batched[i], single)
    with pytest.raises(KeyError, match="valid: fc1/dense/bias"):
        el.lesion_synapses(tiny_mlp.variables, {"fc9/kernel": kmask})


def test_site_means_and_mean_ablation(tiny_convnet, images):
    means = el.site_means(tiny_convnet, images, ["conv2", "fc1"], batch_size=4)
    _, rec = el.record(tiny_convnet, images, ["conv2", "fc1"])
    assert_close(means["fc1"], rec["fc1"].mean(0))
    per_channel = el.site_means(tiny_convnet, images, "conv2", over="space")["conv2"]
    assert_close(per_channel, rec["conv2"].mean((0, 1, 2)))


# ---- bad input -----------------------------------------------------------------------------------------------
def test_unknown_site_lists_valid(tiny_convnet, images):
    with pytest.raises(el.SiteError, match=r"unknown site 'conv9'.*valid: conv1, conv2, fc1, logits"):
        el.record(tiny_convnet, images, ["conv9"])
    with pytest.raises(el.SiteError, match="valid: conv1"):
        el.run(tiny_convnet, images, {"fc7": el.gain(1.0)})


def test_bad_inputs_are_named(tiny_convnet, images):
    with pytest.raises(el.InputError, match=r"single image.*x\[None\]"):
        el.record(tiny_convnet, images[0])
    with pytest.raises(el.InputError, match=r"input shape \(6, 9, 8, 3\) does not match"):
        el.record(tiny_convnet, jnp.zeros((6, 9, 8, 3)))
    with pytest.raises(el.InputError, match="divide uint8 images by 255"):
        el.record(tiny_convnet, np.zeros((2, 8, 8, 3), np.uint8))
    bad = np.array(images).copy()
    bad[2, 1, 3, 0] = np.nan
    with pytest.raises(el.InputError, match=r"1 NaN/inf value\(s\), the first at index \(2, 1, 3, 0\)"):
        el.record(tiny_convnet, bad)


def test_edit_shape_errors(tiny_convnet, images):
    with pytest.raises(ValueError, match=r"shape \(5,\), which does not broadcast over the site's unit shape"):
        el.run(tiny_convnet, images, {"conv2": el.lesion(jnp.ones(5))})
    with pytest.raises(TypeError, match="must be an insilico.electrode.Edit"):
        el.run(tiny_convnet, images, {"conv2": jnp.ones(6)})


def test_nan_check_on_device_arrays_and_skipped_under_jit(tiny_convnet, images):
    bad = jnp.asarray(images).at[0, 0, 0, 1].set(jnp.inf)
    with pytest.raises(el.InputError, match=r"the first at index \(0, 0, 0, 1\)"):
        el.record(tiny_convnet, bad)
    out = jax.jit(lambda x: el.record(tiny_convnet, x)[0])(images)       # traced input: no host check
    assert out.shape == (6, 5)


def test_synapse_arguments_are_checked(tiny_convnet, images):
    """A site without weights of its own names where they are; a mask must keep its parameter's shape; a record
    argument that is not site names says so."""
    from insilico.models import BLTNet
    from insilico.subject import InputSpec, make_subject
    from insilico.validation import ArgumentError, UnknownNameError

    model = BLTNet(widths=(2, 4), steps=2)
    blt = make_subject("blt", model, model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))), InputSpec((8, 8, 3)))
    with pytest.raises(UnknownNameError, match=r"site 'logits/t1' holds no parameters of its own.* under conv1, "):
        el.synapse_paths(blt, "logits/t1")                                  # the readout's weights are shared
    assert el.synapse_paths(tiny_convnet, "conv1")                          # a site with its own weights
    v = tiny_convnet.variables
    with pytest.raises(ArgumentError, match=r"masks\['conv1/conv/kernel'\] has shape \(2, 3, 3, 3, 4\)"):
        el.lesion_synapses(v, {"conv1/conv/kernel": jnp.ones((2, 3, 3, 3, 4))})
    with pytest.raises(UnknownNameError, match="unknown parameter path"):
        el.lesion_synapses(v, {"conv9/kernel": 1.0})
    out = el.lesion_synapses(v, {"conv1/conv/kernel": jnp.zeros((1, 1, 1, 4))})   # broadcasts: fine
    assert float(jnp.abs(out["params"]["conv1"]["conv"]["kernel"]).sum()) == 0
    with pytest.raises(ArgumentError, match="record must be a site name, a sequence of site names or None"):
        el.run(tiny_convnet, images, record=5)
    assert set(el.run(tiny_convnet, images, record={"conv1": 0})[1]) == {"conv1"}


def test_models_with_list_fields_are_told_apart_by_a_sweep_store(tmp_path):
    """A Linen model with list fields cannot be hashed; two such models of other settings made one sweep
    fingerprint, and a store of one was reused for the other."""
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject
    from insilico.sweep import SweepError, run_sweep

    def convnet(mean):
        return ConvNet(widths=[4], kernels=[3], fc=[], num_classes=2, mean=[mean], std=[0.25])

    v = convnet(0.5).init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    a, b = (make_subject("m", convnet(m), v, InputSpec((8, 8, 1))) for m in (0.5, 0.1))
    x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 1))
    fn = lambda i, s: {"y": el.forward(s, x)[0].sum() * i}                         # noqa: E731
    run_sweep(fn, jnp.arange(1.0, 3.0), a, store=tmp_path, progress=False)
    with pytest.raises(SweepError, match="holds another sweep"):
        run_sweep(fn, jnp.arange(1.0, 3.0), b, store=tmp_path, progress=False)


def test_edits_variables_and_specs_are_checked(tiny_convnet, images):
    from insilico.edits import Edit
    from insilico.subject import InputSpec, SubjectError, make_subject

    rows = jnp.zeros((2, 8)).at[0].set(1.0)
    uneven = Edit(rows, jnp.zeros((2, 8)), jnp.ones(8), jnp.zeros(8), jnp.zeros(8))
    with pytest.raises(ValueError, match="fields of one shape"):
        el.run(tiny_convnet, images, edits={"fc1": uneven})
    with pytest.raises(ValueError, match="Edit.stack needs one or more Edits"):
        Edit.stack([])
    for shape in ((-1,), "abc"):
        with pytest.raises(ValueError, match="shape must be a tuple of sizes"):
            el.identity(shape)
    as_int = jax.tree.map(lambda a: a.astype(jnp.int32), tiny_convnet.variables)
    with pytest.raises(SubjectError, match="has dtype int32; the model's is float32"):
        tiny_convnet.replace(variables=as_int)
    half = tiny_convnet.replace(variables=jax.tree.map(lambda a: a.astype(jnp.bfloat16), tiny_convnet.variables))
    assert half.variables["params"]["fc1"]["dense"]["kernel"].dtype == jnp.bfloat16      # a float all the same
    with pytest.raises(SubjectError, match="contains .* NaN"):
        el.run(tiny_convnet, images, variables=jax.tree.map(lambda a: a * jnp.nan, tiny_convnet.variables))
    with pytest.raises(ValueError, match=r"masks\['fc1/dense/kernel'\] contains"):
        el.lesion_synapses(tiny_convnet.variables, {"fc1/dense/kernel": jnp.nan})
    with pytest.raises(ValueError, match="variables must be a subject's variables"):
        el.lesion_synapses({"x": 1}, {})
    with pytest.raises(TypeError, match="subject must be an insilico Subject"):
        el.synapse_paths(None)
    for shape in ((8.7, 8, 3), "abc", (8, 8)):
        with pytest.raises(ValueError, match="InputSpec shape must be"):
            InputSpec(shape)
    with pytest.raises(ValueError, match=r"InputSpec bounds must be \(low, high\)"):
        InputSpec((8, 8, 3), (0, 1, 2))
    with pytest.raises(TypeError, match="class_names must be a sequence of names"):
        make_subject("t", tiny_convnet.model, tiny_convnet.variables, tiny_convnet.input_spec, class_names="abcde")
    with pytest.raises(ValueError, match="sites must name one or more sites of tiny; got none"):
        el.site_means(tiny_convnet, images, [])
