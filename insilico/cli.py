"""The ``insilico`` command: demo, train, sites, sweep, rf, attack, controversial, rsa, data.

Every argument is checked before anything is loaded or compiled — the model name, ``--weights``, the site (from
the model's shapes alone, ``jax.eval_shape``), ``--images`` and its data under ``INSILICO_DATA``, store and output
paths — and a user mistake is answered by one line ``error: ...`` naming the problem and the fix (exit 2; another
OSError, such as a full disk, exit 1). ``insilico --debug COMMAND ...`` shows the full traceback instead.
"""
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


class _Parser(argparse.ArgumentParser):
    """Parse errors as one line ``error: ...`` (exit 2) naming the option and where to read the usage."""

    def error(self, message):
        print(f"error: {self.prog}: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(2)


# ------------------------------------------------------------------------- checks before anything is loaded

def _check_model(name: str, weights=None, option: str = "model"):
    """A zoo model name (and ``--weights``) checked without loading anything."""
    from . import zoo
    from .validation import ArgumentError

    try:
        zoo.weights_path(name, weights)
    except zoo.UnknownModelError:
        raise CommandError(f"unknown zoo model {name!r}; available: {', '.join(zoo.available())}") from None
    except ArgumentError as e:
        text = str(e)
        raise CommandError("--" + text if text.startswith("weights ") else f"{option}: {text}") from None


def _shapes_of(name: str):
    """The zoo model ``name`` with shapes only (sites, input spec, classes): ``jax.eval_shape``, nothing loaded."""
    from . import zoo

    return zoo._abstract_subject(name)


def _check_site(name: str, site: str):
    subject = _shapes_of(name)
    if site not in subject.sites:
        raise CommandError(f"unknown site {site!r} of {name}; valid: {', '.join(subject.sites)} "
                           f"(`insilico sites {name}` lists their shapes)")
    return subject


def _check_data(purpose: str, *folders: str):
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


def _check_images(source: str, name: str):
    """``--images``: its data present and images of the shape the model takes."""
    if source not in IMAGE_SETS:
        return
    folder, shape = IMAGE_SETS[source]
    model_shape = tuple(_shapes_of(name).input_spec.shape)
    if model_shape != shape:
        fits = ["patches"] + [k for k, (_, sh) in IMAGE_SETS.items() if sh == model_shape]
        raise CommandError(f"--images {source} holds {'x'.join(map(str, shape))} images; {name} takes "
                           f"{'x'.join(map(str, model_shape))}: use --images {' or '.join(fits)}")
    _check_data(f"--images {source}", folder)


def _check_dir(option: str, path, create: bool = True) -> Path:
    """An output directory: not an existing file; created when ``create``."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CommandError(f"{option} {str(path)!r} is a file, not a directory; name a directory")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _option(integer: bool, low: float, low_open: bool = False):
    """An argparse ``type``: parse a number and check it with :func:`insilico.validation.check_number`, so a bad
    value is refused by the parser naming the option, the value and what is valid."""
    def parse(text: str):
        from .validation import ArgumentError, check_number

        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if integer else 'a number'}; got {text!r}") from None
        try:
            return check_number("it", value, low=low, low_open=low_open, integer=integer)
        except ArgumentError as e:
            raise argparse.ArgumentTypeError(str(e)[len("it "):]) from None
    parse.__name__ = "integer" if integer else "number"
    return parse


COUNT = _option(integer=True, low=1)                # images, units, steps, seeds, epochs
NON_NEGATIVE_INT = _option(integer=True, low=0)     # optional counts (0 = none) and PRNG seeds
EPSILON = _option(integer=False, low=0.0)           # attack budgets: finite and >= 0
SECONDS = _option(integer=False, low=0.0, low_open=True)     # time limits: finite and > 0


def _demo(args):
    models = args.models or None
    for name in models or ():
        _check_model(name, option="--models")
    _check_dir("--out", args.out, create=False)
    from .demo import DEFAULT_MODELS, run_demo

    path = run_demo(args.out, models=tuple(models or DEFAULT_MODELS), quick=args.quick)
    print(f"wrote {path}")


RECIPE_DATA = {"cifar10": "cifar10_jpeg", "mnist": "mnist_test"}      # a recipe's dataset -> its data folder


def _train(args):
    from . import zoo

    if args.name not in zoo.RECIPES:
        raise CommandError(f"unknown zoo recipe {args.name!r}; valid: {', '.join(zoo.RECIPES)}")
    for option, path in (("--out", args.out), ("--checkpoint-dir", args.checkpoint_dir)):
        if path is not None:
            _check_dir(option, zoo._outside_package(option, path), create=False)
    dataset = zoo.RECIPES[args.name].dataset
    _check_data(f"training {args.name}", RECIPE_DATA.get(dataset, dataset))
    meta = zoo.train(args.name, args.out, epochs=args.epochs, limit=args.limit, checkpoint_dir=args.checkpoint_dir)
    print(f"{args.name}: test accuracy {meta['test_accuracy']:.4f}; weights in {meta['path']} "
          f"(probe them with --weights {meta['path']})")


def _load(name: str, weights):
    """A zoo model with its shipped weights, or with ``--weights`` (a retrained ``.ckpt`` or its directory)."""
    from . import zoo

    return zoo.load(name, weights=weights)


def _sites(args):
    _check_model(args.name, args.weights)
    # shapes need no weights; retrained weights are read, so a file that does not fit the model is named
    subject = _shapes_of(args.name) if args.weights is None else _load(args.name, args.weights)
    width = max(len(s) for s in subject.sites)
    print(f"{subject.name}: {subject.architecture}, input {subject.input_spec.shape} "
          f"in {subject.input_spec.bounds}")
    for site, shape in subject.sites.items():
        units = 1
        for d in shape:
            units *= d
        print(f"  {site:<{width}}  {shape!s:<14} {units:>7} units")


def _sweep_images(subject, source: str, n: int):
    """Images (and labels, or None) for ``insilico sweep``: photo patches, or the subject's test set."""
    import jax
    import numpy as np

    from .data import stimuli

    h, _, c = subject.input_spec.shape
    if source == "patches":
        return stimuli.natural_patches(jax.random.PRNGKey(0), n, h, c, scale=4), None
    from .data import cifar10, mnist_test

    data = {"cifar10-test": lambda: cifar10("test"), "mnist-heldout": lambda: mnist_test("heldout")}[source]()
    if n > len(data):
        raise CommandError(f"--n {n} asks for more images than {source} holds ({len(data)}); valid: 1 to {len(data)}")
    idx = np.sort(np.random.default_rng(0).permutation(len(data))[:n])
    return data.x[idx], data.y[idx]


def _check_store(args):
    if args.store is None:
        if args.overwrite or args.recompute_damaged:
            raise CommandError("--overwrite and --recompute-damaged act on a store: give --store DIR")
        return
    _check_dir("--store", args.store, create=False)


def _sweep(args):
    _check_model(args.model, args.weights)
    _check_store(args)
    _check_site(args.model, args.site)
    _check_images(args.images, args.model)
    out = _check_dir("--out", args.out)

    import jax

    from .probes.importance import random_orders
    from .probes.lesion import ablation_curve, single_unit_sweep

    subject = _load(args.model, args.weights)
    x, y = _sweep_images(subject, args.images, args.n)
    store = {"store": args.store, "overwrite": args.overwrite, "recompute_damaged": args.recompute_damaged}
    if args.curve:
        n = subject.sites[args.site][-1]
        ds = ablation_curve(subject, x, args.site, {"random": random_orders(jax.random.PRNGKey(args.seed), args.curve, n)},
                            y, mode=args.mode, key=jax.random.PRNGKey(args.seed), progress=True, **store)
        metric = "accuracy" if y is not None else "agreement"
        print(ds[metric].mean("order").to_series().to_string())
    else:
        from .report import figures

        ds = single_unit_sweep(subject, x, args.site, y, args.mode, key=jax.random.PRNGKey(args.seed),
                               progress=True, **store)
        fig = figures.lesion_sweep(ds, f"{args.model} {args.site}: {ds.sizes['unit']} lesions x {len(x)} images")
        fig.savefig(out / "sweep.png", dpi=100, bbox_inches="tight")
        worst = ds.agreement.values.argsort()[:5]
        print(f"intact: {', '.join(f'{k[7:]} {v:.3f}' for k, v in ds.attrs.items() if k.startswith('intact_'))}")
        print("most important units (agreement):", ", ".join(f"{u} ({ds.agreement.values[u]:.3f})" for u in worst))
    if args.store is not None:
        reused, total = int(ds.attrs["resumed_chunks"]), int(ds.attrs["n_chunks"])
        print(f"reused {reused} of {total} chunks from {args.store}; computed {total - reused}")
    ds.to_netcdf(out / "sweep.nc")
    print(f"wrote {out / 'sweep.nc'}")


def _rf(args):
    _check_model(args.model, args.weights)
    shapes = _check_site(args.model, args.site)
    n = shapes.sites[args.site][-1]
    if args.units > n:
        raise CommandError(f"--units {args.units}: site {args.site!r} has {n} units; valid: 1 to {n}")
    _check_images(args.images, args.model)
    if args.k > args.n:
        raise CommandError(f"--k {args.k} exemplars per unit and direction from --n {args.n} images; valid: "
                           f"--k at most --n")
    out = _check_dir("--out", args.out)

    import jax
    import numpy as np

    from .probes import featurevis as fv
    from .probes import rf
    from .report import figures

    subject = _load(args.model, args.weights)
    units = np.arange(args.units)
    key = jax.random.PRNGKey(args.seed)
    x, _ = _sweep_images(subject, args.images, args.n)
    vis = fv.visualize(subject, fv.channel(args.site), units, key=key, steps=args.steps, n_seeds=1)
    ex = rf.exemplars(subject, args.site, x, k=args.k, units=units)
    fig = figures.exemplar_grid(vis.images.isel(step=-1, seed=0).values, ex.top_crop.values, ex.bottom_crop.values,
                                units, f"{args.model} {args.site}: visualization, top and bottom exemplars")
    fig.savefig(out / "units.png", dpi=100, bbox_inches="tight")
    sizes = rf.receptive_field_size(subject, args.site, key=key)
    print(f"{args.site}: theoretical RF {sizes.theoretical_size.values[0]:.0f} px"
          f"{' (clipped by the image)' if sizes.clipped.values[0] else ''}, effective RF "
          f"{sizes.effective_size.values[0]:.1f} px")
    if len(subject.sites[args.site]) == 3:
        tun = rf.grating_tuning(subject, args.site, sfs=(0.05, 0.08, 0.12, 0.18, 0.27, 0.4),
                                phases=tuple(range(0, 360, 45)))[args.site]
        summ = rf.tuning_summary(tun)
        ok = np.isfinite(summ.modulation_ratio.values)
        print(f"gratings: median OSI {np.nanmedian(summ.osi.values):.2f}, "
              f"{np.mean(summ.modulation_ratio.values[ok] > 1):.0%} of units simple (F1/F0 > 1)")
        summ.to_netcdf(out / "tuning.nc")
    vis.to_netcdf(out / "visualizations.nc")
    ex.drop_vars(["top_crop", "bottom_crop"]).to_netcdf(out / "exemplars.nc")
    print(f"wrote {out / 'units.png'} and NetCDF files")


def _attack(args):
    _check_model(args.model, args.weights)
    _check_images(args.images, args.model)
    out = _check_dir("--out", args.out)

    import jax
    import numpy as np

    from .probes import synthesis as syn

    subject = _load(args.model, args.weights)
    x, y = _sweep_images(subject, args.images, args.n)
    x = np.asarray(syn.quantize(x))
    if y is None:                                # photo patches: attack the model's own predictions
        from . import electrode as el
        y = np.asarray(el.record(subject, x)[0].argmax(-1))
    eps = [float(e) for e in args.eps]
    for attack in ("fgsm", "pgd"):
        curve = syn.accuracy_vs_eps(subject, x, y, eps, attack=attack, norm=args.norm, steps=args.steps,
                                    key=jax.random.PRNGKey(args.seed))
        print(f"{attack:5s} " + "  ".join(f"eps {e:.4g}: {a:.3f}" for e, a in zip(eps, curve.accuracy.values)))
        curve.to_netcdf(out / f"{attack}.nc")
    print(f"wrote {out}/fgsm.nc and pgd.nc")


def _controversial(args):
    _check_model(args.model_a, option="model_a")
    _check_model(args.model_b, option="model_b")
    a, b = _shapes_of(args.model_a), _shapes_of(args.model_b)
    space = lambda s: (s.input_spec.shape, s.input_spec.bounds, len(s.class_names))
    if space(a) != space(b):
        raise CommandError(f"controversial stimuli need two models of one input space and one set of classes; "
                           f"{a.name} takes {a.input_spec.shape} images in {a.input_spec.bounds} of "
                           f"{len(a.class_names)} classes, {b.name} {b.input_spec.shape} in {b.input_spec.bounds} of "
                           f"{len(b.class_names)}: pick two models of the same dataset")
    out = _check_dir("--out", args.out)

    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from . import zoo
    from .probes import synthesis as syn

    a, b = zoo.load(args.model_a), zoo.load(args.model_b)
    ds = syn.controversial(a, b, n_seeds=args.seeds, steps=args.steps, key=jax.random.PRNGKey(args.seed))
    ok = ds.acceptance.values >= 0.85
    print(f"{ds.sizes['pair']} class pairs x {args.seeds} seeds: acceptance >= 0.85 for {ok.mean():.0%}, "
          f"median {np.median(ds.acceptance.values):.3f}")
    n = len(a.class_names)
    heat = np.full((n, n), np.nan)
    heat[ds.class_a.values, ds.class_b.values] = ds.acceptance.values.mean(1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.85")
    im = ax.imshow(np.ma.masked_invalid(heat), vmin=0, vmax=1, cmap=cmap)
    for i, j in zip(*np.nonzero(np.isfinite(heat))):
        ax.text(j, i, f"{heat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                color="black" if heat[i, j] > 0.6 else "white")
    ax.set_xticks(range(n), b.class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), a.class_names, fontsize=8)
    ax.set_xlabel(f"class the image must be for {b.name}")
    ax.set_ylabel(f"class the image must be for {a.name}")
    seeds = f"mean of {args.seeds} seeds" if args.seeds > 1 else "one seed"
    ax.set_title(f"Controversial stimuli: {a.name} vs {b.name}\n"
                 f"{args.steps} steps per image, {seeds}; grey: same class (no pair)", fontsize=9)
    fig.colorbar(im, ax=ax, label="acceptance (min of the two probabilities)", shrink=0.85)
    fig.tight_layout()
    fig.savefig(out / "acceptance.png", dpi=100)
    plt.close(fig)
    ds.to_netcdf(out / "controversial.nc")
    print(f"wrote {out}/controversial.nc and acceptance.png")


RSA_DATA = ("kriegeskorte2008_92images", "cichy2014_fmri_rdms_92images")


def _rsa(args):
    _check_model(args.model, args.weights)
    _check_data("insilico rsa", *RSA_DATA)
    out = _check_dir("--out", args.out)

    import jax

    from .data import objects92, objects92_region_rdms
    from .probes import brain

    subject = _load(args.model, args.weights)
    regions = objects92_region_rdms()
    h, _, ch = subject.input_spec.shape
    ds = brain.rsa_by_site(subject, objects92(h, channels=ch).x, regions, method=args.method, n_boot=args.n_boot,
                           key=jax.random.PRNGKey(args.seed))
    brain.site_region_heatmap(ds).savefig(out / "rsa.png", dpi=100, bbox_inches="tight")
    ds.to_netcdf(out / "rsa.nc")
    print(ds.score.to_pandas().round(3).to_string())
    print("noise ceilings: " + ", ".join(f"{r} {lo:.3f}–{hi:.3f}" for r, lo, hi in
                                         zip(ds.region.values, ds.ceiling_lower.values, ds.ceiling_upper.values)))
    print(f"wrote {out / 'rsa.png'} and {out / 'rsa.nc'}")


def _data(args):
    from .data import registry
    from .data._paths import DataNotFoundError, data_dir

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
        _check_dir("--dest", dest, create=False)
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


def main(argv=None):
    parser = _Parser(prog="insilico", description="A differentiable in-silico electrophysiology lab on JAX/Flax.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error instead of its "
                        "one-line message")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("demo", help="offline tour of the bundled models -> OUT/index.html")
    p.add_argument("--out", default="insilico_demo", help="output directory (default: insilico_demo)")
    p.add_argument("--models", nargs="*", help="zoo models (default: all bundled + an untrained control)")
    p.add_argument("--quick", action="store_true", help="fewer stimuli")
    p.set_defaults(fn=_demo)
    p = sub.add_parser("train", help="train a zoo model from its recipe (needs INSILICO_DATA)")
    p.add_argument("name")
    p.add_argument("--out", default=None, help="directory for NAME.ckpt (default: $INSILICO_CACHE/weights or "
                   "~/.cache/insilico/weights; never the installed package)")
    p.add_argument("--limit", type=COUNT, default=None, help="train on this many images only (quick runs)")
    p.add_argument("--epochs", type=COUNT, default=None)
    p.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints; reruns resume")
    p.set_defaults(fn=_train)
    p = sub.add_parser("sites", help="list a zoo model's sites and their shapes")
    p.add_argument("name")
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")
    p.set_defaults(fn=_sites)
    p = sub.add_parser("sweep", help="lesion every unit of a site (or cumulative ablation curves)")
    p.add_argument("model")
    p.add_argument("site")
    p.add_argument("--mode", choices=("zero", "mean", "noise"), default="zero")
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches",
                   help="photo patches (no data needed) or the model's test set (needs INSILICO_DATA)")
    p.add_argument("--n", type=COUNT, default=256, help="number of images")
    p.add_argument("--curve", type=NON_NEGATIVE_INT, default=0, metavar="SEEDS",
                   help="cumulative ablation curves over SEEDS random orders instead of single units")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--store", default=None, help="stream chunks here; a rerun of the same sweep resumes, a sweep "
                   "whose images, weights or settings changed is refused")
    p.add_argument("--overwrite", action="store_true", help="start the store over (its chunks are deleted)")
    p.add_argument("--recompute-damaged", action="store_true",
                   help="recompute chunks of the store that fail their checksum instead of refusing")
    p.add_argument("--out", default="insilico_sweep")
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")
    p.set_defaults(fn=_sweep)
    p = sub.add_parser("rf", help="visualize a site's units, their exemplars, RF size and grating tuning")
    p.add_argument("model")
    p.add_argument("site")
    p.add_argument("--units", type=COUNT, default=16, help="the first N units (default 16)")
    p.add_argument("--steps", type=COUNT, default=256, help="optimization steps per visualization")
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches",
                   help="exemplar images (default: natural-image patches, no data needed)")
    p.add_argument("--n", type=COUNT, default=1024, help="number of exemplar images")
    p.add_argument("--k", type=COUNT, default=5, help="exemplars per unit and direction")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--out", default="insilico_rf")
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")
    p.set_defaults(fn=_rf)

    p = sub.add_parser("attack", help="FGSM and PGD accuracy vs epsilon (all epsilons in one compiled call)")
    p.add_argument("model")
    p.add_argument("--eps", nargs="+", type=EPSILON, default=[0, 0.00392, 0.00784, 0.0157, 0.0314],
                   help="attack budgets (finite, >= 0) in pixel units")
    p.add_argument("--norm", choices=("linf", "l2"), default="linf")
    p.add_argument("--steps", type=COUNT, default=40)
    p.add_argument("--images", choices=("patches", "cifar10-test", "mnist-heldout"), default="patches")
    p.add_argument("--n", type=COUNT, default=256)
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--out", default="insilico_attack")
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")
    p.set_defaults(fn=_attack)

    p = sub.add_parser("controversial", help="controversial stimuli between two models, every class pair")
    p.add_argument("model_a")
    p.add_argument("model_b")
    p.add_argument("--seeds", type=COUNT, default=1)
    p.add_argument("--steps", type=COUNT, default=200)
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--out", default="insilico_controversial")
    p.set_defaults(fn=_controversial)

    p = sub.add_parser("rsa", help="RSA of every site vs human/monkey IT and EVC/IT on the 92 images (needs "
                                   "INSILICO_DATA)")
    p.add_argument("model")
    p.add_argument("--method", default="tau-a", choices=("tau-a", "corr", "spearman", "rho-a", "cosine"))
    p.add_argument("--n-boot", type=NON_NEGATIVE_INT, default=200, help="stimulus-bootstrap samples for the intervals")
    p.add_argument("--seed", type=NON_NEGATIVE_INT, default=0)
    p.add_argument("--out", default="insilico_rsa")
    p.add_argument("--weights", default=None, help="retrained weights (a .ckpt file or the directory of "
                   "insilico train); default: the shipped weights")
    p.set_defaults(fn=_rsa)

    p = sub.add_parser("data", help="list, verify or fetch (sha256-checked) the datasets under INSILICO_DATA")
    p.add_argument("command", choices=("list", "verify", "fetch"), nargs="?", default="list")
    p.add_argument("names", nargs="*")
    p.add_argument("--source", help="fetch: base URL of the dataset's folder (https:// or file://, or a local directory)")
    p.add_argument("--dest", help="fetch: data directory (default: INSILICO_DATA)")
    p.add_argument("--timeout", type=SECONDS, default=30.0,
                   help="fetch: seconds to wait for a connection or for the next bytes (default 30)")
    p.set_defaults(fn=_data)
    for command in sub.choices.values():           # --debug also after the command: insilico sweep ... --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error instead of its one-line message")
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        code = _exit_code(e)
        if args.debug or code is None:          # --debug, or not a user mistake: the full traceback
            raise
        print(f"error: {_message(e)}", file=sys.stderr)
        sys.exit(code)


def run_script(main, *args):
    """Run an experiment script's ``main(*args)`` the way ``insilico`` runs a command: a user mistake (a bad name,
    input, path, dataset, checkpoint or store) prints one line ``error: ...`` and exits with status 2; ``--debug``
    among the script's arguments shows the full traceback instead. Returns what ``main`` returns.
    Example: ``if __name__ == "__main__": run_script(main)``."""
    debug = "--debug" in sys.argv[1:]
    if debug:
        sys.argv.remove("--debug")
    try:
        return main(*args)
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


if __name__ == "__main__":
    main()
