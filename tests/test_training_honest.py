"""Training refuses to lie: a resumed run is the run that wrote the checkpoint, a diverged run stops at the step
that diverged and leaves the last good checkpoint alone, retrained zoo weights go where the user says, and bad
arguments are named."""
import re
from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from insilico import zoo
from insilico.data import Dataset
from insilico.models import MLP
from insilico.subject import InputSpec
from insilico.train import (CheckpointError, TrainConfig, TrainingDivergedError, evaluate, fit, load_checkpoint,
                            make_optimizer, read_meta, save_checkpoint)
from insilico.train.checkpoint import _read
from insilico.train.objectives import Classification
from insilico.validation import ArgumentError

CLASSES = ("a", "b", "c", "d")
MODEL = MLP(widths=(8,), num_classes=4)
CFG = TrainConfig(epochs=1, batch_size=10, lr=1e-2, optimizer="adam", augment="none", weight_decay=0.0)


def toy(n=40, seed=0, name="toy"):
    rng = np.random.default_rng(seed)
    return Dataset(rng.uniform(size=(n, 4, 4, 1)).astype(np.float32), rng.integers(0, 4, n).astype(np.int32),
                   CLASSES, name)


TRAIN, TEST = toy(), toy(20, seed=1, name="toy test")


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    """The bytes of a checkpoint written by ``fit(MODEL, TRAIN, TEST, CFG)``."""
    d = tmp_path_factory.mktemp("good")
    fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=d, progress=False)
    return (d / "last.ckpt").read_bytes()


def _with(data, x=None, y=None, name=None):
    return Dataset(data.x if x is None else x, data.y if y is None else y, CLASSES, name or data.name)


def _changed_image():
    x = TRAIN.x.copy()
    x[7, 1, 2, 0] += 0.01
    return x


def _changed_label():
    y = TRAIN.y.copy()
    y[3] = (y[3] + 1) % 4
    return y


def _old_format(path):
    """Rewrite a checkpoint's identity the way checkpoints were written before data were hashed."""
    header, payload = _read(path)
    from flax import serialization
    meta = dict(header["meta"], identity={"model": header["meta"]["identity"]["model"],
                                          "config": header["meta"]["identity"]["config"], "train": "toy"})
    save_checkpoint(path, serialization.msgpack_restore(payload), meta)


@dataclass(frozen=True)
class Classification2(Classification):
    """Another objective class with the fields of Classification, named like it (below)."""


Classification2.__name__ = Classification2.__qualname__ = "Classification"


class MLPElsewhere(MLP):
    """A user's model class named like the zoo's MLP, with its fields (another class all the same)."""


MLPElsewhere.__name__ = MLPElsewhere.__qualname__ = "MLP"


# what changes between the run that wrote the checkpoint and the run that resumes it -> what the refusal names
# (None: the same run, which resumes)
RESUMES = {
    "image content, same name": (dict(train=_with(TRAIN, x=_changed_image())), r"the training data: content differs"),
    "label content, same name": (dict(train=_with(TRAIN, y=_changed_label())), r"the training data: content differs"),
    "test data content": (dict(test=_with(TEST, x=TEST.x[::-1].copy())), r"the test data"),
    "objective": (dict(objective=Classification(label_smoothing=0.3)), r"the objective .*0\.3"),
    "objective of another class, same name and fields": (dict(objective=Classification2(CFG.label_smoothing)),
                                                          r"the objective .*objectives\.Classification.*test_training"),
    "model of another class, same name and fields": (dict(model=MLPElsewhere(widths=(8,), num_classes=4)),
                                                     r"the model .*test_training_honest\.MLP"),
    "config": (dict(cfg=replace(CFG, lr=2e-2)), r"config\.lr \(0\.01 in the checkpoint, 0\.02 now\)"),
    "checkpoint of an older format": (dict(mutate=_old_format), r"earlier version of insilico.*cannot be verified"),
    "same content, another name": (dict(train=_with(TRAIN, name="renamed")), None),
    "the default objective, spelled out": (dict(objective=Classification(CFG.label_smoothing)), None),
}


