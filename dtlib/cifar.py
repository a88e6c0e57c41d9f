"""Channel statistics of CIFAR-10 and CIFAR-100, and the one normalisation every model input goes through."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

# An ImageFolder copy has no statistics of its own: CIFAR-10's (the shared copy is CIFAR-10).
_STATS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "imagefolder": (CIFAR10_MEAN, CIFAR10_STD),
}


def dataset_stats(dataset: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) per RGB channel of `dataset` (cifar10 | cifar100 | imagefolder)."""
    if dataset not in _STATS:
        raise ValueError(f"no channel statistics for dataset {dataset!r}; choose one of {', '.join(_STATS)}")
    return _STATS[dataset]


@functools.lru_cache(maxsize=64)
def cached_constant(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """A constant vector made once per (values, device, dtype): torch.tensor(list) on a GPU is a blocking
    host-to-device copy, which would otherwise run for every view of every step."""
    with torch.inference_mode(False):  # a normal tensor even if first made under inference mode
        return torch.tensor(values, device=device, dtype=dtype)


def normalize(images: Tensor | np.ndarray, mean: Sequence[float] = CIFAR10_MEAN,
              std: Sequence[float] = CIFAR10_STD,
              memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
    """Images to (x − mean) / std, float (B, 3, H, W), written in `memory_format`.

    `images` are uint8 (0…255) or float (0…1), as a (B, 3, H, W) or (3, H, W) tensor or an (H, W, 3)
    array (a photo).
    """
    if isinstance(images, np.ndarray):
        images = torch.tensor(images).permute(2, 0, 1)  # (3, H, W); a copy, so read-only arrays work
    if images.ndim == 3:
        images = images.unsqueeze(0)  # (1, 3, H, W)
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    m = cached_constant(tuple(mean), x.device, x.dtype).view(1, -1, 1, 1)
    s = cached_constant(tuple(std), x.device, x.dtype).view(1, -1, 1, 1)
    if x.requires_grad:  # out= below has no autograd
        return ((x - m) / s).contiguous(memory_format=memory_format)
    # The last op writes straight into the layout the backbone wants (channels_last for convolutions):
    # no extra copy of every view afterwards.
    out = torch.empty_like(x, memory_format=memory_format)
    return torch.sub(x, m, out=out).div_(s)


def unnormalize(x: Tensor, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD) -> Tensor:
    """Inverse of `normalize`: float (B, 3, H, W) back to [0, 1] (clamped), on the CPU."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x.detach().float().cpu() * s + m).clamp(0, 1)
