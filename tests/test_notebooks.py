"""The notebooks: committed clean and in sync with their builder, and each runs top to bottom in quick mode."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
NAMES = ["01_barlow_twins", "02_dino", "03_dinotwins", "04_attention_maps"]
# Seconds for one whole notebook in quick mode: ~1 minute on 2 idle CPU cores, with room for a busy machine.
NOTEBOOK_TIMEOUT = 600


def test_all_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == NAMES


def test_notebooks_match_their_builder(tmp_path):
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "build_notebooks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for path in NOTEBOOKS:
        assert (tmp_path / path.name).read_text() == path.read_text(), (
            f"{path.name} differs from scripts/build_notebooks.py: run python scripts/build_notebooks.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_badge_colab_setup_and_parameters(path):
    nb = nbformat.read(path, as_version=4)
    badge = f"https://colab.research.google.com/github/dinotwins/dinotwins/blob/main/notebooks/{path.name}"
    assert badge in nb.cells[0].source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert '"google.colab" in sys.modules' in first_code.source and "--no-deps" in first_code.source
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "DTLIB_QUICK" in tagged[0].source and "DTLIB_DATA" in tagged[0].source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, shared_cifar_dir, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # The kernel inherits this environment: quick mode, the offline CIFAR-10, runs in a scratch folder.
    monkeypatch.setenv("DTLIB_QUICK", "1")
    monkeypatch.setenv("DTLIB_DATA", str(shared_cifar_dir))
    monkeypatch.setenv("DTLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("DTLIB_CHECKPOINT", raising=False)
    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT
    # nbclient's timeout is per cell; asking for what is left of the notebook's budget makes it per notebook.
    client = NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    images = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
                 for out in cell.outputs)
    assert images >= 3, f"{path.name} showed {images} figures"
