"""export_backbone / load_backbone: fp16 weights of the evaluated (teacher) backbone, rebuilt from the file alone."""

import pytest
import torch

from dtlib.build import build_method
from dtlib.checkpoint import CheckpointError
from dtlib.config import make_config
from dtlib.export import export_backbone, load_backbone


def test_a_vit_tiny_teacher_round_trips_in_fp16_under_12_mb(tmp_path):
    torch.manual_seed(0)
    cfg = make_config("cpu-mini", method="dinotwins", backbone="vit_tiny", image_size=32)
    model = build_method(cfg)
    path = export_backbone(model, cfg, tmp_path / "vit.pt")
    assert 9e6 < path.stat().st_size <= 12e6  # ~5.5 M parameters x 2 bytes
    backbone, loaded = load_backbone(path)
    assert loaded.backbone == "vit_tiny" and loaded.image_size == 32 and not backbone.training
    teacher = model.eval_backbone().eval()
    for (k, a), (_, b) in zip(teacher.state_dict().items(), backbone.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a.half().float() if a.is_floating_point() else a, msg=k)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), teacher(x), rtol=0.05, atol=0.05)


def test_load_backbone_reads_a_training_checkpoint_and_names_a_missing_file(tmp_path):
    from dtlib.train import fit
    from tests.test_train import tiny_config, tiny_data

    result = fit(tiny_config(tmp_path, epochs=1), tiny_data())
    backbone, cfg = load_backbone(tmp_path / "checkpoint.pt")
    for a, b in zip(result.model.eval_backbone().state_dict().values(), backbone.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(CheckpointError, match="no backbone file"):
        load_backbone(tmp_path / "missing.pt")
