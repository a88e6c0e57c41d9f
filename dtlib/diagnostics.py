"""Collapse diagnostics: teacher entropy, teacher–student KL and embedding spread.

All functions return 0-d tensors on the input's device so the training loop can log them every
step without a host sync.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["entropy", "marginal_entropy", "kl_divergence", "embedding_std", "effective_rank", "sinkhorn_floor",
           "MIN_RAW_INFORMATION", "raw_information", "collapse_verdict", "verdict_from_logs"]


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


def effective_rank(z: torch.Tensor) -> torch.Tensor:
    """Effective rank of embeddings `z` (N, D), Roy & Vetterli (2007): exp of the entropy of the normalised
    singular values of the centred matrix. D for features spread evenly over D directions, 1 when every sample
    lies on one line (dimensional collapse: all dimensions carry the same signal)."""
    s = torch.linalg.svdvals(z.float() - z.float().mean(0))
    p = s / s.sum().clamp_min(1e-12)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


def raw_information(raw_entropy: float, raw_marginal_entropy: float) -> float:
    """Information (nats) the raw teacher's prototype carries about the image: H(mean p) − mean H(p)."""
    return raw_marginal_entropy - raw_entropy


def sinkhorn_floor(n_prototypes: int, batch_size: int) -> float:
    """ln(K/B): with B < K, Sinkhorn-Knopp spreads each sample's target over at least ~K/B prototypes
    (every prototype gets 1/K of a batch of B), so its per-image entropy cannot go much below this; 0 if B ≥ K."""
    return max(math.log(n_prototypes / batch_size), 0.0)


# A teacher whose own assignment of images to prototypes tells apart fewer than ten equally likely groups
# (CIFAR-10's classes) carries less about an image than its label would: an untrained cpu-mini ResNet's
# raw teacher reads 0.4-0.6 nats at temperatures 0.005-0.02 (it sends a batch to 4 prototypes).
MIN_RAW_INFORMATION = math.log(10)


def collapse_verdict(teacher_entropy: float, marginal_entropy: float, n_prototypes: int, *,
                     raw_entropy: float, raw_marginal_entropy: float) -> str:
    """What the teacher's targets (after centring) and the raw teacher (its softmax before centring) say:

    'uniform collapse' — every target near uniform (entropy > 0.85 ln K);
    'one-prototype collapse' — the batch-mean target on fewer than ~e prototypes (< 1 nat);
    'image-blind' — the targets look healthy, but the raw teacher's information about the image,
        H(batch-mean raw) − mean H(raw), is below ln 10: the balance comes from the centring
        (Sinkhorn-Knopp makes any network's targets balanced), not from the network; an untrained one
        reads so;
    'live' otherwise.
    """
    if teacher_entropy > 0.85 * math.log(n_prototypes):
        return "uniform collapse"
    if marginal_entropy < 1.0:
        return "one-prototype collapse"
    if raw_information(raw_entropy, raw_marginal_entropy) < MIN_RAW_INFORMATION:
        return "image-blind"
    return "live"


def verdict_from_logs(logs: dict[str, float], n_prototypes: int) -> str:
    """`collapse_verdict` of a logged row (or the mean of the last rows: `dtlib.train.final_logs`)."""
    return collapse_verdict(logs["teacher_entropy"], logs["teacher_marginal_entropy"], n_prototypes,
                            raw_entropy=logs["teacher_raw_entropy"],
                            raw_marginal_entropy=logs["teacher_raw_marginal_entropy"])
