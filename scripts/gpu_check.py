"""The GPU check (issue 17): every GPU number of the project from one process, in one device command.

    OUT=DIR [GC_DEVICE=cuda|cpu] [GC_DATA=.gpu/cifar10-jpeg.tgz] [GC_DEADLINE=470] python3 scripts/gpu_check.py

Stages, in order (each one's numbers land in OUT/summary.json, rewritten after every stage, so a kill
keeps what finished): env, ceiling (a measured bf16 matmul), bench (a training step per method on
ResNet-18), train (the time-boxed DINO Twins ResNet-18, epochs sized from its own measured step time,
then its linear probe and kNN), resume (a run stopped after epoch 1 through fit's Ctrl-C path and resumed,
every logged row compared with an uninterrupted run), fp16 (fp16 + GradScaler forced for a few steps:
skipped steps, final scale, step time against bf16), vit (a short ViT-T/4 DINO Twins run whose teacher
comes back as OUT/vit_tiny_teacher_fp16.pt), extra_bench (ResNet-50 and ViT-T lines, if time is left).
A stage that would start too close to the deadline is skipped; SIGALRM at the deadline ends the one
running. Checkpoints go to /tmp. GC_DEVICE=cpu is the CPU rehearsal: the same stages at toy size.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # dtlib from this checkout, installed or not

from dtlib import gpu  # noqa: E402
from dtlib.bench import bench_one, time_steps  # noqa: E402
from dtlib.build import build_method, build_view_maker  # noqa: E402
from dtlib.config import make_config  # noqa: E402
from dtlib.data import load_dataset  # noqa: E402
from dtlib.export import export_backbone  # noqa: E402
from dtlib.optim import build_optimizer  # noqa: E402
from dtlib.pack import unpack_data  # noqa: E402
from dtlib.train import enable_fast_cuda_math, fit, run, steps_per_epoch, train_step  # noqa: E402

OUT = Path(os.environ["OUT"])
DEVICE = torch.device(os.environ.get("GC_DEVICE", "cuda"))
CPU = DEVICE.type == "cpu"
DATA = Path(os.environ.get("GC_DATA", ".gpu/cifar10-jpeg.tgz"))
DEADLINE = float(os.environ.get("GC_DEADLINE", "470"))  # seconds after start; the device command allows 600
WORK = Path(os.environ.get("GC_WORK", "/tmp/gpu_check"))  # checkpoints, unpacked data: never under OUT
T0 = time.monotonic()
METHODS = ("barlow_twins", "dino", "dinotwins")

# Toy sizes of the CPU rehearsal (the GPU runs the presets).
TOY = dict(backbone="resnet_mini", data_size=16, image_size=16, local_size=8, n_local=2, subset=64,
           batch_size=16, proj_dims=(64, 64), out_dim=64, head_hidden_dim=64, bottleneck_dim=16, probe_epochs=2,
           eval_subset=96, eval_batch_size=256, val_fraction=0.1, log_every=1, warmup_epochs=0.1)
# (stage, seconds it needs at least on the GPU) — a stage starts only if that much is left.
NEEDS = {"env": 5, "ceiling": 10, "bench": 30, "data": 30, "train": 120, "resume": 40, "fp16": 20, "vit": 40,
         "extra_bench": 30}

summary: dict[str, Any] = {"issue": 17, "device_kind": DEVICE.type, "deadline_s": DEADLINE, "stages": {}}


class Deadline(Exception):
    """The hard time cap was reached inside a stage."""


def left() -> float:
    """Seconds before the deadline."""
    return DEADLINE - (time.monotonic() - T0)


def write_summary() -> None:
    """Rewrite OUT/summary.json atomically."""
    summary["wall_s"] = round(time.monotonic() - T0, 1)
    tmp = OUT / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    tmp.replace(OUT / "summary.json")


def stage(name: str, fn, *args) -> Any:
    """Run one stage with its status, seconds and results recorded; never raises."""
    need = 0 if CPU else NEEDS[name]
    if left() < need:
        summary["stages"][name] = {"status": "skipped", "reason": f"{left():.0f} s left, needs {need}"}
        write_summary()
        return None
    print(f"=== {name} ({left():.0f} s left)", flush=True)
    t = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(left(), 1.0))
    try:
        result = fn(*args)
        record = {"status": "ok", **(result or {})}
    except Deadline:
        record, result = {"status": "timeout"}, None
    except Exception as err:  # a failed stage must not cost the others
        traceback.print_exc()
        record, result = {"status": "failed", "error": f"{type(err).__name__}: {err}"[:2000]}, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    record["seconds"] = round(time.monotonic() - t, 1)
    summary["stages"][name] = record
    write_summary()
    print(f"--- {name}: {json.dumps(record, default=str)[:1500]}", flush=True)
    return result


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


# ------------------------------------------------------------------------------------------------ stages


def env() -> dict[str, Any]:
    import timm
    import torchvision

    r: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                         "torchvision": torchvision.__version__, "timm": timm.__version__,
                         "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                         "cpu_count": os.cpu_count()}
    try:
        git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        r["git"] = git.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        r["git"] = None
    if DEVICE.type == "cuda":
        props = torch.cuda.get_device_properties(DEVICE)
        r.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                 memory_gib=round(props.total_memory / 2**30, 1),
                 bf16_native=torch.cuda.is_bf16_supported(including_emulation=False))
        try:
            r["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,power.limit,clocks.max.sm",
                                              "--format=csv,noheader"], capture_output=True, text=True,
                                             timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            r["nvidia_smi"] = None
        enable_fast_cuda_math()
    return r


def ceiling() -> dict[str, Any]:
    if CPU:
        return {"status": "skipped", "reason": "no tensor cores on a CPU"}
    return {"measured_tflops": round(gpu.measured_tflops(DEVICE), 1), "datasheet_tflops": gpu.datasheet_tflops(DEVICE),
            "matmul": "8192^3, best of 20"}


def bench_lines(backbones: tuple[str, ...], gpu_only: bool = False) -> dict[str, Any]:
    if CPU and gpu_only:
        return {"status": "skipped", "reason": "GPU backbones only"}
    rows = []
    for backbone in backbones:
        for method in METHODS:
            if CPU:
                r = bench_one(8, method, "resnet_mini", 1, 0, DEVICE, image_size=16, local_size=8, n_local=2)
            else:
                r = gpu.halving_on_oom(bench_one, 256, method, backbone, 10, 3, DEVICE)
            rows.append(r)
            print(f"  {method:<13} {r['backbone']:<12} {r['images_per_s']:>9.1f} img/s {r['step_ms']:>8.1f} ms/step "
                  f"{100 * r.get('fraction_of_measured_ceiling', math.nan):5.1f} % of measured, "
                  f"{100 * r.get('fraction_of_bf16_peak', math.nan):5.1f} % of datasheet", flush=True)
    return {"rows": rows}


def load_data():
    if DATA.is_dir():
        return load_dataset("cifar10", DATA)
    return load_dataset("cifar10", unpack_data(DATA, WORK / "data"))


def train_r18(data, budget_s: float) -> dict[str, Any]:
    """The time-boxed DINO Twins ResNet-18: epochs from a measured step time, then probe and kNN."""
    base = dict(TOY, epochs=1) if CPU else {}
    cfg = make_config("cpu-mini" if CPU else "cifar10-resnet18-5min", method="dinotwins", device=str(DEVICE),
                      out=str(WORK / "r18"), eval_split="test", **base)
    step_s, _ = time_steps(cfg, DEVICE, steps=1 if CPU else 10, warmup=0 if CPU else 5, side=cfg.data_size or 32)
    per_epoch = steps_per_epoch(cfg, data[0])
    probe_reserve = 0.0 if CPU else 45.0  # feature extraction + the 100-epoch probe + kNN on 45k / 10k images
    fit_epochs = int((budget_s - probe_reserve) / (1.15 * step_s * per_epoch))  # 15 %: logging, epoch ends
    epochs = cfg.epochs if CPU else max(1, min(cfg.epochs, fit_epochs))
    cfg = dataclasses.replace(cfg, epochs=epochs)
    metrics = run(cfg, data)
    metrics.pop("config", None)
    return {"measured_step_ms": round(1000 * step_s, 2), "steps_per_epoch": per_epoch, "epochs": epochs,
            "preset_epochs": make_config("cifar10-resnet18-5min").epochs, "batch_size": cfg.batch_size,
            "n_local": cfg.n_local, **metrics}


def resume_check(data) -> dict[str, Any]:
    """Stop a run after epoch 1 through fit's own stop path (SIGINT), resume it, compare every logged row."""
    over = dict(TOY, epochs=2, save_every=1) if CPU else dict(subset=4096, epochs=2, save_every=1, log_every=1,
                                                               probe_epochs=1, warmup_epochs=0.5)
    preset = "cpu-mini" if CPU else "cifar10-resnet18-5min"
    whole = fit(make_config(preset, method="dinotwins", device=str(DEVICE), out=str(WORK / "resume_whole"), **over),
                data)

    def stop_after_first_epoch(event, payload):
        if event == "epoch" and payload["epoch"] == 0:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: fit saves a checkpoint and returns

    cfg = make_config(preset, method="dinotwins", device=str(DEVICE), out=str(WORK / "resume_split"), **over)
    first = fit(cfg, data, callbacks=[stop_after_first_epoch])
    second = fit(cfg, data, resume=True)
    a, b = whole.history, second.history
    same_steps = [r["step"] for r in a] == [r["step"] for r in b]
    keys = [k for k in a[0] if k not in ("step", "epoch")] if same_steps else []
    diffs = {k: max(abs(x[k] - y[k]) for x, y in zip(a, b)) for k in keys}
    return {"interrupted_at_step": first.step, "interrupted": first.interrupted, "rows": len(b),
            "same_steps": same_steps, "identical": same_steps and all(v == 0 for v in diffs.values()),
            "max_abs_diff": {k: v for k, v in diffs.items() if v}, "loss_max_abs_diff": diffs.get("loss")}


