"""``insilico score``: score a model — a zoo name, a torchvision state dict (``--arch``, ``--state-dict``) or a
``module:factory`` returning a Subject — on the registered benchmarks, writing ``OUT/scorecard.html`` and
``OUT/scores.nc``; ``insilico score --list`` shows the benchmarks and whether their data are present. Every
argument is checked before a model or dataset is loaded."""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from .checks import CommandError, check_dir, check_model, load_subject

__all__ = ["add_parser", "score"]


def add_parser(sub, *, count, non_negative_int, weights, seed_and_out) -> None:
    p = sub.add_parser("score", help="score a model against the brain on the registered benchmarks -> "
                                     "OUT/scorecard.html and OUT/scores.nc (needs INSILICO_DATA)")
    p.add_argument("model", nargs="?", help="a zoo model, module:factory (a function returning a Subject), or the "
                   "name given to --state-dict weights")
    p.add_argument("--benchmarks", nargs="+", metavar="NAME", help="the benchmarks to run (default: every "
                   "registered one whose data are present); see --list")
    p.add_argument("--list", action="store_true", help="list the benchmarks, the data each needs and whether it "
                   "is present")
    p.add_argument("--arch", help="with --state-dict: the torchvision architecture (alexnet, vgg16, resnet18, ...)")
    p.add_argument("--state-dict", help="a torchvision state dict (.pth or .npz) to import")
    p.add_argument("--input-size", type=count, default=224, help="with --state-dict: input size in px (default 224)")
    p.add_argument("--resize", default="antialiased-bilinear", help="how stimuli are resized to the model's input: "
                   "antialiased-bilinear (default), area or bilinear")
    p.add_argument("--n-boot", type=non_negative_int, default=200, help="bootstrap samples for the intervals "
                   "(0: none)")
    p.add_argument("--task-images", type=count, default=1000, help="test images for the task accuracy")
    seed_and_out(p, "insilico_score")
    weights(p)
    p.set_defaults(fn=score)


def _list() -> None:
    from ..scores import BENCHMARKS, missing_data

    root = os.environ.get("INSILICO_DATA")
    print(f"{len(BENCHMARKS)} benchmarks (data under INSILICO_DATA={root!r}):" if root else
          f"{len(BENCHMARKS)} benchmarks (INSILICO_DATA is not set: no data present):")
    width = max(len(n) for n in BENCHMARKS)
    for name, b in BENCHMARKS.items():
        state = "present" if missing_data(b) is None else "absent "
        print(f"  {name:<{width}}  {state}  {b.region} ({b.kind}), {b.metric}; data: {', '.join(b.folders)}")
        print(f"  {'':<{width}}  {'':7}  ceiling: {b.ceiling}")
    print("absent data: `insilico data fetch NAME --source URL` (NAME: the folder), then rerun")


def _check_source(args) -> str:
    """Which kind of model MODEL is ("zoo", "state-dict", "factory"), checked without loading it."""
    if args.state_dict is not None:
        from ..interop.torch_import import ARCHITECTURES

        if args.arch not in ARCHITECTURES:
            raise CommandError(f"--arch must be one of {', '.join(ARCHITECTURES)} with --state-dict; got {args.arch!r}")
        if not Path(args.state_dict).expanduser().is_file():
            raise CommandError(f"--state-dict {args.state_dict!r}: no such file; give a .pth or .npz state dict")
        if args.weights is not None:
            raise CommandError("--weights is for zoo models; an imported model's weights are --state-dict")
        return "state-dict"
    if args.arch is not None:
        raise CommandError(f"--arch {args.arch} names the architecture of --state-dict weights: give --state-dict PATH")
    if args.input_size != 224:
        raise CommandError(f"--input-size {args.input_size} is the input of --state-dict weights; a zoo model or "
                           f"factory has its own")
    if args.model is None:
        raise CommandError("name a model: insilico score MODEL (a zoo model, or module:factory), or --list")
    if ":" in args.model:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", args.model):
            raise CommandError(f"model {args.model!r}: a factory is module.path:function (a function returning a "
                               "Subject)")
        module = args.model.split(":")[0]
        if os.getcwd() not in sys.path:              # module:factory names a module of the current directory too
            sys.path.insert(0, os.getcwd())
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise CommandError(f"model {args.model!r}: no module {module!r} on the Python path (sys.path); add its "
                               "folder to PYTHONPATH")
        if args.weights is not None:
            raise CommandError("--weights is for zoo models; a factory returns its subject with its weights")
        return "factory"
    check_model(args.model, args.weights)
    return "zoo"


