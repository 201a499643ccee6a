"""The synthesis experiments (adversarial robustness, controversial stimuli) run in their --quick form."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_adversarial_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "adversarial.py"), "--quick", "--n", "32",
                        "--models", "cifar_convnet", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["n_images"] == 32 and res["pgd_steps"] == 10
    c = res["models"]["cifar_convnet"]
    assert 0.5 < c["clean_accuracy"] <= 1.0
    for attack in ("fgsm", "pgd_linf", "pgd_l2"):
        eps, acc = np.asarray(c[attack]["eps"]), np.asarray(c[attack]["accuracy"])
        assert eps[0] == 0 and np.all(np.diff(eps) > 0)
        assert acc[0] == c["clean_accuracy"]                     # no perturbation: clean accuracy
        assert acc[-1] < acc[0]                                   # the largest ε hurts
        assert np.all((acc >= 0) & (acc <= 1))
        assert c[attack]["mean_linf"][0] < 1e-6                   # quantization round-off only
    linf = np.asarray(c["pgd_linf"]["mean_linf"])
    assert np.all(linf <= np.asarray(c["pgd_linf"]["eps"]) + 1e-5)   # perturbations stay inside the ball
    b = c["benchmark"]
    assert abs(b["eps"] - 8 / 255) < 1e-6
    assert b["pgd_linf"] <= b["fgsm"] + 1 / 32 and b["pgd_linf"] < 0.5 * c["clean_accuracy"]   # PGD is stronger
    ex = res["examples"]["cifar_convnet"]
    assert len(ex["adversarial"]) == 6 and set(ex["true"]) <= {"airplane", "automobile", "bird", "cat", "deer",
                                                               "dog", "frog", "horse", "ship", "truck"}
    assert max(ex["linf"]) <= 8 / 255 + 1e-5
    assert "transfer" not in res                                  # needs two CIFAR models
    for f in ("index.html", "results.md", "accuracy_vs_eps.png", "examples_cifar_convnet.png"):
        assert (tmp_path / f).exists(), f
    assert "8/255" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_controversial_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "controversial_stimuli.py"), "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert (res["model_a"], res["model_b"]) == ("cifar_convnet", "cifar_resnet")
    assert res["n_pairs"] == 6 and res["n_seeds"] == 1 and res["steps"] == 60
    acc = np.asarray([p["acceptance"] for p in res["pairs"]])
    assert acc.shape == (6, 1) and np.all((acc >= 0) & (acc <= 1))
    pa = np.asarray([p["p_a"] for p in res["pairs"]])
    pb = np.asarray([p["p_b"] for p in res["pairs"]])
    np.testing.assert_allclose(acc, np.minimum(pa, pb), atol=1e-6)
    assert res["fraction_success"] == float(np.mean(acc >= 0.85))
    assert res["median_acceptance"] > 0.5                         # two small CIFAR nets are easy to pit
    assert all(p["class_a"] != p["class_b"] for p in res["pairs"])
    m = res["mean_acceptance_matrix"]
    assert len(m) == 10 and all(len(r) == 10 for r in m) and m[0][0] is None
    assert m[0][1] == res["pairs"][0]["acceptance"][0]
    for f in ("index.html", "results.md", "acceptance_heatmap.png", "controversial_images.png"):
        assert (tmp_path / f).exists(), f