def fp16_check() -> dict[str, Any]:
    """fp16 + GradScaler forced (a T4's path) against bf16, a few steps of the DINO Twins ResNet-18 step."""
    cfg = make_config("cpu-mini", **dict(TOY, method="dinotwins", batch_size=8)) if CPU else make_config(
        "cifar10-resnet18-5min", method="dinotwins", batch_size=256)
    steps = 2 if CPU else 30
    out: dict[str, Any] = {"optimizer": cfg.optimizer, "steps": steps, "batch_size": cfg.batch_size}
    dtypes = {"fp16": torch.float16} if CPU else {"fp16": torch.float16, "bf16": torch.bfloat16}
    for name, dtype in dtypes.items():
        torch.manual_seed(0)
        model = build_method(cfg).to(DEVICE)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(cfg.optimizer, model, cfg.lr * cfg.batch_size / 256, cfg.weight_decay)
        for group in optimizer.param_groups:
            group["lr"] *= group.get("lr_mult", 1.0)
        scaler = torch.amp.GradScaler(DEVICE.type, enabled=dtype == torch.float16)
        views_of = build_view_maker(cfg)
        gen = torch.Generator(device=DEVICE).manual_seed(0)
        side = cfg.data_size or 32
        images = torch.randint(0, 256, (cfg.batch_size, 3, side, side), dtype=torch.uint8, device=DEVICE)
        scales, losses = [], []
        for i in range(steps + 2):
            if i == 2:
                sync()
                t = time.perf_counter()
            logs = train_step(model, model, optimizer, scaler, views_of(images, gen), dtype,
                              teacher_temp=cfg.teacher_temp, momentum=cfg.momentum_teacher)
            losses.append(logs["loss"].detach().float())
            if scaler.is_enabled():
                scales.append(scaler._scale.clone())  # on the device: no sync inside the timed loop
        sync()
        seconds = (time.perf_counter() - t) / steps
        s = torch.stack(scales).flatten().tolist() if scales else []
        out[name] = {"step_ms": round(1000 * seconds, 2), "final_scale": s[-1] if s else None,
                     # GradScaler halves its scale on each step it skips for an inf/NaN gradient
                     "skipped_steps": sum(b < a for a, b in zip([65536.0] + s, s)) if s else None,
                     "final_loss": torch.stack(losses)[-1].item(),
                     "finite": bool(torch.isfinite(torch.stack(losses)).all())}
    if "bf16" in out:
        out["fp16_over_bf16_time"] = round(out["fp16"]["step_ms"] / out["bf16"]["step_ms"], 3)
    return out