def _load(args, kind: str):
    from ..subject import Subject

    if kind == "zoo":
        return load_subject(args.model, args.weights), f"zoo {args.model}" + (f" ({args.weights})" if args.weights
                                                                               else "")
    if kind == "state-dict":
        from ..interop.layouts import StateDictError
        from ..interop.torch_import import load_state_dict

        size = args.input_size
        try:
            subject = load_state_dict(args.arch, args.state_dict, input_shape=(size, size, 3),
                                      name=args.model or args.arch)
        except StateDictError:
            raise                                           # names every tensor that does not fit
        except Exception as e:                              # not a state dict at all (torch.load, np.load failed)
            raise CommandError(f"--state-dict {args.state_dict!r}: not a readable PyTorch state dict (.pth, .pt or "
                               f".npz): {type(e).__name__}: {str(e)[:200]}") from None
        return subject, f"torchvision {args.arch} state dict {args.state_dict}"
    module, name = args.model.split(":")
    factory = getattr(importlib.import_module(module), name, None)
    if not callable(factory):
        raise CommandError(f"model {args.model!r}: {module} has no function {name!r}")
    subject = factory()
    if not isinstance(subject, Subject):
        raise CommandError(f"model {args.model!r} returned {type(subject).__name__}, not a Subject (insilico.subject."
                           "make_subject makes one from any Flax model)")
    return subject, f"factory {args.model}"


def score(args):
    from ..scores import RESIZE_METHODS, available, combine, require_data, score_model, task_accuracy, write_scorecard
    from ..validation import check_choice

    if args.list:
        if args.model is not None or args.benchmarks:
            raise CommandError("--list takes no MODEL or --benchmarks: insilico score --list")
        _list()
        return
    kind = _check_source(args)
    names = args.benchmarks or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        raise CommandError(f"unknown benchmark(s) {', '.join(unknown)}; registered: {', '.join(available())} "
                           "(`insilico score --list`)")
    if len(set(names)) != len(names):
        raise CommandError(f"--benchmarks names a benchmark twice: {' '.join(names)}")
    try:
        check_choice("--resize", args.resize, RESIZE_METHODS)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if args.n_boot == 1:
        raise CommandError("--n-boot must be 0 (no intervals) or at least 2; got 1")
    if args.benchmarks:
        require_data(args.benchmarks)                # chosen benchmarks must have their data; the default skips
    out = check_dir("--out", args.out)

    subject, source = _load(args, kind)
    print(f"scoring {subject.name} ({source}) on {len(names)} benchmark(s); seed {args.seed}, resize {args.resize}",
          flush=True)
    results, skipped, identity = score_model(subject, names, out, seed=args.seed, resize=args.resize,
                                             n_boot=args.n_boot, source=source, log=lambda m: print(m, flush=True))
    if not results:
        raise CommandError("no benchmark could run: " + "; ".join(skipped.values()))
    task = task_accuracy(subject, args.task_images)
    print(f"task: {task[0]:.4f} ({task[1]})" if task[0] == task[0] else f"task: {task[1]}")
    card = combine(results, identity, seed=args.seed, resize=args.resize, task=task, skipped=skipped,
                   sites=list(subject.sites))
    html, nc = write_scorecard(card, out)
    print(f"wrote {html} and {nc}")