@pytest.mark.parametrize("case", list(RESUMES))
def test_resume_refuses_another_run_and_names_what_differs(case, good_checkpoint, tmp_path):
    change, expected = RESUMES[case]
    (tmp_path / "last.ckpt").write_bytes(good_checkpoint)
    if "mutate" in change:
        change["mutate"](tmp_path / "last.ckpt")
    run = dict(model=MODEL, train=TRAIN, test=TEST, cfg=CFG, objective=None)
    run.update({k: v for k, v in change.items() if k != "mutate"})

    def again(**kw):
        return fit(run["model"], run["train"], run["test"], run["cfg"], checkpoint_dir=tmp_path, progress=False,
                   objective=run["objective"], **kw)

    if expected is None:                                   # the same run: resumed, nothing left to train
        assert again().history == read_meta(tmp_path / "last.ckpt")["history"]
        return
    with pytest.raises(CheckpointError, match=expected) as err:
        again()
    assert "resume=False" in str(err.value) and "another checkpoint_dir" in str(err.value)


# ------------------------------------------------------------------------------------------------ divergence

MARKER = 7                                                   # the training image that poisons its batch


@dataclass(frozen=True)
class PoisonedBatch:
    """Classification whose loss is NaN for a batch holding an image with a pixel above 1.5."""

    uses_labels = True

    def __call__(self, apply, x, y, key):
        loss, metrics = Classification(0.0)(apply, x, y, key)
        return loss + jnp.where(jnp.any(x > 1.5), jnp.nan, 0.0), metrics


@dataclass(frozen=True)
class NaNGradient:
    """Classification whose loss stays finite while its gradient is NaN (d√u/du at u = 0, times 0)."""

    uses_labels = True

    def __call__(self, apply, x, y, key):
        logits, _ = apply(x, key)
        labels = jax.nn.one_hot(y, logits.shape[-1])
        loss = optax.softmax_cross_entropy(logits, labels).mean()
        return loss + jnp.sqrt(jnp.abs(logits.sum()) * 0.0), {}


def _poisoned():
    x = TRAIN.x.copy()
    x[MARKER, 0, 0, 0] = 2.0
    return _with(TRAIN, x=x)


DIVERGENCES = {
    "a NaN loss from one batch": (dict(train=_poisoned(), objective=PoisonedBatch()),
                                  r"loss is nan at epoch 1/1, step \d/4"),
    "an exploding learning rate": (dict(cfg=replace(CFG, epochs=3, lr=1e30, optimizer="sgd", momentum=0.0)),
                                   r"loss is (nan|inf) at epoch \d/3, step \d/4"),
    "NaN weights after a finite loss": (dict(cfg=replace(CFG, batch_size=40), objective=NaNGradient()),
                                        r"after epoch 1/1 \(global step 1\) the training state holds NaN/inf values in "
                                        r"params/"),
}


@pytest.mark.parametrize("case", list(DIVERGENCES))
@pytest.mark.parametrize("check_every", [50, 1])
def test_divergence_stops_at_the_step_and_keeps_the_good_checkpoint(case, check_every, good_checkpoint, tmp_path,
                                                                    monkeypatch):
    from insilico.train import loop

    monkeypatch.setattr(loop, "CHECK_EVERY", check_every)
    change, expected = DIVERGENCES[case]
    (tmp_path / "last.ckpt").write_bytes(good_checkpoint)
    run = {"train": TRAIN, "cfg": CFG, "objective": None, **change}
    with pytest.raises(TrainingDivergedError, match=expected) as err:
        fit(MODEL, run["train"], TEST, run["cfg"], checkpoint_dir=tmp_path, resume=False, progress=False,
            objective=run["objective"])
    assert (tmp_path / "last.ckpt").read_bytes() == good_checkpoint           # no NaN checkpoint over the good one
    e = err.value
    if "one batch" in case:                        # the batch named is the one that holds the poisoned image
        assert MARKER in e.indices and f"{MARKER}" in str(e) and e.batch == e.step - 1
        assert f"batch {e.batch} of the epoch" in str(e)


