"""The notebooks in notebooks/ are saved with their outputs (figures a reader sees without running them), and
they still run top to bottom and draw the figures they were saved with.

The default run only reads the saved notebooks; re-executing them (a minute or more each) is marked slow.
Regenerate the saved outputs with ``python notebooks/execute.py [NAMES...]``.
"""
import importlib.util
import json
import os
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

_spec = importlib.util.spec_from_file_location("insilico_notebook_executor", NOTEBOOK_DIR / "execute.py")
executor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(executor)

RERUN = "; regenerate it with `python notebooks/execute.py {}`"


def _image_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and executor.has_png(c)]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8, f"expected the 8 tutorial notebooks in {NOTEBOOK_DIR}, found {IDS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_saved_with_outputs(path):
    """Cheap (no execution): the saved notebook was executed to the end by the executor with its current code,
    shows at least one PNG figure, no error, no warning stream, and stays small."""
    nb = json.loads(path.read_text())
    rerun = RERUN.format(path.stem)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}, not 1..{len(code)}" + rerun
    assert executor.png_count(nb) >= 1, f"{path.name} has no saved PNG figure" + rerun
    found = executor.problems(nb)
    assert not found, f"{path.name}: " + "; ".join(found) + rerun
    meta = nb["metadata"].get("insilico", {})
    assert meta.get("source_sha256") == executor.source_hash(nb), (
        f"{path.name}: its code cells changed after its outputs were saved" + rerun)
    size = path.stat().st_size
    assert size <= executor.MAX_BYTES, f"{path.name} is {size / 1e6:.2f} MB, over {executor.MAX_BYTES / 1e6} MB"
    for c in code:
        assert "execution" not in c["metadata"], f"{path.name}: execution timings saved" + rerun


def test_warning_patterns_catch_known_warnings():
    """The patterns the checks rely on recognize the warnings they are meant to keep out (and not plain text)."""
    noisy = ["W0000 00:00:1700000000.123456   1234 cpu_client.cc:123] some XLA message",
             "E1130 12:00:00.000000 1 xla_bridge.py:900] Unable to initialize backend 'cuda'",
             "An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed.",
             "/x/y.py:3: DeprecationWarning: jax.tree_map is deprecated",
             "TqdmWarning: IProgress not found. Please update jupyter and ipywidgets.",
             "epoch 1/3:  40%|████      | 4/10 [00:01<00:02,  2.50it/s]"]
    for line in noisy:
        assert executor.warning_lines(line) == [line], line
    assert executor.warning_lines("agreement after silencing conv3 unit 7: 0.95\nheld-out accuracy 0.93") == []


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_reruns(path):
    """Re-executes a copy (in memory; the file is not touched): no error, no warning stream, and every cell that
    has a figure in the saved notebook draws one again. Figures are compared by presence, not by bytes."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    from nbclient.exceptions import CellExecutionError

    saved = nbformat.read(path, as_version=4)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    try:
        executor.execute(nb, path.parent)
    except CellExecutionError as e:
        pytest.fail(f"{path.name} raised:\n{str(e)[-3000:]}")
    found = executor.problems(nb)
    assert not found, f"{path.name}: " + "; ".join(found)
    assert executor.png_count(nb) >= 1

    have_data = bool(os.environ.get("INSILICO_DATA"))
    saved_with_data = saved.metadata.get("insilico", {}).get("executed_with_data", False)
    missing = []
    for i in _image_cells(saved):
        if saved_with_data and not have_data and executor.DATA_TAG in saved.cells[i].metadata.get("tags", []):
            continue                     # draws only with INSILICO_DATA, which this run does not have
        if not executor.has_png(nb.cells[i]):
            missing.append(i)
    assert not missing, (f"{path.name}: cells {missing} drew a figure in the saved notebook but none now "
                         f"(INSILICO_DATA {'set' if have_data else 'not set'})")
