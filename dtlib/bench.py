"""`python -m dtlib bench`: images/s of a full training step, and on a GPU the fraction of bf16 peak;
with --preset, the counted training FLOPs of that recipe and its estimated time on common GPUs.

A script that prints numbers (and writes them as JSON with --json), never a timed test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .build import build_method, build_view_maker
from .config import Config, make_config
from .gpu import datasheet_tflops, default_bench_batch, halving_on_oom, peak_fractions
from .train import Training, enable_fast_cuda_math, resolve_device

# The GPUs of the time estimate, with their dense tensor-core peak (TFLOP/s) in the dtype dtlib trains in
# there (a T4 has no native bf16: fp16 + GradScaler, see train.amp_dtype).
REFERENCE_GPUS = {"T4 (fp16)": 65.0, "A100 (bf16)": 312.0, "H100 SXM (bf16)": 989.0}
TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000}




def time_steps(cfg: Config, device: torch.device, steps: int, warmup: int,
               side: int = 32) -> tuple[float, int]:
    """Seconds per training step of `cfg` (mean of `steps` after `warmup`) on random uint8 images of
    `side` px, and the counted FLOPs of one eager step."""
    torch.manual_seed(0)
    images = torch.randint(0, 256, (cfg.batch_size, 3, side, side), dtype=torch.uint8)
    training = Training.setup(cfg, images, device)  # fit's own set-up: head_lr_scale, DDP, compile, ...

    def step() -> None:  # the last step's schedules: full lr, prototypes not frozen
        training.step(training.n_steps - 1, training.images)

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
    return seconds, counter.get_total_flops()


def bench_one(batch_size: int, method: str, backbone: str, steps: int, warmup: int, device: torch.device,
              compile: bool = False, **overrides: Any) -> dict[str, Any]:
    """Time `steps` training steps (after `warmup`) of one method/backbone on random uint8 images."""
    preset = "cpu-mini" if device.type == "cpu" and backbone == "resnet_mini" else None
    cfg = make_config(preset, method=method, backbone=backbone, batch_size=batch_size, device=str(device),
                      compile=compile, channels_last=backbone != "vit_tiny", **overrides)
    seconds, flops = time_steps(cfg, device, steps, warmup)
    result: dict[str, Any] = {"method": method, "backbone": backbone, "batch_size": batch_size,
                              "images_per_s": round(batch_size / seconds, 1), "step_ms": round(1000 * seconds, 2),
                              "gflops_per_step": round(flops / 1e9, 2),
                              "achieved_tflops": round(flops / seconds / 1e12, 3), "compile": compile}
    result.update(peak_fractions(flops / seconds / 1e12, device))  # datasheet and measured ceilings
    return result


def view_shapes(cfg: Config) -> list[tuple[int, int, int, int]]:
    """The (B, 3, size, size) shapes of one step's views: two global views, plus the local crops of DINO."""
    return [(cfg.batch_size, 3, spec.size, spec.size) for spec in build_view_maker(cfg).specs]


def count_step_flops(model: nn.Module, views: list[torch.Tensor], teacher_temp: float) -> int:
    """FLOPs of one forward (student and teacher) + backward, as torch.utils.flop_counter counts them
    (matmuls, convolutions, attention; elementwise ops, the optimizer and the augmentation are not counted)."""
    with FlopCounterMode(display=False) as counter:
        loss, _ = model(views, teacher_temp=teacher_temp)
        loss.backward()
    return counter.get_total_flops()


def preset_flops(cfg: Config) -> int:
    """Counted FLOPs of one training step of `cfg`, on the meta device: shapes only, instant on any machine."""
    with torch.device("meta"):
        model = build_method(cfg).train()
        views = [torch.empty(shape) for shape in view_shapes(cfg)]
    return count_step_flops(model, views, cfg.teacher_temp)


def flops_report(cfg: Config, fraction: float, train_size: int | None = None) -> dict[str, Any]:
    """FLOPs per step / epoch / run of `cfg` and the minutes each reference GPU needs at `fraction` of peak."""
    n = cfg.subset or train_size or TRAIN_SIZES.get(cfg.dataset)
    if not n:
        raise ValueError(f"the number of training images of dataset {cfg.dataset!r} is unknown: pass --train-size N")
    steps = n // cfg.batch_size
    step = preset_flops(cfg)
    run = step * steps * cfg.epochs
    minutes = {gpu: run / (fraction * peak * 1e12) / 60 for gpu, peak in REFERENCE_GPUS.items()}
    return {"method": cfg.method, "backbone": cfg.backbone, "batch_size": cfg.batch_size, "steps_per_epoch": steps,
            "epochs": cfg.epochs, "flops_per_step": step, "flops_per_epoch": step * steps, "flops_per_run": run,
            "fraction_of_peak": fraction, "peak_tflops": dict(REFERENCE_GPUS), "minutes_per_run": minutes}


