"""Factored lesion sweeps (a lesion propagated only to the first linear map after its site) equal the whole
network run per lesion — on the zoo, user Linen/NNX models and a network imported from PyTorch — and a NumPy
and a PyTorch reference; where the structure does not apply the sweep falls back and says why."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_any_model import _subject, images
from tracing import at_most_traces
from user_models import np_cnn

from insilico import electrode as el
from insilico import zoo
from insilico.probes.lesion import ablation_curve, mask_sweep, single_unit_sweep
from insilico.validation import ArgumentError


def _same(a, b, names=("agreement", "accuracy", "logit_change", "loss")):
    """Two sweeps' metrics: fractions of images exactly equal, mean |Δ logit| and loss to float rounding."""
    for name in names:
        if name not in a:
            continue
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if name in ("agreement", "accuracy"):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(y).max()), err_msg=name)


def _both(subject, x, site, **kw):
    a = single_unit_sweep(subject, x, site, progress=False, **kw)
    b = single_unit_sweep(subject, x, site, progress=False, method="plain", **kw)
    return a, b


@pytest.mark.parametrize("name", ["cifar_convnet", "cifar_resnet", "mnist_convnet"])
def test_every_zoo_site_equals_the_whole_network(name):
    subject = zoo.load(name)
    x = images(subject, 12)
    labels = np.arange(12) % subject.n_outputs
    for site in subject.sites:
        n = subject.sites[site][-1]
        a, b = _both(subject, x, site, labels=labels, units=np.arange(min(n, 12)))
        _same(a, b)
        assert b.attrs["propagation"] == "whole network per lesion (method='plain')"
        if site == "logits":
            assert a.attrs["propagation"].startswith("whole network per lesion: no linear map after logits")
        else:                  # every other site of the zoo reaches a dense layer or convolution channel-wise
            assert a.attrs["propagation"].startswith("factored at the first linear map"), (site, a.attrs)


@pytest.mark.parametrize("kind", ["linen_cnn", "nnx_cnn", "nnx_resnet", "torchvision"])
def test_user_and_imported_models_equal_the_whole_network(kind):
    subject = _subject(kind)
    x = images(subject, 6)
    names = list(subject.sites)
    sites = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, 5).round().astype(int))]
    factored = 0
    for site in sites:
        a, b = _both(subject, x, site, units=np.arange(min(subject.sites[site][-1], 6)))
        _same(a, b)
        factored += a.attrs["propagation"].startswith("factored")
    assert factored >= len(sites) // 2, kind


def test_numpy_reference_of_a_user_cnn():
    """Against an independent float64 NumPy forward pass with the channel zeroed."""
    subject = _subject("linen_cnn")
    x = images(subject, 8)
    intact = np_cnn(subject.variables, np.asarray(x))["out"]
    for site in ("conv1", "act1", "conv2"):
        ds = single_unit_sweep(subject, x, site, progress=False, method="factored")
        for c in range(subject.sites[site][-1]):
            out = np_cnn(subject.variables, np.asarray(x), lesion={site: c})["out"]
            np.testing.assert_allclose(float(ds.logit_change[c]), np.abs(out - intact).mean(), rtol=1e-4, atol=1e-6)
            assert float(ds.agreement[c]) == np.mean(out.argmax(-1) == intact.argmax(-1))


