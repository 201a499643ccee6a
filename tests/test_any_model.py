"""Any Flax model is a subject: a plain Linen CNN, an NNX CNN and an NNX ResNet (no insilico class), a zoo model
and a torchvision import are recorded, edited, swept, visualized, attacked, synthesized and compared with brains
through the public API only — every probe on every kind of model.

The plain Linen CNN and the plain NNX CNN go through the public API end to end — recorded, lesioned, swept,
visualized, attacked and compared with the 92-image RDMs — against an independent NumPy forward pass of the
same weights, and run again with new weights and new data-valued settings without a new trace. The Linen CNN
and the NNX ResNet (batch norm, residual blocks) run every probe. The NNX CNN, a zoo model and a torchvision
import run the electrode and the lesion sweeps beside them; every other probe runs on insilico's own classes
(the zoo's and the torchvision import's code path) in test_probes, test_featurevis, test_rf,
test_synthesis(_more), test_brain_mapping and test_architectures."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from insilico import electrode as el
from insilico import zoo
from insilico.probes import brain, featurevis as fv, importance, lesion, rf
from insilico.probes import synthesis as syn
from insilico.subject import InputSpec, make_subject
from conftest import assert_close
from user_models import LinenCNN, NNXCNN, NNXResNet, linen_cnn_variables, np_cnn, randomize_batch_stats
from tracing import at_most_traces

KINDS = ["linen_cnn", "nnx_cnn", "nnx_resnet", "zoo", "torchvision"]
FULL = ["linen_cnn", "nnx_resnet"]            # every probe (the NNX CNN runs them end to end, below)


def _torchvision_resnet18():
    torch = pytest.importorskip("torch")
    from test_torch_import import TorchResNet18
    from insilico.interop.torch_import import load_state_dict

    torch.manual_seed(0)
    net = TorchResNet18(num_classes=6).eval()
    with torch.no_grad():                               # non-trivial running statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return load_state_dict("resnet18", net.state_dict(), input_shape=(32, 32, 3), name="resnet18 (torch)")


def build(kind):
    spec = InputSpec((12, 12, 3))
    if kind == "linen_cnn":
        model = LinenCNN()
        return make_subject("linen_cnn", model, linen_cnn_variables(model, spec.shape, jax.random.key(0)), spec)
    if kind == "nnx_cnn":
        return make_subject("nnx_cnn", randomize_batch_stats(NNXCNN(rngs=nnx.Rngs(0)), jax.random.key(1)), None,
                            spec)
    if kind == "nnx_resnet":
        return make_subject("nnx_resnet", randomize_batch_stats(NNXResNet(rngs=nnx.Rngs(0)), jax.random.key(2)),
                            None, spec)
    if kind == "zoo":
        return zoo.load("mnist_convnet")
    return _torchvision_resnet18()


SUBJECTS: dict = {}


def _subject(kind):
    if kind not in SUBJECTS:
        SUBJECTS[kind] = build(kind)
    return SUBJECTS[kind]


@pytest.fixture(params=KINDS)
def subject(request):
    return _subject(request.param)


@pytest.fixture(params=FULL)
def user_subject(request):
    return _subject(request.param)


def images(subject, n, key=0):
    return jax.random.uniform(jax.random.key(key), (n, *subject.input_spec.shape))


def conv_site(subject):
    """The first site with an (H, W, C) map: the site most probes here act on."""
    return next(s for s, shape in subject.sites.items() if len(shape) == 3)


def kernel_path(subject, site):
    return next(p for p in el.synapse_paths(subject, site) if p.endswith("kernel"))


# ------------------------------------------------------------------------------------------------- reference
@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn"])
def test_plain_flax_cnn_through_the_public_api_equals_a_handwritten_forward_pass(kind):
    """Recorded at every layer, lesioned, swept, visualized and attacked: each result checked against NumPy."""
    subject = _subject(kind)
    x = images(subject, 4)
    out, rec = el.record(subject, x)
    ref = np_cnn(subject.variables, x)
    for site in ("conv1", "bn1", "act1", "conv2", "act2"):
        assert_close(rec[site], ref[site], rtol=1e-4, atol=1e-5)
    assert_close(out, ref["out"], rtol=1e-4, atol=1e-5)
    # a lesion of one channel propagates like the same lesion in NumPy
    out, rec = el.run(subject, x, {"act1": el.lesion(jnp.zeros(6).at[2].set(1.0))}, record=["act1", "conv2"])
    cut = np_cnn(subject.variables, x, lesion={"act1": 2})
    assert_close(rec["conv2"], cut["conv2"], rtol=1e-4, atol=1e-5)
    assert_close(out, cut["out"], rtol=1e-4, atol=1e-5)
    # every single-channel lesion of act1 in one sweep equals the NumPy loop
    labels = ref["out"].argmax(-1)
    sweep = lesion.single_unit_sweep(subject, x, "act1", labels=labels, progress=False)
    for u in range(6):
        lesioned = np_cnn(subject.variables, x, lesion={"act1": u})["out"]
        assert float(sweep.accuracy.values[u]) == pytest.approx(float(np.mean(lesioned.argmax(-1) == labels)))
        assert float(sweep.logit_change.values[u]) == pytest.approx(float(np.abs(lesioned - ref["out"]).mean()),
                                                                    rel=1e-3, abs=1e-5)
    # visualized: the reported score is conv2's channel mean of the returned images, in NumPy
    vis = fv.visualize(subject, fv.channel("conv2"), units=[0, 3], key=jax.random.key(0), steps=3, progress=False)
    final = vis.images.values[:, -1, 0]
    assert_close(vis.score.values[:, 0], np_cnn(subject.variables, final)["conv2"].mean((1, 2))[[0, 1], [0, 3]],
                 rtol=1e-4, atol=1e-5)
    # attacked: predictions of the adversarial images are NumPy's
    adv = syn.pgd(subject, x, labels, 8 / 255, steps=3, key=jax.random.key(1))
    np_pred = np_cnn(subject.variables, adv.images.values)["out"].argmax(-1)
    np.testing.assert_array_equal(adv.prediction.values, np_pred)
    np.testing.assert_array_equal(adv.success.values, np_pred != labels)
    assert float(np.abs(adv.images.values - np.asarray(x)).max()) <= 8 / 255 + 1e-6


@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn"])
def test_plain_flax_cnn_against_the_92_image_rdms(kind, data_dir):
    from scipy.stats import spearmanr

    from insilico.data import objects92
    from insilico.data.neural import objects92_region_rdms

    subject = _subject(kind)
    x = objects92(12).x
    it = objects92_region_rdms()["human IT"]                    # (4 subjects, 92, 92)
    ds = brain.rsa_by_site(subject, x, {"human IT": it}, sites=["act1", "act2"], method="spearman")
    ref = np_cnn(subject.variables, x)
    upper = np.triu_indices(92, 1)
    for site in ("act1", "act2"):
        model_rdm = 1 - np.corrcoef(ref[site].reshape(92, -1))
        expected = np.mean([spearmanr(model_rdm[upper], s[upper])[0] for s in it])
        assert float(ds.score.sel(site=site, region="human IT")) == pytest.approx(expected, abs=1e-6)
    assert float(ds.ceiling_upper.values[0]) > float(ds.ceiling_lower.values[0])


def test_sites_of_user_models():
    linen = _subject("linen_cnn")
    assert list(linen.sites) == ["conv1", "bn1", "act1", "conv2", "act2", "out"]
    assert linen.sites["act1"] == (12, 12, 6) and linen.call_kwargs == (("train", False),)
    nnx_cnn = _subject("nnx_cnn")
    assert list(nnx_cnn.sites) == ["conv1", "bn1", "act1", "conv2", "act2", "drop", "out"]
    res = _subject("nnx_resnet")
    assert list(res.sites) == ["stem", "stem_bn", "block1/conv1", "block1/bn1", "block1/conv2", "block1/bn2",
                               "block1", "block2/conv1", "block2/bn1", "block2/conv2", "block2/bn2",
                               "block2/shortcut", "block2", "head"]
    assert res.sites["block2"] == (6, 6, 8) and res.api == "nnx"


# ------------------------------------------------------------------------------------------------ the matrix
def test_record_edit_and_forward_inside_jit(subject):
    x = images(subject, 3)
    out, rec = el.record(subject, x)
    assert out.shape == (3, *subject.output_shape) and list(rec) == list(subject.sites)
    assert all(rec[s].shape == (3, *subject.sites[s]) for s in subject.sites)
    assert all(np.isfinite(np.asarray(a)).all() for a in rec.values())
    site = conv_site(subject)
    c = subject.sites[site][-1]
    out_l, rec_l = el.run(subject, x, {site: el.lesion(jnp.zeros(c).at[0].set(1.0))}, record=site)
    assert float(jnp.abs(rec_l[site][..., 0]).max()) == 0.0
    assert_close(rec_l[site][..., 1:], rec[site][..., 1:], rtol=1e-5, atol=1e-6)
    # the public core composes with jit / vmap / grad
    fn = jax.jit(lambda s, g: el.forward(s, x, {site: el.gain(g)})[0])
    assert_close(fn(subject, jnp.ones(c)), out, rtol=1e-5, atol=1e-5)
    grads = jax.jit(jax.grad(lambda g: el.forward(subject, x, {site: el.gain(g)})[0][:, 0].sum()))(jnp.ones(c))
    assert grads.shape == (c,) and np.isfinite(np.asarray(grads)).all()


def test_single_unit_and_synaptic_lesions(subject):
    x = images(subject, 6)
    site = conv_site(subject)
    c = subject.sites[site][-1]
    labels = np.asarray(el.record(subject, x)[0].argmax(-1))
    units = lesion.single_unit_sweep(subject, x, site, labels=labels, units=[0, 1], progress=False)
    for u in (0, 1):
        out, _ = el.run(subject, x, {site: el.lesion(jnp.zeros(c).at[u].set(1.0))})
        assert float(units.accuracy.values[u]) == pytest.approx(float(np.mean(np.asarray(out.argmax(-1)) == labels)))
    path = kernel_path(subject, site)
    shape = np.shape(el.parameter(subject, path))
    cut = lesion.synapse_sweep(subject, x, path, np.ones((1, *shape), np.float32), labels=labels, progress=False)
    cut_out, _ = el.run(subject, x, variables=el.lesion_synapses(subject.variables, {path: jnp.zeros(shape)}))
    assert float(cut.accuracy.values[0]) == pytest.approx(float(np.mean(np.asarray(cut_out.argmax(-1)) == labels)))


def test_group_and_cumulative_lesions_and_importance(user_subject):
    subject = user_subject
    x = images(subject, 6)
    site = conv_site(subject)
    c = subject.sites[site][-1]
    labels = np.asarray(el.record(subject, x)[0].argmax(-1))
    masks = np.zeros((2, c), np.float32)
    masks[0, :2] = masks[1, 1:3] = 1
    groups = lesion.mask_sweep(subject, x, site, masks, labels=labels, progress=False)
    assert groups.accuracy.shape == (2,) and float(groups.attrs["intact_accuracy"]) == 1.0
    curve = lesion.ablation_curve(subject, x, site, {"l1": importance.order_by(importance.l1_weight_norm(
        subject, site))}, labels=labels, fractions=[0.0, 1.0], progress=False)
    assert float(curve.accuracy.sel(fraction=0.0)[0]) == 1.0
    taylor = importance.taylor_importance(subject, x[:3], site, labels[:3])
    assert taylor.shape == (c,) and np.isfinite(np.asarray(taylor)).all()


def test_feature_visualization(user_subject):
    subject = user_subject
    site = conv_site(subject)
    vis = fv.visualize(subject, fv.channel(site), units=[0, 1], key=jax.random.key(0), steps=3, progress=False,
                       loop="scan")
    assert vis.images.shape == (2, 1, 1, *subject.input_spec.shape) and np.isfinite(vis.images.values).all()
    # the reported score is the channel mean of the returned image, recorded through the electrode
    _, rec = el.record(subject, jnp.asarray(vis.images.values[:, 0, 0]), site)
    assert_close(vis.score.values[:, 0], np.asarray(rec[site]).mean((1, 2))[[0, 1], [0, 1]], rtol=1e-4, atol=1e-5)


def test_receptive_field_probes(user_subject):
    subject = user_subject
    site = conv_site(subject)
    tuning = rf.grating_tuning(subject, site, orientations=(0, 90), sfs=(0.1,), phases=(0, 180))
    assert tuning[site].shape == (subject.sites[site][-1], 2, 1, 2) and np.isfinite(tuning[site].values).all()
    sta = rf.reverse_correlation(subject, site, 64, key=jax.random.key(0), batch_size=32, progress=False)
    assert sta.sta.shape == (subject.sites[site][-1], *subject.input_spec.shape)
    size = rf.receptive_field_size(subject, site, key=jax.random.key(1), n_images=2)
    assert 1 <= float(size.theoretical_size[0]) <= max(subject.input_spec.shape[:2])
    x = images(subject, 5)
    ex = rf.exemplars(subject, site, x, k=2, progress=False)
    assert ex.top_index.shape == (subject.sites[site][-1], 2)
    grads = rf.input_gradients(subject, site, x[:2], units=[0])
    centre = lambda img: rf.centre_units(el.forward(subject, img[None], record=site)[1][site])[0, 0]  # noqa: E731
    assert_close(grads.values[0, 1], jax.grad(centre)(x[1]), rtol=1e-4, atol=1e-6)


def test_attacks(user_subject):
    subject = user_subject
    x = images(subject, 4)
    y = np.asarray(el.record(subject, x)[0].argmax(-1))
    adv = syn.pgd(subject, x, y, 8 / 255, steps=3, key=jax.random.key(0), loop="scan")
    assert adv.attrs["clean_accuracy"] == 1.0 and float(adv.linf.max()) <= 8 / 255 + 1e-6
    f = syn.fgsm(subject, x, y, 8 / 255, loop="scan")
    assert f.attrs["accuracy"] <= 1.0 and float(f.linf.max()) <= 8 / 255 + 1e-6
    df = syn.deepfool(subject, x[:2], y[:2], max_iter=3, loop="scan")
    assert np.isfinite(df.l2_float.values).all()
    curve = syn.accuracy_vs_eps(subject, x, y, [0.0, 8 / 255], steps=2, key=jax.random.key(1))
    assert float(curve.accuracy.values[0]) == 1.0


def test_stimulus_synthesis(user_subject):
    subject = user_subject
    site = conv_site(subject)
    x = images(subject, 2)
    scan = dict(loop="scan")                  # one compilation per program (the host loop is tested elsewhere)
    met = syn.metamers(subject, site, x[:1], steps=4, key=jax.random.key(0), **scan)
    assert met.rel_error.shape == (1, 1) and np.isfinite(met.rel_error.values).all()
    eig = syn.eigendistortions(subject, site, x[:1], n_iter=3, key=jax.random.key(1), **scan)
    assert float(eig.eigenvalue.values[0, 0]) >= float(eig.eigenvalue.values[0, 1]) - 1e-6
    last = list(subject.sites)[-1]
    mad = syn.mad_competition(subject, site, subject, last, x[:1], steps=2, key=jax.random.key(2), **scan)
    assert mad.images.shape == (1, 4, *subject.input_spec.shape)
    other = subject.replace(variables=jax.tree.map(lambda a: a * 0.9, subject.variables))
    con = syn.controversial(subject, other, [(0, 1)], steps=3, key=jax.random.key(3), **scan)
    assert con.acceptance.shape == (1, 1)
    score = syn.ResponseScore(subject, site, 0, channel=True)
    cs = syn.controversial_scores(score, syn.ResponseScore(subject, site, 1, channel=True),
                                  subject.input_spec.shape, steps=3, key=jax.random.key(4), **scan)
    assert np.isfinite(cs.score_a.values).all()


def test_brain_comparison(user_subject):
    subject = user_subject
    x = images(subject, 10)
    rng = np.random.default_rng(0)
    rdms = rng.random((2, 10, 10))
    rdms = rdms + rdms.transpose(0, 2, 1)
    rdms[:, np.arange(10), np.arange(10)] = 0
    sites = [conv_site(subject), list(subject.sites)[-1]]
    ds = brain.rsa_by_site(subject, x, {"region": rdms}, sites=sites, method="spearman")
    assert ds.score.shape == (2, 1) and np.isfinite(ds.score.values).all()
    enc = brain.encoding_by_site(subject, x, {"region": rng.random((10, 3))}, sites=sites[1:], n_splits=2,
                                 test_fraction=0.3, key=jax.random.key(0))
    assert enc.raw.shape == (1, 1)


@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn"])
def test_forward_composes_with_vmap_scan_and_shard_map(kind):
    from jax.sharding import Mesh, PartitionSpec as P

    subject = _subject(kind)
    x = images(subject, 4)
    out, rec = el.record(subject, x, "conv2")
    # vmap over edits and over weights
    gains = jnp.stack([jnp.ones(6), jnp.zeros(6)])
    outs = jax.jit(jax.vmap(lambda g: el.forward(subject, x, {"act1": el.gain(g)})[0]))(gains)
    assert_close(outs[0], out, rtol=1e-5, atol=1e-5)
    assert_close(outs[1], el.run(subject, x, {"act1": el.lesion(jnp.ones(6))})[0], rtol=1e-5, atol=1e-5)
    scaled = jax.tree.map(lambda a: jnp.stack([a, a]), subject.variables)
    both = jax.vmap(lambda v: el.forward(subject.replace(variables=v), x)[0])(scaled)
    assert_close(both[1], out, rtol=1e-5, atol=1e-5)
    # lax.scan over batches (one image per step), accumulating a site's mean
    def body(total, xi):
        return total + el.forward(subject, xi[None], record="conv2")[1]["conv2"][0], None
    total, _ = jax.jit(lambda s: jax.lax.scan(body, jnp.zeros(subject.sites["conv2"]), x))(subject)
    assert_close(total / 4, rec["conv2"].mean(0), rtol=1e-5, atol=1e-5)
    # shard_map over the batch axis
    mesh = Mesh(np.array(jax.devices()[:1]), ("batch",))
    sharded = jax.jit(jax.shard_map(lambda s, xb: el.forward(s, xb)[0], mesh=mesh, in_specs=(P(), P("batch")),
                                    out_specs=P("batch")))
    assert_close(sharded(subject, x), out, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------- retrace
@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn"])
def test_new_weights_edit_values_and_hyperparameters_never_retrace(kind):
    subject = _subject(kind)
    x = images(subject, 4)
    y = np.asarray(el.record(subject, x)[0].argmax(-1))
    other = subject.replace(variables=jax.tree.map(lambda a: a * 1.01, subject.variables))

    def probes(s, value):
        el.run(s, x, {"act1": el.gain(jnp.full(6, value))}, record="conv2")
        syn.pgd(s, x, y, value / 255, steps=3, step_size=value / 1000, key=jax.random.key(1))
        syn.metamers(s, "conv2", x[:1] * value / 4, steps=2, key=jax.random.key(0))
        lesion.mask_sweep(s, x, "act1", np.eye(6, dtype=np.float32)[:2] * value / 4, progress=False)
        fv.visualize(s, fv.channel("conv2"), units=[0, int(value)], key=jax.random.key(0), steps=3, progress=False)
        syn.controversial(s, other, [(int(value) % 5, 1)], steps=2, key=jax.random.key(0))

    probes(subject, 1.0)
    with at_most_traces(0):
        probes(other, 2.0)
        probes(subject, 3.0)


def test_relu_override_is_part_of_the_compile_key(tiny_convnet, images):
    """``run`` compiled without the redirected-ReLU override is not reused inside one, and vice versa."""
    from insilico.models import relu_gradient_override

    params = jax.tree.map(lambda a: a, tiny_convnet.params)
    params["fc1"]["dense"]["bias"] = params["fc1"]["dense"]["bias"].at[0].set(-100.0)     # a dead unit
    dead = tiny_convnet.replace(variables={**tiny_convnet.variables, "params": params})

    def grad(on):
        def f(x):                                   # lowering the unit: a negative cotangent at its ReLU
            return -el.run(dead, x, record="fc1")[1]["fc1"][:, 0].sum()
        if on:
            with relu_gradient_override(1.0):
                return np.asarray(jax.grad(f)(images))
        return np.asarray(jax.grad(f)(images))

    plain, redirected, plain_again = grad(False), grad(True), grad(False)
    assert np.all(plain == 0) and np.all(plain_again == 0)
    assert np.abs(redirected).max() > 0


@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn"])
def test_replacement_weights_of_another_shape_are_refused(kind):
    """Weights passed to run (variables=...) or Subject.replace must have the model's shapes: Linen checks them
    itself; for NNX the subject does (nnx.merge would take a (1,) bias for a (C,) one and broadcast it)."""
    from insilico.subject import SubjectError

    s = _subject(kind)
    x = images(s, 2)
    paths = jax.tree_util.tree_flatten_with_path(s.variables)[0]
    target = next(p for p, a in paths if np.ndim(a) == 1)                     # a bias or a scale
    wrong = jax.tree_util.tree_map_with_path(lambda p, a: a[:1] if p == target else a, s.variables)
    with pytest.raises((SubjectError, ValueError), match="shape"):
        el.run(s, x, variables=wrong)
    scaled = jax.tree.map(lambda a: a * 1.5, s.variables)                    # the same shapes: fine
    assert np.isfinite(np.asarray(el.run(s, x, variables=scaled)[0])).all()


def test_an_nnx_model_takes_a_key_of_another_type_than_its_streams():
    """The model's streams are threefry keys; a caller's rbg key (the demo's) reseeds them in their own type."""
    class Dropping(nnx.Module):
        def __init__(self, rngs):
            self.fc, self.drop = nnx.Linear(12, 3, rngs=rngs), nnx.Dropout(0.5, rngs=rngs)

        def __call__(self, x):
            return self.drop(self.fc(x.reshape(x.shape[0], -1)))

    s = make_subject("dropping", Dropping(nnx.Rngs(0)), None, InputSpec((2, 2, 3)))
    x = jax.random.uniform(jax.random.key(0), (4, 2, 2, 3))
    a = el.run(s, x, key=jax.random.key(3, impl="rbg"))[0]
    b = el.run(s, x, key=jax.random.key(3, impl="rbg"))[0]
    assert a.shape == (4, 3) and np.array_equal(np.asarray(a), np.asarray(b))       # reproducible
    assert np.isfinite(np.asarray(el.run(s, x, key=jax.random.key(3))[0])).all()
