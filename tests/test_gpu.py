"""dtlib/gpu.py: the bench batch sized to the GPU's memory, halved on out-of-memory; % of the datasheet peak
and of the measured matmul ceiling."""

import json
from types import SimpleNamespace

import pytest
import torch

import dtlib.bench as bench
from dtlib import gpu


@pytest.mark.parametrize("gib, batch", [(15, 128), (24, 256), (80, 512), (141, 512)])
def test_default_bench_batch_follows_the_gpu_memory(monkeypatch, gib, batch):
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=gib * 2**30))
    assert gpu.default_bench_batch(torch.device("cuda")) == batch
    assert gpu.default_bench_batch(torch.device("cpu")) == 64


def test_bench_halves_the_batch_on_out_of_memory(monkeypatch, capsys, tmp_path):
    tried = []

    def fake_bench_one(batch_size, method, backbone, *args, **kw):
        tried.append(batch_size)
        if batch_size > 16:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return {"method": method, "backbone": backbone, "batch_size": batch_size, "images_per_s": 1.0,
                "step_ms": 1.0, "gflops_per_step": 1.0, "achieved_tflops": 1.0}

    monkeypatch.setattr(bench, "bench_one", fake_bench_one)
    assert bench.main(["--batch-size", "64", "--backbones", "resnet_mini", "--methods", "dino",
                       "--device", "cpu", "--json", str(tmp_path / "b.json")]) == 0
    assert tried == [64, 32, 16]
    assert "out of GPU memory at batch 64: retrying at batch 32" in capsys.readouterr().out
    assert json.loads((tmp_path / "b.json").read_text())["results"][0]["batch_size"] == 16


def test_peak_fractions_use_the_datasheet_and_the_measured_ceiling(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H200")
    monkeypatch.setattr(gpu, "measured_tflops", lambda d: 790.0 if d.type == "cuda" else None)
    r = gpu.peak_fractions(395.0, torch.device("cuda"))
    assert r == {"fraction_of_bf16_peak": round(395 / 989, 4), "measured_ceiling_tflops": 790.0,
                 "fraction_of_measured_ceiling": 0.5}
    assert gpu.peak_fractions(1.0, torch.device("cpu")) == {}


def test_bench_one_reports_both_fractions(monkeypatch):
    monkeypatch.setattr(bench, "peak_fractions", lambda tflops, device: {"fraction_of_measured_ceiling": 0.25})
    r = bench.bench_one(4, "dino", "resnet_mini", 1, 0, torch.device("cpu"), image_size=16, local_size=8, n_local=1)
    assert r["fraction_of_measured_ceiling"] == 0.25 and r["batch_size"] == 4
