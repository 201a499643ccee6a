"""Demo sections that train on the spot, on scikit-learn's 8x8 digits (offline): the four elements
(architecture and learning rule), and a model of your own (a plain NNX CNN) probed through the same calls."""
from __future__ import annotations

import jax
import numpy as np
import xarray as xr

from .. import electrode as el
from ..probes import synthesis as syn
from ..probes.lesion import single_unit_sweep
from ..report import figures as figs
from ._core import Context, key, num

N_TRAIN = 1400
TIME_STEPS = 4


def _split(seed: int):
    from ..data import digits

    data = digits()
    order = np.random.default_rng(seed).permutation(len(data.y))
    return data, order[:N_TRAIN], order[N_TRAIN:]


def four_elements_section(ctx: Context):
    """Architecture and learning rule, trained on the spot on scikit-learn's digits (offline): a recurrent BLT
    network vs the same network without recurrence, read out at every time step; an MLP trained by
    backpropagation vs feedback alignment, with the angle between their kernel gradients."""
    import matplotlib.pyplot as plt

    from ..models import MLP, BLTNet
    from ..report.style import integer_ticks, legend_outside
    from ..subject import InputSpec, make_subject
    from ..train import TrainConfig, fit
    from ..train.rules import gradient_alignment

    data, tr, te = _split(0)
    train, test = data.subset(tr), data.subset(te)
    epochs, widths = (2, (8, 16)) if ctx.quick else (4, (16, 32))
    cfg = TrainConfig(epochs=epochs, batch_size=50, lr=3e-3, optimizer="adam", augment="none", weight_decay=0.0)
    s = ctx.section("The four elements: architecture and learning rule", "Does recurrence help a small network "
                    "over time steps, and how far are feedback alignment's updates from backpropagation's?",
                    f"Trained here on scikit-learn's 8x8 digits ({len(train.y)} training, {len(test.y)} held-out, "
                    f"{epochs} epochs of Adam). Left: a recurrent BLT network (bottom-up, lateral and top-down "
                    f"connections, widths {widths}, {TIME_STEPS} time steps) and the same network without recurrence "
                    "(B), read out at every step — the site logits/t{k}. Right: the angle between the kernel gradients "
                    "of an MLP trained by feedback alignment (a fixed random feedback matrix) and backpropagation's, "
                    "per epoch; 90° is no better than a random direction.")
    rows, per_step = [], {}
    for label, lateral in (("BLT", True), ("B", False)):
        model = BLTNet(widths=widths, steps=TIME_STEPS, lateral=lateral, topdown=lateral, mean=(0.3,), std=(0.4,))
        res = fit(model, train, test, cfg, progress=False)
        sub = make_subject(label, model, res.variables, InputSpec((8, 8, 1)))
        steps = [f"logits/t{t}" for t in range(TIME_STEPS)]
        _, rec = el.record(sub, test.x, steps)
        per_step[label] = [float(np.mean(np.argmax(np.asarray(rec[k]), -1) == test.y)) for k in steps]
        rows.append(("architecture", f"{label} ({TIME_STEPS} steps)", per_step[label][-1]))
    angles, final = {}, {}
    for rule in ("backprop", "feedback_alignment"):
        mlp = MLP(widths=(64, 32), learning_rule=rule, mean=(0.3,), std=(0.4,))
        snaps: dict[int, dict] = {}
        res = fit(mlp, train, test, cfg, progress=False, on_epoch=lambda e, v, snaps=snaps: snaps.__setitem__(e, v))
        final[rule] = res.history[-1]["test_acc"]
        rows.append(("learning rule", f"MLP, {rule.replace('_', ' ')}", final[rule]))
        if rule == "feedback_alignment":
            angles = {e: gradient_alignment(mlp, v, test.x, test.y) for e, v in snaps.items()}
    ctx.report.figure(s, figs.accuracy_per_time_step(per_step, f"Held-out accuracy per time step ({len(test.y)} "
                                                     "digits)", chance=0.1), "four_elements_time_steps",
                      "Readout logits/t{k} of each network at each time step")
    layers = ("fc1/dense", "fc2/dense")
    fig, ax = plt.subplots(figsize=(7.2, 3.4), layout="constrained")
    for layer in layers:
        ax.plot(list(angles), [a[layer] for a in angles.values()], marker="o", label=layer)
    ax.axhline(90, color="k", lw=0.5, ls=":", label="90° (random direction)")
    integer_ticks(ax, "x")
    ax.set(xlabel="epoch", ylabel="angle to backprop's gradient (°)", ylim=(0, 100),
           title="Feedback alignment vs backpropagation")
    legend_outside(ax, title="layer")
    ctx.report.figure(s, fig, "four_elements", "Angle between the kernel gradients of feedback alignment and "
                      "backpropagation on the held-out digits, per layer, after each epoch")
    s.tables.append(("Held-out accuracy", ("element", "variant", "accuracy"), rows))
    ctx.put("four_elements", "accuracy_per_time_step",
            xr.DataArray([per_step[k] for k in per_step], dims=("network", "time_step"),
                         coords={"network": list(per_step), "time_step": np.arange(TIME_STEPS)},
                         attrs={"epochs": epochs, "n_train": len(train.y), "n_test": len(test.y)}),
            file="four_elements")
    ctx.put("four_elements", "update_angle", xr.DataArray([[a[k] for k in layers] for a in angles.values()],
                                                          dims=("epoch", "layer"),
                                                          coords={"epoch": list(angles), "layer": list(layers)}),
            file="four_elements")
    ctx.put("four_elements", "mlp_accuracy", xr.DataArray(list(final.values()), dims="rule",
                                                          coords={"rule": list(final)}), file="four_elements")
    last = angles[max(angles)] if angles else {}
    s.takeaway = (f"After {epochs} epochs BLT reads out {num(per_step['BLT'][-1])} at its last step vs "
                  f"{num(per_step['B'][-1])} without recurrence; feedback alignment reaches "
                  f"{num(final['feedback_alignment'])} vs {num(final['backprop'])} by backprop, its first-layer "
                  f"gradient {num(last.get('fc1/dense', float('nan')), '.0f')}° from backprop's.")


