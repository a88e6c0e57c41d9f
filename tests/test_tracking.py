"""fit callbacks: LiveCurves, and the wandb logger against a stand-in wandb module (no account, no network)."""

import sys
import types

import numpy as np
import pytest
import torch

import dtlib.methods
from dtlib import tracking
from dtlib.build import build_method
from dtlib.config import make_config
from dtlib.data import Split
from dtlib.losses import cross_correlation
from dtlib.tracking import LiveCurves, WandbLogger
from dtlib.train import fit


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
    rng = torch.get_rng_state()
    model.train()
    logger("epoch", {"step": 2, "model": model, "images": images})
    logger("end", {})
    steps = [s for s, _ in wandb.run.logged]
    assert steps == [0, 1, 1] and wandb.run.finished
    probes = wandb.run.logged[-1][1]
    kind, matrix = probes["cross_correlation"]
    assert kind == "image" and matrix.shape == (cfg.proj_dims[-1],) * 2 and matrix.dtype.name == "uint8"
    assert len(probes["attention"]) == 8 and probes["attention"][0][1].shape == (16, 16)
    # probing changed nothing: same weights and buffers (BatchNorm statistics), same random state, train mode
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


@pytest.mark.parametrize("method", ["dinotwins", "barlow_twins"])
def test_logged_cross_correlation_is_the_one_the_loss_sees(tmp_path, monkeypatch, method):
    fake_wandb(monkeypatch)
    cfg = make_config("cpu-mini", method=method, image_size=16, local_size=8, n_local=1, proj_dims=(64, 32),
                      out_dim=64, head_hidden_dim=32, bottleneck_dim=16, wandb="offline", out=str(tmp_path))
    torch.manual_seed(0)
    model = build_method(cfg).train()
    if method == "dinotwins":  # a student that has drifted from its teacher, as after some training
        with torch.no_grad():
            for p in model.student.backbone.parameters():
                p.add_(0.1 * torch.randn_like(p))
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    logger = WandbLogger(cfg, n_probe=16)
    logged = logger.cross_correlation(model, images)

    seen = []
    real_loss = dtlib.methods.barlow_twins_loss

    def spy(z1, z2, lambd):
        seen.append(cross_correlation(z1, z2))
        return real_loss(z1, z2, lambd)

    monkeypatch.setattr(dtlib.methods, "barlow_twins_loss", spy)
    views = logger.view_maker(images, torch.Generator().manual_seed(0))  # the probe's views, all of them
    with torch.no_grad():
        model(views, teacher_temp=cfg.teacher_temp)
    assert len(seen) == 1
    torch.testing.assert_close(logged, seen[0], rtol=0, atol=1e-5)


def rows(n: int, **keys: float) -> list[dict]:
    """n history rows: step i has value base + i for each key."""
    return [{"step": i, "epoch": 0, **{k: v + i for k, v in keys.items()}} for i in range(n)]


def test_live_curves_headless_collects_and_throttles_redraws():
    live = LiveCurves(["loss", "teacher_entropy"], min_interval=3600)
    live("log", {"rows": rows(2, loss=1.0, teacher_entropy=5.0)})
    live("log", {"rows": rows(3, loss=1.0, teacher_entropy=5.0)})
    assert live.redraws == 1  # the second batch came within min_interval
    live("epoch", {"epoch": 0})
    live("end", {"step": 5})
    assert live.redraws == 2 and len(live.rows) == 5
    loss_ax = live.figure.axes[0]
    assert len(loss_ax.lines) == 1  # redrawn, not stacked
    np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), [1, 2, 1, 2, 3])


def test_live_curves_updates_one_display_in_a_notebook(monkeypatch):
    import IPython.display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj))

    def display(obj, display_id=False):
        shown.append(("display", obj))
        return Handle()

    monkeypatch.setattr(tracking, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    live = LiveCurves(["loss"], min_interval=0)
    for i in range(3):
        live("log", {"rows": [{"step": i, "loss": 1.0}]})
    assert [kind for kind, _ in shown] == ["display", "update", "update"]
    assert all(obj is live.figure for _, obj in shown)


def test_live_curves_receives_every_row_of_fit(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = tuple(Split(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g),
                       torch.randint(0, 2, (n,), generator=g), ["a", "b"]) for n in (32, 8))
    cfg = make_config("cpu-mini", method="dino", subset=0, val_fraction=0, epochs=1, batch_size=8, image_size=16,
                      local_size=8, n_local=1, log_every=2, out=str(tmp_path), proj_dims=(32, 32), out_dim=64,
                      head_hidden_dim=32, bottleneck_dim=16)
    live = LiveCurves(["loss", "teacher_entropy"], min_interval=0)
    result = fit(cfg, data, callbacks=[live])
    assert live.rows == result.history and len(live.rows) == 4
    np.testing.assert_allclose(live.figure.axes[1].lines[0].get_ydata(), [r["teacher_entropy"] for r in result.history])
