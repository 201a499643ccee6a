"""The model-brain comparison experiments run in their --quick form on the real data."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_rsa_92images_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "rsa_92images.py"), "--quick", "--n-boot", "20",
                        "--models", "mnist_convnet", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    m = res["models"]["mnist_convnet"]
    assert set(m["score"]) == {"human IT", "monkey IT", "EVC", "IT"}
    for region, scores in m["score"].items():
        s, lo, hi = (np.asarray(v) for v in (scores, m["ci_low"][region], m["ci_high"][region]))
        assert s.shape == (len(m["sites"]),) and np.all(np.abs(s) <= 1)
        assert np.all(lo <= hi)
    lo, hi = res["ceilings"]["IT"]
    assert 0 < lo < hi < 1                                         # 15 subjects: a proper ceiling band
    assert (tmp_path / "index.html").exists() and (tmp_path / "heatmap_mnist_convnet.png").exists()


@pytest.mark.slow
def test_v4_encoding_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "v4_encoding.py"), "--quick", "--n-images", "160",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    sess = json.loads((tmp_path / "results.json").read_text())["sessions"]["210325"]
    assert sess["n_images"] == 160 and sess["n_neurons"] == 50
    assert 0.3 < sess["ceiling_median"] < 1
    m = sess["models"]["cifar_convnet"]
    raw = np.asarray(m["raw"])
    assert raw.shape == (len(m["sites"]),) and np.all(np.abs(raw) < 1)
    assert m["best_raw"] > 0.2                            # a trained network's site predicts V4 above chance
    assert np.allclose(m["normalized"], raw / np.sqrt(sess["ceiling_median"]))   # a perfect model of the mean scores 1


@pytest.mark.slow
def test_svcca_training_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "svcca_training.py"), "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["epochs"] == [0, 1, 2] and res["sites"] == ["conv1", "conv2", "fc1", "logits"]
    svcca, cka = np.asarray(res["svcca"]), np.asarray(res["cka"])
    assert np.allclose(svcca[-1], 1.0, atol=1e-4) and np.allclose(cka[-1], 1.0, atol=1e-4)   # final vs itself
    assert np.all(svcca[0] < svcca[-1]) and np.all(cka[0] < 0.999)       # initialization differs from the end
    assert res["test_accuracy"] > 0.8


@pytest.mark.slow
def test_performance_vs_brain_quick(data_dir, tmp_path):
    script = [sys.executable, str(ROOT / "experiments" / "performance_vs_brain.py"), "--quick", "--out", str(tmp_path)]
    r = subprocess.run(script, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "summary.json").read_text())
    assert list(res["models"]) == ["cifar_convnet_untrained", "ConvNet (feed-forward)", "ConvNet, 2 stages"]
    for name, m in res["models"].items():
        assert set(m["benchmarks"]) == {"cichy2014-it", "cowley2023-v4-210325-first160"}, name
        assert 0 <= m["accuracy"] <= 1 and m["benchmarks"]["cichy2014-it"]["chosen_site"] in m["sites"]
        assert all(0 < b["relative_depth"] <= 1 for b in m["benchmarks"].values())
    assert res["models"]["ConvNet (feed-forward)"]["accuracy"] > res["models"]["cifar_convnet_untrained"]["accuracy"]
    for group in ("V4", "IT"):
        c = res["correlations"][group]["pearson"]
        assert c["n"] == 3 and -1 <= c["lo"] <= c["hi"] <= 1 and abs(c["r"]) <= 1
    assert res["depth"]["n"] == 3 and set(res["depth"]["per_model"]) == set(res["models"])
    assert len((tmp_path / "table.csv").read_text().splitlines()) == 1 + 3 * 2
    assert (tmp_path / "performance_vs_brain.png").exists() and (tmp_path / "performance_vs_brain_depth.png").exists()
    again = subprocess.run(script, capture_output=True, text=True, timeout=900)          # resumed: nothing recomputed
    assert again.returncode == 0 and again.stdout.count("results kept from") == 3 and "trained in" not in again.stdout
    stale = tmp_path / "models" / "convnet__2_stages.json"                # a result made otherwise: refused
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "fingerprint": "made-otherwise"}))
    other = subprocess.run(script + ["--only", "cifar_convnet_untrained"], capture_output=True, text=True, timeout=900)
    assert other.returncode == 0 and "convnet__2_stages.json refused" in other.stdout and "left out" in other.stdout
    assert list(json.loads((tmp_path / "summary.json").read_text())["models"]) == ["cifar_convnet_untrained",
                                                                                    "ConvNet (feed-forward)"]
