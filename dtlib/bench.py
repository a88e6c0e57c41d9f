"""`python -m dtlib bench`: images/s of a full training step, and on a GPU the fraction of bf16 peak.

A script that prints numbers (and writes them as JSON with --json), never a timed test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import make_config
from .optim import build_optimizer
from .train import amp_dtype, build_method, build_view_maker, enable_fast_cuda_math, resolve_device, train_step

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched on the device name.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0,
                    "H100": 756.0, "A100": 312.0, "L4": 121.0, "A10G": 70.0, "T4": 65.0}


def peak_tflops(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak from `BF16_PEAK_TFLOPS`, or None when unknown (or on CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in BF16_PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def bench_one(method: str, backbone: str, batch_size: int, steps: int, warmup: int, device: torch.device,
              compile: bool = False, **overrides: Any) -> dict[str, Any]:
    """Time `steps` training steps (after `warmup`) of one method/backbone on random uint8 images."""
    preset = "cpu-mini" if device.type == "cpu" and backbone == "resnet_mini" else None
    cfg = make_config(preset, method=method, backbone=backbone, batch_size=batch_size, device=str(device),
                      compile=compile, channels_last=backbone != "vit_tiny", **overrides)
    torch.manual_seed(0)
    model = build_method(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_fn = torch.compile(model) if compile else model
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay)
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    views_of = build_view_maker(cfg)
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (batch_size, 3, 32, 32), dtype=torch.uint8, device=device)

    def step() -> None:
        views = views_of(images, gen)
        train_step(model, step_fn, optimizer, scaler, views, dtype, teacher_temp=cfg.teacher_temp,
                   momentum=cfg.momentum_teacher)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / steps
    with FlopCounterMode(display=False) as counter:  # one eager step, forward + backward
        step()
    flops = counter.get_total_flops()
    result: dict[str, Any] = {"method": method, "backbone": backbone, "batch_size": batch_size,
                              "images_per_s": round(batch_size / seconds, 1), "step_ms": round(1000 * seconds, 2),
                              "gflops_per_step": round(flops / 1e9, 2),
                              "achieved_tflops": round(flops / seconds / 1e12, 3), "compile": compile}
    peak = peak_tflops(device)
    if peak:
        result["fraction_of_bf16_peak"] = round(flops / seconds / 1e12 / peak, 4)
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse bench options, run every method × backbone, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m dtlib bench")
    parser.add_argument("--methods", default="barlow_twins,dino,dinotwins")
    parser.add_argument("--backbones", default=None, help="default: resnet18,resnet50,vit_tiny on GPU, "
                                                          "resnet_mini,resnet18 on CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default 512 on GPU, 64 on CPU")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this file")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    if gpu:
        enable_fast_cuda_math()  # as fit does
    backbones = args.backbones or ("resnet18,resnet50,vit_tiny" if gpu else "resnet_mini,resnet18")
    batch = args.batch_size or (512 if gpu else 64)
    steps = args.steps or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}, batch {batch}, {steps} timed steps after {warmup} warm-up")
    print(f"{'method':<13} {'backbone':<12} {'img/s':>9} {'ms/step':>9} {'GFLOP/step':>11} {'TFLOP/s':>8} "
          f"{'of peak':>8}")
    results = []
    for backbone in backbones.split(","):
        for method in args.methods.split(","):
            r = bench_one(method, backbone, batch, steps, warmup, device, args.compile)
            results.append(r)
            frac = f"{100 * r['fraction_of_bf16_peak']:.1f} %" if "fraction_of_bf16_peak" in r else "n/a"
            print(f"{method:<13} {backbone:<12} {r['images_per_s']:>9.1f} {r['step_ms']:>9.1f} "
                  f"{r['gflops_per_step']:>11.1f} {r['achieved_tflops']:>8.3f} {frac:>8}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "results": results},
                                        indent=2) + "\n")
    return 0
