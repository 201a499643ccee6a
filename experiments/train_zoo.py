"""Reproduce the zoo's pretrained weights (insilico/weights/*.ckpt) from their recipes in insilico/zoo.py.

    INSILICO_DATA=/path/to/data python experiments/train_zoo.py                 # all models
    INSILICO_DATA=/path/to/data python experiments/train_zoo.py mnist_convnet   # one model

Weights are written to --out (default: the user cache, $INSILICO_CACHE/weights or ~/.cache/insilico/weights),
never into the installed package; load them with ``zoo.load(NAME, weights=OUT)``. To ship new weights, copy
OUT/NAME.ckpt into insilico/weights by hand. ``--quick`` trains one epoch on 2,000 images (a smoke test, not
the shipped weights).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from insilico import zoo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(zoo.RECIPES), help=f"of {', '.join(zoo.RECIPES)}")
    parser.add_argument("--out", "--weights-dir", dest="out", default=None,
                        help=f"directory where NAME.ckpt is written (default: {zoo.default_weights_dir()})")
    parser.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints for resume")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images")
    args = parser.parse_args(argv)
    out = Path(args.out).expanduser() if args.out else zoo.default_weights_dir()
    results = {}
    for name in args.names:
        ckpt = Path(args.checkpoint_dir) / name if args.checkpoint_dir else None
        meta = zoo.train(name, out, epochs=1 if args.quick else None, limit=2000 if args.quick else None,
                         checkpoint_dir=ckpt)
        results[name] = meta["test_accuracy"]
    (out / "train_zoo_results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    from insilico.cli import run_script

    run_script(main)
