"""Report figures a reader can trust: titled and labelled, legends beside the data, integer ticks for counts and
time steps, readable text, failed or unresponsive units marked, no "nan" printed."""
import matplotlib
import numpy as np
import pytest
import xarray as xr

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from insilico.probes import brain
from insilico.report import figures as F
from insilico.report import style
from insilico.validation import ArgumentError

RNG = np.random.default_rng(0)
ORI = np.arange(0, 180, 15)


def selectivity(peaks):
    n = len(peaks)
    curve = np.asarray(peaks)[:, None] * (0.2 + np.cos(np.deg2rad(2 * (ORI[None] - 20 * np.arange(n)[:, None]))) ** 2)
    return xr.Dataset({"osi": ("unit", RNG.uniform(0, 1, n)), "preferred_orientation": ("unit", 20.0 * np.arange(n)),
                       "peak_response": ("unit", curve.max(1)), "curve": (("unit", "orientation"), curve)},
                      coords={"unit": np.arange(n), "orientation": ORI})


def eps_curve(acc, eps=(0, 1, 2, 4, 8)):
    return xr.Dataset({"accuracy": ("eps", np.asarray(acc, float))}, coords={"eps": np.asarray(eps) / 255},
                      attrs={"attack": "pgd", "norm": "linf", "steps": 10})


def rf_sizes():
    return xr.Dataset({"effective_size": ("site", [3.0, 6, 11]), "theoretical_size": ("site", [3.0, 7, 32]),
                       "clipped": ("site", [False, False, True]), "depth": ("site", [1, 2, 3])},
                      coords={"site": ["conv1", "conv2", "fc1"]})


def ablation():
    fr = np.linspace(0, 1, 5)
    orders = ["random/0", "random/1", "L1 weight norm"]
    return xr.Dataset({"agreement": (("order", "fraction"), 1 - fr[None] * np.array([[0.9], [0.8], [1.0]]))},
                      coords={"order": orders, "fraction": fr})


def heatmap_ds(ceiling_lower=(0.3, np.nan), n_subjects=(4, 1)):
    score = np.array([[0.1, 0.05], [0.2, np.nan], [0.25, 0.3]])
    per = np.full((3, 2, 4), np.nan)
    for j, n in enumerate(n_subjects):
        per[:, j, :n] = score[:, j:j + 1]
    upper = [lo + 0.15 if np.isfinite(lo) else np.nan for lo in ceiling_lower]
    return xr.Dataset({"score": (("site", "region"), score), "per_subject": (("site", "region", "subject"), per),
                       "ceiling_lower": ("region", list(ceiling_lower)), "ceiling_upper": ("region", upper),
                       "ci_low": (("site", "region"), score - 0.05), "ci_high": (("site", "region"), score + 0.05)},
                      coords={"site": ["conv1", "conv2", "fc1"], "region": ["human IT", "monkey IT"]},
                      attrs={"subject": "m", "method": "tau-a", "n_boot": 20, "constant_sites": ""})


def controversial_ds(n=4, seeds=2):
    pairs = np.array([(i, j) for i in range(n) for j in range(n) if i != j])
    acc = RNG.uniform(0, 1, (len(pairs), seeds))
    return xr.Dataset({"acceptance": (("pair", "seed"), acc)},
                      coords={"class_a": ("pair", pairs[:, 0]), "class_b": ("pair", pairs[:, 1])},
                      attrs={"model_a": "A", "model_b": "B", "steps": 50})


CLASSES = ["cat", "dog", "ship", "frog"]

