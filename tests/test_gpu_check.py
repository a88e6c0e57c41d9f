"""The GPU check's CPU rehearsal: scripts/gpu_check.sh end to end at toy size, within the device's file limits."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dtlib.pack import pack_data

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _fake_cifar(root: Path, per_class: int) -> None:
    """10 CIFAR-10 class folders of 32x32 random JPEGs in train/ and test/."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg")


@pytest.mark.slow
def test_cpu_rehearsal_runs_every_stage_and_stays_within_the_file_limits(tmp_path):
    _fake_cifar(tmp_path / "data", per_class=12)
    tgz = pack_data(tmp_path / "data.tgz", tmp_path / "data")
    out = tmp_path / "out"
    env = {**os.environ, "GC_DEVICE": "cpu", "GC_DATA": str(tgz), "GC_WORK": str(tmp_path / "work"),
           "OUT": str(out), "DTLIB_CACHE": str(tmp_path / "cache"),
           # a loaded CI machine can be 10x slower than a quiet one: the 470 s deadline is the GPU's
           "GC_DEADLINE": "1500", "GC_TIMEOUT": "1600"}
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "gpu_check.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=1700)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    summary = json.loads((out / "summary.json").read_text())
    status = {name: s["status"] for name, s in summary["stages"].items()}
    assert status == {"env": "ok", "ceiling": "skipped", "bench": "ok", "data": "ok", "train": "ok",
                      "resume": "ok", "fp16": "ok", "vit": "ok", "extra_bench": "skipped"}
    assert summary["failed_stages"] == []
    stages = summary["stages"]
    assert [r["method"] for r in stages["bench"]["rows"]] == ["barlow_twins", "dino", "dinotwins"]
    assert stages["train"]["step"] > 0 and 0 <= stages["train"]["linear_top1"] <= 100
    assert stages["resume"]["interrupted"] and stages["resume"]["same_steps"] and stages["resume"]["identical"]
    assert stages["fp16"]["fp16"]["finite"] and stages["fp16"]["fp16"]["final_scale"] > 0
    assert stages["vit"]["file_mb"] <= 12

    # the device tool brings back at most 8 files of <= 16 MiB, no more than 2 folders below OUT
    files = [p for p in out.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["gpu_check.log", "summary.json", "vit_tiny_teacher_fp16.pt"]
    assert all(p.stat().st_size <= 16 * 2**20 for p in files)
    assert all(len(p.relative_to(out).parts) <= 3 for p in files)
    assert summary["wall_s"] < summary["deadline_s"]
