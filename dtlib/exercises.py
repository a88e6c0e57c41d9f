"""Exercises in the notebooks: compare the learner's result with dtlib's and say how close it is."""

from __future__ import annotations

import os

import torch
from torch import Tensor

# The notebooks' solutions run when this is "1" (the tests set it); otherwise the learner writes them.
SOLUTIONS_ENV = "DTLIB_SOLUTIONS"


def solutions_on() -> bool:
    """True when $DTLIB_SOLUTIONS is "1": the notebooks fill in their exercises with the shipped solutions."""
    return os.environ.get(SOLUTIONS_ENV) == "1"


def compare(mine: object, expected: Tensor, rtol: float | None = None, atol: float | None = None) -> str:
    """'exact', 'close' (torch.testing.assert_close passes) or 'far'; 'missing' when `mine` is ... or None."""
    if mine is None or mine is Ellipsis:
        return "missing"
    mine = torch.as_tensor(mine)
    expected = torch.as_tensor(expected)
    if mine.shape != expected.shape:
        return "far"
    mine = mine.to(expected.device)
    if torch.equal(mine, expected):
        return "exact"
    try:
        torch.testing.assert_close(mine, expected, rtol=rtol, atol=atol, check_dtype=False)
    except AssertionError:
        return "far"
    return "close"


def check(name: str, mine: object, expected: Tensor, rtol: float | None = None, atol: float | None = None) -> str:
    """Print how `mine` compares with dtlib's `expected`; raise AssertionError unless it is exact or close."""
    verdict = compare(mine, expected, rtol, atol)
    if verdict == "missing":
        raise AssertionError(f"{name} returned {mine!r}: write its body in place of the `...` (or set "
                             f"{SOLUTIONS_ENV}=1 to run the shipped solution)")
    if verdict == "far":
        mine_t, expected_t = torch.as_tensor(mine), torch.as_tensor(expected)
        if mine_t.shape != expected_t.shape:
            raise AssertionError(f"{name}: shape {tuple(mine_t.shape)}, dtlib's is {tuple(expected_t.shape)}")
        diff = (mine_t.to(expected_t.device).double() - expected_t.double()).abs()
        scale = expected_t.double().abs().max().clamp_min(1e-12)
        raise AssertionError(f"{name}: far from dtlib's — largest difference {diff.max():.3g} "
                             f"({diff.max() / scale:.1%} of dtlib's largest value), mean {diff.mean():.3g}")
    print(f"{name}: {verdict} — {'the same bits as' if verdict == 'exact' else 'equal to within rounding of'} dtlib's")
    return verdict
