"""Every example in the library's docstrings runs and gives what it shows (doctest over every module)."""
import doctest
import importlib
import pkgutil

import pytest

import insilico

MODULES = sorted(m.name for m in pkgutil.walk_packages(insilico.__path__, "insilico.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"


def test_the_core_modules_carry_examples():
    examples = {name: len([e for t in doctest.DocTestFinder().find(importlib.import_module(name))
                           for e in t.examples])
                for name in ("insilico.subject", "insilico.electrode", "insilico.zoo", "insilico.engine.fold",
                             "insilico.engine.map")}
    assert all(n > 0 for n in examples.values()), examples