# ------------------------------------------------------------------------------------------------- the zoo

@pytest.fixture
def toy_recipe(monkeypatch):
    """A zoo recipe small enough to train in a test, on the toy data."""
    monkeypatch.setitem(zoo.RECIPES, "toy_mlp", zoo.Recipe(MODEL, InputSpec((4, 4, 1)), CLASSES, "toy", CFG))
    real = zoo._datasets
    monkeypatch.setattr(zoo, "_datasets", lambda d: (TRAIN, TEST) if d == "toy" else real(d))
    return "toy_mlp"


def _package_weights():
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in zoo.WEIGHTS_DIR.iterdir())


def test_zoo_train_writes_where_told_and_load_reads_it_back(toy_recipe, tmp_path, monkeypatch):
    before = _package_weights()
    monkeypatch.setenv("INSILICO_CACHE", str(tmp_path / "cache"))
    meta = zoo.train(toy_recipe, progress=False)                           # default: the user cache
    path = tmp_path / "cache" / "weights" / "toy_mlp.ckpt"
    assert meta["path"] == str(path) and path.is_file() and zoo.default_weights_dir() == path.parent
    assert _package_weights() == before                                   # the installed package is untouched
    with pytest.raises(KeyError, match="unknown zoo model 'toy_mlp'"):     # shipped weights stay the default
        zoo.load(toy_recipe)
    stored, _ = load_checkpoint(path, jax.device_get(zoo.load("toy_mlp_untrained").variables))
    for where in (path.parent, path, str(path)):                           # a directory or the file itself
        s = zoo.load(toy_recipe, weights=where)
        assert s.meta["weights"] == str(path.resolve()) and s.meta["test_accuracy"] == meta["test_accuracy"]
        for a, b in zip(jax.tree.leaves(s.variables), jax.tree.leaves(stored)):
            np.testing.assert_array_equal(a, b)
    monkeypatch.setitem(zoo.RECIPES, "toy_mlp_dropout",                    # same shapes, another model
                        replace(zoo.RECIPES[toy_recipe], model=MLP(widths=(8,), num_classes=4, dropout=0.5)))
    with pytest.raises(CheckpointError, match="holds weights of another model"):
        zoo.load("toy_mlp_dropout", weights=path)
    rewritten = jax.tree.map(lambda v: v + 1, stored)                      # retrained in place: loaded anew
    save_checkpoint(path, rewritten, read_meta(path))
    again = zoo.load(toy_recipe, weights=path)
    np.testing.assert_array_equal(jax.tree.leaves(again.variables)[0], jax.tree.leaves(rewritten)[0])
    poisoned = jax.tree.map(lambda v: jnp.asarray(v).at[(0,) * v.ndim].set(np.nan), stored)   # valid file, NaN weights
    save_checkpoint(path, poisoned, read_meta(path))
    with pytest.raises(CheckpointError, match="holds NaN or inf values"):
        zoo.load(toy_recipe, weights=path)


def test_zoo_train_quick_form_sets_epochs_and_the_number_of_images(toy_recipe, tmp_path):
    """What experiments/train_zoo.py --quick asks of the zoo (its end-to-end run is marked slow): ``epochs``
    overrides the recipe and ``limit`` trains on that many images, both recorded in the checkpoint's metadata."""
    meta = zoo.train(toy_recipe, tmp_path, epochs=2, limit=25, progress=False)
    stored = read_meta(tmp_path / "toy_mlp.ckpt")
    assert meta["path"] == str(tmp_path / "toy_mlp.ckpt")
    assert stored["train_set"] == meta["train_set"] == f"{TRAIN.name} (25 images)"
    assert stored["train_config"]["epochs"] == 2 and len(stored["history"]) == 2
    assert stored["test_accuracy"] == meta["test_accuracy"] == meta["history"][-1]["test_acc"]
    with pytest.raises(ArgumentError, match="limit"):
        zoo.train(toy_recipe, tmp_path, limit=len(TRAIN.y) + 1, progress=False)

