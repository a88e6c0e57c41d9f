import pytest
import torch

from dtlib.exercises import check, compare, solutions_on


def test_compare_tells_exact_close_far_and_missing():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    assert compare(x.clone(), x) == "exact"
    assert compare(x * (1 + 1e-7), x) == "close"
    assert compare(x + 0.1, x) == "far"
    assert compare(x[:4], x) == "far"
    assert compare(..., x) == "missing"
    assert compare(None, x) == "missing"


def test_check_says_how_far_and_what_is_missing(capsys):
    x = torch.ones(3)
    assert check("f", x.clone(), x) == "exact"
    assert "exact" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"largest difference 0\.5 \(50\.0%"):
        check("f", x * 1.5, x)
    with pytest.raises(AssertionError, match=r"returned Ellipsis: write its body"):
        check("f", ..., x)
    with pytest.raises(AssertionError, match=r"shape \(2,\)"):
        check("f", x[:2], x)


def test_solutions_switch(monkeypatch):
    monkeypatch.delenv("DTLIB_SOLUTIONS", raising=False)
    assert not solutions_on()
    monkeypatch.setenv("DTLIB_SOLUTIONS", "1")
    assert solutions_on()
