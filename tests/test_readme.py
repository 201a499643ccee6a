"""The README's examples run as written, and print what they say they print."""
import ast
import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_probe_your_own_model_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", _section("Probe your own model"), re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), namespace)
        for line in block.splitlines():
            m = re.match(r"\s*print\((.*)\)\s+#\s*(\{.*\})\s*$", line)
            if m:                                   # "print(expr)  # {expected}": the claim holds
                assert eval(m.group(1), namespace) == ast.literal_eval(m.group(2))
    assert namespace["subject"].api == "nnx" and list(namespace["subject"].sites) == ["conv1", "bn1", "out"]


def test_nothing_silent_examples_raise_what_they_say():
    namespace: dict = {}
    exec(compile(re.findall(r"```python\n(.*?)```", _section("Probe your own model"), re.S)[0], str(README), "exec"),
         namespace)                                          # the Linen subject "cnn"
    block = re.findall(r"```python\n(.*?)```", _section("Nothing silent"), re.S)[0]
    lines = block.strip().splitlines()
    claims = 0
    for statement, comment in zip(lines, lines[1:]):
        m = re.match(r"# (\w+): (.*?)\s*…?$", comment)
        if statement.startswith("#") or not m:
            if not statement.startswith("#"):
                exec(statement, namespace)
            continue
        error = getattr(__import__("insilico.validation", fromlist=[m.group(1)]), m.group(1))
        try:
            exec(statement, namespace)
        except error as e:
            assert str(e).startswith(m.group(2)), (str(e), m.group(2))
            claims += 1
        else:
            raise AssertionError(f"{statement!r} did not raise {m.group(1)}")
    assert claims == 2


@pytest.mark.slow
def test_short_example_runs_as_printed(data_dir):
    """The README's short example runs top to bottom (it needs INSILICO_DATA for CIFAR-10) and its printed sites
    are the model's."""
    block = re.findall(r"```python\n(.*?)```", _section("A short example"), re.S)[0]
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(block, str(README), "exec"), namespace)
    claimed = re.search(r"print\(subject\.sites\)\s+#\s*(\{.*\})", block).group(1)
    assert namespace["subject"].sites == ast.literal_eval(claimed)
    assert namespace["rec"]["conv3"].shape == (12, 8, 8, 128)
    assert namespace["vis"].images.shape[0] == 16 and namespace["sweep"].sizes["unit"] == 128
