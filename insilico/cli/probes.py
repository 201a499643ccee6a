"""The ``insilico`` commands that probe a model: sweep, rf, attack, controversial, rsa."""
from __future__ import annotations

from .checks import (
    CommandError,
    check_data,
    check_dir,
    check_images,
    check_model,
    check_site,
    check_store,
    load_subject,
    shapes_of,
    sweep_images,
)


def sweep(args):
    check_model(args.model, args.weights)
    check_store(args)
    check_site(args.model, args.site)
    check_images(args.images, args.model)
    out = check_dir("--out", args.out)

    import jax

    from ..probes.importance import random_orders
    from ..probes.lesion import ablation_curve, single_unit_sweep

    subject = load_subject(args.model, args.weights)
    x, y = sweep_images(subject, args.images, args.n, getattr(args, "seed", 0))
    store = {"store": args.store, "overwrite": args.overwrite, "recompute_damaged": args.recompute_damaged}
    if args.curve:
        n = subject.sites[args.site][-1]
        orders = {"random": random_orders(jax.random.PRNGKey(args.seed), args.curve, n)}
        ds = ablation_curve(subject, x, args.site, orders, y, mode=args.mode, key=jax.random.PRNGKey(args.seed),
                            progress=True, **store)
        metric = "accuracy" if y is not None else "agreement"
        print(ds[metric].mean("order").to_series().to_string())
    else:
        from ..report import figures

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


def rf(args):
    check_model(args.model, args.weights)
    shapes = check_site(args.model, args.site)
    n = shapes.sites[args.site][-1]
    if args.units > n:
        raise CommandError(f"--units {args.units}: site {args.site!r} has {n} units; valid: 1 to {n}")
    check_images(args.images, args.model)
    if args.k > args.n:
        raise CommandError(f"--k {args.k} exemplars per unit and direction from --n {args.n} images; valid: "
                           f"--k at most --n")
    out = check_dir("--out", args.out)

    import jax
    import numpy as np

    from ..probes import featurevis as fv
    from ..probes import rf
    from ..report import figures

    subject = load_subject(args.model, args.weights)
    units = np.arange(args.units)
    key = jax.random.PRNGKey(args.seed)
    x, _ = sweep_images(subject, args.images, args.n, getattr(args, "seed", 0))
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
        ok, tuned = np.isfinite(summ.modulation_ratio.values), np.isfinite(summ.osi.values)
        osi = f"median OSI {np.median(summ.osi.values[tuned]):.2f}" if tuned.any() else "no unit with an OSI"
        simple = (f"{np.mean(summ.modulation_ratio.values[ok] > 1):.0%} of {int(ok.sum())} units simple "
                  f"(F1/F0 > 1)" if ok.any() else "no unit responds to the gratings (no F1/F0)")
        print(f"gratings: {osi}, {simple}")
        summ.to_netcdf(out / "tuning.nc")
    vis.to_netcdf(out / "visualizations.nc")
    ex.drop_vars(["top_crop", "bottom_crop"]).to_netcdf(out / "exemplars.nc")
    print(f"wrote {out / 'units.png'} and NetCDF files")


def attack(args):
    check_model(args.model, args.weights)
    check_images(args.images, args.model)
    out = check_dir("--out", args.out)

    import jax
    import numpy as np

    from ..probes import synthesis as syn

    subject = load_subject(args.model, args.weights)
    x, y = sweep_images(subject, args.images, args.n, getattr(args, "seed", 0))
    x = np.asarray(syn.quantize(x))
    measure = "accuracy"
    if y is None:                                # photo patches: attack the model's own predictions
        from .. import electrode as el
        y = np.asarray(el.record(subject, x)[0].argmax(-1))
        measure = "agreement with the clean predictions (photo patches have no labels)"
    eps = [float(e) for e in args.eps]
    print(f"{measure} under attack:")
    for attack in ("fgsm", "pgd"):
        curve = syn.accuracy_vs_eps(subject, x, y, eps, attack=attack, norm=args.norm, steps=args.steps,
                                    key=jax.random.PRNGKey(args.seed))
        print(f"{attack:5s} " + "  ".join(f"eps {e:.4g}: {a:.3f}" for e, a in zip(eps, curve.accuracy.values)))
        curve.to_netcdf(out / f"{attack}.nc")
    print(f"wrote {out}/fgsm.nc and pgd.nc")


def controversial(args):
    check_model(args.model_a, option="model_a")
    check_model(args.model_b, option="model_b")
    if args.model_a == args.model_b:
        raise CommandError(f"controversial stimuli set two models against each other; got {args.model_a} twice")
    a, b = shapes_of(args.model_a), shapes_of(args.model_b)
    space = lambda s: (s.input_spec.shape, s.input_spec.bounds, len(s.class_names))
    if space(a) != space(b):
        raise CommandError(f"controversial stimuli need two models of one input space and one set of classes; "
                           f"{a.name} takes {a.input_spec.shape} images in {a.input_spec.bounds} of "
                           f"{len(a.class_names)} classes, {b.name} {b.input_spec.shape} in {b.input_spec.bounds} of "
                           f"{len(b.class_names)}: pick two models of the same dataset")
    out = check_dir("--out", args.out)

    import jax
    import matplotlib.pyplot as plt
    import numpy as np

    from .. import zoo
    from ..probes import synthesis as syn
    from ..report import figures

    a, b = zoo.load(args.model_a), zoo.load(args.model_b)
    ds = syn.controversial(a, b, n_seeds=args.seeds, steps=args.steps, key=jax.random.PRNGKey(args.seed))
    ok = ds.acceptance.values >= 0.85
    print(f"{ds.sizes['pair']} class pairs x {args.seeds} seeds: acceptance >= 0.85 for {ok.mean():.0%}, "
          f"median {np.median(ds.acceptance.values):.3f}")
    fig = figures.controversial_acceptance(ds, a.class_names, b.class_names)
    fig.savefig(out / "acceptance.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    ds.to_netcdf(out / "controversial.nc")
    print(f"wrote {out}/controversial.nc and acceptance.png")


RSA_DATA = ("kriegeskorte2008_92images", "cichy2014_fmri_rdms_92images")


def rsa(args):
    check_model(args.model, args.weights)
    if args.n_boot == 1:
        raise CommandError("--n-boot must be 0 (no intervals) or at least 2; got 1")
    check_data("insilico rsa", *RSA_DATA)
    out = check_dir("--out", args.out)

    import jax

    from ..data import objects92, objects92_region_rdms
    from ..probes import brain
    from ..report import figures

    subject = load_subject(args.model, args.weights)
    regions = objects92_region_rdms()
    h, _, ch = subject.input_spec.shape
    ds = brain.rsa_by_site(subject, objects92(h, channels=ch).x, regions, method=args.method, n_boot=args.n_boot,
                           key=jax.random.PRNGKey(args.seed))
    figures.site_region_heatmap(ds).savefig(out / "rsa.png", dpi=100, bbox_inches="tight")
    ds.to_netcdf(out / "rsa.nc")
    print(ds.score.to_pandas().round(3).to_string())
    print("noise ceilings: " + ", ".join(f"{r} {lo:.3f}–{hi:.3f}" for r, lo, hi in
                                         zip(ds.region.values, ds.ceiling_lower.values, ds.ceiling_upper.values)))
    print(f"wrote {out / 'rsa.png'} and {out / 'rsa.nc'}")


