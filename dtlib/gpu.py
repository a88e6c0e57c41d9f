"""What a GPU can do and hold: its datasheet and measured bf16 ceilings, a bench batch that fits its memory.

The datasheet figure is the dense tensor-core peak; a large bf16 matmul measures what the chip reaches in
practice (about 790 of the H200's 989 TFLOP/s here), so a training step's "% of peak" is given against both.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched on the device name.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0,
                    "H100": 756.0, "A100": 312.0, "L4": 121.0, "A10G": 70.0, "T4": 65.0}
# The bench batch per GiB of GPU memory: 512 (ResNet-50, 2 + 6 crops) fits in 40 GiB, not in a T4's 15.
BENCH_BATCHES = ((40, 512), (20, 256), (0, 128))


def datasheet_tflops(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak from `BF16_PEAK_TFLOPS`, or None when unknown (or on CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in BF16_PEAK_TFLOPS.items() if key in name), None)


@functools.cache
def measured_tflops(device: torch.device, n: int = 8192, repeats: int = 20) -> float | None:
    """The bf16 TFLOP/s of an n^3 matmul on this GPU (best of `repeats` after a warm-up); None on CPU.
    fp16 where bf16 is not native (a T4), the dtype training uses there."""
    if device.type != "cuda":
        return None
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        a @ b
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


def peak_fractions(tflops: float, device: torch.device) -> dict[str, float]:
    """`tflops` as a fraction of the datasheet peak and of the measured matmul ceiling (those known)."""
    out = {}
    if peak := datasheet_tflops(device):
        out["fraction_of_bf16_peak"] = round(tflops / peak, 4)
    if ceiling := measured_tflops(device):
        out["measured_ceiling_tflops"] = round(ceiling, 1)
        out["fraction_of_measured_ceiling"] = round(tflops / ceiling, 4)
    return out


def default_bench_batch(device: torch.device) -> int:
    """64 on CPU; on a GPU 512, 256 or 128 by its memory (`BENCH_BATCHES`)."""
    if device.type != "cuda":
        return 64
    gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    return next(batch for floor, batch in BENCH_BATCHES if gib >= floor)


def halving_on_oom(fn: Callable[..., dict[str, Any]], batch_size: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """`fn(batch_size, ...)`, retried at half the batch after each out-of-memory error (message printed)."""
    while True:
        try:
            return fn(batch_size, *args, **kwargs)
        except torch.OutOfMemoryError:
            if batch_size <= 2:
                raise
            torch.cuda.empty_cache()
            print(f"out of GPU memory at batch {batch_size}: retrying at batch {batch_size // 2}", flush=True)
            batch_size //= 2
