import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico import zoo
from insilico.train import evaluate

TRAINED = ["cifar_convnet", "cifar_resnet", "mnist_convnet"]


@pytest.mark.parametrize("name", TRAINED)
def test_bundled_weights_load(name):
    s = zoo.load(name)
    assert s.meta["trained"] and s.meta["command"].startswith("python experiments/train_zoo.py")
    assert list(s.sites)[-1] == "logits" and s.sites["logits"] == (10,)
    x = jnp.full((2, *s.input_spec.shape), 0.5)
    out, rec = el.record(s, x, "logits")
    np.testing.assert_allclose(out, s.model.apply(s.variables, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out, rec["logits"])


def test_untrained_controls_are_deterministic_and_differ():
    a = zoo.load("cifar_convnet_untrained")
    assert not a.meta["trained"]
    fresh = zoo.RECIPES["cifar_convnet"].model.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    for p, q in zip(jax.tree.leaves(a.variables), jax.tree.leaves(fresh)):
        np.testing.assert_array_equal(p, q)
    trained = zoo.load("cifar_convnet")
    assert not np.allclose(a.params["conv1"]["conv"]["kernel"], trained.params["conv1"]["conv"]["kernel"])


def test_unknown_model_lists_available():
    with pytest.raises(KeyError, match=r"unknown zoo model 'alexnet'; available: .*mnist_convnet"):
        zoo.load("alexnet")


@pytest.mark.parametrize("name,split,threshold", [("cifar_convnet", "test", 0.75), ("cifar_resnet", "test", 0.75),
                                                  ("mnist_convnet", "heldout", 0.97)])
def test_bundled_accuracy(data_dir, name, split, threshold):
    from insilico.data import cifar10, mnist_test

    data = cifar10(split) if name.startswith("cifar") else mnist_test(split)
    s = zoo.load(name)
    acc = evaluate(s.model, s.variables, data.x, data.y)
    assert acc >= threshold
    assert acc == pytest.approx(s.meta["test_accuracy"], abs=1e-3)      # the recorded number is reproduced