MAKERS = {
    "tuning_curves": lambda: F.tuning_curves(selectivity([1.0, 0.9, 0.002]), [0, 1, 2], "m conv1",
                                             responsive=F.responsive_units(selectivity([1.0, 0.9, 0.002])),
                                             criterion="peak response > 5% of the site's largest peak"),
    "osi_histograms": lambda: F.osi_histograms({"trained": RNG.uniform(0, 1, 40), "untrained": RNG.uniform(0, .5, 30)},
                                               "conv1"),
    "modulation_histograms": lambda: F.modulation_histograms({"a conv1": RNG.uniform(0, 2, 40), "b": [0.5, 1.5]}),
    "exemplar_grid": lambda: F.exemplar_grid(RNG.uniform(0, 1, (2, 16, 16, 3)), RNG.uniform(0, 1, (2, 3, 8, 8, 3)),
                                             RNG.uniform(0, 1, (2, 3, 8, 8, 3)), [4, 5], "m conv2"),
    "accuracy_vs_eps": lambda: F.accuracy_vs_eps({"trained": eps_curve([1, .6, .3, .1, 0]),
                                                  "untrained": eps_curve([1, .2, .1, .1, .1])},
                                                 controls=["untrained"], chance=0.1),
    "controversial_images": lambda: F.controversial_images(RNG.uniform(0, 1, (3, 8, 8, 3)), [0.9, 0.5, 0.99],
                                                           ["cat", "dog", "ship"], ["dog", "cat", "frog"], "A", "B",
                                                           threshold=0.85),
    "metamers": lambda: F.metamers(RNG.uniform(0, 1, (2, 8, 8, 3)), RNG.uniform(-0.5, 1.5, (2, 8, 8, 3)),
                                   [0.01, 0.02], "conv2"),
    "accuracy_per_time_step": lambda: F.accuracy_per_time_step({"BLT": [0.5, 0.7, 0.8, 0.85], "B": [0.6] * 4}),
    "lesion_sweep": lambda: F.lesion_sweep(xr.Dataset({"agreement": ("unit", RNG.uniform(0.7, 1, 12)),
                                                       "logit_change": ("unit", RNG.uniform(0, 2, 12))}), "m conv2"),
    "ablation_curves": lambda: F.ablation_curves({"m": ("conv2", ablation()), "n": ("conv3", ablation())}),
    "rf_size_vs_depth": lambda: F.rf_size_vs_depth({"m": rf_sizes(), "n": rf_sizes()}),
    "site_statistics": lambda: F.site_statistics({s: {"mean": 0.3, "active": 0.5, "silent_units": 0.1}
                                                  for s in ("conv1", "conv2")}, "m"),
    "filters": lambda: F.filters(RNG.normal(size=(3, 3, 3, 8)), "m conv1"),
    "bandwidth_comparison": lambda: F.bandwidth_comparison({"m conv1": [1.0, 1.5, np.nan]}, [1.2, 1.8]),
    "image_rows": lambda: F.image_rows({"conv1": RNG.uniform(0, 1, (3, 8, 8, 3))}, "rows", labels=[0, 1, 2]),
    "site_region_heatmap": lambda: brain.site_region_heatmap(heatmap_ds(), title="m: τ-a"),
    "controversial_acceptance": lambda: F.controversial_acceptance(controversial_ds(), CLASSES, CLASSES),
}
WITH_LEGEND = ("accuracy_vs_eps", "accuracy_per_time_step", "ablation_curves", "rf_size_vs_depth")


@pytest.fixture(params=list(MAKERS))
def drawn(request):
    fig = MAKERS[request.param]()
    fig.canvas.draw()
    yield request.param, fig
    plt.close(fig)


def texts(fig):
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def test_every_figure_is_titled_and_labelled(drawn):
    name, fig = drawn
    assert isinstance(fig, Figure)
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title(loc) for ax in fig.axes
                                                                     for loc in ("left", "center")]
    assert any(t.strip() for t in titles), name
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>" or ax.images or not ax.axison:
            continue
        if ax.lines or ax.patches or ax.collections:
            assert ax.get_xlabel().strip(), f"{name}: an axes without an x label"
            shared = ax.get_shared_y_axes().get_siblings(ax)
            assert any(a.get_ylabel().strip() for a in shared), f"{name}: an axes row without a y label"


def test_text_is_readable(drawn):
    """Tick labels and other text >= 9 pt, titles >= 10 pt; no "nan" printed anywhere."""
    name, fig = drawn
    for t in texts(fig):
        assert t.get_fontsize() >= 9, f"{name}: {t.get_text()!r} at {t.get_fontsize()} pt"
        assert "nan" not in t.get_text().lower().replace("nanmedian", ""), f"{name}: {t.get_text()!r}"
    for ax in fig.axes:
        if ax.get_title():
            assert ax.title.get_fontsize() >= 10, name


@pytest.mark.parametrize("name", WITH_LEGEND)
def test_legends_lie_outside_the_data(name):
    fig = MAKERS[name]()
    fig.canvas.draw()
    legends = [a for a in fig.findobj(matplotlib.legend.Legend)]
    assert legends, f"{name} has no legend"
    renderer = fig.canvas.get_renderer()
    for leg in legends:
        lb = leg.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_visible():
                assert not lb.overlaps(ax.get_window_extent(renderer)), f"{name}: legend over an axes"
    plt.close(fig)