def _flops_main(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Print the FLOP count of `--preset` and the time estimates; time a few real steps with --measure."""
    overrides = {"method": args.methods} if args.methods else {}
    cfg = make_config(args.preset, **overrides)
    r = flops_report(cfg, args.fraction, args.train_size)
    views = " + ".join(f"{sum(1 for v in view_shapes(cfg) if v[-1] == size)} x {size} px"
                       for size in dict.fromkeys(v[-1] for v in view_shapes(cfg)))
    print(f"preset {args.preset}: {cfg.method} {cfg.backbone}, batch {cfg.batch_size}, views {views}, "
          f"{r['steps_per_epoch']} steps/epoch x {cfg.epochs} epochs")
    print(f"counted training FLOPs (forward + backward, torch.utils.flop_counter): "
          f"{r['flops_per_step'] / 1e12:.3f} TFLOP/step, {r['flops_per_epoch'] / 1e15:.3f} PFLOP/epoch, "
          f"{r['flops_per_run'] / 1e15:.3g} PFLOP/run")
    print(f"estimated minutes at {100 * args.fraction:.0f} % of the dense tensor-core peak "
          "(the uncounted elementwise work, optimizer and augmentation are what the fraction absorbs):")
    print(f"  {'GPU':<18} {'peak TFLOP/s':>12} {'min/epoch':>10} {'min/run':>9}")
    rows = [(gpu, peak, r["minutes_per_run"][gpu]) for gpu, peak in REFERENCE_GPUS.items()]
    peak = datasheet_tflops(device)
    if peak:
        mine = r["flops_per_run"] / (args.fraction * peak * 1e12) / 60
        rows.append((f"this {torch.cuda.get_device_name(device)}", peak, mine))
        r["minutes_per_run_this_device"] = mine
    for gpu, tflops, minutes in rows:
        print(f"  {gpu:<18} {tflops:>12.0f} {minutes / cfg.epochs:>10.3g} {minutes:>9.3g}")
    if args.measure:
        cfg_d = make_config(args.preset, device=str(device), **overrides)
        seconds, _ = time_steps(cfg_d, device, args.measure, warmup=2, side=cfg.data_size or 32)
        achieved = r["flops_per_step"] / seconds / 1e12
        minutes = seconds * r["steps_per_epoch"] * cfg.epochs / 60
        r.update(measured_step_s=seconds, measured_tflops=achieved, measured_minutes_per_run=minutes)
        frac = f", {100 * achieved / peak:.1f} % of its bf16 peak" if peak else ""
        print(f"  measured on this device ({device.type}): {1000 * seconds:.1f} ms/step over {args.measure} steps, "
              f"{achieved:.2f} TFLOP/s{frac} -> {minutes:.1f} min/run (training steps only)")
    return r


def main(argv: list[str] | None = None) -> int:
    """Parse bench options, run every method × backbone, print a table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m dtlib bench")
    parser.add_argument("--preset", default=None, help="count the training FLOPs of this preset and estimate "
                                                       "its time on a T4 / A100 / H100 (method: --methods)")
    parser.add_argument("--fraction", type=float, default=0.3, help="fraction of peak the estimate assumes")
    parser.add_argument("--measure", type=int, default=0, help="with --preset: also time this many real steps")
    parser.add_argument("--train-size", type=int, default=None, help="with --preset: training images of an "
                                                                     "imagefolder dataset")
    parser.add_argument("--methods", default=None, help="default: barlow_twins,dino,dinotwins (with --preset: "
                                                        "the preset's method)")
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
    if args.preset:
        report = _flops_main(args, device)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"preset": args.preset, "torch": torch.__version__, **report},
                                            indent=2) + "\n")
        return 0
    methods = args.methods or "barlow_twins,dino,dinotwins"
    backbones = args.backbones or ("resnet18,resnet50,vit_tiny" if gpu else "resnet_mini,resnet18")
    batch = args.batch_size or default_bench_batch(device)
    steps = args.steps or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}, batch {batch}, {steps} timed steps after {warmup} warm-up")
    print(f"{'method':<13} {'backbone':<12} {'img/s':>9} {'ms/step':>9} {'GFLOP/step':>11} {'TFLOP/s':>8} "
          f"{'of peak':>8} {'of meas.':>8}")
    results = []
    for backbone in backbones.split(","):
        for method in methods.split(","):
            r = halving_on_oom(bench_one, batch, method, backbone, steps, warmup, device, args.compile)
            results.append(r)
            frac, meas = (f"{100 * r[k]:.1f} %" if k in r else "n/a"
                          for k in ("fraction_of_bf16_peak", "fraction_of_measured_ceiling"))
            print(f"{method:<13} {backbone:<12} {r['images_per_s']:>9.1f} {r['step_ms']:>9.1f} "
                  f"{r['gflops_per_step']:>11.1f} {r['achieved_tflops']:>8.3f} {frac:>8} {meas:>8}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "results": results},
                                        indent=2) + "\n")
    return 0