def vit_teacher(data, budget_s: float) -> dict[str, Any]:
    """A short ViT-T/4 DINO Twins run; its teacher backbone comes back as fp16 weights."""
    if CPU:
        cfg = make_config("cpu-mini", **dict(TOY, backbone="vit_tiny", method="dinotwins", epochs=1, subset=32,
                                             n_local=1,
                                             out=str(WORK / "vit"), channels_last=False, optimizer="adamw"))
    else:
        cfg = make_config("cifar10-vit-tiny-lesson", method="dinotwins", device=str(DEVICE), out=str(WORK / "vit"))
        step_s, _ = time_steps(cfg, DEVICE, steps=5, warmup=3)
        per_epoch = steps_per_epoch(cfg, data[0])
        cfg = dataclasses.replace(cfg, epochs=max(1, min(cfg.epochs, int(budget_s / (1.15 * step_s * per_epoch)))))
    result = fit(cfg, data)
    path = export_backbone(result.model, cfg, OUT / "vit_tiny_teacher_fp16.pt")
    return {"epochs": cfg.epochs, "steps": result.step, "train_seconds": round(result.seconds, 1),
            "final_loss": result.history[-1]["loss"], "file": path.name, "file_mb": round(path.stat().st_size / 1e6, 2)}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)

    def on_alarm(signum, frame):
        raise Deadline

    signal.signal(signal.SIGALRM, on_alarm)
    write_summary()
    stage("env", env)
    stage("ceiling", ceiling)
    stage("bench", bench_lines, ("resnet18",))
    loaded: dict[str, Any] = {}

    def data_stage() -> dict[str, Any]:
        loaded["data"] = train, test = load_data()
        return {"source": str(DATA), "train_images": len(train), "test_images": len(test)}

    stage("data", data_stage)
    if "data" in loaded:
        data = loaded["data"]
        stage("train", train_r18, data, min(170.0, left() - 170.0))
        stage("resume", resume_check, data)
        stage("fp16", fp16_check)
        stage("vit", vit_teacher, data, min(60.0, left() - 60.0))
    stage("extra_bench", bench_lines, ("resnet50", "vit_tiny"), True)
    failed = [k for k, v in summary["stages"].items() if v.get("status") in ("failed", "timeout")]
    summary["failed_stages"] = failed
    write_summary()
    print(f"done in {time.monotonic() - T0:.0f} s; failed stages: {failed or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
