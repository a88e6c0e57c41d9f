"""Per-step schedules, precomputed as arrays so they can be plotted before training."""

from __future__ import annotations

import numpy as np


def cosine_schedule(base: float, final: float, total_steps: int, warmup_steps: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    """Linear warm-up from `warmup_start` to `base`, then cosine from `base` towards `final`.

    After warm-up, step i of the n cosine steps has value final + ½(base − final)(1 + cos(π i / n)),
    the schedule of DINO's reference implementation.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = min(warmup_steps, total_steps)
    warmup = np.linspace(warmup_start, base, warmup_steps) if warmup_steps > 0 else np.zeros(0)
    n = total_steps - warmup_steps
    i = np.arange(n)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * i / max(n, 1)))
    return np.concatenate([warmup, cosine])


def teacher_temp_schedule(final_temp: float, total_steps: int, warmup_steps: int = 0,
                          warmup_temp: float | None = None) -> np.ndarray:
    """DINO's teacher temperature: linear from `warmup_temp` to `final_temp`, then constant."""
    values = np.full(total_steps, final_temp, dtype=np.float64)
    warmup_steps = min(warmup_steps, total_steps)
    if warmup_steps > 0 and warmup_temp is not None:
        values[:warmup_steps] = np.linspace(warmup_temp, final_temp, warmup_steps)
    return values


def momentum_schedule(base: float, total_steps: int, mode: str = "cosine", final: float = 1.0) -> np.ndarray:
    """Teacher EMA momentum: 'cosine' from `base` to `final`, 'fixed' at `base`, or 'zero' (teacher = student)."""
    if mode == "cosine":
        return cosine_schedule(base, final, total_steps)
    if mode == "fixed":
        return np.full(total_steps, base, dtype=np.float64)
    if mode == "zero":
        return np.zeros(total_steps, dtype=np.float64)
    raise ValueError(f"unknown momentum schedule {mode!r}: use 'cosine', 'fixed' or 'zero'")
