"""The ``insilico`` command: demo, train, sites, data."""
from __future__ import annotations

import argparse
import sys


def _demo(args):
    from .demo import DEFAULT_MODELS, run_demo

    path = run_demo(args.out, models=tuple(args.models or DEFAULT_MODELS), quick=args.quick)
    print(f"wrote {path}")


def _train(args):
    from . import zoo

    meta = zoo.train(args.name, args.out, epochs=args.epochs, checkpoint_dir=args.checkpoint_dir)
    print(f"{args.name}: test accuracy {meta['test_accuracy']:.4f}")


def _sites(args):
    from . import zoo

    subject = zoo.load(args.name)
    width = max(len(s) for s in subject.sites)
    print(f"{subject.name}: {type(subject.model).__name__}, input {subject.input_spec.shape} "
          f"in {subject.input_spec.bounds}")
    for site, shape in subject.sites.items():
        units = 1
        for d in shape:
            units *= d
        print(f"  {site:<{width}}  {str(shape):<14} {units:>7} units")


def _data(args):
    from .data import registry
    from .data._paths import DataNotFoundError, data_dir

    try:
        root = data_dir()
    except DataNotFoundError as e:
        root = None
        print(f"note: {e}")
    names = args.names or list(registry.DATASETS)
    failed = False
    for name in names:
        if name not in registry.DATASETS:
            print(f"unknown dataset {name!r}; valid: {', '.join(registry.DATASETS)}", file=sys.stderr)
            sys.exit(2)
        info = registry.DATASETS[name]
        present = root is not None and (root / name).is_dir()
        line = f"{name:<36} {'present' if present else 'absent ':<8} {info['description']} ({info['citation']})"
        if args.command == "verify" and root is not None:
            status = registry.verify(name, root)
            bad = {f: s for f, s in status.items() if s != "ok"}
            failed |= bool(bad)
            line += "\n    " + ("all %d files ok" % len(status) if not bad else
                                "; ".join(f"{f}: {s}" for f, s in bad.items()))
        print(line)
    if args.command == "verify" and (root is None or failed):
        sys.exit(1)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="insilico", description="A differentiable in-silico "
                                     "electrophysiology lab on JAX/Flax.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="offline tour of the bundled models -> OUT/index.html")
    p.add_argument("--out", default="insilico_demo", help="output directory (default: insilico_demo)")
    p.add_argument("--models", nargs="*", help="zoo models (default: all bundled + an untrained control)")
    p.add_argument("--quick", action="store_true", help="fewer stimuli")
    p.set_defaults(fn=_demo)
    p = sub.add_parser("train", help="train a zoo model from its recipe (needs INSILICO_DATA)")
    p.add_argument("name")
    p.add_argument("--out", default=".", help="directory for NAME.ckpt")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints; reruns resume")
    p.set_defaults(fn=_train)
    p = sub.add_parser("sites", help="list a zoo model's sites and their shapes")
    p.add_argument("name")
    p.set_defaults(fn=_sites)
    p = sub.add_parser("data", help="list or verify the datasets under INSILICO_DATA")
    p.add_argument("command", choices=("list", "verify"), nargs="?", default="list")
    p.add_argument("names", nargs="*")
    p.set_defaults(fn=_data)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except KeyError as e:                      # unknown model / dataset names: show the message, not a trace
        print(f"error: {e.args[0]}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
