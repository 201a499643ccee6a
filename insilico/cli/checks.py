"""What every ``insilico`` command checks before anything is loaded or compiled — model, weights, site,
images and their data, store and output paths, numeric options — and the loads the commands share."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DATA_HINT = "set INSILICO_DATA to the data directory (see `insilico data list`)"
# --images choices that need data: the dataset folder under INSILICO_DATA and the images' shape
IMAGE_SETS = {"cifar10-test": ("cifar10_jpeg", (32, 32, 3)), "mnist-heldout": ("mnist_test", (28, 28, 1))}


class CommandError(ValueError):
    """A mistake in an ``insilico`` command line, found before anything is loaded or compiled; the message names
    the problem and the fix."""


class Parser(argparse.ArgumentParser):
    """Parse errors as one line ``error: ...`` (exit 2) naming the option and where to read the usage."""

    def error(self, message):
        print(f"error: {self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


# ------------------------------------------------------------------------- checks before anything is loaded

def check_model(name: str, weights=None, option: str = "model"):
    """A zoo model name (and ``--weights``) checked without loading anything."""
    from .. import zoo
    from ..validation import ArgumentError

    try:
        zoo.weights_path(name, weights)
    except zoo.UnknownModelError:
        raise CommandError(f"unknown zoo model {name!r}; available: {', '.join(zoo.available())}") from None
    except ArgumentError as e:
        text = str(e)
        raise CommandError("--" + text if text.startswith("weights ") else f"{option}: {text}") from None


def shapes_of(name: str):
    """The zoo model ``name`` with shapes only (sites, input spec, classes): ``jax.eval_shape``, nothing loaded."""
    from .. import zoo

    return zoo.abstract_subject(name)


def check_site(name: str, site: str):
    subject = shapes_of(name)
    if site not in subject.sites:
        raise CommandError(f"unknown site {site!r} of {name}; valid: {', '.join(subject.sites)} "
                           f"(`insilico sites {name}` lists their shapes)")
    return subject


def check_data(purpose: str, *folders: str):
    """The dataset folders a command needs under ``INSILICO_DATA``, checked before anything is loaded."""
    root = os.environ.get("INSILICO_DATA")
    needs = f"{purpose} needs {', '.join(folders)}"
    if not root:
        raise CommandError(f"{needs}, but INSILICO_DATA is not set; {DATA_HINT}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise CommandError(f"{needs}, but INSILICO_DATA={root!r} is not a directory; {DATA_HINT}")
    missing = [f for f in folders if not (path / f).is_dir()]
    if missing:
        raise CommandError(f"{needs}; {', '.join(missing)} not in INSILICO_DATA={root!r}: fetch with `insilico data "
                           f"fetch {' '.join(missing)}`, or {DATA_HINT}")


def check_images(source: str, name: str):
    """``--images``: its data present and images of the shape the model takes."""
    if source not in IMAGE_SETS:
        return
    folder, shape = IMAGE_SETS[source]
    model_shape = tuple(shapes_of(name).input_spec.shape)
    if model_shape != shape:
        fits = ["patches"] + [k for k, (_, sh) in IMAGE_SETS.items() if sh == model_shape]
        raise CommandError(f"--images {source} holds {'x'.join(map(str, shape))} images; {name} takes "
                           f"{'x'.join(map(str, model_shape))}: use --images {' or '.join(fits)}")
    check_data(f"--images {source}", folder)


def check_dir(option: str, path, create: bool = True) -> Path:
    """An output directory: not an existing file; created when ``create``."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {str(path)!r} is a file, not a directory; name a directory")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def option(integer: bool, low: float, low_open: bool = False, high: float | None = None):
    """An argparse ``type``: parse a number and check it with :func:`insilico.validation.check_number`, so a bad
    value is refused by the parser naming the option, the value and what is valid."""
    def parse(text: str):
        from ..validation import ArgumentError, check_number

        try:
            value = int(text) if integer else float(text)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}; got {text!r}") from None
        try:
            return check_number("it", value, low=low, low_open=low_open, high=high, integer=integer)
        except ArgumentError as e:
            raise argparse.ArgumentTypeError(str(e)[len("it "):]) from None
    parse.__name__ = "integer" if integer else "number"
    return parse


COUNT = option(integer=True, low=1)                # images, units, steps, seeds, epochs
NON_NEGATIVE_INT = option(integer=True, low=0)     # optional counts (0 = none)
SEED = option(integer=True, low=0, high=2 ** 32 - 1)     # PRNG seeds (jax.random.PRNGKey takes 32 bits of them)
EPSILON = option(integer=False, low=0.0)           # attack budgets: finite and >= 0
SECONDS = option(integer=False, low=0.0, low_open=True)     # time limits: finite and > 0



def load_subject(name: str, weights):
    """A zoo model with its shipped weights, or with ``--weights`` (a retrained ``.ckpt`` or its directory)."""
    from .. import zoo

    return zoo.load(name, weights=weights)


def sweep_images(subject, source: str, n: int, seed: int = 0):
    """Images (and labels, or None) for ``insilico sweep``: photo patches, or the subject's test set; which
    patches or test images follows ``seed`` (the command's --seed)."""
    import jax
    import numpy as np

    from ..data import stimuli

    h, _, c = subject.input_spec.shape
    if source == "patches":
        return stimuli.natural_patches(jax.random.PRNGKey(seed), n, h, c, scale=4), None
    from ..data import cifar10, mnist_test

    data = {"cifar10-test": lambda: cifar10("test"), "mnist-heldout": lambda: mnist_test("heldout")}[source]()
    if n > len(data):
        raise CommandError(f"--n {n} asks for more images than {source} holds ({len(data)}); valid: 1 to {len(data)}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(data))[:n])
    return data.x[idx], data.y[idx]


def check_store(args):
    if args.store is None:
        if args.overwrite or args.recompute_damaged:
            raise CommandError("--overwrite and --recompute-damaged act on a store: give --store DIR")
        return
    check_dir("--store", args.store, create=False)


