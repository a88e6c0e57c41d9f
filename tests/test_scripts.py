"""The scripts: ablation.py end to end on a tiny generated folder, the duplicate audit, the diagrams."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dtlib.data import Split

REPO_ROOT = Path(__file__).resolve().parents[1]

TINY = ["--set", "epochs=1", "--set", "batch_size=6", "--set", "subset=0", "--set", "data_size=0",
        "--set", "image_size=8", "--set", "local_size=4", "--set", "n_local=1", "--set", "probe_epochs=2",
        "--set", "eval_batch_size=64"]


def run_ablation(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "ablation.py"), *args],
                          capture_output=True, text=True, cwd=cwd)


def test_ablation_runs_the_chosen_rows_and_writes_named_results(tiny_image_folder, tmp_path):
    common = ["--data-dir", str(tiny_image_folder.root), "--runs", str(tmp_path / "runs"),
              "--results", str(tmp_path / "results"), "--seeds", "0", *TINY]
    done = run_ablation(*common, "--rows", "0,1", "--name", "two_rows", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "results" / "two_rows.json").read_text())
    assert [row["name"] for row in result["rows"]] == ["Random init (no training)", "Barlow Twins"]
    # each row's mean is its one run's own metrics.json (one seed), not a number made up on the way
    recorded = {json.loads(p.read_text())["method"]: json.loads(p.read_text())["linear_top1"]
                for p in (tmp_path / "runs").rglob("metrics.json")}
    assert len(recorded) == 2 and all(row["seeds"] == 1 for row in result["rows"])
    assert sorted(row["linear_top1_mean"] for row in result["rows"]) == sorted(recorded.values())
    table = (tmp_path / "results" / "two_rows.md").read_text()
    assert "| Barlow Twins | 1 |" in table and "DINO" not in table.split("|---|")[-1]
    # A second call finds both metrics.json files and runs nothing.
    again = run_ablation(*common, "--rows", "0-1", "--name", "two_rows", cwd=tmp_path)
    assert again.returncode == 0 and "running:" not in again.stdout
    # --summarise-only trains nothing: a row without runs is reported with 0 seeds.
    summary = run_ablation(*common, "--rows", "0-2", "--name", "three_rows", "--summarise-only", cwd=tmp_path)
    assert summary.returncode == 0 and "running:" not in summary.stdout, summary.stdout + summary.stderr
    rows = json.loads((tmp_path / "results" / "three_rows.json").read_text())["rows"]
    assert [row["seeds"] for row in rows] == [1, 1, 0]


def test_ablation_refuses_a_row_that_does_not_exist(tmp_path):
    done = run_ablation("--data-dir", str(tmp_path), "--rows", "0,42", cwd=tmp_path)
    assert done.returncode != 0 and "no row 42" in done.stderr and "Traceback" not in done.stderr


def load_script(name):
    """Import scripts/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_duplicates_is_exact():
    count_duplicates = load_script("audit_duplicates").count_duplicates
    generator = torch.Generator().manual_seed(0)
    train_images = torch.randint(0, 256, (20, 3, 4, 4), dtype=torch.uint8, generator=generator)
    near_copy = train_images[4].clone()
    near_copy[0, 0, 0] ^= 1  # one bit off: not a duplicate
    fresh = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=generator)
    test_images = torch.stack([train_images[3], fresh[0], train_images[17], train_images[3], near_copy, fresh[1]])
    train = Split(train_images, torch.zeros(20, dtype=torch.int64), ["x"])
    test = Split(test_images, torch.zeros(6, dtype=torch.int64), ["x"])
    assert count_duplicates(train, test) == 3  # each duplicated test image counts, repeats included
    assert count_duplicates(train, train) == 20
    other_size = Split(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), ["x"])
    assert count_duplicates(train, other_size) == 0


def test_make_diagrams_writes_the_three_pngs_the_notebooks_embed(tmp_path):
    assert load_script("make_diagrams").main(["--out", str(tmp_path), "--dpi", "40"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["arch_barlow_twins.png", "arch_dino.png", "arch_dinotwins.png"]
    for name in names:
        pixels = np.asarray(Image.open(tmp_path / name).convert("RGB"))  # (H, W, 3)
        assert pixels.shape[1] > pixels.shape[0]  # a left-to-right diagram
        assert (pixels < 128).any(axis=-1).mean() > 0.01  # text and arrows were drawn, not a blank canvas
    with pytest.raises(ValueError, match="unknown method 'simclr'"):
        load_script("make_diagrams").draw_architecture("simclr")
