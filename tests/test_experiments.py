"""Experiment scripts run in their --quick form."""
import json

import numpy as np
import pytest
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_train_zoo_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "train_zoo.py"), "mnist_convnet", "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    acc = json.loads((tmp_path / "train_zoo_results.json").read_text())["mnist_convnet"]
    assert 0.5 < acc <= 1.0                                   # one epoch on 2,000 digits already learns
    from insilico.train import read_meta
    meta = read_meta(tmp_path / "mnist_convnet.ckpt")
    assert meta["train_set"] == "mnist-train (2000 images)" and meta["test_accuracy"] == acc


@pytest.mark.slow
def test_ablation_morcos2018_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "ablation_morcos2018.py"), "--quick",
                        "--models", "cifar_convnet", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    import xarray as xr
    ds = xr.open_dataset(tmp_path / "results.nc")
    curve = ds["curve_memorizing_conv2"].values
    assert curve.shape == (3, 11) and np.allclose(curve[:, 0], 1.0)     # nothing ablated: intact accuracy
    assert ds["selectivity_cifar_convnet_conv3"].size == 128
    assert (tmp_path / "index.html").exists() and "rho" in (tmp_path / "results.md").read_text()


@pytest.mark.slow
def test_receptive_fields_quick(data_dir, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "receptive_fields.py"), "--quick",
                        "--models", "mnist_convnet", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    sizes = res["rf_size"]["mnist_convnet"]
    assert sizes["conv1"]["theoretical"] < sizes["conv2"]["theoretical"]      # RFs grow with depth
    assert res["gabor"]["mnist_convnet conv1"]["median_sta_filter_corr"] > 0.9
    assert "m625r58" in res["goris2015_sf_bandwidth"]
    assert (tmp_path / "index.html").exists() and (tmp_path / "units_mnist_convnet_conv2.png").exists()


@pytest.mark.slow
def test_metamers_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "metamers.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())["sites"]
    assert res["conv1"]["rel_error_median"] <= 1e-2 and res["conv1"]["self_agreement"] == 1.0
    assert res["fc1"]["pixel_rmse_median"] > res["conv1"]["pixel_rmse_median"]   # deeper: farther in pixels
    assert (tmp_path / "metamers.png").exists()


@pytest.mark.slow
def test_four_elements_quick(tmp_path, data_dir):
    import importlib.util
    import json
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "experiments" / "four_elements.py"
    spec = importlib.util.spec_from_file_location("four_elements", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    names = ["MLP, feedback alignment"]            # (the other variants' parts are tested elsewhere)
    summary = mod.main(["--quick", "--out", str(tmp_path), "--epochs", "1", "--n-train", "1000", "--only", *names])
    assert list(summary["variants"]) == names
    for name, v in summary["variants"].items():
        assert 0.0 <= v["accuracy"] <= 1.0 and -1 <= v["rsa_human IT"] <= 1, name
        assert v["best_site_EVC"] in v["rsa_profile"]["EVC"]
    fa = summary["variants"]["MLP, feedback alignment"]["gradient_alignment_deg"]
    assert fa["logits/dense"] < 1e-3 and 0 < fa["fc1/dense"] < 120
    assert json.loads((tmp_path / "results.json").read_text())["config"]["n_train"] == 1000
    assert (tmp_path / "four_elements.png").exists() and (tmp_path / "index.html").exists()
    again = mod.main(["--quick", "--out", str(tmp_path), "--epochs", "1", "--n-train", "1000", "--only", *names])
    assert again["variants"] == json.loads(json.dumps(summary["variants"]))       # finished variants are kept
    other = mod.main(["--quick", "--out", str(tmp_path), "--epochs", "2", "--n-train", "1000", "--only", *names])
    assert other["variants"][names[0]]["fingerprint"] != summary["variants"][names[0]]["fingerprint"]   # retrained
    assert (tmp_path / "results.json.bak").exists()
    more = mod.main(["--quick", "--out", str(tmp_path), "--epochs", "2", "--n-train", "1000", "--only", "MLP, backprop"])
    assert list(more["variants"]) == ["MLP, backprop", *names]          # a run of one variant keeps the others


@pytest.mark.slow
def test_feedback_alignment_quick(tmp_path, data_dir):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "experiments" / "feedback_alignment.py"
    spec = importlib.util.spec_from_file_location("feedback_alignment", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--quick", "--epochs", "2", "--out", str(tmp_path)])
    fa, bp = summary["rules"]["feedback_alignment"], summary["rules"]["backprop"]
    assert fa["test_acc"][-1] > 0.8 and bp["test_acc"][-1] > 0.9
    assert fa["gradient_alignment"][2]["fc2/dense"] < fa["gradient_alignment"][0]["fc2/dense"]   # aligning
    assert (tmp_path / "feedback_alignment.png").exists()


def test_four_elements_linear_readout_trains_on_every_class():
    """The readout's training images are a random subset: CIFAR-10 is sorted by class, so the first n images
    would all be airplanes and the readout would sit at chance."""
    import importlib.util
    import pathlib

    import jax
    import jax.numpy as jnp

    from insilico.data.datasets import Dataset
    from insilico.models import MLP
    from insilico.subject import InputSpec, make_subject

    path = pathlib.Path(__file__).parent.parent / "experiments" / "four_elements.py"
    spec = importlib.util.spec_from_file_location("four_elements", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    protos = rng.uniform(size=(3, 6, 6, 1)).astype(np.float32)
    y = np.repeat(np.arange(3), 100).astype(np.int32)                    # sorted by class, like CIFAR-10
    x = np.clip(protos[y] + 0.1 * rng.normal(size=(300, 6, 6, 1)), 0, 1).astype(np.float32)
    model = MLP(widths=(32,), num_classes=3)
    subject = make_subject("toy", model, model.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 1))),
                           InputSpec((6, 6, 1)))
    data = Dataset(x, y, ("a", "b", "c"), "toy")
    assert mod.linear_readout(subject, "fc1", data, data, 90) > 0.9
