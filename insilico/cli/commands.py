"""The ``insilico`` commands about models and data: demo, train, sites, data."""
from __future__ import annotations

import os
import sys

from .checks import (
    DATA_HINT,
    CommandError,
    check_data,
    check_dir,
    check_model,
    load_subject,
    shapes_of,
)


def demo(args):
    models = args.models or None
    for name in models or ():
        check_model(name, option="--models")
    check_dir("--out", args.out, create=False)
    from ..demo import DEFAULT_MODELS, run_demo

    path = run_demo(args.out, models=tuple(models or DEFAULT_MODELS), quick=args.quick)
    print(f"wrote {path}")


RECIPE_DATA = {"cifar10": "cifar10_jpeg", "mnist": "mnist_test"}      # a recipe's dataset -> its data folder


def train(args):
    from .. import zoo

    if args.name not in zoo.RECIPES:
        raise CommandError(f"unknown zoo recipe {args.name!r}; valid: {', '.join(zoo.RECIPES)}")
    for option, path in (("--out", args.out), ("--checkpoint-dir", args.checkpoint_dir)):
        if path is not None:
            check_dir(option, zoo.outside_package(option, path), create=False)
    dataset = zoo.RECIPES[args.name].dataset
    check_data(f"training {args.name}", RECIPE_DATA.get(dataset, dataset))
    meta = zoo.train(args.name, args.out, epochs=args.epochs, limit=args.limit, checkpoint_dir=args.checkpoint_dir)
    print(f"{args.name}: test accuracy {meta['test_accuracy']:.4f}; weights in {meta['path']} "
          f"(probe them with --weights {meta['path']})")


def sites(args):
    check_model(args.name, args.weights)
    # shapes need no weights; retrained weights are read, so a file that does not fit the model is named
    subject = shapes_of(args.name) if args.weights is None else load_subject(args.name, args.weights)
    width = max(len(s) for s in subject.sites)
    print(f"{subject.name}: {subject.architecture}, input {subject.input_spec.shape} "
          f"in {subject.input_spec.bounds}")
    for site, shape in subject.sites.items():
        units = 1
        for d in shape:
            units *= d
        print(f"  {site:<{width}}  {shape!s:<14} {units:>7} units")


def data(args):
    from ..data import DataNotFoundError, data_dir, registry

    for name in args.names:
        if name not in registry.DATASETS:
            raise CommandError(f"unknown dataset {name!r}; valid: {', '.join(registry.DATASETS)}")
    try:
        root = data_dir()
    except DataNotFoundError as e:
        if args.command == "verify":
            root = os.environ.get("INSILICO_DATA")
            why = f"INSILICO_DATA={root!r} is not a directory" if root else "INSILICO_DATA is not set"
            raise CommandError(f"insilico data verify checks the files under INSILICO_DATA, but {why}; "
                               f"{DATA_HINT}") from None
        root = None
        if args.command == "list" or args.dest is None:
            print(f"note: {e}")
    if args.command == "fetch":
        import importlib

        fetch = importlib.import_module("insilico.data.fetch").fetch
        if not args.names:
            raise CommandError(f"name the datasets to fetch: insilico data fetch NAME [NAME ...] [--source URL] "
                               f"[--dest DIR]; valid names: {', '.join(registry.DATASETS)}")
        dest = args.dest or root
        if dest is None:
            raise CommandError(f"give --dest DIR, or {DATA_HINT}")
        check_dir("--dest", dest, create=False)
        for name in args.names:
            print(f"{name}: {fetch(name, dest, source=args.source, timeout=args.timeout)}")
        return
    names = args.names or list(registry.DATASETS)
    failed = False
    for name in names:
        info = registry.DATASETS[name]
        present = root is not None and (root / name).is_dir()
        line = f"{name:<36} {'present' if present else 'absent ':<8} {info['description']} ({info['citation']})"
        if args.command == "verify" and root is not None:
            status = registry.verify(name, root)
            bad = {f: s for f, s in status.items() if s != "ok"}
            failed |= bool(bad)
            line += "\n    " + (f"all {len(status)} files ok" if not bad else
                                "; ".join(f"{f}: {s}" for f, s in bad.items()))
        print(line)
    if args.command == "verify" and (root is None or failed):
        sys.exit(1)


