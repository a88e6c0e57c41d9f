"""Losses against the papers' formulas, term by term, with explicit loops."""

import math

import pytest
import torch
import torch.nn.functional as F

from dtlib.losses import DINOLoss, barlow_twins_loss, cross_correlation


def plain_barlow_twins(z1, z2, lambd, eps=1e-5):
    """The paper's formula with explicit sums (float64)."""
    z1, z2 = z1.double(), z2.double()
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    b = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[k, i] * b[k, j] for k in range(n)) / n
            loss += (1 - c_ij) ** 2 if i == j else lambd * c_ij**2
    return float(loss)


def plain_dino(student, teacher, center, student_temp, teacher_temp):
    """Mean over (teacher i, student j != i) of the batch-mean of −Σ_k p_t log p_s, by loops."""
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            if i == j:
                continue
            for b in range(t.shape[0]):
                p = torch.softmax((t[b].double() - center[0].double()) / teacher_temp, dim=0)
                log_q = torch.log_softmax(s[b].double() / student_temp, dim=0)
                total += float(-(p * log_q).sum()) / t.shape[0]
            pairs += 1
    return total / pairs


def test_barlow_twins_matches_plain_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    for lambd in (5e-3, 0.5):
        assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(plain_barlow_twins(z1, z2, lambd), rel=1e-5)


def test_barlow_twins_zero_for_identical_decorrelated_standardised_inputs():
    h = torch.tensor([[1.0]])
    for _ in range(3):  # Sylvester Hadamard 8x8: orthogonal ±1 columns
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    z = h[:, 1:6]  # drop the all-ones column: each column has mean 0, variance 1, and they are orthogonal
    assert barlow_twins_loss(z, z).item() == pytest.approx(0.0, abs=1e-8)
    assert torch.allclose(cross_correlation(z, z), torch.eye(5), atol=1e-4)


def test_barlow_twins_invariant_to_positive_affine_rescaling():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(32, 8, generator=g), torch.randn(32, 8, generator=g)
    scale, shift = torch.rand(8, generator=g) * 5 + 0.5, torch.randn(8, generator=g) * 3
    ref = barlow_twins_loss(z1, z2)
    assert barlow_twins_loss(z1 * scale + shift, z2).item() == pytest.approx(ref.item(), rel=1e-4)
    assert barlow_twins_loss(z1, z2 * scale - shift).item() == pytest.approx(ref.item(), rel=1e-4)


def test_barlow_twins_float32_under_autocast():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(16, 8, generator=g).bfloat16(), torch.randn(16, 8, generator=g).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = barlow_twins_loss(z1, z2)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(barlow_twins_loss(z1.float(), z2.float()).item(), rel=1e-6)


def test_dino_loss_matches_plain_formula_with_multicrop():
    g = torch.Generator().manual_seed(3)
    k, b = 7, 5
    student = [torch.randn(b, k, generator=g) for _ in range(4)]  # 2 global + 2 local
    teacher = [torch.randn(b, k, generator=g) for _ in range(2)]
    loss_fn = DINOLoss(k, student_temp=0.1)
    loss_fn.center.copy_(torch.randn(1, k, generator=g))
    center = loss_fn.center.clone()
    got = loss_fn(student, teacher, teacher_temp=0.04)
    assert got.item() == pytest.approx(plain_dino(student, teacher, center, 0.1, 0.04), rel=1e-5)


def test_dino_loss_is_log_k_for_constant_logits():
    k = 64
    loss_fn = DINOLoss(k)
    student = [torch.full((3, k), 2.5) for _ in range(3)]
    teacher = [torch.full((3, k), -1.0) for _ in range(2)]
    assert loss_fn(student, teacher, 0.04).item() == pytest.approx(math.log(k), rel=1e-6)


def test_dino_center_update_matches_formula():
    g = torch.Generator().manual_seed(4)
    k, m = 6, 0.9
    loss_fn = DINOLoss(k, center_momentum=m)
    c0 = torch.randn(1, k, generator=g)
    loss_fn.center.copy_(c0)
    teacher = [torch.randn(4, k, generator=g) for _ in range(2)]
    loss_fn([torch.randn(4, k, generator=g) for _ in range(3)], teacher, 0.05)
    expected = m * c0 + (1 - m) * torch.cat(teacher).mean(0, keepdim=True)
    assert torch.allclose(loss_fn.center, expected, atol=1e-7)


def test_dino_without_centering_uses_raw_teacher_logits_and_keeps_center():
    g = torch.Generator().manual_seed(5)
    loss_fn = DINOLoss(5, centering="none")
    loss_fn.center.copy_(torch.randn(1, 5, generator=g))
    before = loss_fn.center.clone()
    t = torch.randn(3, 5, generator=g)
    assert torch.allclose(loss_fn.teacher_probs(t, 0.1), F.softmax(t / 0.1, dim=-1))
    loss_fn([torch.randn(3, 5, generator=g) for _ in range(2)], [t, t.flip(0)], 0.1)
    assert torch.equal(loss_fn.center, before)


def test_no_gradient_reaches_teacher_logits():
    g = torch.Generator().manual_seed(6)
    student = [torch.randn(4, 8, generator=g, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(4, 8, generator=g, requires_grad=True) for _ in range(2)]
    DINOLoss(8)(student, teacher, 0.04).backward()
    assert all(t.grad is None for t in teacher)
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)

