"""Tests for dtlib.backbones: shapes, gradients, ViT resizing and exact attention weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dtlib.backbones import BACKBONES, ViTBackbone, build_backbone

EMBED_DIMS = {"resnet18": 512, "resnet50": 2048, "vit_tiny": 192, "resnet_mini": 128}


@pytest.fixture(scope="module")
def vit() -> ViTBackbone:
    """A full-size vit_tiny in eval mode, so drop-path does not make outputs random."""
    torch.manual_seed(0)
    return build_backbone("vit_tiny").eval()


def test_embed_dims_cover_every_backbone() -> None:
    assert set(EMBED_DIMS) == set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_shape_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(name)
    # eval() keeps drop-path from skipping a whole block (which would leave its parameters
    # without gradient by chance); BatchNorm in eval mode still passes gradients to its affine.
    model.eval()
    out = model(torch.randn(2, 3, 32, 32))  # (B, embed_dim)
    assert isinstance(model.embed_dim, int)
    assert model.embed_dim == EMBED_DIMS[name]
    assert out.shape == (2, model.embed_dim)
    assert torch.isfinite(out).all()
    out.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_has_cifar_stem(name: str) -> None:
    model = build_backbone(name)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.bias is None
    assert isinstance(model.maxpool, nn.Identity) and isinstance(model.fc, nn.Identity)


def test_resnet_mini_options() -> None:
    model = build_backbone("resnet_mini", widths=(8, 16), blocks=(2, 1))
    assert model.embed_dim == 16
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 16)
    with pytest.raises(ValueError, match="one entry per stage"):
        build_backbone("resnet_mini", widths=(8, 16), blocks=(1, 1, 1))


def test_vit_config(vit: ViTBackbone) -> None:
    assert vit.patch_size == 4 and vit.embed_dim == 192
    assert len(vit.blocks) == 12 and vit.blocks[0].attn.num_heads == 3
    # The training forward must keep timm's fused SDPA kernel.
    assert all(blk.attn.fused_attn for blk in vit.blocks)


def test_vit_accepts_larger_images(vit: ViTBackbone) -> None:
    with torch.no_grad():
        out = vit(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 192) and torch.isfinite(out).all()


def _reference_attention(model: ViTBackbone, x: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights from timm's own non-fused path, captured at its attention dropout."""
    maps: list[torch.Tensor] = []
    handles = []
    for blk in model.blocks:
        blk.attn.fused_attn = False
        handles.append(blk.attn.attn_drop.register_forward_hook(lambda m, i, o: maps.append(o)))
    try:
        model(x)
    finally:
        for blk, handle in zip(model.blocks, handles, strict=True):
            blk.attn.fused_attn = True
            handle.remove()
    return maps


def test_vit_attention_shape(vit: ViTBackbone) -> None:
    with torch.no_grad():
        maps = vit.get_attention(torch.randn(2, 3, 32, 32))
    assert len(maps) == 12
    for attn in maps:
        assert attn.shape == (2, 3, 65, 65)  # (B, heads, 1+N, 1+N), N = (32 / 4)^2
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 65))


@pytest.mark.parametrize("size", [32, 48])
def test_vit_attention_matches_manual(size: int) -> None:
    torch.manual_seed(0)
    # A shallow model keeps the test fast; the hook is per block, so depth adds nothing to check.
    model = build_backbone("vit_tiny", depth=3).eval()
    x = torch.randn(2, 3, size, size)
    n_tokens = 1 + (size // 4) ** 2
    with torch.no_grad():
        maps = model.get_attention(x)
        reference = _reference_attention(model, x)
        last = model.get_last_attention(x)
    assert len(maps) == len(reference) == 3
    for attn, ref in zip(maps, reference, strict=True):
        assert attn.shape == (2, 3, n_tokens, n_tokens)  # (B, heads, 1+N, 1+N)
        torch.testing.assert_close(attn, ref)
    torch.testing.assert_close(last, maps[-1])


def test_vit_attention_with_qk_norm() -> None:
    torch.manual_seed(0)
    model = build_backbone("vit_tiny", depth=2, qk_norm=True).eval()
    # Non-trivial norm weights, so skipping the q/k norms would change the result.
    for blk in model.blocks:
        nn.init.normal_(blk.attn.q_norm.weight, 1.0, 0.5)
        nn.init.normal_(blk.attn.k_norm.weight, 1.0, 0.5)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        for attn, ref in zip(model.get_attention(x), _reference_attention(model, x), strict=True):
            torch.testing.assert_close(attn, ref)


def test_get_attention_leaves_forward_unchanged(vit: ViTBackbone) -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = vit(x)
        vit.get_attention(x)
        after = vit(x)
    torch.testing.assert_close(before, after)
    assert all(not blk.attn._forward_pre_hooks for blk in vit.blocks)


def test_vit_bad_patch_size() -> None:
    with pytest.raises(ValueError, match="must divide"):
        build_backbone("vit_tiny", img_size=32, patch_size=5)


def test_unknown_backbone_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="resnet18.*resnet50.*vit_tiny.*resnet_mini"):
        build_backbone("vgg11")
