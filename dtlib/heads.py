"""Projection heads: the Barlow Twins projector and the DINO head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .losses import float32_region


class Projector(nn.Module):
    """Barlow Twins projector: (Linear -> BatchNorm -> ReLU) x (n-1) -> Linear.

    Args:
        in_dim: backbone feature size.
        dims: widths of the layers, the last one is the embedding size (CIFAR default 2048-2048-2048).
    """

    def __init__(self, in_dim: int, dims: Sequence[int] = (2048, 2048, 2048)):
        super().__init__()
        if len(dims) < 1:
            raise ValueError("Projector needs at least one layer width in `dims`")
        layers: list[nn.Module] = []
        widths = [in_dim, *dims]
        for a, b in zip(widths[:-2], widths[1:-1]):
            # No bias: the BatchNorm right after cancels it.
            layers += [nn.Linear(a, b, bias=False), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(widths[-2], widths[-1], bias=False))
        self.net = nn.Sequential(*layers)
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features (B, in_dim) to embeddings (B, dims[-1])."""
        return self.net(x)


class DINOHead(nn.Module):
    """DINO head: MLP -> bottleneck -> L2-normalise -> weight-normalised linear layer to K prototypes.

    Args:
        in_dim: backbone feature size.
        out_dim: number of prototypes K (CIFAR default 4096).
        hidden_dim: MLP width.
        bottleneck_dim: size of the L2-normalised bottleneck.
        n_layers: number of MLP layers (>= 1).
        norm_last_layer: fix the weight-norm gain g to 1 (the paper's default, more stable).
        use_bn: BatchNorm after each hidden Linear (the reference's `use_bn`, off in its ViT recipe).
    """

    def __init__(self, in_dim: int, out_dim: int = 4096, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 n_layers: int = 3, norm_last_layer: bool = True, use_bn: bool = False):
        super().__init__()
        if n_layers < 1:
            raise ValueError("DINOHead needs n_layers >= 1")
        widths = [in_dim] + [hidden_dim] * (n_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < n_layers - 1:
                if use_bn:
                    layers.append(nn.BatchNorm1d(b))
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        # Weight norm written out: W = g * v / ||v|| row-wise (one prototype per row).
        self.weight_v = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.weight_v, std=0.02)
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not norm_last_layer)
        self.out_dim = out_dim

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The prototype layer's parameters (frozen during the first epoch)."""
        return [self.weight_v, self.weight_g]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features (B, in_dim) to prototype logits (B, K), float32 even under autocast."""
        x = self.mlp(x)  # (B, bottleneck)
        # Cosine logits divided by a 0.04 temperature: bf16's 8-bit mantissa would round them by ~0.05
        # after sharpening, so the normalisation and the prototype layer run in float32 (the losses' softmaxes
        # then stay in float32 too: autocast runs softmax in float32).
        with float32_region(x.device):
            x = F.normalize(x.float(), dim=-1)
            weight = self.weight_g * F.normalize(self.weight_v, dim=-1)  # (K, bottleneck)
            return F.linear(x, weight)  # (B, K)
