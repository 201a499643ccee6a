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
