"""`fit` callbacks: live curves in a notebook, and optional Weights & Biases logging.

The training loop never imports this module (nor matplotlib); wandb is imported only when a
`WandbLogger` is made.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .attention import cls_attention, upsample
from .build import build_view_maker
from .cifar import dataset_stats, normalize
from .config import Config
from .plots import grid_figure, plot_history


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where display handles can be updated in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveCurves:
    """`fit` callback that redraws curves of `keys` in the notebook as logged rows arrive.

    The figure is shown once and then updated in place through an IPython display handle, at most
    every `min_interval` seconds (rendering costs CPU time the training loop would otherwise get) and
    once more at the end. Outside a notebook nothing is shown; `figure` and `rows` are kept either way.

    Args:
        keys: history keys to plot, one panel each.
        hlines: {key: (value, label)} reference lines, as in `plot_history`.
        bands: {key: recorded mean ± sd}, faint under the live curve, as in `plot_history`.
        min_interval: seconds between two redraws.
        smooth: moving-average window.
    """

    def __init__(self, keys: Sequence[str] = ("loss",), hlines: Mapping[str, tuple[float, str]] | None = None,
                 min_interval: float = 2.0, smooth: int = 1, ncols: int = 4,
                 bands: Mapping[str, Mapping[str, Any]] | None = None):
        self.keys = list(keys)
        self.hlines = hlines
        self.bands = bands
        self.min_interval = min_interval
        self.smooth = smooth
        self.rows: list[dict[str, Any]] = []
        self.figure, self.axes = grid_figure(len(self.keys), ncols, (3.6, 2.7))
        self.redraws = 0
        self._handle = None
        self._last = -math.inf

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        """Collect rows on "log" (redrawing when due) and redraw on "end"."""
        if event == "log":
            self.rows.extend(payload["rows"])
            if time.monotonic() - self._last >= self.min_interval:
                self.redraw()
        elif event == "end":
            self.redraw()

    def redraw(self) -> None:
        """Draw the rows received so far and update the notebook output."""
        for ax in self.axes:
            ax.clear()
        plot_history(self.rows, self.keys, ax=self.axes, smooth=self.smooth, hlines=self.hlines, bands=self.bands)
        self.redraws += 1
        self._last = time.monotonic()
        if not _in_notebook():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)



def _to_image(values: torch.Tensor, low: float, high: float) -> np.ndarray:
    """Scale a 2-d map to uint8 for wandb.Image."""
    scaled = (values.float().clamp(low, high) - low) / (high - low)
    return (scaled * 255).round().to(torch.uint8).cpu().numpy()


class WandbLogger:
    """Logs every row (losses, lr, diagnostics); each epoch, the Barlow Twins cross-correlation matrix
    and, for a ViT, the last block's mean [CLS] attention on a few training images.

    The probes never change the training run: they run under `no_grad` with their own generator,
    and restore the random state and every buffer (BatchNorm statistics) they may touch.
    """

    def __init__(self, cfg: Config, project: str = "dinotwins", n_probe: int = 256):
        import wandb  # only when asked for: importing dtlib never needs wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, mode=cfg.wandb, dir=cfg.out, config=dataclasses.asdict(cfg))
        self.n_probe = n_probe
        self.mean, self.std = dataset_stats(cfg.dataset)
        self.view_maker = build_view_maker(cfg)  # the method's own views: the first two are the loss's pair

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
    def cross_correlation(self, model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor | None:
        """The matrix C the method's Barlow Twins loss sees on two views of `images` (D, D); None if none.

        `Method.cross_correlation` in train mode, as in the loss. BatchNorm running statistics and the random
        state are put back afterwards.
        """
        v1, v2 = self.view_maker(images, torch.Generator(device=images.device).manual_seed(0))[:2]
        saved = {name: buffer.clone() for name, buffer in model.named_buffers()}
        was_training = model.training
        with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
            model.train()
            c = model.cross_correlation([v1, v2])
        model.train(was_training)
        for name, buffer in model.named_buffers():
            buffer.copy_(saved[name])
        return c

    @torch.no_grad()
    def probes(self, model: torch.nn.Module, images: torch.Tensor) -> dict[str, Any]:
        """Cross-correlation image (methods with a projector) and attention maps (ViT, in eval mode)."""
        out: dict[str, Any] = {}
        batch = images[: self.n_probe]
        c = self.cross_correlation(model, batch)
        if c is not None:
            out["cross_correlation"] = self.wandb.Image(_to_image(c, -1.0, 1.0), caption="C (−1 … 1)")
        backbone = model.eval_backbone()
        if hasattr(backbone, "get_last_attention"):
            was_training = model.training
            model.eval()
            sample = batch[:8]
            attn = cls_attention(backbone, normalize(sample, self.mean, self.std)).mean(1)
            maps = upsample(attn, sample.shape[-1])  # (8, H, W), mean over heads
            out["attention"] = [self.wandb.Image(_to_image(m / m.max(), 0.0, 1.0)) for m in maps]
            model.train(was_training)
        return out
