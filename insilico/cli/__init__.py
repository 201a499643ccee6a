"""The ``insilico`` command: demo, train, sites, sweep, rf, attack, controversial, rsa, score, data.

Every argument is checked before anything is loaded or compiled — the model name, ``--weights``, the site (from
the model's shapes alone, ``jax.eval_shape``), ``--images`` and its data under ``INSILICO_DATA``, store and output
paths — and a user mistake is answered by one line ``error: ...`` naming the problem and the fix (exit 2; another
OSError, such as a full disk, exit 1). ``insilico --debug COMMAND ...`` shows the full traceback instead.
"""
from __future__ import annotations

import argparse
import sys

from . import commands, probes
from . import score as _score
from .checks import (
    COUNT,
    DATA_HINT,
    EPSILON,
    NON_NEGATIVE_INT,
    SECONDS,
    SEED,
    CommandError,
    Parser,
)

__all__ = ["COUNT", "EPSILON", "NON_NEGATIVE_INT", "SECONDS", "CommandError", "main", "run_script"]


def _weights(p) -> None:
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")


def _seed_and_out(p, out: str) -> None:
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default=out)


def main(argv=None):
    parser = Parser(prog="insilico", description="A differentiable in-silico electrophysiology lab on JAX/Flax.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of its "
                        "one-line message")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="offline tour of the bundled models -> OUT/index.html")
    p.add_argument("--out", default="insilico_demo", help="output directory (default: insilico_demo)")
    p.add_argument("--models", nargs="*", help="zoo models (default: all bundled + an untrained control)")
    p.add_argument("--quick", action="store_true", help="fewer stimuli")
    p.set_defaults(fn=commands.demo)
    p = sub.add_parser("train", help="train a zoo model from its recipe (needs INSILICO_DATA)")
    p.add_argument("name")
    p.add_argument("--out", default=None, help="directory for NAME.ckpt (default: $INSILICO_CACHE/weights or "
                   "~/.cache/insilico/weights; never the installed package)")
    p.add_argument("--limit", type=COUNT, default=None, help="train on this many images only (quick runs)")
    p.add_argument("--epochs", type=COUNT, default=None)
    p.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints; reruns resume")
    p.set_defaults(fn=commands.train)
    p = sub.add_parser("sites", help="list a zoo model's sites and their shapes")
    p.add_argument("name")
    _weights(p)
    p.set_defaults(fn=commands.sites)
    p = sub.add_parser("sweep", help="lesion every unit of a site (or cumulative ablation curves)")
    p.add_argument("model")
    p.add_argument("site")
    p.add_argument("--mode", choices=("zero", "mean", "noise"), default="zero")
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches",
                   help="photo patches (no data needed) or the model's test set (needs INSILICO_DATA)")
    p.add_argument("--n", type=COUNT, default=256, help="number of images")
    p.add_argument("--curve", type=NON_NEGATIVE_INT, default=0, metavar="SEEDS",
                   help="cumulative ablation curves over SEEDS random orders instead of single units")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--store", default=None, help="stream chunks here; a rerun of the same sweep resumes, a sweep "
                   "whose images, weights or settings changed is refused")
    p.add_argument("--overwrite", action="store_true", help="start the store over (its chunks are deleted)")
    p.add_argument("--recompute-damaged", action="store_true",
                   help="recompute chunks of the store that fail their checksum instead of refusing")
    p.add_argument("--out", default="insilico_sweep")
    _weights(p)
    p.set_defaults(fn=probes.sweep)
    p = sub.add_parser("rf", help="visualize a site's units, their exemplars, RF size and grating tuning")
    p.add_argument("model")
    p.add_argument("site")
    p.add_argument("--units", type=COUNT, default=16, help="the first N units (default 16)")
    p.add_argument("--steps", type=COUNT, default=256, help="optimization steps per visualization")
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches",
                   help="exemplar images (default: natural-image patches, no data needed)")
    p.add_argument("--n", type=COUNT, default=1024, help="number of exemplar images")
    p.add_argument("--k", type=COUNT, default=5, help="exemplars per unit and direction")
    _seed_and_out(p, "insilico_rf")
    _weights(p)
    p.set_defaults(fn=probes.rf)

    p = sub.add_parser("attack", help="FGSM and PGD accuracy vs epsilon (all epsilons in one compiled call)")
    p.add_argument("model")
    p.add_argument("--eps", nargs="+", type=EPSILON, default=[0, 0.00392, 0.00784, 0.0157, 0.0314],
                   help="attack budgets (finite, >= 0) in pixel units")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--steps", type=COUNT, default=40)
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches")
    p.add_argument("--n", type=COUNT, default=256)
    _seed_and_out(p, "insilico_attack")
    _weights(p)
    p.set_defaults(fn=probes.attack)

    p = sub.add_parser("controversial", help="controversial stimuli between two models, every class pair")
    p.add_argument("model_a")
    p.add_argument("model_b")
    p.add_argument("--seeds", type=COUNT, default=1)
    p.add_argument("--steps", type=COUNT, default=200)
    _seed_and_out(p, "insilico_controversial")
    p.set_defaults(fn=probes.controversial)

    p = sub.add_parser("rsa", help="RSA of every site vs human/monkey IT and EVC/IT on the 92 images (needs "
                                   "INSILICO_DATA)")
    p.add_argument("model")
    p.add_argument("--method", default="tau-a", choices=("tau-a", "corr", "spearman", "rho-a", "cosine"))
    p.add_argument("--n-boot", type=NON_NEGATIVE_INT, default=200, help="stimulus-bootstrap samples for the intervals")
    _seed_and_out(p, "insilico_rsa")
    _weights(p)
    p.set_defaults(fn=probes.rsa)

    _score.add_parser(sub, count=COUNT, non_negative_int=NON_NEGATIVE_INT, weights=_weights, seed_and_out=_seed_and_out)

    p = sub.add_parser("data", help="list, verify or fetch (sha256-checked) the datasets under INSILICO_DATA")
    p.add_argument("command", choices=("list", "verify", "fetch"), nargs="?", default="list")
    p.add_argument("names", nargs="*")
    p.add_argument("--source",
                   help="fetch: base URL of the dataset's folder (https:// or file://, or a local directory)")
    p.add_argument("--dest", help="fetch: data directory (default: INSILICO_DATA)")
    p.add_argument("--timeout", type=SECONDS, default=30.0,
                   help="fetch: seconds to wait for a connection or for the next bytes (default 30)")
    p.set_defaults(fn=commands.data)
    for command in sub.choices.values():           # --debug also after the command: insilico sweep ... --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error instead of its one-line message")
    args = parser.parse_args(argv)
    _answered(args.fn, (args,), args.debug)