def test_integer_ticks_for_time_steps_and_counts():
    fig = F.accuracy_per_time_step({"BLT": [0.5, 0.7, 0.8], "B": [0.6, 0.6, 0.65]}, "steps")
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_xlabel() == "time step" and ax.get_ylabel() == "accuracy (%)"
    assert np.allclose(ax.lines[0].get_ydata(), [50, 70, 80])
    fig = F.osi_histograms({"a": [0.1, 0.2, 0.2, 0.9]})
    fig.canvas.draw()
    lo, hi = fig.axes[0].get_ylim()
    assert all(float(t).is_integer() for t in fig.axes[0].get_yticks() if lo <= t <= hi)
    plt.close("all")


def test_visualization_failed_flags_flat_and_non_finite_images_only():
    textured = RNG.uniform(0, 1, (16, 16, 3))
    flat = np.full((16, 16, 3), 0.5)
    nearly_flat = 0.5 + 0.001 * RNG.normal(size=(16, 16, 3))
    broken = textured.copy()
    broken[3, 4, 0] = np.nan
    mask = F.visualization_failed(np.stack([textured, flat, nearly_flat, broken]))
    assert mask.dtype == bool and mask.tolist() == [False, True, True, True]
    assert F.visualization_failed(np.stack([nearly_flat]), min_contrast=1e-4).tolist() == [False]
    with pytest.raises(ArgumentError, match="min_contrast"):
        F.visualization_failed(np.stack([textured]), min_contrast=0)


def test_exemplar_grid_marks_failed_visualizations():
    vis = np.stack([RNG.uniform(0, 1, (16, 16, 3)), np.full((16, 16, 3), 0.5)])
    top = RNG.uniform(0, 1, (2, 2, 8, 8, 3))
    fig = F.exemplar_grid(vis, top, None, [7, 9], "m conv3")
    rows = [ax for ax in fig.axes if ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in rows] == ["unit 7", "unit 9\nflat — failed"]
    frame = rows[1].spines["left"]
    assert frame.get_visible() and matplotlib.colors.same_color(frame.get_edgecolor(), F.FAILED_COLOR)
    assert not rows[0].spines["left"].get_visible()
    width = rows[0].get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    assert width >= 0.9, width
    # the caller's own mask wins; a mask of the wrong shape is refused
    fig = F.exemplar_grid(vis, top, units=[7, 9], failed=np.array([True, False]))
    assert "failed" in next(ax for ax in fig.axes if ax.get_ylabel()).get_ylabel()
    with pytest.raises(ArgumentError, match="failed must be a boolean mask over the 2 units"):
        F.exemplar_grid(vis, top, failed=[1, 0])
    plt.close("all")


def test_responsive_units_excludes_near_silent_units():
    sel = selectivity([1.0, 0.9, 0.002, 0.3])
    assert F.responsive_units(sel).tolist() == [True, True, False, True]
    assert F.responsive_units(np.array([1.0, 0.002, 0.0])).tolist() == [True, False, False]
    assert F.responsive_units(np.zeros(3)).tolist() == [False] * 3
    assert F.responsive_units(sel, fraction=0.5).tolist() == [True, True, False, False]
    with pytest.raises(ArgumentError, match="fraction"):
        F.responsive_units(sel, fraction=1.5)


def test_tuning_curves_state_the_criterion_and_each_peak():
    sel = selectivity([1.0, 0.9, 0.002])
    fig = F.tuning_curves(sel, [0, 2], "m conv1", responsive=F.responsive_units(sel), criterion="peak > 5% of max")
    words = " ".join(t.get_text() for t in texts(fig))
    assert "peak > 5% of max" in words and "2 of 3 units" in words
    assert "peak 0.002" in fig.axes[1].get_title() and "below criterion" in fig.axes[1].get_title()
    assert "OSI" in fig.axes[0].get_title() and "below" not in fig.axes[0].get_title()
    fig = F.tuning_curves(sel, [0, 1], "positional call")                   # the old call still works
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    with pytest.raises(ArgumentError, match="responsive must be a boolean mask over the 3 units"):
        F.tuning_curves(sel, [0], responsive=[True, False])
    with pytest.raises(ArgumentError, match="not units of selectivity"):
        F.tuning_curves(sel, [5])
    plt.close("all")


def test_histograms_are_small_multiples_with_medians():
    fig = F.osi_histograms({"trained": [0.2, 0.4, 0.6], "untrained": [0.1, 0.1, np.nan]}, "conv1")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2 and panels[0].get_xlim() == panels[1].get_xlim() == (0.0, 1.0)
    assert "n = 3 units" in panels[0].get_title() and "median 0.40" in panels[0].get_title()
    assert "n = 2 units" in panels[1].get_title() and "1 undefined left out" in panels[1].get_title()
    fig = F.modulation_histograms({"a": [0.5, 1.5, 1.6, 3.0]})
    assert "75% simple" in fig.axes[0].get_title()
    assert any(np.allclose(line.get_xdata(), 1.0) for line in fig.axes[0].lines)
    plt.close("all")


