"""bench: FLOP counting against a hand count, and the per-run estimate of a preset."""

import pytest
import torch
from torch import nn

from dtlib.bench import REFERENCE_GPUS, count_step_flops, flops_report, preset_flops
from dtlib.config import make_config


class TinyMethod(nn.Module):
    """conv 3->4 (3x3, no bias) -> flatten -> linear to 2, loss = sum of squares: the shape of a method."""

    def __init__(self, side: int):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.fc = nn.Linear(4 * side * side, 2, bias=False)

    def forward(self, views, teacher_temp):
        z = self.fc(self.conv(torch.cat(views)).flatten(1))
        return z.pow(2).sum(), {}


def test_counted_flops_equal_the_hand_count():
    b, side = 5, 6
    views = [torch.randn(b, 3, side, side) for _ in range(2)]
    n = 2 * b  # both views go through the network
    conv = 2 * n * side * side * 4 * 3 * 9  # one multiply-add per output pixel, channel pair and tap
    fc = 2 * n * (4 * side * side) * 2
    # Backward: the linear layer needs its weight and input gradients (2 x its forward); the conv only its
    # weight gradient (1 x), since the images need none.
    assert count_step_flops(TinyMethod(side), views, teacher_temp=0.07) == conv + fc + 2 * fc + conv


def test_flops_report_scales_the_step_count_to_a_run():
    cfg = make_config("cpu-mini", method="barlow_twins", batch_size=100, epochs=3, subset=1000)
    r = flops_report(cfg, fraction=0.5)
    assert r["steps_per_epoch"] == 10
    assert r["flops_per_step"] == preset_flops(cfg) > 0
    assert r["flops_per_run"] == r["flops_per_step"] * 10 * 3
    for gpu, peak in REFERENCE_GPUS.items():
        assert r["minutes_per_run"][gpu] == pytest.approx(r["flops_per_run"] / (0.5 * peak * 1e12) / 60)
    with pytest.raises(ValueError, match="--train-size"):
        flops_report(make_config("cpu-mini", dataset="imagefolder", subset=0), fraction=0.3)
