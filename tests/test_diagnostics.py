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

