"""The analysis of experiments/performance_vs_brain.py against NumPy/SciPy references: correlations across models
with a bootstrap-over-models interval, the relative depth of a site, the paired depth comparison, and the
benchmark fingerprints a rerun relies on."""
import functools
import importlib.util
import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.stats

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def pvb():
    spec = importlib.util.spec_from_file_location("performance_vs_brain",
                                                  ROOT / "experiments" / "performance_vs_brain.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _reference(x, y, key, n_boot, method):
    """A loop over resamples: the same model indices, r by np.corrcoef or scipy.stats.spearmanr."""
    corr = (lambda a, b: np.corrcoef(a, b)[0, 1]) if method == "pearson" else \
        (lambda a, b: scipy.stats.spearmanr(a, b).statistic)
    idx = np.asarray(jax.random.randint(key, (n_boot, len(x)), 0, len(x)))
    samples = [corr(x[i], y[i]) for i in idx if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0]
    return corr(x, y), np.percentile(samples, [2.5, 97.5]), len(samples)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_bootstrap_correlation_matches_a_loop(pvb, method):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, 9)
    y = 0.5 * x + rng.normal(0, 0.1, 9)
    y[3] = y[5]                                                   # a tie for the ranks
    key = jax.random.PRNGKey(4)
    got = pvb.bootstrap_correlation(x, y, key, n_boot=300, method=method)
    r, (lo, hi), n_valid = _reference(x, y, key, 300, method)
    assert got["r"] == pytest.approx(r, abs=1e-12)
    assert (got["lo"], got["hi"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert got["n_valid"] == n_valid and got["n"] == 9 and got["lo"] <= got["r"] <= got["hi"]
    again = pvb.bootstrap_correlation(x, y, key, n_boot=300, method=method)
    assert again == got                                           # the key fixes the resamples
    assert pvb.bootstrap_correlation(x, y, jax.random.PRNGKey(5), n_boot=300, method=method)["lo"] != got["lo"]


def test_bootstrap_correlation_refuses_what_it_cannot_compute(pvb):
    with pytest.raises(ValueError, match="method must be 'pearson' or 'spearman'; got 'kendall'"):
        pvb.bootstrap_correlation([1, 2, 3], [1, 2, 3], jax.random.PRNGKey(0), method="kendall")
    with pytest.raises(ValueError, match="length ≥ 3"):
        pvb.bootstrap_correlation([1, 2], [1, 2], jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="finite"):
        pvb.bootstrap_correlation([1, 2, np.nan], [1, 2, 3], jax.random.PRNGKey(0))


def test_relative_depth(pvb):
    sites = ["conv1", "conv2", "conv3", "fc1", "logits"]
    assert [pvb.relative_depth(s, sites) for s in sites] == [0.2, 0.4, 0.6, 0.8, 1.0]
    with pytest.raises(ValueError, match=r"site must be one of the sites .*; got 'conv9'"):
        pvb.relative_depth("conv9", sites)


def test_paired_depth_matches_numpy_and_scipy(pvb):
    v4 = np.array([0.6, 0.4, 0.5, 0.8, 0.6, 0.25, 0.75])
    it = np.array([0.8, 0.8, 0.5, 1.0, 0.4, 0.75, 1.0])
    key = jax.random.PRNGKey(3)
    got = pvb.paired_depth(v4, it, key, n_boot=400)
    d = it - v4
    idx = np.asarray(jax.random.randint(key, (400, len(d)), 0, len(d)))
    lo, hi = np.percentile([d[i].mean() for i in idx], [2.5, 97.5])
    assert got["mean_difference"] == pytest.approx(d.mean())
    assert (got["lo"], got["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert (got["it_deeper"], got["same"], got["v4_deeper"], got["n"]) == (5, 1, 1, 7)
    assert got["wilcoxon_p"] == pytest.approx(scipy.stats.wilcoxon(d[d != 0]).pvalue)


def test_region_value_averages_the_region_benchmarks(pvb):
    entry = {"benchmarks": {"a": {"region": "IT", "raw": 0.1}, "b": {"region": "human IT", "raw": 0.3},
                            "c": {"region": "V4", "raw": 0.5}, "d": {"region": "IT", "raw": float("nan")}}}
    assert pvb.region_value(entry, pvb.IT_REGIONS, "raw") == pytest.approx(0.2)
    assert np.isnan(pvb.region_value(entry, ("EVC",), "raw"))


def test_benchmark_fingerprints_hold_no_memory_address(pvb):
    """Registered benchmarks hold functools.partial loaders, whose repr carries a memory address; a benchmark's
    definition names them by function and arguments, so a rerun in a new process finds the same fingerprints and
    resumes, and other arguments give another fingerprint."""
    registered = [pvb.scores.get(n) for n in pvb.scores.available()]
    assert any(isinstance(b.stimuli, functools.partial) for b in registered)
    for b in registered + [pvb.quick_v4()]:
        assert re.search(r"0x[0-9a-f]{6,}", json.dumps(b.definition(), default=str)) is None, b.name
    assert pvb.quick_v4(160).fingerprint() == pvb.quick_v4(160).fingerprint()
    assert pvb.quick_v4(160).fingerprint() != pvb.quick_v4(120).fingerprint()
    b = pvb.quick_v4(40)
    assert b.n_splits == 3 and b.name == "cowley2023-v4-210325-first40"
    assert re.fullmatch(r"partial\(performance_vs_brain\._first\(code=\w+\), 40, '210325', 'images'\)",
                        b.definition()["stimuli"])
