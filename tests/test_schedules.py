"""Schedules against their formulas, step by step."""

import math

import numpy as np
import pytest

from dtlib.schedules import cosine_schedule, momentum_schedule, teacher_temp_schedule


def test_cosine_schedule_term_by_term():
    base, final, total, warm = 0.5, 0.01, 30, 5
    s = cosine_schedule(base, final, total, warm, warmup_start=0.0)
    assert len(s) == total
    for i in range(warm):
        assert s[i] == pytest.approx(base * i / (warm - 1))
    n = total - warm
    for i in range(n):
        assert s[warm + i] == pytest.approx(final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / n)))
    assert s[warm] == pytest.approx(base)
    assert np.all(np.diff(s[warm:]) <= 0)


def test_teacher_temperature_warmup_then_constant():
    s = teacher_temp_schedule(0.07, 20, warmup_steps=10, warmup_temp=0.04)
    assert s[0] == pytest.approx(0.04) and s[9] == pytest.approx(0.07)
    assert np.allclose(s[10:], 0.07)
    assert np.allclose(np.diff(s[:10]), 0.03 / 9)
    assert np.allclose(teacher_temp_schedule(0.07, 20, warmup_steps=0, warmup_temp=0.04), 0.07)


def test_momentum_schedule_modes():
    cos = momentum_schedule(0.996, 100, "cosine")
    assert cos[0] == pytest.approx(0.996) and cos[-1] == pytest.approx(1.0, abs=1e-5)
    assert cos[50] == pytest.approx(1 + 0.5 * (0.996 - 1) * (1 + math.cos(math.pi * 0.5)))
    assert np.all(momentum_schedule(0.99, 10, "fixed") == 0.99)
    assert np.all(momentum_schedule(0.99, 10, "zero") == 0.0)
    with pytest.raises(ValueError, match="unknown momentum schedule"):
        momentum_schedule(0.99, 10, "linear")