def test_accuracy_vs_eps_in_levels_of_one_255th():
    curves = {"trained": eps_curve([1, .6, .3, .1, 0]), "control": eps_curve([1, .1, .1, .1, .1])}
    fig = F.accuracy_vs_eps(curves, controls=["control"], chance=0.1)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "ε (levels of 1/255)" and ax.get_ylabel() == "accuracy (%)"
    assert np.allclose(ax.lines[0].get_xdata(), [0, 1, 2, 4, 8]) and np.allclose(ax.lines[0].get_ydata()[0], 100)
    assert ax.lines[1].get_linestyle() == "--" and matplotlib.colors.same_color(ax.lines[1].get_color(),
                                                                                 style.CONTROL_COLOR)
    assert any(np.allclose(line.get_ydata(), 10) for line in ax.lines[2:])              # chance
    raw = F.accuracy_vs_eps(curves, levels=False).axes[0]
    assert raw.get_xlabel() == "ε" and np.allclose(raw.lines[0].get_xdata()[-1], 8 / 255)
    with pytest.raises(ArgumentError, match="controls"):
        F.accuracy_vs_eps(curves, controls=["nope"])
    with pytest.raises(ArgumentError, match="curves"):
        F.accuracy_vs_eps({"x": xr.Dataset()})
    plt.close("all")


def test_controversial_images_are_large_and_captioned():
    fig = F.controversial_images(RNG.uniform(0, 1, (2, 8, 8, 3)), [0.93, 0.5], ["cat", "dog"], ["dog", "ship"],
                                 "A", "B", "pairs", threshold=0.85)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "A: cat\nB: dog\nacceptance 0.93" and ax.xaxis.label.get_fontsize() >= 9
    assert ax.get_window_extent().width / fig.dpi >= 1.6
    assert ax.images[0].get_array().shape[0] >= 128                                     # upsampled
    assert matplotlib.colors.same_color(fig.axes[1].xaxis.label.get_color(), F.FAILED_COLOR)
    with pytest.raises(ArgumentError, match="images"):
        F.controversial_images(RNG.uniform(0, 2, (2, 8, 8, 3)), [0.9, 0.5], ["a", "b"], ["c", "d"], "A", "B")
    with pytest.raises(ArgumentError, match="class_b must have one entry per image"):
        F.controversial_images(RNG.uniform(0, 1, (2, 8, 8, 3)), [0.9, 0.5], ["a", "b"], ["c"], "A", "B")
    plt.close("all")


def test_controversial_acceptance_is_a_matrix_of_class_pairs():
    ds = controversial_ds()
    fig = F.controversial_acceptance(ds, CLASSES, CLASSES)
    fig.canvas.draw()
    ax = fig.axes[0]
    heat = ax.images[0].get_array()
    assert heat.shape == (4, 4) and heat.mask.diagonal().all() and heat.mask.sum() == 4       # grey: no pair
    assert np.isclose(heat[0, 1], ds.acceptance.values[0].mean())
    assert ax.get_title() == ("Controversial stimuli: A vs B\n"
                              "50 steps per image, mean of 2 seeds; grey: same class (no pair)")
    assert ax.get_xlabel() == "class the image must be for B" and ax.get_ylabel() == "class the image must be for A"
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert fig.axes[1].get_ylabel() == "acceptance (min of the two probabilities)"            # the colour bar
    assert f"{heat[0, 1]:.2f}" in [t.get_text() for t in ax.texts]
    with pytest.raises(ArgumentError, match="class_names_b has 3 classes"):
        F.controversial_acceptance(ds, CLASSES, CLASSES[:3])
    with pytest.raises(ArgumentError, match="class_names_a must be a non-empty sequence"):
        F.controversial_acceptance(ds, "cat dog", CLASSES)
    with pytest.raises(ArgumentError, match=r"ds must be a Dataset from insilico\.probes\.synthesis\.controversial"):
        F.controversial_acceptance(xr.Dataset(), CLASSES, CLASSES)
    plt.close("all")


def test_site_region_heatmap_lives_in_the_report_and_stays_in_probes_brain():
    import insilico.probes.brain
    import insilico.report.figures

    assert insilico.report.figures.site_region_heatmap is insilico.probes.brain.site_region_heatmap
    assert "site_region_heatmap" in insilico.probes.brain.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        insilico.probes.brain.nope  # noqa: B018


