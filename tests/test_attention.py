"""Tests for dtlib.attention: [CLS] attention maps, DINO masks, resizing and photo preprocessing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch

from dtlib.attention import (
    attention_mask,
    cls_attention,
    cls_attention_layers,
    crop_resize,
    normalize,
    prepare_image,
    upsample,
)
from dtlib.backbones import ViTBackbone, build_backbone
from dtlib.cifar import CIFAR10_MEAN, CIFAR10_STD


@pytest.fixture(scope="module")
def vit() -> ViTBackbone:
    """A shallow vit_tiny (patch 4, 3 heads): attention maps do not depend on depth."""
    torch.manual_seed(0)
    return build_backbone("vit_tiny", depth=3)


def test_cls_attention_shape_and_values(vit: ViTBackbone) -> None:
    images = torch.randn(2, 3, 32, 48)
    maps = cls_attention(vit, images, layer=1)
    assert maps.shape == (2, 3, 8, 12)  # (B, heads, h, w)
    with torch.no_grad():
        full = vit.eval().get_attention(images)[1]  # (B, heads, 1+N, 1+N)
    # Row-major patch order: patch (i, j) is token 1 + i * w + j.
    assert torch.equal(maps[:, :, 2, 5], full[:, :, 0, 1 + 2 * 12 + 5])
    # Together with the [CLS] self-attention the row is a distribution.
    torch.testing.assert_close(maps.sum((-2, -1)) + full[:, :, 0, 0], torch.ones(2, 3))


def test_cls_attention_layers_restores_mode(vit: ViTBackbone) -> None:
    vit.train()
    images = torch.randn(1, 3, 32, 32)
    layers = cls_attention_layers(vit, images)
    assert layers.shape == (3, 1, 3, 8, 8)  # (L, B, heads, h, w)
    assert vit.training
    assert torch.equal(cls_attention(vit, images), layers[-1])  # eval mode: deterministic


def _mass(attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of each map's mass inside the mask, (...)."""
    a = attn.double()
    return (a * mask).sum((-2, -1)) / a.sum((-2, -1))


@pytest.mark.parametrize("keep", [0.1, 0.6, 0.9])
def test_mask_holds_keep_and_is_minimal(keep: float) -> None:
    torch.manual_seed(0)
    attn = torch.rand(2, 3, 8, 8) ** 4  # peaked, like trained attention
    mask = attention_mask(attn, keep)
    assert mask.dtype == torch.bool and mask.shape == attn.shape
    assert (_mass(attn, mask) >= keep).all()
    # Dropping the weakest kept patch of any map must fall short of keep.
    weakest = torch.where(mask, attn, torch.inf).flatten(-2).argmin(-1)  # (B, heads)
    smaller = mask.flatten(-2).scatter(-1, weakest.unsqueeze(-1), False).reshape(mask.shape)
    assert (_mass(attn, smaller) < keep).all()


def test_mask_hand_made_example() -> None:
    # Mass 0.5 in total, normalised to 1/16, 8/16, 3/16, 4/16: binary-exact, so the ties at
    # keep = 0.5 and 0.75 are decided by "stop as soon as the kept mass reaches keep".
    attn = torch.tensor([[1.0, 8.0], [3.0, 4.0]]) / 32
    assert attention_mask(attn, 0.5).tolist() == [[False, True], [False, False]]
    assert attention_mask(attn, 0.6).tolist() == [[False, True], [False, True]]
    assert attention_mask(attn, 0.75).tolist() == [[False, True], [False, True]]
    assert attention_mask(attn, 0.8).tolist() == [[False, True], [True, True]]
    assert attention_mask(attn, 1.0).all()
    assert not attention_mask(attn, 0.0).any()
    with pytest.raises(ValueError, match="keep"):
        attention_mask(attn, 1.5)


def test_mask_more_keep_more_patches() -> None:
    torch.manual_seed(1)
    attn = torch.rand(3, 8, 8)
    counts = [attention_mask(attn, k).sum().item() for k in (0.2, 0.5, 0.8)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_upsample() -> None:
    maps = torch.arange(4.0).reshape(1, 2, 2).expand(3, 2, 2)  # (heads, h, w)
    up = upsample(maps, 4)
    assert up.shape == (3, 4, 4)
    assert torch.equal(up[0], torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    smooth = upsample(maps, (6, 8), mode="bilinear")
    assert smooth.shape == (3, 6, 8)
    assert smooth.min() >= 0 and smooth.max() <= 3


def test_crop_resize_keeps_the_centre() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[:, 50:150] = 255  # a white centre square the crop must keep; black borders are cut off
    out = crop_resize(image, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    # The outermost columns mix with the black border under the antialiased resize.
    assert out[:, 1:-1].min() == 255
    with pytest.raises(ValueError, match="HxWx3"):
        crop_resize(np.zeros((10, 10), dtype=np.uint8))


def test_normalize_uses_cifar_statistics() -> None:
    mean_pixel = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1).expand(2, 3, 4, 4)  # float images are in [0, 1]
    torch.testing.assert_close(normalize(mean_pixel), torch.zeros(2, 3, 4, 4))
    white = np.full((4, 4, 3), 255, dtype=np.uint8)
    expected = [(1 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD, strict=True)]
    torch.testing.assert_close(normalize(white)[0, :, 0, 0], torch.tensor(expected))


def test_prepare_photo_runs_through_the_model(vit: ViTBackbone) -> None:
    x = prepare_image(skimage.data.astronaut(), size=64, patch_size=vit.patch_size)
    assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
    assert cls_attention(vit, x).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        prepare_image(skimage.data.astronaut(), size=30, patch_size=4)


def test_attention_entropy_uniform_and_one_hot() -> None:
    from dtlib.attention import attention_entropy

    uniform = torch.full((2, 3, 4, 4), 0.5)  # unnormalised on purpose: the entropy renormalises
    one_hot = torch.zeros(4, 4)
    one_hot[1, 2] = 1.0
    torch.testing.assert_close(attention_entropy(uniform), torch.full((2, 3), math.log(16)))
    torch.testing.assert_close(attention_entropy(one_hot), torch.tensor(0.0))


def test_mean_attention_distance_shape_range_and_restores_mode(vit: ViTBackbone) -> None:
    from dtlib.attention import mean_attention_distance

    vit.train()
    images = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    d = mean_attention_distance(vit, images)  # 4 x 4 patches of 4 px
    assert d.shape == (3, vit.blocks[0].attn.num_heads) and vit.training
    farthest = math.dist((0, 0), (12, 12))
    assert (d > 0).all() and (d < farthest).all()
    # A uniform attention over a 4 x 4 grid: the mean over query patches of the mean distance to all patches.
    pos = torch.stack(torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij"), -1).reshape(-1, 2).float() * 4
    uniform = torch.cdist(pos, pos).mean()
    assert abs(d.mean() - uniform) < 0.5 * uniform  # a random ViT attends broadly, near the uniform value
