"""Backbones: CIFAR-stem ResNets, a tiny CPU ResNet and a ViT-Tiny that exposes its attention maps.

Every backbone maps float images ``(B, 3, H, W)`` to pooled features ``(B, embed_dim)`` and has an
int attribute ``embed_dim``, so projection heads can be sized without a dummy forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock

from .config import BACKBONES as BACKBONES  # the names live with the config; re-exported here


def _cifar_resnet(model: nn.Module, embed_dim: int) -> nn.Module:
    """Give a torchvision ResNet the CIFAR stem and drop its classifier."""
    # At 32 px the ImageNet stem (7x7 stride 2 + maxpool) would shrink the image to 8x8 before
    # the first stage; a 3x3 stride-1 conv keeps the spatial detail CIFAR objects need.
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    model.embed_dim = embed_dim
    return model


class ResNetMini(nn.Module):
    """Small CIFAR ResNet (3x3 stem, BasicBlock stages, global average pool) for CPU training."""

    def __init__(self, widths: Sequence[int] = (32, 64, 128), blocks: int | Sequence[int] = 1) -> None:
        super().__init__()
        blocks = [blocks] * len(widths) if isinstance(blocks, int) else list(blocks)
        if len(blocks) != len(widths):
            raise ValueError(f"blocks {blocks} must have one entry per stage of widths {tuple(widths)}")
        self.embed_dim = int(widths[-1])
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        in_ch = widths[0]
        for stage, (width, n_blocks) in enumerate(zip(widths, blocks, strict=True)):
            for i in range(n_blocks):
                # The first stage keeps the resolution; each later one halves it in its first block.
                stride = 2 if stage > 0 and i == 0 else 1
                downsample = None
                if stride != 1 or in_ch != width:
                    downsample = nn.Sequential(
                        nn.Conv2d(in_ch, width, kernel_size=1, stride=stride, bias=False),
                        nn.BatchNorm2d(width),
                    )
                layers.append(BasicBlock(in_ch, width, stride=stride, downsample=downsample))
                in_ch = width
        self.stages = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        """Map images (B, 3, H, W) to pooled features (B, embed_dim)."""
        return self.pool(self.stages(self.stem(x)))


class ViTBackbone(VisionTransformer):
    """timm ViT returning the [CLS] token, with access to every block's attention weights."""

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 4,
        drop_path_rate: float = 0.1,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        **kwargs,
    ) -> None:
        if img_size % patch_size != 0:
            raise ValueError(f"patch_size {patch_size} must divide img_size {img_size}")
        # dynamic_img_size interpolates the position embeddings, so the same weights also run on
        # larger inputs (e.g. 128 px photos for attention maps).
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            num_classes=0,
            drop_path_rate=drop_path_rate,
            dynamic_img_size=True,
            **kwargs,
        )

    @property
    def patch_size(self) -> int:
        """Side of a square patch in pixels."""
        return self.patch_embed.patch_size[0]

    def get_attention(self, x: Tensor) -> list[Tensor]:
        """Attention weights of every block, each (B, heads, 1+N, 1+N) with rows summing to 1."""
        return self._attention(x, list(self.blocks))

    def get_last_attention(self, x: Tensor) -> Tensor:
        """Attention weights of the last block, (B, heads, 1+N, 1+N)."""
        return self._attention(x, [self.blocks[-1]])[0]

    def _attention(self, x: Tensor, blocks: list[nn.Module]) -> list[Tensor]:
        """Run a normal forward pass, recomputing the softmax attention of ``blocks`` on the side."""
        maps: list[Tensor] = []

        def hook(attn: nn.Module, args: tuple[Tensor, ...]) -> None:
            # The fused SDPA kernel never materialises the weights, so rebuild them from the very
            # tokens the block feeds its attention (after norm1), with the block's own qkv projection
            # and q/k norms, which keeps them exact for any timm attention config.
            tokens = args[0]  # (B, T, C)
            B, T, _ = tokens.shape
            qkv = attn.qkv(tokens).reshape(B, T, 3, attn.num_heads, attn.head_dim)
            q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, head_dim)
            q, k = attn.q_norm(q), attn.k_norm(k)
            maps.append(((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1))  # (B, heads, T, T)

        handles = [blk.attn.register_forward_pre_hook(hook) for blk in blocks]
        try:
            self(x)
        finally:
            for handle in handles:
                handle.remove()
        return maps


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build backbone ``name`` (one of BACKBONES) mapping (B, 3, H, W) images to (B, embed_dim)."""
    # kwargs go to the underlying constructor: torchvision's resnet (e.g. zero_init_residual),
    # ResNetMini (widths, blocks) or ViTBackbone (img_size, patch_size, drop_path_rate, depth, ...).
    if name == "resnet18":
        return _cifar_resnet(resnet18(weights=None, **kwargs), embed_dim=512)
    if name == "resnet50":
        return _cifar_resnet(resnet50(weights=None, **kwargs), embed_dim=2048)
    if name == "resnet_mini":
        return ResNetMini(**kwargs)
    if name == "vit_tiny":
        return ViTBackbone(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONES)}")
