"""Collapse diagnostics: teacher entropy, teacher–student KL and embedding spread.

All functions return 0-d tensors on the input's device so the training loop can log them every
step without a host sync.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["entropy", "marginal_entropy", "kl_divergence", "embedding_std", "collapse_verdict"]


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy −Σ p log p of rows of `probs` (B, K), in nats; the ceiling is ln K."""
    p = probs.float()
    return -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()


def marginal_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the batch-mean distribution of `probs` (B, K), in nats: → 0 when every sample
    picks the same prototype (one-prototype collapse), ln K when the batch uses all of them evenly."""
    return entropy(probs.float().mean(0, keepdim=True))


def kl_divergence(teacher_probs: torch.Tensor, student_logits: torch.Tensor,
                  student_temp: float) -> torch.Tensor:
    """Mean KL(p_teacher ‖ p_student) over the batch, in nats."""
    p = teacher_probs.float()
    log_q = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    return (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(-1).mean()


def embedding_std(z: torch.Tensor) -> torch.Tensor:
    """Std over the batch of L2-normalised embeddings, averaged over dims: ≈ 1/√D healthy, → 0 collapsed."""
    return F.normalize(z.float(), dim=-1).std(0).mean()


def collapse_verdict(teacher_entropy: float, marginal_entropy: float, n_prototypes: int) -> str:
    """'uniform collapse' (every sample's target near uniform: entropy > 0.85 ln K), 'one-prototype
    collapse' (the batch-mean target on fewer than ~e prototypes: marginal entropy < 1 nat) or 'live'."""
    if teacher_entropy > 0.85 * math.log(n_prototypes):
        return "uniform collapse"
    if marginal_entropy < 1.0:
        return "one-prototype collapse"
    return "live"
