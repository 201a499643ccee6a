"""Named models shipped with the package: ``load("cifar_convnet") -> Subject``.

The shipped weights live in ``insilico/weights/NAME.ckpt`` and were produced by ``experiments/train_zoo.py``;
each file's metadata records the command, hardware, date and accuracy. ``NAME_untrained`` gives the same
architecture at its deterministic random initialization (key 0) for control experiments.

:func:`train` retrains a recipe into a directory you name (default: :func:`default_weights_dir`, in the user
cache), never into the installed package; ``load(name, weights=PATH)`` loads such retrained weights.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import flax.linen as nn
import jax

from .data.datasets import CIFAR10_CLASSES, DIGIT_CLASSES
from .models import ConvNet, ResNet
from .subject import InputSpec, Subject, make_subject
from .train.checkpoint import CheckpointError
from .train.loop import TrainConfig, init_variables
from .validation import ArgumentError, UnknownNameError, check_count

WEIGHTS_DIR = Path(__file__).parent / "weights"           # the shipped weights: read, never written
PACKAGE_DIR = Path(__file__).resolve().parent


class UnknownModelError(UnknownNameError):
    """A name that is not a zoo model or recipe; the message lists the valid ones."""


def default_weights_dir() -> Path:
    """Where :func:`train` writes retrained weights unless told otherwise: ``$INSILICO_CACHE/weights``, or
    ``~/.cache/insilico/weights``."""
    from .data import cache_dir

    return cache_dir() / "weights"


def outside_package(name: str, path) -> Path:
    """``path`` (as a Path), refused when it lies inside the installed package (training never writes there)."""
    path = Path(path).expanduser()
    resolved = path.resolve()
    if resolved == PACKAGE_DIR or PACKAGE_DIR in resolved.parents:
        raise ArgumentError(f"{name} {str(path)!r} is inside the installed insilico package ({PACKAGE_DIR}); "
                            f"training never writes there. Name another directory (default: "
                            f"{default_weights_dir()}); to ship retrained weights, copy NAME.ckpt into "
                            f"insilico/weights by hand")
    return path

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)


@dataclass(frozen=True)
class Recipe:
    """How a zoo model is built and trained: architecture, input spec, dataset and training config."""

    model: nn.Module
    input_spec: InputSpec
    class_names: tuple
    dataset: str
    train: TrainConfig = field(default_factory=TrainConfig)
    description: str = ""


RECIPES: dict[str, Recipe] = {
    "cifar_convnet": Recipe(
        ConvNet(widths=(32, 64, 128), kernels=(5, 3, 3), pools="max", fc=(256,), num_classes=10,
                mean=CIFAR_MEAN, std=CIFAR_STD),
        InputSpec((32, 32, 3), (0.0, 1.0), CIFAR_MEAN, CIFAR_STD), CIFAR10_CLASSES, "cifar10",
        TrainConfig(epochs=15, batch_size=128, lr=0.1, augment="flip_crop"),
        "AlexNet-style ConvNet: conv 5x5/32, 3x3/64, 3x3/128 (batch norm, ReLU, 2x2 max pool), fc 256"),
    "cifar_resnet": Recipe(
        ResNet(depth=8, widths=(16, 32, 64), num_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD),
        InputSpec((32, 32, 3), (0.0, 1.0), CIFAR_MEAN, CIFAR_STD), CIFAR10_CLASSES, "cifar10",
        TrainConfig(epochs=15, batch_size=128, lr=0.1, augment="flip_crop"),
        "CIFAR ResNet-8 (He et al. 2016 family, n=1): stem 16, stages 16/32/64, global average pool"),
    "mnist_convnet": Recipe(
        ConvNet(widths=(16, 32), kernels=(5, 5), pools="max", fc=(128,), num_classes=10,
                mean=MNIST_MEAN, std=MNIST_STD),
        InputSpec((28, 28, 1), (0.0, 1.0), MNIST_MEAN, MNIST_STD), DIGIT_CLASSES, "mnist",
        TrainConfig(epochs=12, batch_size=64, lr=0.05, augment="crop"),
        "LeNet-style ConvNet: conv 5x5/16, 5x5/32 (batch norm, ReLU, max pool), fc 128; trained on the "
        "first 8,000 MNIST test images, evaluated on the last 2,000"),
}

UNTRAINED_SUFFIX = "_untrained"


def available() -> list[str]:
    """Names accepted by :func:`load`: trained models with shipped weights and their untrained controls."""
    trained = [n for n in RECIPES if (WEIGHTS_DIR / f"{n}.ckpt").exists()]
    return trained + [n + UNTRAINED_SUFFIX for n in RECIPES]


def load(name: str, weights=None) -> Subject:
    """Load a zoo model as a ready-to-probe :class:`Subject`.

    ``weights``: retrained weights for the recipe ``name`` — a ``.ckpt`` file, or a directory holding
    ``NAME.ckpt`` (what :func:`train` writes); by default the weights shipped in ``insilico/weights``. The
    subject's ``meta["weights"]`` records the file loaded.

    Nothing is compiled for a trained model: its variables' shapes come from ``jax.eval_shape`` and the checkpoint
    is read into them (checked for structure, shapes, dtype kinds and NaN/inf). An untrained control is the
    recipe's initialization at key 0, on CPU by one compiled ``model.init``, bit-identical to calling ``model.init``
    eagerly.

    >>> subject = load("cifar_convnet")
    >>> subject.sites["conv3"]
    (8, 8, 128)
    """
    path = weights_path(name, weights)
    recipe = RECIPES[_base(name)]                          # part of the cache key: a changed recipe rebuilds
    if path is None:
        return _load(name, None, None, recipe)
    stat = path.stat()
    return _load(name, str(path), (stat.st_mtime_ns, stat.st_size), recipe)    # a rewritten file reloads


def weights_path(name: str, weights=None) -> Path | None:
    """The checkpoint :func:`load` would read for ``name`` and ``weights``, checked without reading it: ``None``
    for an untrained control, the shipped file, or the retrained file ``weights`` names (resolved).

    Raises :class:`UnknownModelError` for a name that is not a zoo model, and ``ArgumentError`` for weights given
    for an untrained control or a path that holds no checkpoint — each naming what is valid."""
    if not isinstance(name, str):
        raise UnknownModelError(f"name must be a zoo model name (a string); got {name!r}; available: "
                                f"{', '.join(available())}")
    if weights is None:
        if name.endswith(UNTRAINED_SUFFIX) and name[: -len(UNTRAINED_SUFFIX)] in RECIPES:
            return None
        if name not in RECIPES or not (WEIGHTS_DIR / f"{name}.ckpt").exists():
            raise UnknownModelError(f"unknown zoo model {name!r}; available: {', '.join(available())}")
        return WEIGHTS_DIR / f"{name}.ckpt"
    if name.endswith(UNTRAINED_SUFFIX):
        raise ArgumentError(f"weights is for trained models; {name!r} is an untrained control (its weights are the "
                            f"recipe's initialization): load({name[:-len(UNTRAINED_SUFFIX)]!r}, weights=...)")
    if name not in RECIPES:
        raise UnknownModelError(f"unknown zoo recipe {name!r}; valid: {', '.join(RECIPES)}")
    if not isinstance(weights, (str, os.PathLike)):
        raise ArgumentError(f"weights must be a path to a .ckpt file or a directory holding {name}.ckpt; got "
                            f"{type(weights).__name__}")
    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / f"{name}.ckpt"
    if not path.is_file():
        raise ArgumentError(f"weights {str(weights)!r}: no checkpoint at {path}; valid: a .ckpt file, or the directory "
                            f"zoo.train wrote {name}.ckpt into")
    return path.resolve()


def _base(name: str) -> str:
    return name.removesuffix(UNTRAINED_SUFFIX)


_ABSTRACT: dict = {}


def abstract_subject(name: str) -> Subject:
    """The subject ``name`` with ``jax.ShapeDtypeStruct`` variables: its sites, input spec and class names, from
    ``jax.eval_shape`` alone (nothing initialized, read or compiled). Cached per name and recipe."""
    recipe = RECIPES[_base(name)]
    hit = _ABSTRACT.get(name)
    if hit is not None and hit[0] is recipe:
        return hit[1]
    shape = recipe.input_spec.shape
    variables = jax.eval_shape(lambda: init_variables(recipe.model, shape, jax.random.PRNGKey(0), eager=True))
    meta = {"description": recipe.description, "trained": _base(name) == name}
    subject = make_subject(name, recipe.model, variables, recipe.input_spec, recipe.class_names, meta)
    _ABSTRACT[name] = (recipe, subject)
    return subject


def _initial_variables(model: nn.Module, input_shape, key) -> dict:
    """The recipe's initial values, as training starts from them (:func:`insilico.train.init_variables`)."""
    return init_variables(model, tuple(input_shape), key)


