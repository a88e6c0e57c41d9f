"""A trained backbone as a small file: its weights in fp16 and the config that rebuilds it.

A ViT-T/4 teacher is about 5.5 M parameters: 11 MB in fp16, against the ~130 MB of a full training
checkpoint (student, teacher, heads and optimizer state). `load_backbone` reads either kind of file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ._version import __version__
from .atomic import save_atomically
from .checkpoint import CheckpointError, load_checkpoint, load_trained
from .config import Config


def export_backbone(model: nn.Module, cfg: Config, path: str | Path) -> Path:
    """Write `model.eval_backbone()` (the teacher's, for DINO) as fp16 weights with `cfg`, atomically."""
    backbone = model.eval_backbone()
    weights = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype)
               for k, v in backbone.state_dict().items()}
    payload = {"backbone_fp16": weights, "config": dataclasses.asdict(cfg), "dtlib_version": __version__}
    return save_atomically(payload, path)


def load_backbone(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """The evaluated backbone (float32, eval mode) and its config, from `export_backbone`'s file or a full
    training checkpoint."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no backbone file at {path}: export one with dtlib.export.export_backbone") from None
    except Exception as err:
        raise CheckpointError(f"{path} is corrupt or not a dtlib file ({type(err).__name__})") from None
    if not isinstance(payload, dict) or "backbone_fp16" not in payload:
        load_checkpoint(path)  # a full checkpoint (its own clear errors otherwise)
        model, cfg = load_trained(path, map_location)
        return model.eval_backbone().eval(), cfg
    from .build import build_method  # the method's factory builds the backbone exactly as training did

    names = {f.name for f in dataclasses.fields(Config)}
    cfg = Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items() if k in names})
    backbone = build_method(cfg).eval_backbone()
    backbone.load_state_dict({k: v.float() if v.is_floating_point() else v
                              for k, v in payload["backbone_fp16"].items()})
    return backbone.to(map_location).eval(), cfg
