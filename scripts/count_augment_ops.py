"""Operator calls per view of dtlib's augmentation, before and after grouping equal specs into one call.

    python scripts/count_augment_ops.py

Counts the aten operators dispatched (TorchDispatchMode) while one batch's views are made on the CPU: on a
GPU each is roughly one kernel launch, the cost that dominates at CIFAR sizes. "before" applies each spec on
its own (what ViewMaker did until it grouped equal specs); "after" is ViewMaker itself. The views are
checked to be bit-identical. A script that prints numbers, not a test.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtlib.augment import ViewMaker, apply_view, barlow_twins_views, multicrop_views, sample_view_params  # noqa: E402


class CountOps(TorchDispatchMode):
    """Counts every aten operator call while active."""

    def __init__(self):
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func] += 1
        return func(*args, **(kwargs or {}))


def one_spec_at_a_time(vm: ViewMaker, u8: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    """ViewMaker's path before the grouping: sample and apply spec by spec."""
    x = u8.float().div_(255.0)
    params = [sample_view_params(len(u8), *u8.shape[-2:], s, generator) for s in vm.specs]
    return [apply_view(x, p, s, vm.mean, vm.std, vm.memory_format) for s, p in zip(vm.specs, params)]


def main() -> int:
    u8 = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    recipes = {"Barlow Twins (2 views)": barlow_twins_views(),
               "DINO 2 global + 4 local": multicrop_views(n_local=4),
               "DINO 2 global + 6 local": multicrop_views(n_local=6)}
    print(f"{'recipe':<26} {'views':>5} {'ops before':>10} {'ops after':>9} {'per view before':>15} "
          f"{'per view after':>14} {'ratio':>6} identical")
    for name, specs in recipes.items():
        vm = ViewMaker(specs, channels_last=True)
        for make in (one_spec_at_a_time, lambda v, x, g: v(x, g)):  # warm-up: cached constants
            make(vm, u8, torch.Generator().manual_seed(1))
        counts = []
        outputs = []
        for make in (one_spec_at_a_time, lambda v, x, g: v(x, g)):
            with CountOps() as counter:
                outputs.append(make(vm, u8, torch.Generator().manual_seed(1)))
            counts.append(sum(counter.ops.values()))
        same = all(torch.equal(a, b) for a, b in zip(*outputs, strict=True))
        n = len(specs)
        print(f"{name:<26} {n:>5} {counts[0]:>10} {counts[1]:>9} {counts[0] / n:>15.1f} {counts[1] / n:>14.1f} "
              f"{counts[0] / counts[1]:>5.2f}x {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