@cache
def _load(name: str, weights: str | None, version, recipe: Recipe) -> Subject:
    from .models.spec import model_spec
    from .train.checkpoint import load_checkpoint

    base = _base(name)
    abstract = abstract_subject(name)
    meta = dict(abstract.meta)
    if base != name:
        variables = _initial_variables(recipe.model, recipe.input_spec.shape, jax.random.PRNGKey(0))
    else:
        path = Path(weights) if weights is not None else WEIGHTS_DIR / f"{name}.ckpt"
        try:
            variables, stored = load_checkpoint(path, abstract.variables)
        except CheckpointError as e:
            if weights is None:
                raise
            raise CheckpointError(f"{e}; weights must be a checkpoint of the recipe {name!r} (what "
                                  f"zoo.train({name!r}) writes)") from None
        if "model" in stored and not _same_model(stored["model"], recipe.model):
            raise CheckpointError(f"{path} holds weights of another model ({stored['model']}) than the recipe "
                                  f"{name!r} ({model_spec(recipe.model)})")
        meta.update(stored)
        meta["weights"] = str(path)
    return dataclasses.replace(abstract, variables=variables, meta=meta)


def _same_model(spec, model) -> bool:
    """Whether a stored model spec builds ``model`` (fields added since it was written take their defaults)."""
    from .models.spec import build_model

    try:
        return build_model(spec) == model
    except (TypeError, ValueError, AttributeError):
        return False


