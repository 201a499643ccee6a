import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico.models import MLP, VGG, ConvNet, ResNet, build_model, model_spec
from insilico.subject import InputSpec, make_subject

X = jnp.ones((2, 16, 16, 3))


@pytest.mark.parametrize("model,sites", [
    (ConvNet(widths=(4, 8, 8), kernels=(5, 3, 3), pools=("max", None, "avg"), fc=(6, 5)),
     {"conv1": (16, 16, 4), "conv2": (8, 8, 8), "conv3": (8, 8, 8), "fc1": (6,), "fc2": (5,), "logits": (10,)}),
    (VGG(blocks=((4, 4), (8,)), fc=(6,), num_classes=3),
     {"conv1_1": (16, 16, 4), "conv1_2": (16, 16, 4), "conv2_1": (8, 8, 8), "fc1": (6,), "logits": (3,)}),
    (ResNet(depth=14, widths=(4, 8, 8), num_classes=3),
     {"conv1": (16, 16, 4), "stage1/block1": (16, 16, 4), "stage1/block2": (16, 16, 4), "stage2/block1": (8, 8, 8),
      "stage2/block2": (8, 8, 8), "stage3/block1": (4, 4, 8), "stage3/block2": (4, 4, 8), "logits": (3,)}),
    (MLP(widths=(7, 5), num_classes=2), {"fc1": (7,), "fc2": (5,), "logits": (2,)}),
])
def test_models_sites_and_specs(model, sites):
    v = model.init(jax.random.PRNGKey(0), X)
    s = make_subject("m", model, v, InputSpec((16, 16, 3)))
    assert s.sites == sites and list(s.sites) == list(sites)
    assert model.apply(v, X).shape == (2, sites["logits"][0])
    assert build_model(model_spec(model)) == model


def test_sites_are_post_relu():
    model = ConvNet(widths=(4,), fc=(6,), num_classes=3)
    v = model.init(jax.random.PRNGKey(0), X)
    from insilico import electrode as el
    s = make_subject("m", model, v, InputSpec((16, 16, 3)))
    _, rec = el.record(s, jax.random.uniform(jax.random.PRNGKey(1), X.shape), ["conv1", "fc1", "logits"])
    assert float(rec["conv1"].min()) == 0.0 and float(rec["fc1"].min()) >= 0.0
    assert float(rec["logits"].min()) < 0.0                   # the readout is linear


def test_dropout_only_in_training():
    model = MLP(widths=(32,), num_classes=3, dropout=0.5)
    v = model.init(jax.random.PRNGKey(0), X)
    a, b = model.apply(v, X), model.apply(v, X)
    np.testing.assert_array_equal(a, b)
    t1 = model.apply(v, X, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    t2 = model.apply(v, X, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(t1, t2)


def test_bad_configs():
    with pytest.raises(ValueError, match="6n\\+2"):
        ResNet(depth=10).init(jax.random.PRNGKey(0), X)
    with pytest.raises(ValueError, match=r"widths \(2\), kernels \(3\)"):
        ConvNet(widths=(4, 4), kernels=(3, 3, 3)).init(jax.random.PRNGKey(0), X)


@pytest.mark.parametrize("model, message", [
    (lambda: ConvNet(widths=(0, 16)), "features must be an integer ≥ 1; got 0"),
    (lambda: ConvNet(kernels=0), "kernel must be an integer ≥ 1; got 0"),
    (lambda: ConvNet(std=(0.0,)), "std must be > 0 for every channel"),
    (lambda: ConvNet(noise=-1.0), "noise must be a standard deviation ≥ 0; got -1.0"),
    (lambda: MLP(dropout=1.5), r"dropout must be in \[0, 1\); got 1.5"),
    (lambda: MLP(dropout=-0.5), r"dropout must be in \[0, 1\); got -0.5"),
    (lambda: MLP(num_classes=0), "num_classes must be an integer ≥ 1; got 0"),
])
def test_model_fields_are_checked_at_init(model, message):
    """A zero width failed deep in an initializer (division by zero), a dropout of 1.5 zeroed every unit, a noise
    of -1 or a dropout of -0.5 were silently none, a std of 0 gave NaN."""
    with pytest.raises(ValueError, match=message):
        model().init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
