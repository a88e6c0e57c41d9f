"""The method contract (`Method`) and the three methods: views in, (loss, logs) out. DINO and DINO Twins
own an EMA teacher. Every constructor default equals the Config field of the same name."""

from __future__ import annotations

import copy
from itertools import combinations, groupby

import torch
from timm.layers import DropPath
from torch import nn

from . import diagnostics, losses
from .config import BT_PAIRS
from .heads import DINOHead, Projector
from .losses import DINOLoss, barlow_twins_loss


def _features_by_resolution(backbone: nn.Module, views: list[torch.Tensor]) -> torch.Tensor:
    """Run the backbone once per group of consecutive same-size views; features of all views (V*B, D)."""
    out = []
    for _, group in groupby(views, key=lambda v: tuple(v.shape[-2:])):
        out.append(backbone(torch.cat(list(group))))
    return torch.cat(out)


class Method(nn.Module):
    """The contract every method keeps; training, benchmarking and tracking use nothing else.

    A new method subclasses this in this file and gets one line in `build.build_method`.
    """

    # True when a trainable parameter may get no gradient in a step (DDP must then look for them).
    unused_parameters: bool = False

    def forward(self, views: list[torch.Tensor], teacher_temp: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, logs) on `views` (global views first); logs are detached 0-d tensors (no host sync)."""
        raise NotImplementedError

    def update_teacher(self, momentum: float) -> None:
        """teacher ← m·teacher + (1−m)·student after each optimiser step; nothing for a method without one."""

    def eval_backbone(self) -> nn.Module:
        """The backbone to evaluate."""
        raise NotImplementedError

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The prototype layer, frozen for `freeze_last_layer` epochs; [] for a method without one."""
        return []

    def cross_correlation(self, views: list[torch.Tensor]) -> torch.Tensor | None:
        """The Barlow Twins matrix C (D, D) this method trains on, for the first two views; None if none."""
        return None


