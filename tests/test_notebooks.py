"""The notebooks are the source: committed clean, their URLs and recipe numbers taken from one place each,
their teaching code checked against dtlib inside themselves, and each runs top to bottom in quick mode."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from dtlib.config import PRESETS, Config

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
NAMES = ["01_barlow_twins", "02_dino", "03_dinotwins", "04_attention_maps"]
# Seconds for one whole notebook in quick mode: 1-3 minutes on one idle CPU core, with room for a busy machine.
NOTEBOOK_TIMEOUT = int(os.environ.get("DTLIB_NOTEBOOK_TIMEOUT", "600"))  # DTLIB_NOTEBOOK_TIMEOUT: more when loaded
# Config fields of the recipes whose values the notebooks must print from the Config, never type.
RECIPE_FLOATS = ("student_temp", "teacher_temp", "warmup_teacher_temp", "momentum_teacher", "center_momentum",
                 "beta", "lambd", "lr", "weight_decay", "min_lr_ratio")
RECIPE_SCALES = ("global_scale", "local_scale")
# What each teaching notebook checks its own code against, with torch.testing.assert_close.
CHECKED_AGAINST = {
    "01_barlow_twins": ["barlow_twins_loss(", "cross_correlation("],
    "02_dino": ["ema_loss(", "ema_loss.center", "model.update_teacher(", "sinkhorn_knopp(",
                "model.loss_fn.teacher_probs(", "model.loss_fn("],
    "03_dinotwins": ["model(views", "cfg.beta *"],
}


def repository_url() -> str:
    """pyproject.toml's [project.urls] Repository, read independently of dtlib."""
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def prose(nb: nbformat.NotebookNode) -> str:
    """What a notebook states in words: its markdown cells and the comments of its code cells."""
    parts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    for cell in nb.cells:
        if cell.cell_type == "code":
            parts += [line.split("#", 1)[1] for line in cell.source.splitlines() if "#" in line]
    return "\n".join(parts)


def recipe_values() -> tuple[set[float], set[float], set[int]]:
    """Floats, crop percentages and epoch counts of the default Config and of every preset."""
    floats, percents, epochs = set(), set(), set()
    for preset in [{}, *PRESETS.values()]:
        values = {**dataclasses.asdict(Config()), **preset}
        floats |= {float(values[f]) for f in RECIPE_FLOATS if values[f] is not None}
        percents |= {round(100 * x, 6) for f in RECIPE_SCALES for x in values[f]}
        epochs.add(values["epochs"])
    return floats, percents, epochs


def typed_recipe_numbers(text: str) -> list[str]:
    """Numbers in `text` that restate a recipe value: decimals, a·10^b, percentages, 'N epochs'."""
    floats, percents, epochs = recipe_values()
    found = []
    for m in re.finditer(r"(?<![\w.])(\d+\.\d+(?:e-?\d+)?|\d+e-?\d+)(?![\w.])", text):
        found += [m.group(0)] if float(m.group(1)) in floats else []
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*\\cdot\s*10\^\{?(-?\d+)\}?", text):
        found += [m.group(0)] if float(m.group(1)) * 10 ** int(m.group(2)) in floats else []
    for m in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:–|-|to)?\s*(?:\d+(?:\.\d+)?\s*)?%", text):
        found += [m.group(0)] if round(float(m.group(1)), 6) in percents else []
    for m in re.finditer(r"(?<![\w.])(\d+)[ -]epochs?\b", text):
        found += [m.group(0)] if int(m.group(1)) in epochs else []
    return found


def test_all_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    code_cells = [c for c in read(path).cells if c.cell_type == "code"]
    assert code_cells
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_install_use_the_pyproject_repository(path):
    url = repository_url()
    owner_repo = url.removeprefix("https://github.com/")
    nb = read(path)
    text = "\n".join(c.source for c in nb.cells)
    badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{path.name}"
    assert badge in nb.cells[0].source
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    assert '"google.colab" in sys.modules' in setup
    assert f'%pip install -q --no-deps "dtlib @ git+{url}"' in setup  # --no-deps: Colab keeps its own torch
    assert "subprocess" not in setup  # %pip shows pip's errors
    assert set(re.findall(r"github\.com/([\w.-]+/[\w.-]+?)(?:/|\"|\)|$)", text, re.MULTILINE)) == {owner_repo}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_shrinks_for_ci(path):
    tagged = [c for c in read(path).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "DTLIB_QUICK" in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_recipe_number_is_typed(path):
    typed = typed_recipe_numbers(prose(read(path)))
    assert not typed, f"{path.name} states {typed}: print them from the Config instead"


def test_the_recipe_scan_finds_typed_numbers():
    text = "crops 30 – 100 % of the image, momentum from 0.996 (0.9 on cpu-mini), β 5e-3, a 200-epoch run"
    assert typed_recipe_numbers(text) == ["0.996", "0.9", "5e-3", "30 – 100 %", "200-epoch"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_dtlib_is_imported_from_its_public_api(path):
    code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    assert "from dtlib.train import" not in code  # fit, build_method, ... come from top-level dtlib


@pytest.mark.parametrize("name", CHECKED_AGAINST)
def test_teaching_code_is_checked_against_dtlib(name):
    code = "\n".join(c.source for c in read(REPO_ROOT / "notebooks" / f"{name}.ipynb").cells if c.cell_type == "code")
    assert "torch.testing.assert_close(" in code
    missing = [call for call in CHECKED_AGAINST[name] if call not in code]
    assert not missing, f"{name} does not check its code against {missing}"


@pytest.mark.parametrize("name", NAMES[:3])
def test_teaching_notebook_has_exercises_behind_a_solutions_switch(name):
    cells = read(REPO_ROOT / "notebooks" / f"{name}.ipynb").cells
    exercises = [c for c in cells if "exercise" in c.metadata.get("tags", [])]
    assert len(exercises) >= 3, f"{name} has {len(exercises)} exercise cells"
    code = [c.source for c in exercises if c.cell_type == "code"]
    assert code and all("...  # your code" in s and "if SOLUTIONS:" in s for s in code)
    questions = [c.source for c in exercises if c.cell_type == "markdown"]
    assert len(questions) >= 3 and all("Predict, then run" in q for q in questions)
    assert any("check(" in c.source for c in cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_ends_with_what_you_saw_and_what_to_try(path):
    last = read(path).cells[-1]
    assert last.cell_type == "markdown" and "What you saw" in last.source and "Try" in last.source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, shared_cifar_dir, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # The kernel inherits this environment: quick mode, the offline CIFAR-10, runs in a scratch folder.
    monkeypatch.setenv("DTLIB_QUICK", "1")
    monkeypatch.setenv("DTLIB_SOLUTIONS", "1")  # the shipped solutions fill the exercises
    monkeypatch.setenv("DTLIB_DATA", str(shared_cifar_dir))
    monkeypatch.setenv("DTLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("DTLIB_CHECKPOINT", raising=False)
    nb = read(path)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT
    # nbclient's timeout is per cell; asking for what is left of the notebook's budget makes it per notebook.
    client = NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))
    client.execute()  # raises CellExecutionError, naming the cell, on any error (a failed assert_close too)
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    images = sum("image/png" in out.get("data", {}) for out in outputs)
    assert images >= 2, f"{path.name} showed {images} figures"  # at least the live curves and one more
    if path.stem == "04_attention_maps":  # the viewer is displayed in quick mode too (progress bars are widgets too)
        viewer_cell = next(c for c in nb.cells if c.cell_type == "code" and "AttentionViewer(" in c.source)
        assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in viewer_cell.outputs)
