"""The electrode's recordings and lesions equal PyTorch forward hooks on the same weights."""
import jax
import numpy as np
import pytest

from insilico import electrode as el
from insilico import zoo

torch = pytest.importorskip("torch", reason="PyTorch reference tests need `pip install torch`")
from insilico.interop.torch_port import to_nchw, to_torch  # noqa: E402


@pytest.mark.parametrize("name", ["mnist_convnet", "cifar_resnet_untrained", "cifar_convnet"])
def test_recordings_equal_torch_hooks(name):
    s = zoo.load(name)
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (8, *s.input_spec.shape)))
    model = to_torch(s)
    store = {}
    for site, m in model.sites().items():
        m.register_forward_hook(lambda mod, inp, out, site=site: store.__setitem__(site, out.detach().numpy()))
    with torch.no_grad():
        out = model(to_nchw(x)).numpy()
    jout, rec = el.record(s, x)
    assert set(store) == set(rec)
    for site, a in rec.items():
        t = store[site] if a.ndim == 2 else np.transpose(store[site], (0, 2, 3, 1))
        np.testing.assert_allclose(np.asarray(a), t, rtol=1e-4, atol=1e-4, err_msg=site)
    np.testing.assert_allclose(np.asarray(jout), out, rtol=1e-4, atol=1e-4)


def test_lesion_equals_torch_zeroing_hook():
    s = zoo.load("mnist_convnet")
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (8, 28, 28, 1)))
    model = to_torch(s)

    def zero5(mod, inp, out):
        out = out.clone()
        out[:, 5] = 0
        return out

    model.sites()["conv2"].register_forward_hook(zero5)
    with torch.no_grad():
        ref = model(to_nchw(x)).numpy()
    out, _ = el.run(s, x, {"conv2": el.lesion(np.eye(32)[5])})
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-4)


def test_resnet_twin_pads_as_xla_at_odd_sizes_and_unsupported_convnets_are_refused():
    """XLA's "SAME" for stride 2 pads (0, 1) an even size and (1, 1) an odd one: the twin pads from the input."""
    from insilico.models import ConvNet
    from insilico.subject import InputSpec, make_subject

    s = zoo.load("cifar_resnet_untrained")
    odd = make_subject("odd", s.model, s.variables, InputSpec((31, 31, 3)))
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(2), (4, 31, 31, 3)))
    with torch.no_grad():
        ref = to_torch(odd)(to_nchw(x)).numpy()
    np.testing.assert_allclose(np.asarray(el.run(odd, x)[0]), ref, rtol=1e-4, atol=1e-4)
    for settings in ({"pools": "avg"}, {"divisive": True}):
        model = ConvNet(widths=(4,), fc=(8,), num_classes=3, **settings)
        v = model.init(jax.random.PRNGKey(0), np.zeros((1, 8, 8, 3), np.float32))
        with pytest.raises(ValueError, match="no PyTorch twin for this ConvNet"):
            to_torch(make_subject("c", model, v, InputSpec((8, 8, 3))))


@pytest.mark.parametrize("widths", [(8, 16), (8, 16, 16, 16)])
def test_resnet_twin_has_every_stage(widths):
    """The twin builds one stage per width, as the Flax ResNet does (it used to build three, whatever the widths)."""
    from insilico.models import ResNet
    from insilico.subject import InputSpec, make_subject

    model = ResNet(depth=8, widths=widths, num_classes=5)
    v = model.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))
    s = make_subject("r", model, v, InputSpec((16, 16, 3)))
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(3), (2, 16, 16, 3)))
    twin = to_torch(s)
    assert set(twin.sites()) == set(s.sites)
    with torch.no_grad():
        ref = twin(to_nchw(x)).numpy()
    np.testing.assert_allclose(np.asarray(el.run(s, x)[0]), ref, rtol=1e-4, atol=1e-4)
