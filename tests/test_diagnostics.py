"""Collapse diagnostics on inputs whose answers are known."""

import math

import pytest
import torch

from dtlib import diagnostics


def test_entropy_bounds():
    k = 50
    assert diagnostics.entropy(torch.full((4, k), 1 / k)).item() == pytest.approx(math.log(k), rel=1e-6)
    assert diagnostics.entropy(torch.eye(k)[:4]).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_zero_when_student_matches_teacher():
    logits = torch.randn(6, 10)
    probs = torch.softmax(logits / 0.1, dim=-1)
    assert diagnostics.kl_divergence(probs, logits, 0.1).item() == pytest.approx(0.0, abs=1e-5)
    assert diagnostics.kl_divergence(probs, torch.zeros(6, 10), 0.1).item() > 0.1


def test_embedding_std_healthy_and_collapsed():
    torch.manual_seed(0)
    d = 256
    healthy = diagnostics.embedding_std(torch.randn(4096, d)).item()
    assert healthy == pytest.approx(1 / math.sqrt(d), rel=0.05)
    collapsed = diagnostics.embedding_std(torch.randn(1, d).repeat(512, 1) + 1e-4 * torch.randn(512, d)).item()
    assert collapsed < 0.01 * healthy



def test_effective_rank_counts_the_directions_the_embeddings_use():
    from dtlib.diagnostics import effective_rank

    g = torch.Generator().manual_seed(0)
    spread = torch.randn(4096, 16, generator=g)  # 16 equal directions
    assert 14.5 < effective_rank(spread).item() <= 16
    line = torch.randn(512, 1, generator=g) * torch.randn(1, 16, generator=g)  # every dimension the same signal
    assert abs(effective_rank(line + 3.0).item() - 1.0) < 1e-3  # a constant offset does not count
    two = torch.cat([torch.randn(2048, 2, generator=g), torch.zeros(2048, 14)], 1)
    assert 1.9 < effective_rank(two).item() < 2.05
