"""Batched self-supervised views on the batch's device, with random parameters drawn per sample.

The ``sample_*`` functions and :func:`augment` draw each view's parameters from a ``torch.Generator`` on
the images' device, so a seed fixes the views; :mod:`dtlib.ops` applies them to the whole batch at once
(torchvision's formulas, checked against it in ``tests/test_augment.py``). ``ViewMaker`` makes a
method's views (two for Barlow Twins, multi-crop for DINO) from a list of ``ViewSpec``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from .cifar import CIFAR10_MEAN, CIFAR10_STD, cached_constant, normalize
from .ops import blur_kernel_size, color_jitter, gaussian_blur, hflip, resized_crop, solarize, to_grayscale


@dataclass(frozen=True)
class ViewSpec:
    """Parameters of one random view (torchvision's RandomResizedCrop + SSL colour recipe)."""

    size: int = 32
    scale: tuple[float, float] = (0.2, 1.0)  # RandomResizedCrop area range
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8  # ColorJitter applied with this probability
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0


# ------------------------------------------------------------------------------------------ sampling


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """n uniform draws in [low, high) from ``generator`` on ``device``."""
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _bernoulli(n: int, p: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """n coin flips that come up True with probability p."""
    return torch.rand(n, generator=generator, device=device) < p


def sample_crop_boxes(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    tries: int = 10,
) -> Tensor:
    """RandomResizedCrop boxes (n, 4) as (top, left, height, width), torchvision's sampler vectorised."""
    # Every sample draws all its tries at once and keeps the first that fits, which is what
    # torchvision's loop returns; samples with no fitting try take the same central fallback crop.
    area = height * width
    u = torch.rand(n, tries, 2, generator=generator, device=device)
    target = area * (scale[0] + (scale[1] - scale[0]) * u[..., 0])  # (n, tries)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    # torch.round and Python's round both round half to even.
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # (n, tries)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first fitting try (0 if none)
    found = fits.any(dim=1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)

    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, float(fw))
    h = torch.where(found, h, float(fh))
    # Uniform integer offsets in [0, side - crop]; the fallback is centred.
    pos = torch.rand(n, 2, generator=generator, device=device)
    top = torch.where(found, torch.floor(pos[:, 0] * (height - h + 1)), float((height - fh) // 2))
    left = torch.where(found, torch.floor(pos[:, 1] * (width - w + 1)), float((width - fw) // 2))
    return torch.stack((top, left, h, w), dim=1).long()  # (n, 4)


def sample_jitter(
    n: int, spec: ViewSpec, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """ColorJitter factors (n, 4) and op orders (n, 4); samples skipped (prob. 1 - jitter_p) get identities."""
    device = torch.device(device)
    ranges = [(max(0.0, 1 - v), 1 + v) for v in (spec.brightness, spec.contrast, spec.saturation)]
    ranges.append((-spec.hue, spec.hue))
    low = cached_constant(tuple(lo for lo, _ in ranges), device, torch.float32)  # (4,)
    high = cached_constant(tuple(hi for _, hi in ranges), device, torch.float32)  # (4,)
    factors = low + (high - low) * torch.rand(n, 4, generator=generator, device=device)  # (n, 4)
    identity = cached_constant((1.0, 1.0, 1.0, 0.0), device, torch.float32)
    factors = torch.where(_bernoulli(n, spec.jitter_p, generator, device)[:, None], factors, identity)
    # argsort of i.i.d. uniforms is a uniformly random permutation per row.
    order = torch.rand(n, 4, generator=generator, device=device).argsort(dim=1)  # (n, 4)
    return factors, order


@dataclass(frozen=True)
class ViewParams:
    """Per-sample random parameters of one view of a batch of n images."""

    boxes: Tensor  # (n, 4) crop top, left, height, width
    flip: Tensor  # (n,) bool
    jitter: Tensor  # (n, 4) brightness, contrast, saturation, hue factors (identities where not jittered)
    order: Tensor  # (n, 4) ColorJitter op order per sample
    gray: Tensor  # (n,) bool
    sigma: Tensor  # (n,) blur sigma, 0 where not blurred
    solarize: Tensor  # (n,) bool


def sample_view_params(
    n: int,
    height: int,
    width: int,
    spec: ViewSpec,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> ViewParams:
    """Draw every random parameter of one view for n images of height x width from ``generator``."""
    boxes = sample_crop_boxes(n, height, width, spec.scale, spec.ratio, generator, device)
    flip = _bernoulli(n, spec.flip_p, generator, device)
    jitter, order = sample_jitter(n, spec, generator, device)
    gray = _bernoulli(n, spec.gray_p, generator, device)
    sigma = _uniform(n, *spec.blur_sigma, generator, device)
    sigma = torch.where(_bernoulli(n, spec.blur_p, generator, device), sigma, 0.0)
    solar = _bernoulli(n, spec.solarize_p, generator, device)
    return ViewParams(boxes, flip, jitter, order, gray, sigma, solar)


def apply_view(
    x: Tensor,
    params: ViewParams,
    spec: ViewSpec,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """Apply one view's parameters to float images (B, 3, H, W) in [0, 1]: normalised (B, 3, size, size)."""
    x = resized_crop(x, params.boxes, spec.size)  # (B, 3, size, size)
    x = hflip(x, params.flip)
    # Ops whose probability is 0 in the spec are skipped outright: decided on the host, so no device sync.
    if spec.jitter_p > 0:
        x = color_jitter(x, params.jitter, params.order)
    if spec.gray_p > 0:
        x = to_grayscale(x, params.gray)
    if spec.blur_p > 0:
        x = gaussian_blur(x, params.sigma, blur_kernel_size(spec.size))
    if spec.solarize_p > 0:
        x = solarize(x, params.solarize)
    return normalize(x, mean, std, memory_format)


def _to_unit(images: Tensor) -> Tensor:
    """uint8 images (B, 3, H, W) as float32 in [0, 1] (a new tensor, so later in-place ops are safe)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.float().div_(255.0)


def augment(
    images: Tensor,
    spec: ViewSpec,
    generator: torch.Generator | None = None,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
) -> Tensor:
    """One random view of uint8 images (B, 3, H, W): float32 (B, 3, size, size), normalised."""
    x = _to_unit(images)  # (B, 3, H, W)
    return apply_view(x, sample_view_params(len(x), *x.shape[-2:], spec, generator, x.device), spec, mean, std)


class ViewMaker:
    """Makes a list of views from one batch; specs[0:n_global] are the global views.

    With `channels_last` the views come out in that memory format (what convolutions run fastest on).
    """

    def __init__(
        self,
        specs: Sequence[ViewSpec],
        n_global: int = 2,
        mean: Sequence[float] = CIFAR10_MEAN,
        std: Sequence[float] = CIFAR10_STD,
        channels_last: bool = False,
    ) -> None:
        if not 0 < n_global <= len(specs):
            raise ValueError(f"n_global={n_global} must be in [1, {len(specs)}]")
        self.specs = list(specs)
        self.n_global = n_global
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: Tensor, generator: torch.Generator | None = None,
                 shard: tuple[int, int] = (0, 1)) -> list[Tensor]:
        """Views of a uint8 batch (B, 3, H, W), one per spec, in spec order.

        With ``shard=(i, k)`` only the i-th of k equal parts of the batch is transformed, but the random
        parameters are drawn for the whole batch: k processes sharing one seed together make exactly the
        views one process would (how each torchrun rank gets its slice).
        """
        i, k = shard
        n, _, h, w = images.shape
        part = slice(i * n // k, (i + 1) * n // k)
        x = _to_unit(images[part] if k > 1 else images)  # (B / k, 3, H, W), converted once for all views
        params = []
        for s in self.specs:  # drawn spec by spec, in order: the random stream does not depend on the grouping
            p = sample_view_params(n, h, w, s, generator, x.device)
            if k > 1:
                p = ViewParams(*(getattr(p, f.name)[part] for f in fields(ViewParams)))
            params.append(p)
        views = []
        for s, group in _runs_of_equal_specs(self.specs, params):
            # Every op is per sample, so one call over g stacked copies of the batch makes the same views as
            # g calls, with ~g times fewer kernel launches (DINO's identical local crops: one call for all).
            if len(group) == 1:
                views.append(apply_view(x, group[0], s, self.mean, self.std, self.memory_format))
                continue
            stacked = ViewParams(*(torch.cat([getattr(p, f.name) for p in group]) for f in fields(ViewParams)))
            xs = x.repeat(len(group), 1, 1, 1)  # (g * B / k, 3, H, W)
            views.extend(apply_view(xs, stacked, s, self.mean, self.std, self.memory_format).chunk(len(group)))
        return views


def _runs_of_equal_specs(specs: Sequence[ViewSpec], params: list[ViewParams]) -> list[tuple[ViewSpec, list]]:
    """Consecutive equal specs grouped with their parameters: [(spec, [params, ...]), ...] in spec order."""
    runs: list[tuple[ViewSpec, list]] = []
    for s, p in zip(specs, params, strict=True):
        if runs and runs[-1][0] == s:
            runs[-1][1].append(p)
        else:
            runs.append((s, [p]))
    return runs


# ------------------------------------------------------------------------------------------- recipes


def barlow_twins_views(size: int = 32, cifar: bool = True, scale: tuple[float, float] | None = None) -> list[ViewSpec]:
    """Barlow Twins' two asymmetric views (blur 1.0 / 0.1, solarize 0 / 0.2), adapted to CIFAR if asked.

    `scale` is the crop area range; None takes the paper's (0.08, 1), or (0.2, 1) for CIFAR.
    """
    # The paper crops with scale (0.08, 1) at 224 px.  At 32 px an 8% crop is about 9x9 pixels blown up
    # 3.5x, mostly interpolation blur, so CIFAR uses 0.2 (MoCo v2's minimum scale, common in CIFAR-10 SSL
    # code).  Blur on 32-px images wipes out most of the signal, so it is off there.
    if scale is None:
        scale = (0.2, 1.0) if cifar else (0.08, 1.0)
    base = ViewSpec(size=size, scale=scale)
    blur1, blur2 = (0.0, 0.0) if cifar else (1.0, 0.1)
    return [replace(base, blur_p=blur1), replace(base, blur_p=blur2, solarize_p=0.2)]


def multicrop_views(
    n_local: int = 6,
    global_size: int = 32,
    local_size: int = 16,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    cifar: bool = True,
) -> list[ViewSpec]:
    """DINO multi-crop: 2 global views (blur 1.0 / 0.1 + solarize 0.2) and n_local local views (blur 0.5)."""
    # Same CIFAR blur argument as barlow_twins_views: off on 32/16-px crops.
    blur_global1, blur_global2, blur_local = (0.0, 0.0, 0.0) if cifar else (1.0, 0.1, 0.5)
    glob = ViewSpec(size=global_size, scale=global_scale)
    local = ViewSpec(size=local_size, scale=local_scale, blur_p=blur_local)
    return [
        replace(glob, blur_p=blur_global1),
        replace(glob, blur_p=blur_global2, solarize_p=0.2),
        *([local] * n_local),
    ]