def test_pytorch_reference_of_an_imported_alexnet():
    """Adaptive average pooling and max pooling between conv5 and fc6: zeroing a channel in PyTorch."""
    torch = pytest.importorskip("torch")
    from test_torch_import import TorchAlexNet, _random_net

    from insilico.interop.torch_import import load_state_dict
    net = _random_net(TorchAlexNet, 0, 10)
    subject = load_state_dict("alexnet", net.state_dict(), input_shape=(80, 80, 3))
    x = np.random.default_rng(0).uniform(0, 1, (4, 80, 80, 3)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    t = torch.tensor(np.transpose((x - mean) / std, (0, 3, 1, 2)), dtype=torch.float32)
    units = np.arange(0, 256, 37)
    ds = single_unit_sweep(subject, x, "conv5", units=units, progress=False, method="factored")
    assert "reduce_window_max" in ds.attrs["propagation"] and "dot_general" in ds.attrs["propagation"]
    with torch.no_grad():
        intact = net(t).numpy()
        for i, c in enumerate(units):
            hook = net.features[11].register_forward_hook(
                lambda _m, _i, out, c=c: out.index_fill(1, torch.tensor([int(c)]), 0.0))
            out = net(t).numpy()
            hook.remove()
            scale = np.abs(out - intact).mean()
            np.testing.assert_allclose(float(ds.logit_change[i]), scale, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["mean", "noise"])
def test_mean_and_noise_ablation(mode):
    subject = zoo.load("cifar_convnet")
    x = images(subject, 8)
    kw = {"key": jax.random.key(3)} if mode == "noise" else {}
    for site in ("conv2", "conv3"):
        a, b = _both(subject, x, site, mode=mode, units=np.arange(16), **kw)
        assert a.attrs["propagation"].startswith("factored")
        _same(a, b)


def test_group_lesions_and_ablation_curves():
    subject = zoo.load("cifar_convnet")
    x = images(subject, 8)
    labels = np.arange(8) % 10
    masks = (jax.random.uniform(jax.random.key(1), (20, 128)) < 0.3).astype(jnp.float32)
    a = mask_sweep(subject, x, "conv3", masks, labels=labels, progress=False)
    b = mask_sweep(subject, x, "conv3", masks, labels=labels, progress=False, method="plain")
    assert a.attrs["propagation"].startswith("factored")
    _same(a, b)
    orders = {"random": np.stack([np.random.default_rng(i).permutation(64) for i in range(3)])}
    a = ablation_curve(subject, x, "conv2", orders, labels=labels, progress=False)
    b = ablation_curve(subject, x, "conv2", orders, labels=labels, progress=False, method="plain")
    _same(a, b)


def test_falls_back_and_says_why():
    subject = zoo.load("cifar_convnet")
    x = images(subject, 4)
    ds = single_unit_sweep(subject, x, "conv3", spatial=True, units=np.arange(4), progress=False)
    assert ds.attrs["propagation"].startswith("whole network per lesion: single units")
    ds = single_unit_sweep(subject, x, ["conv2", "conv3"], units=np.arange(4), progress=False)
    assert "several sites" in ds.attrs["propagation"]
    ds = mask_sweep(subject, x, "conv3", 0.5 * jnp.ones((2, 128)), progress=False)
    assert "not 0/1 channel masks" in ds.attrs["propagation"]
    ds = single_unit_sweep(subject, x, "conv2", units=np.arange(2), progress=False, memory_budget=2e5)
    assert "GB (limit" in ds.attrs["propagation"]
    with pytest.raises(ArgumentError, match="method='factored' does not apply here: several sites"):
        single_unit_sweep(subject, x, ["conv2", "conv3"], progress=False, method="factored")
    with pytest.raises(ArgumentError, match="method must be one of 'auto', 'factored', 'plain'; got 'sideways'"):
        single_unit_sweep(subject, x, "conv3", progress=False, method="sideways")


def test_new_weights_reuse_the_plan_and_compile_nothing():
    subject = zoo.load("cifar_convnet")
    x = images(subject, 8)
    a = single_unit_sweep(subject, x, "conv3", units=np.arange(8), progress=False)
    other = subject.replace(variables=jax.tree.map(lambda v: v * 1.01, subject.variables))
    with at_most_traces(0):
        b = single_unit_sweep(other, x, "conv3", units=np.arange(8), progress=False)
    assert not np.array_equal(a.logit_change, b.logit_change)
    _same(b, single_unit_sweep(other, x, "conv3", units=np.arange(8), progress=False, method="plain"))


def test_a_new_image_count_in_the_same_bucket_compiles_nothing():
    """Images are padded to batch-size buckets (…, 192, 256, 384, …) and the padding weighs nothing."""
    subject = zoo.load("cifar_convnet")
    x = images(subject, 24)
    labels = np.arange(24) % 10
    for method in ("auto", "plain"):
        single_unit_sweep(subject, x[:20], "conv3", labels=labels[:20], units=np.arange(4), method=method,
                          progress=False)
        with at_most_traces(0):
            ds = single_unit_sweep(subject, x[:17], "conv3", labels=labels[:17], units=np.arange(4), method=method,
                                   progress=False)
        assert ds.attrs["n_images"] == 17
        out, _ = el.run(subject, x[:17])
        lesioned, _ = el.run(subject, x[:17], {"conv3": el.lesion(jnp.zeros(128).at[2].set(1))})
        np.testing.assert_allclose(float(ds.logit_change[2]), float(jnp.abs(lesioned - out).mean()), rtol=1e-5)
        assert float(ds.accuracy[2]) == float(jnp.mean(lesioned.argmax(-1) == labels[:17]))
        assert ds.attrs["intact_accuracy"] == float(jnp.mean(out.argmax(-1) == labels[:17]))


def test_a_silenced_layer_breaks_ties_as_the_whole_network():
    """Every channel ablated leaves an untrained network (zero biases) with logits exactly 0 on the plain path,
    argmax class 0; the intact output plus every channel's change left a residue of 1e-8 that picked a class
    at random, and the accuracy differed."""
    subject = zoo.load("cifar_resnet_untrained")
    x = images(subject, 16)
    labels = np.arange(16) % 10
    orders = {"random": np.stack([np.random.default_rng(i).permutation(64) for i in range(2)])}
    a = ablation_curve(subject, x, "stage3/block1", orders, labels=labels, fractions=[0.5, 1.0], progress=False)
    b = ablation_curve(subject, x, "stage3/block1", orders, labels=labels, fractions=[0.5, 1.0], progress=False,
                       method="plain")
    assert a.attrs["propagation"].startswith("factored")
    _same(a, b)


def test_sweeps_refuse_repeated_sites_and_pad_inside_the_bounds():
    from insilico.subject import InputSpec, make_subject

    subject = zoo.load("mnist_convnet")
    x = images(subject, 4)
    with pytest.raises(ArgumentError, match="site names each site once; got 'fc1' more than once"):
        single_unit_sweep(subject, x, ["fc1", "fc1"], progress=False)
    with pytest.raises(ArgumentError, match="site must be a site name or a list of site names; got 3"):
        single_unit_sweep(subject, x, 3, progress=False)
    # a subject whose pixel range excludes 0: 9 images are padded to 12 with copies, not zeros
    tight = make_subject("tight", subject.model, subject.variables, InputSpec((28, 28, 1), (0.2, 1.0)))
    x9 = 0.2 + 0.8 * np.asarray(jax.random.uniform(jax.random.key(3), (9, 28, 28, 1)))
    a = single_unit_sweep(tight, x9, "conv2", units=[0, 5], progress=False)
    loop = [np.abs(np.asarray(el.run(tight, x9, {"conv2": el.lesion(jnp.zeros(32).at[u].set(1))})[0])
                   - np.asarray(el.run(tight, x9)[0])).mean() for u in (0, 5)]
    np.testing.assert_allclose(a.logit_change.values, loop, rtol=1e-5)
    with pytest.raises(ValueError, match=r"x must lie in tight's pixel bounds"):
        single_unit_sweep(tight, x9 - 0.2, "conv2", progress=False)


def test_masks_of_another_width_go_the_plain_way_and_sizes_are_checked():
    subject = zoo.load("cifar_convnet")
    x = images(subject, 4)
    masks = jnp.array([[1.0], [0.0]])                 # (M, 1): broadcast over the channels
    a = mask_sweep(subject, x, "conv3", masks, progress=False)
    assert a.attrs["propagation"].startswith("whole network") and a.agreement.values.tolist()[1] == 1.0
    with pytest.raises(ArgumentError, match="memory_budget must be a number > 0"):
        mask_sweep(subject, x, "conv3", masks, progress=False, memory_budget=-1)
    with pytest.raises(ArgumentError, match=r"coords must give one coordinate per item \(2\)"):
        mask_sweep(subject, x, "conv3", masks, progress=False, coords=[1, 2, 3])
