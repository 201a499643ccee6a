"""Reproduce the zoo's pretrained weights (insilico/weights/*.ckpt) from their recipes in insilico/zoo.py.

    INSILICO_DATA=/path/to/data python experiments/train_zoo.py                 # all models
    INSILICO_DATA=/path/to/data python experiments/train_zoo.py mnist_convnet   # one model

``--quick`` trains one epoch on 2,000 images into --out (a smoke test, not the shipped weights).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from insilico import zoo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(zoo.RECIPES), help=f"of {', '.join(zoo.RECIPES)}")
    parser.add_argument("--out", default=str(zoo.WEIGHTS_DIR), help="where NAME.ckpt is written")
    parser.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints for resume")
    parser.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images")
    args = parser.parse_args(argv)
    results = {}
    for name in args.names:
        ckpt = Path(args.checkpoint_dir) / name if args.checkpoint_dir else None
        meta = zoo.train(name, args.out, epochs=1 if args.quick else None, limit=2000 if args.quick else None,
                         checkpoint_dir=ckpt)
        results[name] = meta["test_accuracy"]
    if Path(args.out).resolve() != zoo.WEIGHTS_DIR.resolve():      # keep the package's weights folder clean
        (Path(args.out) / "train_zoo_results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
