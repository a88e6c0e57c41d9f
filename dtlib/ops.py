"""Batched image ops with explicit per-sample parameters: crops, flips, colour, blur, solarisation.

Each op transforms a whole float batch in [0, 1] at once (no Python loop over samples) and follows
torchvision's functional op of the same name (same formulas, same clamping); ``tests/test_augment.py``
checks each against torchvision. ``dtlib.augment`` draws their parameters and makes views with them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _per_sample(v: Tensor) -> Tensor:
    """Reshape a per-sample vector (B,) to broadcast over (B, C, H, W)."""
    return v.reshape(-1, 1, 1, 1)


def _select(mask: Tensor | None, new: Tensor, old: Tensor) -> Tensor:
    """Take ``new`` where the per-sample ``mask`` is set (all samples when it is None)."""
    return new if mask is None else torch.where(_per_sample(mask), new, old)


def _resize_coords(start: Tensor, length: Tensor, size: int) -> Tensor:
    """Source pixel coordinates (B, size) of a bilinear resize of [start, start+length) to ``size`` px."""
    dst = torch.arange(size, device=start.device, dtype=start.dtype) + 0.5
    # interpolate(align_corners=False): src = (dst + 0.5) * in/out - 0.5, clamped at 0; its upper
    # neighbour is clamped at in-1, which equals clamping src there, so every sample stays inside the crop.
    src = dst * (length[:, None] / size) - 0.5
    src = torch.minimum(src.clamp(min=0.0), length[:, None] - 1)
    return start[:, None] + src  # (B, size)


def resized_crop(x: Tensor, boxes: Tensor, size: int) -> Tensor:
    """Crop boxes (B, 4) as (top, left, height, width) and resize bilinearly, as F.resized_crop(antialias=False)."""
    b, _, h, w = x.shape
    top, left, height, width = boxes.to(x.dtype).unbind(1)
    ys = _resize_coords(top, height, size)  # (B, size)
    xs = _resize_coords(left, width, size)  # (B, size)
    # grid_sample(align_corners=False) maps pixel p to (2p + 1) / n - 1.
    gx = ((2 * xs + 1) / w - 1)[:, None, :].expand(b, size, size)
    gy = ((2 * ys + 1) / h - 1)[:, :, None].expand(b, size, size)
    grid = torch.stack((gx, gy), dim=-1)  # (B, size, size, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (B, C, size, size)


def hflip(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mirror left-right the samples where ``mask`` (B,) is set (all when None)."""
    return _select(mask, x.flip(-1), x)


def rgb_to_luma(x: Tensor) -> Tensor:
    """ITU-R 601 luma (B, 1, H, W) of RGB images (B, 3, H, W)."""
    r, g, b = x.unbind(1)
    # In place: on CPU a fresh full-size intermediate can cost as much as the arithmetic.
    return (_LUMA[0] * r).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(1)  # (B, 1, H, W)