def _bt_embeddings(backbone: nn.Module, projector: nn.Module, views: list[torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features (2B, D) of the first two views in one batch, and their projections z1, z2 (B, P) each."""
    feats = _features_by_resolution(backbone, views[:2])  # (2B, D)
    z1, z2 = projector(feats).chunk(2)
    return feats, z1, z2


class BarlowTwins(Method):
    """Barlow Twins: backbone -> projector on two views, cross-correlation pushed to the identity.

    Args:
        backbone: module with an `embed_dim` attribute mapping images to pooled features.
        proj_dims: projector widths.
        lambd: weight λ of the off-diagonal (redundancy-reduction) term.
    """

    def __init__(self, backbone: nn.Module, proj_dims: tuple[int, ...] = (2048, 2048, 2048),
                 lambd: float = 5e-3):
        super().__init__()
        self.backbone = backbone
        self.projector = Projector(backbone.embed_dim, proj_dims)
        self.lambd = lambd

    def forward(self, views: list[torch.Tensor], teacher_temp: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss on the first two views (`teacher_temp` is unused: no teacher).

        Both views go through the backbone in one batch (one BatchNorm batch of 2B): the loss is
        the paper's, and one large call is faster than two.
        """
        feats, z1, z2 = _bt_embeddings(self.backbone, self.projector, views)
        loss = barlow_twins_loss(z1, z2, self.lambd)
        logs = {"loss": loss.detach(), "loss_bt": loss.detach(),
                "emb_std": diagnostics.embedding_std(feats[: len(z1)].detach())}
        return loss, logs

    def eval_backbone(self) -> nn.Module:
        """The backbone to evaluate."""
        return self.backbone

    def cross_correlation(self, views: list[torch.Tensor]) -> torch.Tensor:
        """C of the first two views, as the loss sees it."""
        return losses.cross_correlation(*_bt_embeddings(self.backbone, self.projector, views)[1:])


def _without_drop_path(module: nn.Module) -> nn.Module:
    """Replace every stochastic-depth layer by an identity (in place), as DINO builds its teacher."""
    # The teacher gives the targets: random dropped blocks would only add noise to them.
    for name, child in module.named_children():
        if isinstance(child, DropPath):
            setattr(module, name, nn.Identity())
        else:
            _without_drop_path(child)
    return module


class Student(nn.Module):
    """Backbone + DINO head; the teacher is a copy of it."""

    def __init__(self, backbone: nn.Module, head: DINOHead):
        super().__init__()
        self.backbone = backbone
        self.head = head


class DINO(Method):
    """DINO: a student matches an EMA teacher's centred, sharpened distribution over K prototypes.

    Args:
        backbone: module with an `embed_dim` attribute.
        out_dim, head_hidden_dim, bottleneck_dim, head_layers, norm_last_layer, head_bn: DINO head settings.
        student_temp: student softmax temperature.
        center_momentum: EMA momentum of the centre.
        centering: 'ema' (DINO's centre), 'sinkhorn' (Sinkhorn-Knopp, as DINOv2) or 'none' (the ablation).
        n_global: number of global views (the teacher sees only these; they come first in `views`).
    """

    def __init__(self, backbone: nn.Module, out_dim: int = 4096, head_hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, head_layers: int = 3, norm_last_layer: bool = True,
                 student_temp: float = 0.1, center_momentum: float = 0.9, centering: str = "ema",
                 n_global: int = 2, head_bn: bool = False):
        super().__init__()
        head = DINOHead(backbone.embed_dim, out_dim, head_hidden_dim, bottleneck_dim, head_layers, norm_last_layer,
                        use_bn=head_bn)
        self.student = Student(backbone, head)
        self.teacher = _without_drop_path(copy.deepcopy(self.student))
        self.teacher.requires_grad_(False)
        self.loss_fn = DINOLoss(out_dim, student_temp, center_momentum, centering)
        self.n_global = n_global

    def _dino_terms(self, views: list[torch.Tensor], temp: float):
        """Student features, DINO loss and logs shared by DINO and DINO Twins."""
        feats = _features_by_resolution(self.student.backbone, views)  # (V*B, D)
        student_logits = list(self.student.head(feats).chunk(len(views)))  # V x (B, K)
        with torch.no_grad():
            t_feats = _features_by_resolution(self.teacher.backbone, views[: self.n_global])
            teacher_logits = list(self.teacher.head(t_feats).chunk(self.n_global))
            # Diagnostics use the centre *before* this step's update, i.e. the targets the loss sees.
            probs = self.loss_fn.teacher_probs(teacher_logits[0], temp)
            # The raw teacher (its softmax before any centring) shows what the network itself says about
            # the image: Sinkhorn-Knopp balances the targets whatever the network does.
            raw = torch.softmax(teacher_logits[0].float() / temp, dim=-1)  # (B, K)
            batch = views[0].shape[0]
            logs = {
                "teacher_entropy": diagnostics.entropy(probs),
                "teacher_marginal_entropy": diagnostics.marginal_entropy(probs),
                "teacher_raw_entropy": diagnostics.entropy(raw),
                "teacher_raw_marginal_entropy": diagnostics.marginal_entropy(raw),
                "kl": diagnostics.kl_divergence(probs, student_logits[1].detach(), self.loss_fn.student_temp),
                "emb_std": diagnostics.embedding_std(feats[:batch].detach()),
            }
        loss = self.loss_fn(student_logits, teacher_logits, temp)
        logs["loss_dino"] = loss.detach()
        return feats, loss, logs

    def forward(self, views: list[torch.Tensor], teacher_temp: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """DINO loss over all (teacher global view i, student view j ≠ i) pairs."""
        _, loss, logs = self._dino_terms(views, teacher_temp)
        logs["loss"] = loss.detach()
        return loss, logs

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher ← m·teacher + (1−m)·student, one fused foreach call over all parameters."""
        t_params = list(self.teacher.parameters())
        s_params = list(self.student.parameters())
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1 - momentum)

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The student's prototype layer (DINO freezes it during the first epoch)."""
        return self.student.head.last_layer_parameters()

    def eval_backbone(self) -> nn.Module:
        """The teacher's backbone, the one DINO evaluates."""
        return self.teacher.backbone


class DinoTwins(DINO):
    """DINO Twins: DINO loss + β × Barlow Twins loss on a separate projector over the student's crops.

    Args:
        beta: weight β of the Barlow Twins term (β = 0 is plain DINO).
        proj_dims: Barlow Twins projector widths.
        lambd: Barlow Twins λ.
        bt_pairs: 'global' (default: the two global crops, BT's own two-view setting at full
            resolution and one D×D matrix per step) or 'all' (mean over every pair of crops).
        **dino_kwargs: passed to `DINO`.
    """

    def __init__(self, backbone: nn.Module, beta: float = 0.05, proj_dims: tuple[int, ...] = (2048, 2048, 2048),
                 lambd: float = 5e-3, bt_pairs: str = "global", **dino_kwargs):
        super().__init__(backbone, **dino_kwargs)
        if bt_pairs not in BT_PAIRS:
            raise ValueError(f"bt_pairs must be one of {BT_PAIRS}, got {bt_pairs!r}")
        self.projector = Projector(backbone.embed_dim, proj_dims)
        self.beta = beta
        self.lambd = lambd
        self.bt_pairs = bt_pairs
        self.unused_parameters = beta == 0  # β = 0 leaves the projector out of the loss (see forward)

    def cross_correlation(self, views: list[torch.Tensor]) -> torch.Tensor | None:
        """C of the student's projections of the two global views; None when β = 0 (no Barlow Twins term)."""
        if self.beta == 0:
            return None
        return losses.cross_correlation(*_bt_embeddings(self.student.backbone, self.projector, views)[1:])

    def forward(self, views: list[torch.Tensor], teacher_temp: float
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """DINO loss + β × Barlow Twins loss; β = 0 skips the projector and equals DINO exactly."""
        feats, loss, logs = self._dino_terms(views, teacher_temp)
        if self.beta > 0:
            n_views = self.n_global if self.bt_pairs == "global" else len(views)
            batch = views[0].shape[0]
            z = self.projector(feats[: n_views * batch]).chunk(n_views)  # n_views x (B, P)
            pairs = list(combinations(range(n_views), 2))
            bt = sum(barlow_twins_loss(z[i], z[j], self.lambd) for i, j in pairs) / len(pairs)
            logs["loss_bt"] = bt.detach()
            loss = loss + self.beta * bt
        logs["loss"] = loss.detach()
        return loss, logs