def _datasets(dataset: str):
    from .data import cifar10, mnist_test

    if dataset == "cifar10":
        return cifar10("train"), cifar10("test")
    if dataset == "mnist":
        return mnist_test("train"), mnist_test("heldout")
    raise ArgumentError(f"unknown recipe dataset {dataset!r}; valid: cifar10, mnist")


def train(name: str, weights_dir=None, *, epochs: int | None = None, limit: int | None = None,
          checkpoint_dir=None, progress: bool = True) -> dict:
    """Train zoo model ``name`` from its recipe and write ``weights_dir/NAME.ckpt``; returns its metadata (with
    ``"path"``, the file written). Load it with ``load(name, weights=weights_dir)``.

    ``weights_dir``: a directory outside the installed package (default :func:`default_weights_dir`); the
    shipped weights in ``insilico/weights`` are never overwritten. ``epochs`` overrides the recipe; ``limit``
    trains on the first ``limit`` shuffled images only (quick runs). Training resumes from ``checkpoint_dir``
    when it holds a checkpoint of the same run (see :func:`insilico.train.fit`).
    """
    import datetime
    import platform
    import sys
    from dataclasses import asdict, replace

    import numpy as np

    from .models.spec import model_spec
    from .train.checkpoint import save_checkpoint
    from .train.loop import fit

    if not isinstance(name, str) or name not in RECIPES:
        raise UnknownModelError(f"unknown zoo recipe {name!r}; valid: {', '.join(RECIPES)}")
    weights_dir = outside_package("weights_dir", default_weights_dir() if weights_dir is None else weights_dir)
    if checkpoint_dir is not None:
        checkpoint_dir = outside_package("checkpoint_dir", checkpoint_dir)
    if limit is not None:
        check_count("limit", limit)
    recipe = RECIPES[name]
    cfg = recipe.train if epochs is None else replace(recipe.train, epochs=check_count("epochs", epochs))
    train_set, test_set = _datasets(recipe.dataset)
    if limit is not None:
        limit = check_count("limit", limit, maximum=len(train_set))
        order = np.random.default_rng(cfg.seed).permutation(len(train_set))[:limit]
        train_set = train_set.subset(np.sort(order))
    result = fit(recipe.model, train_set, test_set, cfg, checkpoint_dir=checkpoint_dir, progress=progress)
    meta = {
        "name": name, "model": model_spec(recipe.model), "train_config": asdict(cfg),
        "train_set": f"{train_set.name} ({len(train_set)} images)",
        "test_set": f"{test_set.name} ({len(test_set)} images)",
        "test_accuracy": result.history[-1]["test_acc"], "history": result.history,
        "command": " ".join(["python"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:]) if sys.argv[0] else "",
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                    f"{jax.devices()[0].platform}",
        "versions": {"jax": jax.__version__, "python": platform.python_version()},
        "date": datetime.date.today().isoformat(),
    }
    path = save_checkpoint(weights_dir / f"{name}.ckpt", result.variables, meta)
    meta["path"] = str(path)
    _load.cache_clear()
    if progress:
        print(f"{name}: test accuracy {meta['test_accuracy']:.4f} -> {path}", flush=True)
    return meta