def to_grayscale(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Replace the samples where ``mask`` is set by their 3-channel luma, as RandomGrayscale."""
    return _select(mask, rgb_to_luma(x).expand_as(x), x)


def _blend(x: Tensor, ref: Tensor, factor: Tensor) -> Tensor:
    """torchvision's _blend: clamp(f * x + (1 - f) * ref) with a per-sample factor (B,)."""
    # lerp(ref, x, f) = ref + f * (x - ref); torch evaluates it as x - (x - ref) * (1 - f) for f >= 0.5,
    # so a factor of 1 returns x exactly.
    return torch.lerp(ref, x, _per_sample(factor)).clamp_(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """Scale intensities by a per-sample factor (B,)."""
    return _blend(x, x.new_zeros(()), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each sample with the mean of its luma by a per-sample factor (B,)."""
    return _blend(x, rgb_to_luma(x).mean(dim=(-2, -1), keepdim=True), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each sample with its luma image by a per-sample factor (B,)."""
    return _blend(x, rgb_to_luma(x), factor)


def adjust_hue(x: Tensor, factor: Tensor) -> Tensor:
    """Rotate hue by a per-sample fraction of a turn (B,) in [-0.5, 0.5], as torchvision's HSV round trip."""
    # Shifting hue keeps HSV's value (max channel) and saturation, hence also the min channel, so the
    # round trip reduces to: hue from RGB, then each channel = max - (max - min) * ramp(shifted hue).
    # Speed on CPU (results/bench_augment.md): masks are multiplied, not passed to torch.where, and amax/amin
    # replace max/min(dim), each >10x faster; in-place ops on fresh intermediates halve the time again.
    maxc = x.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    delta = maxc - x.amin(dim=1, keepdim=True)
    r, g, b = x.unbind(1)  # (B, H, W) each
    m, d = maxc[:, 0], delta[:, 0]
    # Hue in sextants times delta, with torchvision's tie order r > g > b for the max channel.
    is_r = (m == r).to(x.dtype)
    is_g = (m == g).to(x.dtype).mul_(1 - is_r)
    h6 = (g - b).mul_(is_r)
    h6.addcmul_(is_g, (b - r).add_(d, alpha=2.0))
    h6.addcmul_((1 - is_r).sub_(is_g), (r - g).add_(d, alpha=4.0))
    # Grey pixels (delta 0) have h6 = 0 and get multiplied by delta = 0 below; the clamp only avoids 0 / 0.
    h6 = h6.unsqueeze(1).div_(delta.clamp(min=1e-8)).add_(6.0 * _per_sample(factor))  # (B, 1, H, W)
    # HSV -> RGB without a per-sextant select: channel n in (5, 3, 1) for (r, g, b) is
    # v - v * s * clamp(min(k, 4 - k), 0, 1) with k = (n + 6h) mod 6 (the standard closed form), v * s = delta.
    n = torch.arange(5.0, 0.0, -2.0, device=x.device, dtype=x.dtype)  # (5, 3, 1), made on the device
    k = h6 + n.view(1, 3, 1, 1)  # (B, 3, H, W)
    k.sub_(torch.floor(k / 6.0).mul_(6.0))  # mod 6; floor is several times faster than torch.remainder here
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return ramp.mul_(-delta).add_(maxc)


def blur_kernel_size(size: int) -> int:
    """Odd Gaussian kernel size of about 10% of the image side (23 at 224 px as BYOL), at least 3."""
    return max(3, 2 * int(0.05 * size) + 1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with reflect padding and per-sample sigma (B,); sigma 0 leaves a sample as is."""
    radius = kernel_size // 2
    taps = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - radius
    # A tiny sigma underflows every off-centre tap to 0, giving an exact identity kernel.
    s = sigma.to(x.dtype).clamp(min=1e-6)[:, None]
    weights = torch.exp(-0.5 * (taps / s) ** 2)
    weights = weights / weights.sum(dim=1, keepdim=True)  # (B, kernel_size)
    h, w = x.shape[-2:]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")  # (B, C, H + 2r, W + 2r)
    # One fused multiply-add per tap over the whole batch: for 3-tap kernels on CPU about as fast as a grouped
    # conv2d with B*C one-channel groups or kornia's gaussian_blur2d (scripts/bench_augment.py), and simpler.
    rows = _per_sample(weights[:, 0]) * padded[..., :w]  # (B, C, H + 2r, W)
    for t in range(1, kernel_size):
        rows = torch.addcmul(rows, _per_sample(weights[:, t]), padded[..., t : t + w])
    out = _per_sample(weights[:, 0]) * rows[..., :h, :]  # (B, C, H, W)
    for t in range(1, kernel_size):
        out = torch.addcmul(out, _per_sample(weights[:, t]), rows[..., t : t + h, :])
    return out


def solarize(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Invert pixels >= 0.5 in the samples where ``mask`` is set, as torchvision's solarize at threshold 0.5."""
    # On [0, 1], where(x >= 0.5, 1 - x, x) == min(x, 1 - x) exactly (1 - x is exact for x >= 0.5); adding 2
    # for unmasked samples makes the min return x.  Several times faster than torch.where on CPU.
    if mask is None:
        return torch.minimum(x, 1.0 - x)
    return torch.minimum(x, (1.0 - x).add_(2.0 * _per_sample(~mask).to(x.dtype)))


def _blend_step(x: Tensor, op: Tensor, factor: Tensor) -> Tensor:
    """One ColorJitter slot: per sample brightness (op 0), contrast (1) or saturation (2)."""
    luma = rgb_to_luma(x)  # (B, 1, H, W)
    is_sat = _per_sample(op == 2).to(x.dtype)
    is_con = _per_sample(op == 1).to(x.dtype)
    # Reference image: 0 (brightness), the mean luma (contrast) or the luma image (saturation).
    ref = is_sat * luma + is_con * luma.mean(dim=(-2, -1), keepdim=True)  # (B, 1, H, W)
    return _blend(x, ref, factor)


def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """ColorJitter with per-sample factors (B, 4) (brightness, contrast, saturation, hue) and order (B, 4).

    ``order[b]`` is a permutation of 0..3 (brightness, contrast, saturation, hue).  Factors of 1 (0 for hue)
    leave a sample unchanged.
    """
    # torchvision draws a fresh op order per image; a fixed order would change the view distribution
    # (e.g. contrast after brightness averages the already-brightened image), so the order stays random
    # per sample.  The three blends share one formula, so each slot applies every sample's own blend at
    # once; hue is the costly op, so it runs once: three slots of the blends that come before a sample's
    # hue (identity factor 1 once past it), hue, then three slots of those after it.
    hue_pos = (order == 3).int().argmax(dim=1)  # (B,)
    for slot in range(3):
        op = order[:, slot].clamp(max=2)
        f = factors.gather(1, op[:, None]).squeeze(1)
        x = _blend_step(x, op, torch.where(slot < hue_pos, f, 1.0))
    x = adjust_hue(x, factors[:, 3])
    for slot in range(1, 4):
        op = order[:, slot].clamp(max=2)
        f = factors.gather(1, op[:, None]).squeeze(1)
        x = _blend_step(x, op, torch.where(slot > hue_pos, f, 1.0))
    return x
