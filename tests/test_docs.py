"""The executed copies in docs/ (scripts/execute_notebooks.py): one per notebook, full runs with their
outputs, made from the notebooks' current code, and linked from the README."""

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMES = ["01_barlow_twins", "02_dino", "03_dinotwins", "04_attention_maps"]


def script():
    spec = importlib.util.spec_from_file_location("execute_notebooks", REPO_ROOT / "scripts" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_each_notebook_has_an_executed_copy_of_its_current_code(name):
    source = nbformat.read(REPO_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    copy = nbformat.read(REPO_ROOT / "docs" / f"{name}.ipynb", as_version=4)
    digest = script().code_digest
    assert digest(copy) == digest(source), (
        f"notebooks/{name}.ipynb's code changed since docs/{name}.ipynb was made: "
        f"run `python scripts/execute_notebooks.py {name}`")
    record = json.loads((REPO_ROOT / "docs" / "executed.json").read_text())["notebooks"][name]
    assert record["code_sha256"] == digest(source) and record["mode"] == "full"
    code = [c for c in copy.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "every code cell ran"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert images >= 3, f"docs/{name}.ipynb shows {images} figures"
    assert not any("DTLIB_QUICK" in o.get("text", "") for c in code for o in c.outputs)


def test_the_readme_links_every_executed_copy():
    readme = (REPO_ROOT / "README.md").read_text()
    assert all(f"(docs/{name}.ipynb)" in readme for name in NAMES)


def test_a_changed_code_cell_changes_the_digest():
    digest = script().code_digest
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("text")])
    before = digest(nb)
    nb.cells[1].source = "other text"  # prose does not change what the outputs are
    assert digest(nb) == before
    nb.cells[0].source = "x = 2"
    assert digest(nb) != before
