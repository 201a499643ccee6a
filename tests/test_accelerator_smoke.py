"""The accelerator benchmark suite runs end to end in its smoke form: ``benchmarks/accelerator.sh --smoke`` (tiny
sizes, on the CPU, from the source tree) exits 0 and prints a table with the device, the versions and every row,
each with finite times and a finite result."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("record", "lesion1", "lesions", "featurevis", "pgd", "eps", "rsa", "rsa_tau")
TORCH_ROWS = ("lesion1", "featurevis", "pgd", "eps")
HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.skipif(shutil.which("bash") is None, reason="the suite's entry point is a bash script")
def test_accelerator_smoke(tmp_path):
    out = tmp_path / "suite.json"
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)                      # the script sets it to the source tree itself
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "accelerator.sh"), "--smoke", "--json", str(out)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}"
    lines = r.stdout.splitlines()
    assert any(line.startswith("device: cpu") for line in lines), r.stdout
    versions = next(line for line in lines if line.startswith("jax "))
    assert "flax " in versions and "torch " in versions
    for row in ROWS:
        line = next((x for x in lines if x.split(" ", 1)[0] == row), None)
        assert line is not None, f"no row {row!r} in\n{r.stdout}"
        times = [float(t) for t in re.findall(r"(\d+\.\d+) s\b", line)]
        want = 3 if HAVE_TORCH and row in TORCH_ROWS else 2           # first call, warm (, PyTorch)
        assert len(times) == want and all(math.isfinite(t) and t > 0 for t in times), line
        assert math.isfinite(float(line.split()[-1])), line                   # the row's result
    saved = json.loads(out.read_text())
    assert saved["preset"] == "smoke" and saved["session"] is None
    for row in ROWS:
        got = saved["results"]["insilico"][row]
        assert "error" not in got and all(math.isfinite(got[k]) for k in ("first_s", "warm_s", "result")), got
