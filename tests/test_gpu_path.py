"""The GPU path checked on the CPU: no per-step host-to-device copies, AMP dtype choice, channels_last views,
a teacher without drop path, the DINO prototype layer in float32 under autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch.utils._python_dispatch import TorchDispatchMode

from dtlib.augment import ViewMaker, multicrop_views
from dtlib.backbones import build_backbone
from dtlib.build import build_view_maker
from dtlib.config import make_config
from dtlib.heads import DINOHead
from dtlib.losses import DINOLoss
from dtlib.methods import DINO
from dtlib.train import amp_dtype, enable_fast_cuda_math

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


@pytest.mark.parametrize("native_bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_amp_dtype_ignores_emulated_bf16(monkeypatch, native_bf16, expected):
    # A T4 (compute capability 7.5) reports bf16 support through emulation only.
    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native_bf16 or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert amp_dtype(torch.device("cuda")) == expected
    assert amp_dtype(torch.device("cuda"), enabled=False) is None
    assert amp_dtype(torch.device("cpu")) is None


def test_vit_teacher_has_no_drop_path():
    torch.manual_seed(0)
    backbone = build_backbone("vit_tiny", img_size=16, depth=4, drop_path_rate=0.5)
    model = DINO(backbone, out_dim=16, head_hidden_dim=32, bottleneck_dim=8).train()
    assert any(isinstance(m, DropPath) for m in model.student.modules())  # the student keeps its regulariser
    assert not any(isinstance(m, DropPath) for m in model.teacher.modules())
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.teacher.backbone(x), model.teacher.backbone(x))
    # The parameters (and so the EMA and the checkpoints) are those of the student.
    assert model.teacher.state_dict().keys() == model.student.state_dict().keys()


def test_dino_head_prototype_layer_and_softmax_run_in_float32_under_autocast():
    torch.manual_seed(0)
    head = DINOHead(16, out_dim=64, hidden_dim=32, bottleneck_dim=8)
    x = torch.randn(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(x)
        hidden = head.mlp(x)  # the MLP itself may run in bf16
        probs = DINOLoss(64).teacher_probs(logits, teacher_temp=0.04)
    assert logits.dtype == torch.float32 and probs.dtype == torch.float32
    weight = head.weight_g * F.normalize(head.weight_v, dim=-1)
    expected = F.normalize(hidden.float(), dim=-1) @ weight.T
    torch.testing.assert_close(logits, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(probs, F.softmax(expected / 0.04, dim=-1), rtol=1e-5, atol=1e-6)


class CountCopies(TorchDispatchMode):
    """Counts whole-tensor copies (what .contiguous(memory_format=...) does) while active."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func in {torch.ops.aten.clone.default, torch.ops.aten.copy_.default}
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["barlow_twins", "dinotwins"])
def test_views_come_out_channels_last_without_an_extra_copy(method):
    cfg = make_config("cpu-mini", method=method, image_size=16, local_size=8, n_local=2, channels_last=True)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    plain = build_view_maker(make_config("cpu-mini", method=method, image_size=16, local_size=8, n_local=2,
                                         channels_last=False))(images, torch.Generator().manual_seed(0))
    with CountCopies() as counter:
        views = build_view_maker(cfg)(images, torch.Generator().manual_seed(0))
    assert counter.count == 0
    assert all(v.is_contiguous(memory_format=torch.channels_last) for v in views)
    assert not plain[0].is_contiguous(memory_format=torch.channels_last)
    for v, p in zip(views, plain, strict=True):
        assert torch.equal(v, p)


def test_enable_fast_cuda_math_turns_on_cudnn_benchmark_and_tf32_matmuls():
    before = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    try:
        torch.backends.cudnn.benchmark = False
        torch.set_float32_matmul_precision("highest")
        enable_fast_cuda_math()
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.set_float32_matmul_precision(before[1])