class SmoothedLoss:
    """An objective of a user's own class (not a dataclass: its repr holds its memory address)."""
    uses_labels = True

    def __init__(self, smoothing):
        self.smoothing = smoothing

    def __call__(self, apply, x, y, key):
        return Classification(self.smoothing)(apply, x, y, key)


def test_an_objective_of_a_users_class_is_identified_by_its_attributes(tmp_path):
    """Another instance with the same attributes (another address) resumes; another attribute is refused."""
    first = fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=tmp_path, progress=False, objective=SmoothedLoss(0.0))
    again = fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=tmp_path, progress=False, objective=SmoothedLoss(0.0))
    assert again.history == first.history
    with pytest.raises(CheckpointError, match=r"the objective .*SmoothedLoss\(smoothing=0\.0\).* in the checkpoint, "
                                              r".*SmoothedLoss\(smoothing=0\.2\).* now"):
        fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=tmp_path, progress=False, objective=SmoothedLoss(0.2))


def test_a_checkpoint_of_nan_weights_is_not_resumed(good_checkpoint, tmp_path):
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(good_checkpoint)
    state = serialization.msgpack_restore(_read(ckpt)[1])                      # the stored state, rewritten with
    state["params"] = jax.tree.map(lambda v: np.full_like(v, np.nan), state["params"])   # a valid checksum
    save_checkpoint(ckpt, state, read_meta(ckpt))
    with pytest.raises(CheckpointError, match=r"holds NaN or inf values \(/params/"):
        fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=tmp_path, progress=False)


def test_a_checkpoint_whose_step_count_does_not_match_its_epochs_is_not_resumed(good_checkpoint, tmp_path):
    """The learning-rate schedule resumes from the optimizer's step count: one that is not epochs × steps per
    epoch is another run's state under this run's identity."""
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(good_checkpoint)
    state = serialization.msgpack_restore(_read(ckpt)[1])
    state["step"] = np.asarray(np.asarray(state["step"]) + 3, np.int32)
    save_checkpoint(ckpt, state, read_meta(ckpt))
    with pytest.raises(CheckpointError, match="optimizer steps for .* epochs of .* it does not belong to this run"):
        fit(MODEL, TRAIN, TEST, CFG, checkpoint_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------------------- bad arguments

VARIABLES = jax.device_get(MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1))))


def _nan_images():
    x = TRAIN.x.copy()
    x[5, 0, 0, 0] = np.nan
    return _with(TRAIN, x=x)


def _labels(*values):
    y = TRAIN.y.copy()
    y[:len(values)] = values
    return _with(TRAIN, y=y)


EMPTY = Dataset(np.zeros((0, 4, 4, 1), np.float32), np.zeros(0, np.int32), CLASSES, "empty")

