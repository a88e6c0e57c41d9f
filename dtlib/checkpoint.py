"""Atomic checkpoints with every RNG state, loaded with `weights_only=True`; a trained method rebuilt from one."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._version import __version__
from .atomic import save_atomically
from .build import build_method
from .config import Config


class CheckpointError(RuntimeError):
    """A missing, corrupt or mismatched checkpoint; the message says what to do."""


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a run depends on, in types `weights_only` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
        "augment": generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, step: int, config: Config,
                    generator: torch.Generator) -> Path:
    """Write the checkpoint to a temporary file, then rename it: a crash never leaves half a file."""
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "step": step,
        "rng": rng_state(generator),
        "config": dataclasses.asdict(config),
        "dtlib_version": __version__,
    }
    return save_atomically(payload, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a dtlib checkpoint safely (`weights_only=True`), with a clear error when it is not one.

    Only the model weights go to `map_location`: the RNG states must stay CPU ByteTensors (torch and
    CUDA reject them on another device), and `Optimizer.load_state_dict` moves its state to the
    parameters' device itself.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train first (python -m dtlib train --out DIR) "
                              "or pass the path of an existing checkpoint.pt")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files
        raise CheckpointError(f"{path} is corrupt or not a dtlib checkpoint ({type(err).__name__}); "
                              "delete it and train again, or point to another checkpoint") from None
    if not isinstance(payload, dict) or not {"model", "config", "step"} <= payload.keys():
        raise CheckpointError(f"{path} is not a dtlib checkpoint (missing model/config/step)")
    if torch.device(map_location).type != "cpu":
        payload["model"] = {k: v.to(map_location) for k, v in payload["model"].items()}
    return payload


def check_compatible(payload: dict[str, Any], config: Config, path: str | Path) -> None:
    """Refuse to resume a checkpoint of another method or backbone."""
    saved = payload["config"]
    for key in ("method", "backbone"):
        if saved.get(key) != getattr(config, key):
            raise CheckpointError(
                f"{path} was trained with {key}={saved.get(key)!r} but this run asks for "
                f"{key}={getattr(config, key)!r}; use another --out folder or the same {key}")


def _upgrade(saved: dict[str, Any]) -> dict[str, Any]:
    """A config saved before issue 16 in today's fields: the switch pairs became one field each."""
    saved = dict(saved)
    if isinstance(saved.get("centering"), bool):  # centering + centering_method -> centering
        saved["centering"] = saved.get("centering_method", "ema") if saved["centering"] else "none"
    if saved.pop("teacher_temp_warmup", True) is False:  # teacher_temp_warmup off -> 0 warm-up epochs
        saved["warmup_teacher_temp_epochs"] = 0
    return saved


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """Rebuild the method saved in a checkpoint (its own config) and load its weights."""
    payload = load_checkpoint(path, map_location)
    names = {f.name for f in dataclasses.fields(Config)}
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in _upgrade(payload["config"]).items() if k in names}
    cfg = Config(**saved)
    model = build_method(cfg)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path} does not match a {cfg.method}/{cfg.backbone} model ({first}); "
                              "was it written by another dtlib version?") from None
    return model.to(map_location).eval(), cfg
