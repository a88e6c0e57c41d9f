"""DINO-style attention maps: [CLS]->patch attention, mass-threshold masks, and photo preprocessing.

The model is a ViT backbone from ``dtlib.backbones`` (anything with ``get_attention``, ``patch_size``
and ``num_prefix_tokens``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import Tensor, nn

from .cifar import normalize


def cls_attention_layers(model: nn.Module, images: Tensor) -> Tensor:
    """[CLS]->patch attention of every block on the patch grid, (L, B, heads, h, w)."""
    h, w = images.shape[-2] // model.patch_size, images.shape[-1] // model.patch_size
    was_training = model.training
    # Eval mode: drop-path must not randomly skip blocks while we look at them.
    model.eval()
    try:
        with torch.no_grad():
            maps = model.get_attention(images)  # L x (B, heads, 1+N, 1+N)
    finally:
        model.train(was_training)
    attn = torch.stack(maps)  # (L, B, heads, T, T)
    # Row 0 is what the [CLS] token reads; the columns after the prefix tokens are the patches.
    cls_row = attn[:, :, :, 0, model.num_prefix_tokens :]  # (L, B, heads, N)
    return cls_row.reshape(*cls_row.shape[:3], h, w)  # (L, B, heads, h, w)


def cls_attention(model: nn.Module, images: Tensor, layer: int = -1) -> Tensor:
    """[CLS]->patch attention of block ``layer`` reshaped to the patch grid, (B, heads, h, w)."""
    return cls_attention_layers(model, images)[layer]


def attention_mask(attn: Tensor, keep: float = 0.6) -> Tensor:
    """Boolean mask of the fewest patches per map holding at least ``keep`` of its attention mass.

    ``attn`` is (..., h, w); each (h, w) map (one per head) is normalised to total mass 1 first,
    since the [CLS]->patch row leaves out the mass the [CLS] token puts on itself.
    """
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    flat = attn.flatten(-2).double()  # (..., N); float64 so the cumulative sum does not drift
    flat = flat / flat.sum(-1, keepdim=True)
    values, order = flat.sort(dim=-1, descending=True)
    # A patch is needed while the mass of the larger patches before it is still short of keep.
    mass_before = values.cumsum(-1) - values
    keep_sorted = mass_before < keep
    mask = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to patch order
    return mask.reshape(attn.shape)


def upsample(attn_map: Tensor, size: int | tuple[int, int], mode: str = "nearest") -> Tensor:
    """Resize maps (..., h, w) to (..., H, W), e.g. patch-grid attention to image pixels."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    lead = attn_map.shape[:-2]
    # interpolate wants (B, C, h, w); fold all leading dims into the batch.
    x = attn_map.reshape(-1, 1, *attn_map.shape[-2:]).float()
    out = F.interpolate(x, size=size, mode=mode)  # (B*, 1, H, W)
    return out.reshape(*lead, *size)


def crop_resize(image: np.ndarray, size: int = 128) -> np.ndarray:
    """Resize the short side of an HxWx3 uint8 photo to ``size`` and centre-crop to size x size."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    t = torch.tensor(image).permute(2, 0, 1)  # (3, H, W); a copy, so read-only arrays work
    t = TF.center_crop(TF.resize(t, size, antialias=True), [size, size])
    return t.permute(1, 2, 0).numpy()


def prepare_image(image: np.ndarray, size: int = 128, patch_size: int = 4) -> Tensor:
    """Turn an HxWx3 uint8 photo into a model input (1, 3, size, size) normalised like CIFAR-10."""
    if size % patch_size != 0:
        raise ValueError(f"size {size} must be a multiple of the patch size {patch_size}")
    return normalize(crop_resize(image, size))


def attention_entropy(attn: Tensor) -> Tensor:
    """Entropy in nats of each attention map over its patches, (..., h, w) -> (...); ln(h·w) is uniform."""
    p = attn.flatten(-2)
    p = p / p.sum(-1, keepdim=True)  # the [CLS] column is excluded, so renormalise over the patches
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def mean_attention_distance(model: nn.Module, images: Tensor) -> Tensor:
    """Mean distance in pixels from each patch to the patches it attends to, per block and head, (L, heads)."""
    h, w = images.shape[-2] // model.patch_size, images.shape[-1] // model.patch_size
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = model.get_attention(images)  # L x (B, heads, T, T)
    finally:
        model.train(was_training)
    p = model.num_prefix_tokens
    attn = torch.stack(maps)[..., p:, p:]  # (L, B, heads, N, N): patch -> patch
    attn = attn / attn.sum(-1, keepdim=True)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten()], -1).float() * model.patch_size  # (N, 2) in pixels
    dist = torch.cdist(pos, pos).to(attn)  # (N, N)
    return (attn * dist).sum(-1).mean(dim=(1, 3))  # (L, heads)
