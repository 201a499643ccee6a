import functools
from dataclasses import replace

import jax
import numpy as np
import pytest

from insilico.data import digits
from insilico.models import MLP, ConvNet, build_model, model_spec
from insilico.train import CheckpointError, TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint
from insilico.train import loop as loop_module
from insilico.train.augment import random_crop, random_flip


@pytest.fixture(scope="module")
def digit_split():
    d = digits()
    return d.subset(slice(0, 1400)), d.subset(slice(1400, None))


CFG = TrainConfig(epochs=3, batch_size=50, lr=0.05, augment="none", weight_decay=1e-4)


@pytest.mark.parametrize("optimizer,lr,epochs", [("sgd", 0.05, 3), ("adam", 1e-2, 5)])
def test_fit_learns_digits(digit_split, optimizer, lr, epochs):
    train, test = digit_split
    model = ConvNet(widths=(8,), kernels=3, fc=(32,), num_classes=10)
    result = fit(model, train, test, replace(CFG, optimizer=optimizer, lr=lr, epochs=epochs), progress=False)
    assert len(result.history) == epochs
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert evaluate(model, result.variables, test.x, test.y) > 0.85


def test_interrupted_training_resumes_to_the_same_weights(digit_split, tmp_path, monkeypatch):
    train, test = digit_split
    model = MLP(widths=(32,), num_classes=10)
    full = fit(model, train, test, CFG, progress=False)
    calls = {"n": 0}
    real_evaluate = loop_module.evaluate

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*a, **k)

    monkeypatch.setattr(loop_module, "evaluate", interrupting)
    with pytest.raises(KeyboardInterrupt):
        fit(model, train, test, CFG, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(loop_module, "evaluate", real_evaluate)
    resumed = fit(model, train, test, CFG, checkpoint_dir=tmp_path, progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(jax.tree.leaves(full.variables), jax.tree.leaves(resumed.variables)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    with pytest.raises(CheckpointError, match=r"another training run.*the model's widths \(\[32\] in the checkpoint, "
                                              r"\[16\] now\)"):
        fit(MLP(widths=(16,), num_classes=10), train, test, CFG, checkpoint_dir=tmp_path, progress=False)


def test_checkpoint_roundtrip_and_errors(tmp_path):
    model = ConvNet(widths=(4,), fc=(), num_classes=3)
    v = model.init(jax.random.PRNGKey(0), np.zeros((1, 8, 8, 1), np.float32))
    path = save_checkpoint(tmp_path / "a.ckpt", v, {"note": "x"})
    restored, meta = load_checkpoint(path, v)
    assert meta == {"note": "x"}
    for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(restored)):
        np.testing.assert_array_equal(a, b)
    other = ConvNet(widths=(5,), fc=(), num_classes=3).init(jax.random.PRNGKey(0), np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(CheckpointError, match=r"does not match the model: .*conv1/conv/kernel: shape \(3, 3, 1, 4\)"):
        load_checkpoint(path, other)
    raw = path.read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(raw[:-10])
    with pytest.raises(CheckpointError, match="corrupt: payload checksum mismatch"):
        load_checkpoint(tmp_path / "trunc.ckpt", v)
    epoch = save_checkpoint(tmp_path / "e.ckpt", v, {"epoch": 3}).read_bytes()
    (tmp_path / "e9.ckpt").write_bytes(epoch.replace(b'"epoch": 3', b'"epoch": 9'))     # the same length
    with pytest.raises(CheckpointError, match="its header .* was modified"):
        load_checkpoint(tmp_path / "e9.ckpt", v)
    (tmp_path / "junk.ckpt").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not an insilico checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt", v)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.ckpt", v)


def test_augmentations_are_per_sample():
    x = np.tile(np.arange(8, dtype=np.float32)[None, None, :, None], (64, 8, 1, 1))
    flipped = np.asarray(random_flip(jax.random.PRNGKey(0), x))
    n_flipped = int((flipped[:, 0, 0, 0] == 7).sum())
    assert 16 < n_flipped < 48                                 # ~half, drawn independently per sample
    crops = np.asarray(random_crop(jax.random.PRNGKey(1), x, pad=2))
    assert crops.shape == x.shape and len({c.tobytes() for c in crops}) > 1


def test_model_spec_roundtrip():
    m = ConvNet(widths=(8, 16), kernels=(5, 3), fc=(32,), num_classes=7)
    assert build_model(model_spec(m)) == m
    with pytest.raises(ValueError, match="unknown model class 'Foo'"):
        build_model({"class": "Foo", "config": {}})


def test_unknown_optimizer(digit_split):
    with pytest.raises(ValueError, match="TrainConfig.optimizer must be one of 'sgd', 'adam'; got 'rmsprop'"):
        fit(MLP(widths=(8,)), digit_split[0], None, replace(CFG, optimizer="rmsprop"), progress=False)


def test_a_checkpoint_without_the_constants_field_still_resumes(digit_split, tmp_path):
    """Training states gained ``constants`` (e.g. feedback matrices); checkpoints written without the field load
    into a state that leaves it empty."""
    from flax import serialization

    from insilico.train.checkpoint import _read

    train, test = digit_split
    model = MLP(widths=(16,), num_classes=10)
    cfg = replace(CFG, epochs=1)
    first = fit(model, train, test, cfg, checkpoint_dir=tmp_path, progress=False)
    path = tmp_path / "last.ckpt"
    header, payload = _read(path)
    raw = serialization.msgpack_restore(payload)
    assert "constants" in raw
    save_checkpoint(path, {k: v for k, v in raw.items() if k != "constants"}, header["meta"])
    again = fit(model, train, test, cfg, checkpoint_dir=tmp_path, progress=False)
    assert again.history == first.history


def test_nonfinite_weights_are_named_by_their_flax_paths():
    """The "a/b/c" paths that name non-finite weights are flax's (``flatten_dict(params, sep="/")``, in the
    order of the tree's leaves), and an optimizer state's continue them under the optax state that holds them."""
    import jax.numpy as jnp
    from flax.traverse_util import flatten_dict, unflatten_dict

    from insilico import zoo
    from insilico.train import init_variables, make_optimizer

    recipe = zoo.RECIPES["mnist_convnet"]
    params = init_variables(recipe.model, recipe.input_spec.shape, jax.random.PRNGKey(0), eager=True)["params"]
    flat = flatten_dict(params, sep="/")
    all_bad = jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), params)
    leaf_order = [jax.tree_util.keystr(p, simple=True, separator="/")
                  for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    assert sorted(leaf_order) == sorted(flat)
    assert loop_module._nonfinite_paths(all_bad) == leaf_order
    assert loop_module._nonfinite_paths(params) == []
    one = sorted(flat)[len(flat) // 2]
    poisoned = unflatten_dict({k: np.full(v.shape, np.inf) if k == one else v for k, v in flat.items()}, sep="/")
    assert loop_module._nonfinite_paths(poisoned) == [one]
    opt_state = make_optimizer(CFG, 10).init(all_bad)
    nan_state = jax.tree.map(lambda a: jnp.full_like(a, jnp.nan) if jnp.issubdtype(a.dtype, jnp.inexact) else a,
                             opt_state)
    assert loop_module._nonfinite_paths(nan_state) == [f"1/0/trace/{p}" for p in leaf_order]   # momentum trace


def test_evaluate_compiles_one_predictor_per_model_and_keeps_a_bounded_number(digit_split, monkeypatch):
    import chex

    from insilico.train import evaluation, init_variables

    _, test = digit_split
    model = MLP(widths=(8,), num_classes=10)
    variables = init_variables(model, test.x.shape[1:], jax.random.PRNGKey(0))
    make = evaluation._predictor.__wrapped__
    traced = functools.lru_cache(maxsize=4)(lambda m: chex.assert_max_traces(make(m), n=1))
    monkeypatch.setattr(evaluation, "_predictor", traced)
    first = evaluate(model, variables, test.x, test.y, batch_size=len(test.x))     # traced once ...
    assert evaluate(model, variables, test.x, test.y, batch_size=len(test.x)) == first   # ... and never again
    assert evaluate(MLP(widths=(8,), num_classes=10), variables, test.x, test.y, batch_size=len(test.x)) == first
    monkeypatch.undo()
    evaluation._predictor.cache_clear()
    predict = evaluation._predictor(model)
    assert predict is evaluation._predictor(MLP(widths=(8,), num_classes=10))     # an equal model: the same one
    size = evaluation.PREDICTOR_CACHE_SIZE
    for width in range(9, 9 + size + 5):                                           # more models than are kept
        evaluation._predictor(MLP(widths=(width,), num_classes=10))
    info = evaluation._predictor.cache_info()
    assert info.maxsize == size and info.currsize == size
    assert evaluation._predictor(model) is not predict                             # the oldest was dropped


def test_objectives_and_sparse_coding_check_their_settings():
    from insilico.train.objectives import Classification, Contrastive, Slowness, SparseAutoencoder, sparse_coding
    from insilico.validation import ArgumentError

    for make, match in [(lambda: Classification(label_smoothing=2.0), "label_smoothing"),
                        (lambda: Contrastive(temperature=-1.0), "temperature"),
                        (lambda: Contrastive(temperature=0.0), "temperature"),
                        (lambda: Contrastive(augment="none"), "augmentation"),
                        (lambda: SparseAutoencoder(l1=-5.0), "l1"),
                        (lambda: Slowness(shift=0), "shift"),
                        (lambda: sparse_coding(np.ones((8, 4)), 2, key=jax.random.key(0), batch_size=0),
                         "batch_size"),
                        (lambda: sparse_coding(np.ones((8, 4)), 0, key=jax.random.key(0)), "n_atoms"),
                        (lambda: sparse_coding(np.ones((8, 4)), 2, key=jax.random.key(0), lam=-1.0), "lam"),
                        (lambda: sparse_coding(np.ones((8, 4)), 2, key=None), "key")]:
        with pytest.raises(ArgumentError, match=match):
            make()
    assert Classification(label_smoothing=0.0).label_smoothing == 0.0
