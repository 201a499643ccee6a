import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insilico import electrode as el
from insilico import zoo
from insilico.models import ConvNet, ResNet
from insilico.train import (
    CheckpointError,
    evaluate,
    init_variables,
    load_checkpoint,
    save_checkpoint,
)
from insilico.validation import ArgumentError

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


@pytest.mark.parametrize("model, shape", [
    (ResNet(depth=8, widths=(4, 6, 8), num_classes=5), (8, 8, 3)),
    (ConvNet(widths=(4, 6), kernels=(5, 3), fc=(8,), num_classes=5, mean=(0.4,), std=(0.3,)), (12, 12, 1)),
])
def test_compiled_initialization_is_bit_identical_to_the_eager_one(model, shape):
    for key in (jax.random.PRNGKey(0), jax.random.PRNGKey(7)):
        compiled = zoo._initial_variables(model, shape, key)
        eager = init_variables(model, shape, key, eager=True)
        assert jax.tree.structure(compiled) == jax.tree.structure(eager)
        for a, b in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    other = zoo._initial_variables(model, shape, jax.random.PRNGKey(1))["params"]
    assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(other), jax.tree.leaves(eager["params"])))


def test_trained_load_reads_the_weights_the_concrete_load_read(caplog):
    """Restored into shapes alone (nothing compiled), the weights equal those restored into initialized arrays."""
    zoo._load.cache_clear()
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        s = zoo.load("mnist_convnet")
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]         # nothing compiled
    concrete, meta = load_checkpoint(zoo.WEIGHTS_DIR / "mnist_convnet.ckpt",
                                     zoo.load("mnist_convnet_untrained").variables)
    assert jax.tree.structure(s.variables) == jax.tree.structure(concrete)
    for a, b in zip(jax.tree.leaves(s.variables), jax.tree.leaves(concrete)):
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert s.meta["test_accuracy"] == meta["test_accuracy"] and s.sites == zoo.load("mnist_convnet_untrained").sites


def test_restoring_into_shapes_keeps_every_check(tmp_path):
    abstract = zoo.abstract_subject("mnist_convnet").variables
    assert all(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(abstract))
    variables = jax.tree.map(np.array, zoo.load("mnist_convnet").variables)
    as_int = jax.tree.map(np.array, variables)
    as_int["params"]["conv1"]["conv"]["kernel"] = as_int["params"]["conv1"]["conv"]["kernel"].astype(np.int32)
    with pytest.raises(CheckpointError, match=r"does not match the model: /params/conv1/conv/kernel: dtype int32 "
                                              r"\(integer\) in checkpoint, float32 \(floating-point\) in model$"):
        load_checkpoint(save_checkpoint(tmp_path / "int.ckpt", as_int), abstract)
    variables["params"]["fc1"]["dense"]["bias"][3] = np.inf
    with pytest.raises(CheckpointError, match=r"NaN or inf values \(/params/fc1/dense/bias: 1 of 128\)"):
        load_checkpoint(save_checkpoint(tmp_path / "inf.ckpt", variables), abstract)
    del variables["params"]["fc1"]
    with pytest.raises(CheckpointError, match="/params/fc1: missing in checkpoint"):
        load_checkpoint(save_checkpoint(tmp_path / "less.ckpt", variables), abstract)
    other = zoo.abstract_subject("cifar_convnet").variables
    with pytest.raises(CheckpointError, match=r"/batch_stats/conv3: missing in checkpoint; /batch_stats/conv1/bn/mean: "
                                              r"shape \(16,\) in checkpoint, \(32,\) in model"):
        load_checkpoint(zoo.WEIGHTS_DIR / "mnist_convnet.ckpt", other)


def test_weights_path_checks_without_loading(tmp_path):
    assert zoo.weights_path("mnist_convnet") == zoo.WEIGHTS_DIR / "mnist_convnet.ckpt"
    assert zoo.weights_path("mnist_convnet_untrained") is None
    with pytest.raises(zoo.UnknownModelError, match="unknown zoo model 'vgg99'; available: cifar_convnet"):
        zoo.weights_path("vgg99")
    with pytest.raises(ArgumentError, match=f"no checkpoint at {tmp_path}/mnist_convnet.ckpt"):
        zoo.weights_path("mnist_convnet", tmp_path)


def test_a_changed_recipe_is_loaded_anew(monkeypatch):
    from dataclasses import replace

    before = zoo.load("mnist_convnet_untrained")
    recipe = zoo.RECIPES["mnist_convnet"]
    monkeypatch.setitem(zoo.RECIPES, "mnist_convnet", replace(recipe, model=recipe.model.clone(widths=(4, 8))))
    after = zoo.load("mnist_convnet_untrained")
    assert after.sites["conv1"][-1] == 4 and before.sites["conv1"][-1] != 4
    monkeypatch.setitem(zoo.RECIPES, "mnist_convnet", recipe)
    assert zoo.load("mnist_convnet_untrained") is before                   # the same recipe: the cached subject