# (call, the argument the error must name, the bad value it must show)
BAD = {
    "epochs 0": (lambda: TrainConfig(epochs=0), "TrainConfig.epochs", "0"),
    "batch_size 0": (lambda: TrainConfig(batch_size=0), "TrainConfig.batch_size", "0"),
    "batch_size 2.5": (lambda: TrainConfig(batch_size=2.5), "TrainConfig.batch_size", "2.5"),
    "lr NaN": (lambda: TrainConfig(lr=float("nan")), "TrainConfig.lr", "nan"),
    "lr 0": (lambda: TrainConfig(lr=0.0), "TrainConfig.lr", "0.0"),
    "lr < 0": (lambda: TrainConfig(lr=-0.1), "TrainConfig.lr", "-0.1"),
    "momentum > 1": (lambda: TrainConfig(momentum=1.5), "TrainConfig.momentum", "1.5"),
    "warmup < 0": (lambda: TrainConfig(warmup=-0.1), "TrainConfig.warmup", "-0.1"),
    "label_smoothing > 1": (lambda: TrainConfig(label_smoothing=2), "TrainConfig.label_smoothing", "2"),
    "weight_decay < 0": (lambda: TrainConfig(weight_decay=-1e-4), "TrainConfig.weight_decay", "-0.0001"),
    "unknown augment": (lambda: TrainConfig(augment="rotate"), "TrainConfig.augment", "'rotate'"),
    "unknown optimizer": (lambda: replace(CFG, optimizer="rmsprop"), "TrainConfig.optimizer", "'rmsprop'"),
    "steps 0": (lambda: make_optimizer(CFG, 0), "steps", "0"),
    "config not a TrainConfig": (lambda: fit(MODEL, TRAIN, None, {"epochs": 1}, progress=False), "cfg", "dict"),
    "label above the class range": (lambda: fit(MODEL, _labels(4), None, CFG, progress=False), "train.y", "[4]"),
    "negative label": (lambda: fit(MODEL, _labels(-1), None, CFG, progress=False), "train.y", "[-1]"),
    "test label out of range": (lambda: fit(MODEL, TRAIN, _with(TEST, y=TEST.y + 4), CFG, progress=False),
                                "test.y", "out of range"),
    "NaN image": (lambda: fit(MODEL, _nan_images(), None, CFG, progress=False), "train.x", "(5, 0, 0, 0)"),
    "empty dataset": (lambda: fit(MODEL, EMPTY, None, CFG, progress=False), "train.x", "empty"),
    "batch larger than the data": (lambda: fit(MODEL, TRAIN, None, replace(CFG, batch_size=41), progress=False),
                                   "TrainConfig.batch_size", "41"),
    "evaluate: label out of range": (lambda: evaluate(MODEL, VARIABLES, TEST.x, TEST.y + 4), "y", "out of range"),
    "evaluate: labels of another length": (lambda: evaluate(MODEL, VARIABLES, TEST.x, TEST.y[:5]), "y", "5"),
    "evaluate: NaN image": (lambda: evaluate(MODEL, VARIABLES, _nan_images().x, TRAIN.y), "x", "NaN"),
    "evaluate: batch_size 0": (lambda: evaluate(MODEL, VARIABLES, TEST.x, TEST.y, batch_size=0), "batch_size", "0"),
    "zoo.train: limit 0": (lambda: zoo.train("mnist_convnet", "unused", limit=0), "limit", "0"),
    "zoo.train: epochs 0": (lambda: zoo.train("mnist_convnet", "unused", epochs=0), "epochs", "0"),
    "zoo.train: into the package": (lambda: zoo.train("mnist_convnet", zoo.WEIGHTS_DIR), "weights_dir", "package"),
    "zoo.train: checkpoints in the package": (
        lambda: zoo.train("mnist_convnet", "unused", checkpoint_dir=zoo.WEIGHTS_DIR / "x"), "checkpoint_dir",
        "package"),
    "zoo.train: unknown recipe": (lambda: zoo.train("alexnet", "unused"), "recipe", "'alexnet'"),
    "zoo.load: weights for an untrained control": (
        lambda: zoo.load("mnist_convnet_untrained", weights="x.ckpt"), "weights", "untrained"),
    "zoo.load: no such weights": (lambda: zoo.load("mnist_convnet", weights="/nonexistent/w.ckpt"), "weights",
                                  "/nonexistent/w.ckpt"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arguments_are_named(case):
    call, name, value = BAD[case]
    with pytest.raises(ArgumentError) as err:
        call()
    message = str(err.value)
    assert re.search(rf"(^|\W){re.escape(name)}\W", message), message
    assert value in message, message


def test_training_helpers_check_their_arguments():
    from insilico.train import init_variables
    from insilico.train.augment import random_crop, random_flip
    from insilico.train.objectives import nt_xent, shifted_pair
    from insilico.train.rules import gradient_alignment

    v = init_variables(MODEL, (4, 4, 1), jax.random.PRNGKey(0))
    with pytest.raises(ArgumentError, match=r"variables\['params'\].* contains .* NaN"):
        evaluate(MODEL, jax.tree.map(lambda a: a * jnp.nan, v), TRAIN.x, TRAIN.y)
    with pytest.raises(ArgumentError, match="variables must be the model's variables"):
        evaluate(MODEL, None, TRAIN.x, TRAIN.y)
    fa = MLP(widths=(8,), num_classes=4, learning_rule="feedback_alignment")
    vf = init_variables(fa, (4, 4, 1), jax.random.PRNGKey(0))
    for labels in (np.full(40, 5), np.full(40, -1), np.zeros(3, int)):
        with pytest.raises(ArgumentError, match="y"):
            gradient_alignment(fa, vf, TRAIN.x, labels)
    with pytest.raises(ArgumentError, match="x contains"):
        gradient_alignment(fa, vf, TRAIN.x * np.nan, TRAIN.y)
    x, key = jnp.ones((2, 4, 4, 1)), jax.random.PRNGKey(0)
    for bad in (dict(pad=-1), dict(pad=2.5)):
        with pytest.raises(ArgumentError, match="pad must be an integer"):
            random_crop(key, x, **bad)
    with pytest.raises(ArgumentError, match=r"x must be a batch of images \(N, H, W, C\)"):
        random_flip(key, x[0])
    with pytest.raises(ArgumentError, match="key must be a PRNG key"):
        random_flip(None, x)
    for t in (0, -1):
        with pytest.raises(ArgumentError, match="temperature must be a number > 0"):
            nt_xent(jnp.ones((4, 3)), jnp.ones((4, 3)), t)
    with pytest.raises(ArgumentError, match="paired embeddings"):
        nt_xent(jnp.ones((4, 3)), jnp.ones((5, 3)), 0.5)
    with pytest.raises(ArgumentError, match="shift must be an integer"):
        shifted_pair(key, x, 0)
    with pytest.raises(ArgumentError, match=r"input_shape\[0\] must be an integer ≥ 1"):
        init_variables(MODEL, (0, 4, 1), key)
    with pytest.raises(ArgumentError, match="key must be a PRNG key"):
        init_variables(MODEL, (4, 4, 1), None)


def test_a_zero_warm_up_trains_from_the_first_step():
    cfg = replace(CFG, warmup=0.0, lr=0.1, optimizer="sgd", weight_decay=0.0)
    opt = make_optimizer(cfg, 100)
    params = {"w": jnp.ones(3)}
    update, _ = opt.update({"w": jnp.ones(3)}, opt.init(params), params)
    # Nesterov's first step: lr (1 + momentum) times the gradient, at lr 0.1 from step 0 (it was 0)
    assert float(update["w"][0]) == pytest.approx(-0.1 * (1 + cfg.momentum))


def test_worlds_and_downloads_check_their_arguments(tmp_path):
    from insilico.data import fetch
    from insilico.data.registry import verify
    from insilico.data.worlds import transform

    ds = toy()
    with pytest.raises(ArgumentError, match="grayscale must be one of False, True; got 'no'"):
        transform(ds, grayscale="no")
    with pytest.raises(ArgumentError, match="whiten must be one of False, True; got 2"):
        transform(ds, whiten=2)
    with pytest.raises(ArgumentError, match="key is used only to resample by class_weights"):
        transform(ds, key=jax.random.PRNGKey(0))
    with pytest.raises(ArgumentError, match="dest must be a directory path"):
        fetch("mnist_test", None)
    with pytest.raises(KeyError, match=r"unknown dataset \['x'\]"):
        verify(["x"])
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        verify("mnist_test", root=tmp_path / "nowhere")
