"""Recording every site of an imported ImageNet network: insilico (one compiled call) vs PyTorch forward hooks.

    python benchmarks/bench_imagenet.py [--arch resnet18] [--batch 32] [--size 224] [--repeats 5] [--json PATH]

A randomly initialized network in torchvision's layout (the PyTorch twin from tests/test_torch_import.py; its
state dict loaded into insilico with ``interop.torch_import.load_state_dict``). Both sides record every site
(insilico's sites; the PyTorch modules whose outputs they are) for one batch of images and return them as
arrays on the host. Reported: first call (insilico compiles) and the median of warm calls, the ratio, and the
largest difference between the two sides' recordings.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from common import environment, timed  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet18", choices=["alexnet", "vgg16", "resnet18"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()

    import jax
    import torch
    from test_torch_import import CASES, MEAN, STD, _nhwc, _random_net

    from insilico import electrode
    from insilico.interop.torch_import import load_state_dict

    cls, _, _ = CASES[args.arch]
    net = _random_net(cls, 0, 1000)
    subject = load_state_dict(args.arch, net.state_dict(), input_shape=(args.size, args.size, 3))
    sites = [s for s in subject.sites if s != "logits"]
    modules = _site_modules(net, args.arch, sites)
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, args.size, args.size, 3)).astype(np.float32)
    xt = torch.tensor(np.transpose((x - MEAN) / STD, (0, 3, 1, 2)), dtype=torch.float32)
    acts = {}
    for name, mod in modules.items():
        mod.register_forward_hook(lambda _m, _i, out, name=name: acts.__setitem__(name, out.detach().numpy()))
    torch.set_num_threads(os.cpu_count() or 1)
    out = {}

    def run_torch():
        with torch.no_grad():
            net(xt)
        out["torch"] = dict(acts)

    def run_insilico():
        _, rec = electrode.record(subject, x, sites)
        out["insilico"] = jax.device_get(rec)

    t_first, t_med, _ = timed(run_torch, args.repeats)
    i_first, i_med, _ = timed(run_insilico, args.repeats)
    diff = max(float(np.abs(np.asarray(out["insilico"][s]) - _nhwc(out["torch"][s])).max()) for s in sites)
    row = {"arch": args.arch, "batch": args.batch, "size": args.size, "sites": len(sites),
           "insilico_first_s": i_first, "insilico_s": i_med, "torch_s": t_med, "torch_first_s": t_first,
           "speedup": t_med / i_med, "max_abs_diff": diff, "environment": environment()}
    print(json.dumps(row, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)


def _site_modules(net, arch: str, sites):
    """The PyTorch modules whose outputs are insilico's sites."""
    if arch == "resnet18":
        table = {"conv1": net.relu}
        for name in sites:
            if name.startswith("layer"):
                layer, block = name.split("/")
                table[name] = getattr(net, layer)[int(block[5:]) - 1]
        return {s: table[s] for s in sites}
    if arch == "alexnet":
        idx = {"conv1": 1, "conv2": 4, "conv3": 7, "conv4": 9, "conv5": 11}
        table = {k: net.features[v] for k, v in idx.items()}
        table.update({"fc6": net.classifier[2], "fc7": net.classifier[5]})
        return {s: table[s] for s in sites}
    relus = [m for m in net.features if m.__class__.__name__ == "ReLU"]
    convs = [s for s in sites if s.startswith("conv")]
    table = dict(zip(convs, relus))
    table.update({"fc6": net.classifier[1], "fc7": net.classifier[4]})
    return {s: table[s] for s in sites}


if __name__ == "__main__":
    main()
