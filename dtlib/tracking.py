"""Optional Weights & Biases logging as a `fit` callback; wandb is imported only when used."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from .attention import cls_attention, upsample
from .augment import CIFAR10_MEAN, CIFAR10_STD, ViewMaker, barlow_twins_views, normalize
from .config import Config
from .losses import cross_correlation


def _to_image(values: torch.Tensor, low: float, high: float) -> np.ndarray:
    """Scale a 2-d map to uint8 for wandb.Image."""
    scaled = (values.float().clamp(low, high) - low) / (high - low)
    return (scaled * 255).round().to(torch.uint8).cpu().numpy()


class WandbLogger:
    """Logs every row (losses, lr, diagnostics); each epoch, the Barlow Twins cross-correlation matrix
    and, for a ViT, the last block's mean [CLS] attention on a few training images.

    The probes run under `no_grad` in eval mode with their own generator, so logging never changes
    the training run.
    """

    def __init__(self, cfg: Config, project: str = "dinotwins", n_probe: int = 256):
        import wandb  # only when asked for: importing dtlib never needs wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, mode=cfg.wandb, dir=cfg.out, config=dataclasses.asdict(cfg))
        self.n_probe = n_probe
        self.view_maker = ViewMaker(barlow_twins_views(cfg.image_size), n_global=2)

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        """fit callback."""
        if event == "log":
            for row in payload["rows"]:
                self.run.log(row, step=row["step"])
        elif event == "epoch" and "model" in payload:
            self.run.log(self.probes(payload["model"], payload["images"]), step=payload["step"] - 1)
        elif event == "end":
            self.run.finish()

    @torch.no_grad()
    def probes(self, model: torch.nn.Module, images: torch.Tensor) -> dict[str, Any]:
        """Cross-correlation image (methods with a projector) and attention maps (ViT)."""
        was_training = model.training
        model.eval()
        out: dict[str, Any] = {}
        batch = images[: self.n_probe]
        projector = getattr(model, "projector", None)
        backbone = model.eval_backbone()
        if projector is not None:
            gen = torch.Generator(device=batch.device).manual_seed(0)
            v1, v2 = self.view_maker(batch, gen)
            c = cross_correlation(projector(backbone(v1)), projector(backbone(v2)))
            out["cross_correlation"] = self.wandb.Image(_to_image(c, -1.0, 1.0), caption="C (−1 … 1)")
        if hasattr(backbone, "get_last_attention"):
            sample = batch[:8]
            attn = cls_attention(backbone, normalize(sample.float() / 255, CIFAR10_MEAN, CIFAR10_STD)).mean(1)
            maps = upsample(attn, sample.shape[-1])  # (8, H, W), mean over heads
            out["attention"] = [self.wandb.Image(_to_image(m / m.max(), 0.0, 1.0)) for m in maps]
        model.train(was_training)
        return out
