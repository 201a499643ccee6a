"""``insilico demo``: the quick form runs end to end, and its report is a story a reader can check — a summary
with one finding per section, a table of contents, and per section a question, a takeaway with a number, and
links to NetCDF files and source files that exist."""
import html as htmllib
import math
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import xarray as xr

from insilico.cli import main
from insilico.report.html import MISSING, Report, fmt
from insilico.validation import ArgumentError

SECTIONS = ("Models and their sites", "First-layer filters", "Activation statistics", "Orientation tuning",
            "Receptive fields", "Single-unit lesions", "Stimulus synthesis", "Comparison with brains",
            "Scoring against brain benchmarks", "The four elements", "Probe your own model", "Nothing silent")


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    main(["demo", "--out", str(out), "--models", "mnist_convnet", "--quick"])
    return out, (out / "index.html").read_text()


def _sections(page: str) -> dict:
    """{title: html of the section} for the report's sections (the summary and contents excluded)."""
    found = re.findall(r"<section id='([^']+)'><h2>(.*?)</h2>(.*?)</section>", page, flags=re.DOTALL)
    return {htmllib.unescape(title): body for anchor, title, body in found if anchor != "summary"}


def _text(fragment: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_quick_demo_sections_figures_and_data(quick_demo):
    out, page = quick_demo
    for section in SECTIONS:
        assert section in page
    for png in ("filters_mnist_convnet.png", "stats_mnist_convnet.png", "lesions_mnist_convnet.png",
                "units_mnist_convnet_conv2.png", "rf_size_vs_depth.png", "modulation_ratio.png", "four_elements.png",
                "four_elements_time_steps.png", "pgd_accuracy_0.png", "osi_histograms.png", "your_own_model.png",
                "svcca_inflation.png"):
        assert (out / png).stat().st_size > 1000 and png in page
    ds = xr.open_dataset(out / "mnist_convnet.nc")
    assert ds.lesion_agreement.sizes["lesion_unit"] == 32
    assert 0 <= float(ds.lesion_agreement.min()) <= 1 and list(ds.site.values)[-1] == "logits"
    assert ds.osi_conv1.sizes["conv1_unit"] == 16
    assert set(np.unique(ds.responsive_conv1.values)) <= {0, 1}
    assert ds.effective_rf_size.values[0] < ds.effective_rf_size.values[1]            # conv1 < conv2
    finite = ds.modulation_ratio_conv1.values[np.isfinite(ds.modulation_ratio_conv1.values)]
    assert finite.size and (finite > 1).all()                                          # rectified linear: simple
    assert ds.pgd_accuracy.values[0] == 1.0 and ds.pgd_accuracy.values[-1] < 0.5         # ε = 0 vs ε = 0.3
    assert "returned without an error" not in page and page.count("ArgumentError:") >= 4    # every mistake refused
    assert "images differ" in page                                     # the stale store is refused, not reused
    if os.environ.get("INSILICO_DATA"):                  # with the data: every site against four regions
        assert (out / "rsa_mnist_convnet.png").stat().st_size > 1000
        assert "mnist_convnet: 28 px grey" in _text(_sections(page)["Comparison with brains"])   # not "32 px"
        assert ds.rsa_score.shape == (4, 4) and np.all(np.abs(ds.rsa_score.values) < 1)
        held = ds.benchmark_heldout_score                # scored on held-out halves, one site chosen per benchmark
        assert held.sizes["benchmark"] == 4 and np.isfinite(held.values).all() and np.all(np.abs(held.values) < 1)
        assert set(held.attrs["chosen_sites"].split(", ")) <= set(ds.site.values)
        assert (out / "scores_by_model.png").stat().st_size > 1000
        card = xr.open_dataset(out / "scores_mnist_convnet" / "scores.nc", engine="scipy")
        np.testing.assert_array_equal(card.raw_score.values, held.values)
        assert "scores_mnist_convnet/scorecard.html" in page and (out / "scores_mnist_convnet/scorecard.html").is_file()
    else:                                                # without: the scoring section says what it needs
        assert "INSILICO_DATA" in _sections(page)["Scoring against brain benchmarks"]


def test_quick_demo_summary_and_contents(quick_demo):
    _, page = quick_demo
    summary = re.search(r"<section id='summary'>(.*?)</section>", page, flags=re.DOTALL)
    assert summary, "the report opens with a summary"
    text = _text(summary.group(1))
    assert "mnist_convnet" in text and re.search(r"in \d+ s", text)            # what ran and how long
    rows = re.findall(r"<tr><td><a href='#([^']+)'>", summary.group(1))
    nav = re.search(r"<nav id='contents'>(.*?)</nav>", page, flags=re.DOTALL)
    assert nav, "a table of contents"
    toc = re.findall(r"<a href='#([^']+)'>", nav.group(1))
    anchors = re.findall(r"<section id='([^']+)'>", page)
    assert toc == rows == [a for a in anchors if a != "summary"] and len(toc) == len(SECTIONS)
    assert summary.start() < nav.start() < page.index(f"<section id='{toc[0]}'>")
    for row in re.findall(r"<tr><td><a href='#[^']+'>.*?</tr>", summary.group(1), flags=re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
        assert re.fullmatch(r"\d+\.\d s", cells[1]), cells[1]                    # seconds per section
        assert re.search(r"\d", _text(cells[2])), cells[2]                      # one finding, with a number


def test_quick_demo_every_section_asks_answers_and_links(quick_demo):
    out, page = quick_demo
    sections = _sections(page)
    assert list(sections)[:len(SECTIONS)] and all(any(t.startswith(s) for t in sections) for s in SECTIONS)
    for title, body in sections.items():
        question = re.search(r"<p class='question'>(.*?)</p>", body, flags=re.DOTALL)
        assert question and _text(question.group(1)).strip().endswith("?"), title
        takeaway = re.search(r"<p class='takeaway'>(.*?)</p>", body, flags=re.DOTALL)
        assert takeaway and re.search(r"\d", _text(takeaway.group(1))), title
        links = re.findall(r"<a href='([^']+)'>([^<]+)</a>", body)
        data = [href for href, _ in links if href.endswith(".nc")]
        assert data, f"{title}: no link to its NetCDF output"
        for href in data:
            assert "/" not in href and (out / href).is_file(), href
            xr.open_dataset(out / href).close()
        code = [(href, label) for href, label in links if re.fullmatch(r"insilico/demo/\w+\.py:\d+", label)]
        assert code, f"{title}: no link to the code that made it"
        for href, label in code:
            path = Path(unquote(urlparse(href).path))
            line = int(label.rsplit(":", 1)[1])
            assert path.is_file() and path.as_posix().endswith(label.rsplit(":", 1)[0])
            assert re.match(r"def \w+_section\(", path.read_text().splitlines()[line - 1]), label
        for href, label in links:
            if label.startswith("experiments/"):
                assert Path(unquote(urlparse(href).path)).is_file(), label


def test_quick_demo_prints_no_nan_and_links_existing_figures(quick_demo):
    out, page = quick_demo
    for title, body in _sections(page).items():
        if title == "Nothing silent":       # its table shows the NaN arguments that insilico refuses
            body = re.sub(r"<table>.*?</table>", "", body, flags=re.DOTALL)
        assert not re.search(r"\bnan\b", _text(body), flags=re.IGNORECASE), title
    assert not re.search(r"<td[^>]*>\s*nan\s*</td>", page, flags=re.IGNORECASE)
    summary = page[:page.index("<nav")]
    assert not re.search(r"\bnan\b", _text(summary), flags=re.IGNORECASE)
    pngs = re.findall(r"<img src='([^']+)'", page)
    assert len(pngs) >= 15 and all((out / p).is_file() and (out / p).stat().st_size > 1000 for p in pngs)


def test_report_renders_summary_contents_links_and_missing_numbers(tmp_path):
    report = Report("r", tmp_path)
    report.summary = "What ran."
    a = report.section("Alpha", "text", question="Does it?")
    a.takeaway, a.seconds = "Yes: 3 of 4.", 1.25
    a.link("data", "a.nc", "a.nc")
    a.link("code", "insilico/x.py:1", "file:///x.py")
    a.tables.append(("t", ("name", "value"), [("x", float("nan")), ("y", 0.5)]))
    b = report.section("Alpha")                                    # the same title twice: distinct anchors
    page = report.write().read_text()
    assert "<section id='alpha'>" in page and "<section id='alpha-2'>" in page
    assert "<a href='#alpha'>Alpha</a>" in page and "<a href='#alpha-2'>Alpha</a>" in page
    assert "1.2 s" in page and "Yes: 3 of 4." in page and "Question: Does it?" in page
    assert f"<td class='num'>{MISSING}</td>" in page and "nan" not in page.lower()
    assert "Data: <a href='a.nc'>a.nc</a>" in page and b.seconds is None
    assert fmt(float("inf")) == MISSING and fmt(0.12345) == "0.123" and fmt("nan?") == "nan?"
    with pytest.raises(ArgumentError, match="kind"):
        a.link("video", "x", "y")
    with pytest.raises(ArgumentError, match="label and href"):
        a.link("data", "", "y")
    with pytest.raises(ArgumentError, match="name must be a file name"):
        report.figure(a, None, "../escape")


def test_untrained_control_runs_on_the_trained_programs_with_its_own_weights(tmp_path):
    """The demo probes an untrained control through its trained twin's static part (so compiled probes are
    reused); the numbers must be the control's own."""
    from insilico import electrode as el
    from insilico import zoo
    from insilico.demo import Context
    from insilico.demo._core import key

    subjects = {m: zoo.load(m) for m in ("cifar_convnet", "cifar_convnet_untrained")}
    ctx = Context(Report("t", tmp_path), subjects, quick=True)
    twin = ctx.compute_subject("cifar_convnet_untrained")
    assert twin.name == "cifar_convnet" and ctx.compute_subject("cifar_convnet") is subjects["cifar_convnet"]
    x = ctx.stimuli(twin)["photos"]
    out_twin, rec_twin = el.record(twin, x, "conv2")
    out_own, rec_own = el.record(subjects["cifar_convnet_untrained"], x, "conv2")
    out_trained, _ = el.record(subjects["cifar_convnet"], x, "conv2")
    np.testing.assert_allclose(out_twin, out_own, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec_twin["conv2"], rec_own["conv2"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out_twin, out_trained)
    assert math.isfinite(float(np.asarray(out_twin).sum())) and key(0).dtype.name.startswith("key")