def run_script(main, *args):
    """Run an experiment script's ``main(*args)`` the way ``insilico`` runs a command: a user mistake (a bad name,
    input, path, dataset, checkpoint or store) prints one line ``error: ...`` and exits with status 2; ``--debug``
    among the script's arguments shows the full traceback instead. Returns what ``main`` returns.
    Example: ``if __name__ == "__main__": run_script(main)``."""
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    return _answered(main, args, debug)


def _answered(fn, args, debug: bool):
    """``fn(*args)``, with a user mistake answered in one line and its exit status; with ``debug``, or for an error
    that is not a user mistake, the full traceback."""
    try:
        return fn(*args)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        code = _exit_code(e)
        if debug or code is None:
            raise
        print(f"error: {_message(e)}", file=sys.stderr)
        sys.exit(code)


def _exit_code(e: Exception) -> int | None:
    """2 for a user mistake (a bad name, input, path, dataset, checkpoint or store: insilico's errors are
    ValueErrors or KeyErrors), 1 for another OSError (a full disk, an unwritable path), None for anything else."""
    paths = sys.modules.get("insilico.data._paths")          # loaded if a dataset was looked for
    if isinstance(e, (KeyError, ValueError)) or (paths is not None and isinstance(e, paths.DataNotFoundError)):
        return 2
    return 1 if isinstance(e, OSError) else None


def _message(e: Exception) -> str:
    """One line: the error's message (a KeyError's without quotes), a data error with where to find the data, an
    OSError with its path."""
    if isinstance(e, OSError) and _exit_code(e) == 1:
        text = f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}"
    else:
        text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e) or type(e).__name__
        if isinstance(e, OSError) and "INSILICO_DATA" not in text:
            text += f"; {DATA_HINT}"
    return " ".join(text.split())


