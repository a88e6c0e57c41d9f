"""The wandb callback, against a stand-in wandb module (no account, no network, no files)."""

import sys
import types

import torch

from dtlib.config import make_config
from dtlib.tracking import WandbLogger
from dtlib.train import build_method


class FakeRun:
    def __init__(self):
        self.logged, self.finished = [], False

    def log(self, data, step):
        self.logged.append((step, data))

    def finish(self):
        self.finished = True


def fake_wandb(monkeypatch):
    module = types.ModuleType("wandb")
    module.run = FakeRun()
    module.init = lambda **kw: module.run
    module.Image = lambda array, caption=None: ("image", array)
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def test_logs_rows_cross_correlation_and_attention(tmp_path, monkeypatch):
    wandb = fake_wandb(monkeypatch)
    cfg = make_config("cpu-mini", backbone="vit_tiny", image_size=16, local_size=8, wandb="offline", out=str(tmp_path))
    torch.manual_seed(0)
    model = build_method(cfg)
    logger = WandbLogger(cfg, n_probe=8)
    logger("log", {"rows": [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}]})
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    logger("epoch", {"step": 2, "model": model, "images": images})
    logger("end", {})
    steps = [s for s, _ in wandb.run.logged]
    assert steps == [0, 1, 1] and wandb.run.finished
    probes = wandb.run.logged[-1][1]
    kind, matrix = probes["cross_correlation"]
    assert kind == "image" and matrix.shape == (cfg.proj_dims[-1],) * 2 and matrix.dtype.name == "uint8"
    assert len(probes["attention"]) == 8 and probes["attention"][0][1].shape == (16, 16)
    # probing changed nothing: same weights and buffers, still in train mode
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
