"""Losses: Barlow Twins and DINO (DINO Twins adds them: DINO + β × Barlow Twins, in methods.py)."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import CENTERING
from .distributed import max_over_ranks_, sum_over_ranks, sum_over_ranks_, world_size


def float32_region(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off; a no-op on devices without autocast ("meta", where bench counts FLOPs)."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def _standardize(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-dimension mean 0 and biased variance 1 over the batch of all ranks, as a non-affine BatchNorm."""
    n = z.shape[0] * world_size()
    mean = sum_over_ranks(z.sum(0)) / n  # (D,)
    var = sum_over_ranks((z - mean).pow(2).sum(0)) / n
    return (z - mean) / torch.sqrt(var + eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Barlow Twins' cross-correlation matrix C = z1ᵀ z2 / N of batch-standardised embeddings (D, D).

    Under torchrun each rank holds a slice of the batch: the statistics and z1ᵀ z2 are summed over the
    ranks (differentiably, so with DDP's gradient averaging the gradient equals one process's).
    """
    with float32_region(z1.device):
        z1, z2 = _standardize(z1.float()), _standardize(z2.float())  # (N, D)
        return sum_over_ranks(z1.T @ z2) / (z1.shape[0] * world_size())  # (D, D)


def barlow_twins_terms(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the loss on a cross-correlation matrix: invariance Σᵢ (1 − Cᵢᵢ)², redundancy Σᵢ≠ⱼ Cᵢⱼ²."""
    diag = torch.diagonal(c)
    on_diag = (1 - diag).pow(2).sum()
    off_diag = c.pow(2).sum() - diag.pow(2).sum()
    return on_diag, off_diag


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3) -> torch.Tensor:
    """Σᵢ (1 − Cᵢᵢ)² + λ Σᵢ≠ⱼ Cᵢⱼ², computed in float32 even under autocast."""
    on_diag, off_diag = barlow_twins_terms(cross_correlation(z1, z2))
    return on_diag + lambd * off_diag


def _logsumexp_over_ranks(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log Σ exp(x) along `dim`, a dimension split across the ranks of a distributed run."""
    peak = max_over_ranks_(x.amax(dim=dim, keepdim=True))
    return peak + torch.log(sum_over_ranks_(torch.exp(x - peak).sum(dim=dim, keepdim=True)))


@torch.no_grad()
def sinkhorn_knopp(logits: torch.Tensor, temp: float, n_iters: int = 3) -> torch.Tensor:
    """Targets (B, K) from exp(logits / temp) rescaled so every prototype gets an equal share of the
    batch and every sample sums to 1 (SwAV; DINOv2's teacher centring). Computed in log space, so a
    sharp temperature cannot underflow a whole row to zero; sums span all ranks."""
    log_q = logits.float().T / temp  # (K, B)
    log_k = math.log(log_q.shape[0])
    log_b = math.log(log_q.shape[1] * world_size())  # every rank holds an equal share of the batch
    for _ in range(n_iters):
        log_q = log_q - _logsumexp_over_ranks(log_q, dim=1) - log_k  # each prototype: 1/K of the mass
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_b  # each sample: 1/B of the mass
    return torch.exp(log_q + log_b).T


class DINOLoss(nn.Module):
    """DINO's cross-entropy between the centred, sharpened teacher and the student.

    Args:
        out_dim: number of prototypes K.
        student_temp: temperature of the student softmax.
        center_momentum: EMA momentum m of the centre.
        centering: 'ema' (DINO: subtract an EMA of the mean teacher logits), 'sinkhorn' (Sinkhorn-Knopp
            equipartition of each batch over the prototypes, as DINOv2) or 'none' (the ablation).
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9,
                 centering: str = "ema"):
        super().__init__()
        if centering not in CENTERING:
            raise ValueError(f"centering must be one of {CENTERING}, got {centering!r}")
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.centering = centering
        self.register_buffer("center", torch.zeros(1, out_dim))

    def teacher_probs(self, teacher_logits: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """Teacher targets softmax((t − center) / teacher_temp), or Sinkhorn-Knopp's, without gradient (B, K)."""
        t = teacher_logits.detach().float()
        if self.centering == "sinkhorn":
            return sinkhorn_knopp(t, teacher_temp)
        if self.centering == "ema":
            t = t - self.center
        return F.softmax(t / teacher_temp, dim=-1)

    def forward(self, student_logits: list[torch.Tensor], teacher_logits: list[torch.Tensor],
                teacher_temp: float) -> torch.Tensor:
        """Mean over pairs (teacher view i, student view j), i ≠ j, of the batch-mean cross-entropy."""
        targets = [self.teacher_probs(t, teacher_temp) for t in teacher_logits]
        log_probs = [F.log_softmax(s.float() / self.student_temp, dim=-1) for s in student_logits]
        total = student_logits[0].new_zeros((), dtype=torch.float32)
        n_pairs = 0
        for i, p in enumerate(targets):
            for j, log_q in enumerate(log_probs):
                if i == j:  # the same crop seen by both networks is not a prediction task
                    continue
                total = total + torch.sum(-p * log_q, dim=-1).mean()
                n_pairs += 1
        if n_pairs == 0:
            raise ValueError("DINOLoss needs at least two views (no pair with i != j)")
        if self.centering == "ema":
            self.update_center(teacher_logits)
        return total / n_pairs

    @torch.no_grad()
    def update_center(self, teacher_logits: list[torch.Tensor]) -> None:
        """center ← m·center + (1−m)·mean of the teacher logits over the batch and views."""
        t = torch.cat([x.float() for x in teacher_logits])  # (n_views * B, K)
        total = t.sum(0, keepdim=True)
        # The count is known on the host (every rank holds an equal share of the batch), so no tensor
        # is built from Python data: on a GPU that would be a blocking copy every step.
        sum_over_ranks_(total)
        count = t.shape[0] * world_size()
        self.center.mul_(self.center_momentum).add_(total / count, alpha=1 - self.center_momentum)