def test_metamers_clip_pixels_and_show_the_error():
    fig = F.metamers(RNG.uniform(0, 1, (1, 8, 8, 3)), RNG.uniform(-1, 2, (1, 2, 8, 8, 3)), [[0.011, 0.02]], "conv2")
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 3 and all(0 <= a.min() and a.max() <= 1 for a in shown)
    assert fig.axes[1].get_xlabel() == "rel. error 0.011"
    plt.close("all")


def test_rf_sizes_against_site_names():
    fig = F.rf_size_vs_depth({"m": rf_sizes()})
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["conv1", "conv2", "fc1"]
    assert "depth" not in fig.axes[0].get_xlabel()
    plt.close("all")


def test_heatmap_without_a_ceiling_prints_no_nan():
    fig = brain.site_region_heatmap(heatmap_ds(), title="m: τ-a")
    fig.canvas.draw()
    words = [t.get_text() for t in fig.findobj(Text)]
    assert not [w for w in words if "nan" in w.lower()], words
    joined = " ".join(words)
    assert "ceiling 0.30–0.45" in joined and "no ceiling" in joined and "one subject" in joined
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["conv1", "conv2", "fc1"]
    assert "Kendall τ-a" in fig.axes[1].get_ylabel()                                    # the colour bar
    assert len(fig.axes) == 2
    plt.close("all")


def test_style_is_one_idempotent_setting():
    style.use()
    first = {k: matplotlib.rcParams[k] for k in style.STYLE}
    style.use()
    assert {k: matplotlib.rcParams[k] for k in style.STYLE} == first
    assert matplotlib.rcParams["axes.spines.top"] is False and matplotlib.rcParams["savefig.bbox"] == "tight"
    assert min(matplotlib.rcParams[k] for k in ("xtick.labelsize", "ytick.labelsize", "axes.labelsize")) >= 9
    fig, ax = plt.subplots()
    with pytest.raises(ArgumentError, match="no labelled artists"):
        style.legend_outside(ax)
    ax.plot([0, 1], [0, 1], label="a")
    leg = style.legend_outside(ax)
    fig.canvas.draw()
    assert not leg.get_window_extent().overlaps(ax.get_window_extent())
    with pytest.raises(ArgumentError, match="side"):
        style.legend_outside(ax, side="left")
    plt.close("all")


BAD_FIGURES = {
    "labels shorter than the columns": (lambda: F.image_rows({"a": np.zeros((3, 4, 4, 3))}, labels=["x"]),
                                        r"labels must give one label per column \(3\)"),
    "NaN images": (lambda: F.image_rows({"a": np.full((2, 4, 4, 3), np.nan)}), r"rows\['a'\] contains"),
    "two-channel images": (lambda: F.image_rows({"a": np.zeros((2, 4, 4, 2))}), "1 or 3 channels"),
    "OSI values as text": (lambda: F.osi_histograms({"a": "abc"}), r"osi_by_label\['a'\] must be numbers"),
    "OSI above 1": (lambda: F.osi_histograms({"a": [0.2, 1.4]}), r"must be OSIs in \[0, 1\]"),
    "bandwidths as text": (lambda: F.bandwidth_comparison({"a": [1.0]}, "x"), "real_bw must be numbers"),
    "a statistic as text": (lambda: F.site_statistics({"s": {"mean": "a", "active": 0.5, "silent_units": 0.1}}),
                            r"stats\['s'\]\['mean'\] must be a number"),
    "one class for every pair": (lambda: F.controversial_images(np.zeros((2, 4, 4, 3)), [0.9, 0.8], 1, [0, 1],
                                                                "a", "b"), "class_a must have one entry per image"),
    "a metric that is not a name": (lambda: F.ablation_curves({"m": ("s", None)}, metric=3), "metric must be a string"),
}


@pytest.mark.parametrize("case", BAD_FIGURES)
def test_figures_refuse_bad_arguments_by_name(case):
    call, message = BAD_FIGURES[case]
    with pytest.raises(ArgumentError, match=message):
        call()


def test_a_report_checks_its_title_directory_and_figures(tmp_path):
    from insilico.report.html import Report

    with pytest.raises(ArgumentError, match="out must be a directory path"):
        Report("r", 3)
    with pytest.raises(ArgumentError, match="title must be a non-empty string"):
        Report(None, tmp_path)
    with pytest.raises(ArgumentError, match="figure takes a Section"):
        Report("r", tmp_path).figure(None, None, "a")