def _nnx_digits_cnn(key):
    """A small CNN written with plain ``flax.nnx`` layers, as a user would (no insilico class)."""
    from flax import nnx

    class DigitsCNN(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Conv(1, 8, (3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(8, 16, (3, 3), strides=2, rngs=rngs)
            self.out = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.conv1(x))
            x = nnx.relu(self.conv2(x))
            return self.out(x.mean((1, 2)))

    return DigitsCNN(nnx.Rngs(params=key))


def your_own_model_section(ctx: Context):
    """Any Flax model is a subject: an NNX CNN defined and trained here (plain optax), then recorded, lesioned
    and attacked through the same calls as the zoo's models."""
    import matplotlib.pyplot as plt
    import optax
    from flax import nnx

    from ..report.style import integer_ticks
    from ..subject import InputSpec, make_subject

    data, tr, te = _split(1)
    x_train, y_train = np.asarray(data.x[tr]), np.asarray(data.y[tr])
    x_test, y_test = np.asarray(data.x[te]), np.asarray(data.y[te])
    steps = 100 if ctx.quick else 400
    model = _nnx_digits_cnn(key(0))
    graphdef, params = nnx.split(model, nnx.Param)
    opt = optax.adam(1e-2)

    @jax.jit
    def step(params, state, xb, yb):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(graphdef, p)(xb), yb).mean()
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state, rng = opt.init(params), np.random.default_rng(2)
    for _ in range(steps):
        idx = rng.choice(len(y_train), 128, replace=False)
        params, state = step(params, state, x_train[idx], y_train[idx])
    nnx.update(model, params)
    subject = make_subject("digits_cnn (nnx)", model, None, InputSpec((8, 8, 1)),
                           tuple(str(d) for d in range(10)))
    out, _ = el.record(subject, x_test)
    acc = float(np.mean(np.asarray(out.argmax(-1)) == y_test))
    sweep = single_unit_sweep(subject, x_test, "conv2", labels=y_test, progress=False)
    eps = (np.array([0, 2, 8]) if ctx.quick else np.array([0, 1, 2, 4, 8, 16])) / 255
    n_attack = 128
    curve = syn.accuracy_vs_eps(subject, x_test[:n_attack], y_test[:n_attack], eps.tolist(), steps=10, key=key(3),
                                early_stop=False)
    s = ctx.section("Probe your own model", "Can a model written with plain Flax, outside insilico, be probed "
                    "through the same calls as the bundled ones?",
                    "Any Flax model is a subject. Here a small CNN is written with plain flax.nnx layers (conv1 8 "
                    "channels, conv2 16 channels with stride 2, a linear readout), trained for "
                    f"{steps} Adam steps (batches of 128) on scikit-learn's 8x8 digits with optax, made a subject with "
                    "make_subject(name, model, None, InputSpec((8, 8, 1))), and probed through the same calls as the "
                    "bundled models. Its sites are every submodule whose output is an array: "
                    f"{', '.join(f'{k} {v}' for k, v in subject.sites.items())}.")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    drop = 100 * (sweep.attrs["intact_accuracy"] - sweep.accuracy.values)
    axes[0].bar(np.arange(len(drop)), drop, color="tab:blue")
    axes[0].set(xlabel="conv2 channel silenced", ylabel="accuracy drop (points)", title="Single-channel lesions")
    integer_ticks(axes[0], "x")
    axes[1].plot(eps * 255, 100 * curve.accuracy.values, marker="o")
    axes[1].set_xticks(eps * 255, [f"{e:g}" for e in eps * 255])
    axes[1].set(xlabel="PGD L∞ budget ε (levels of 1/255)", ylabel="held-out accuracy (%)", ylim=(-3, 103),
                title="Adversarial robustness (PGD, 10 steps)")
    ctx.report.figure(s, fig, "your_own_model", f"Left: held-out accuracy lost when each of the {len(drop)} conv2 "
                      f"channels is silenced (intact {sweep.attrs['intact_accuracy']:.3f}). Right: accuracy of "
                      f"{n_attack} held-out digits under PGD as the budget grows, judged on 8-bit images.")
    s.tables.append(("The NNX model as a subject", ("site", "unit shape"),
                     [(k, str(v)) for k, v in subject.sites.items()]))
    f = "your_own_model"
    ctx.put(f, "accuracy", xr.DataArray(acc, attrs={"n_test": len(y_test), "adam_steps": steps}), file=f)
    ctx.put(f, "lesion_accuracy_drop", xr.DataArray(drop / 100, dims="conv2_channel"), file=f)
    ctx.put(f, "pgd_accuracy", xr.DataArray(curve.accuracy.values, dims="eps", coords={"eps": eps}), file=f)
    worst = int(np.argmax(drop))
    s.takeaway = (f"Yes: the NNX CNN reaches {acc:.3f} held-out accuracy after {steps} steps; silencing its most "
                  f"important conv2 channel ({worst}) costs {drop[worst]:.1f} points, and PGD at ε = "
                  f"{255 * eps[-1]:g}/255 leaves {num(curve.accuracy.values[-1])} accuracy.")
