"""Paired comparisons over seeds: mean ± sd, the paired 95 % CI, a paired t-test, an exact sign-flip test, Holm.

A comparison is paired by seed: run i of method A and run i of method B share the seed (the same network
initialisation and augmentation stream), so the seed-to-seed spread they share cancels in the difference.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence

from scipy import stats as _scipy_stats

__all__ = ["mean_sd", "paired_difference", "holm"]


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _sign_flip_p(diffs: Sequence[float]) -> float:
    """Two-sided exact permutation p-value of the mean difference under random sign flips (n ≤ 16)."""
    n = len(diffs)
    observed = abs(sum(diffs))
    hits = sum(abs(sum(s * d for s, d in zip(signs, diffs))) >= observed - 1e-12
               for signs in itertools.product((1, -1), repeat=n))
    return hits / 2 ** n


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """a − b paired by position (seed): mean, sd, the t-based CI, the paired t-test's and the exact
    sign-flip test's two-sided p-values."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"a paired comparison needs two equal-length lists of at least 2 runs, got {len(a)}, {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    n = len(diffs)
    mean, sd = mean_sd(diffs)
    half = _scipy_stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    if sd > 0:
        t = mean / (sd / math.sqrt(n))
        p_t = 2 * _scipy_stats.t.sf(abs(t), n - 1)
    else:
        t, p_t = (math.inf if mean else 0.0), (0.0 if mean else 1.0)
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "t": t, "p_t": p_t,
            "p_sign_flip": _sign_flip_p(diffs) if n <= 16 else math.nan}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given): reject where adjusted p < α."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
