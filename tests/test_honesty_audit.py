"""The honesty audit in its --quick form: every bad input and injected fault gets a clear refusal."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_honesty_audit_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "experiments" / "honesty_audit.py"), "--quick", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=120)
    res = json.loads((tmp_path / "results.json").read_text())
    unclear = [(c["area"], c["description"], c["outcome"], c["message"]) for c in res["results"]
               if c["outcome"] != "clear"]
    assert res["summary"]["obscure"] == 0 and res["summary"]["silent"] == 0, unclear
    assert r.returncode == 0, r.stderr[-2000:]
    kinds = [c["kind"] for c in res["results"]]
    assert kinds.count("case") >= 30 and kinds.count("injection") >= 8
    assert {c["area"] for c in res["results"] if c["kind"] == "case"} >= {"electrode", "synthesis", "analysis", "cli"}
    assert (tmp_path / "audit.png").stat().st_size > 1000 and (tmp_path / "caption.txt").exists()
