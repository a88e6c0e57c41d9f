"""Mixed precision across device kinds: the autocast dtype of a device, and resuming the GradScaler and the
augmentation generator from a checkpoint written on another kind of device (CPU <-> CUDA, bf16 <-> fp16).

A run that trained in bf16 or fp32 saves the state of a disabled GradScaler, which is empty; an fp16 run (a
T4) must start a fresh scaler from it. The augmentation generator lives on the images' device, and a CPU
generator's state (a Mersenne Twister, 5056 bytes) cannot be loaded into a CUDA one (Philox, 16 bytes) nor
the other way: it is reseeded from (seed, step), so the resumed run is reproducible, though not the stream
the original device would have drawn.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch

from .checkpoint import set_rng_state


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """bf16 where the GPU supports it natively (compute capability >= 8.0), fp16 on older GPUs such as a T4,
    None (fp32) on CPU and MPS or when `enabled` is False."""
    if not enabled or device.type != "cuda":
        return None
    # The default also counts emulated bf16, which a T4 runs far slower than its fp16 tensor cores.
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """The autocast context training uses on `device`: bf16 / fp16 / none as `amp_dtype` says."""
    device = torch.device(device)
    dtype = amp_dtype(device, enabled)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def load_scaler_state(scaler: torch.amp.GradScaler, state: dict[str, Any]) -> None:
    """Load a saved GradScaler state; an empty one (saved by a bf16 / fp32 run) leaves an enabled scaler
    fresh, with a warning."""
    if scaler.is_enabled() and not state:
        warnings.warn("the checkpoint's GradScaler state is empty (it was saved by a bf16 or fp32 run); "
                      f"fp16 training resumes with a fresh scaler (scale {scaler.get_scale():g})", stacklevel=2)
        return
    scaler.load_state_dict(state)


def restore_rng(state: dict[str, Any], generator: torch.Generator, seed: int, step: int) -> None:
    """`set_rng_state`, except that an augmentation state of another device kind reseeds `generator` from
    (seed, step), with a warning."""
    saved = state["augment"]
    if saved.numel() != generator.get_state().numel():
        generator.manual_seed(seed * 1_000_003 + step)
        warnings.warn(f"the checkpoint's augmentation generator state ({saved.numel()} bytes) is from another "
                      f"device kind than this run's {generator.device.type} generator; it was reseeded from "
                      f"(seed {seed}, step {step}): the resumed views are reproducible but not those the "
                      "original device would have drawn", stacklevel=2)
        state = {**state, "augment": generator.get_state()}
    set_rng_state(state, generator)


def resume_states(payload: dict[str, Any], scaler: torch.amp.GradScaler, generator: torch.Generator,
                  seed: int) -> None:
    """Restore the scaler and every RNG state of a checkpoint, across device kinds (see the module doc)."""
    load_scaler_state(scaler, payload["scaler"])
    restore_rng(payload["rng"], generator, seed, payload["step"])
