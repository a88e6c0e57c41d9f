"""scripts/ablation.py end to end on a tiny generated folder: selected rows, skip-done, result files."""

import json
import subprocess
import sys
from pathlib import Path

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
    assert all(row["seeds"] == 1 and 0 <= row["linear_top1_mean"] <= 100 for row in result["rows"])
    table = (tmp_path / "results" / "two_rows.md").read_text()
    assert "| Barlow Twins | 1 |" in table and "DINO" not in table.split("|---|")[-1]
    # A second call finds both metrics.json files and runs nothing.
    again = run_ablation(*common, "--rows", "0-1", "--name", "two_rows", cwd=tmp_path)
    assert again.returncode == 0 and "running:" not in again.stdout


def test_ablation_refuses_a_row_that_does_not_exist(tmp_path):
    done = run_ablation("--data-dir", str(tmp_path), "--rows", "0,42", cwd=tmp_path)
    assert done.returncode != 0 and "no row 42" in done.stderr and "Traceback" not in done.stderr
