"""The training loop: exact resume, Ctrl-C, no test-set leak, non-finite stop, checkpoint errors."""

import json
import os
import signal

import pytest
import torch

from dtlib.build import build_schedules
from dtlib.checkpoint import CheckpointError, load_checkpoint, load_trained
from dtlib.config import make_config
from dtlib.data import Split
from dtlib.train import TrainingError, fit


def tiny_data(n_train=64, n_test=32, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    classes = ["a", "b", "c"]
    train = Split(torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=g),
                  torch.randint(0, 3, (n_train,), generator=g), classes)
    test = Split(torch.randint(0, 256, (n_test, 3, size, size), dtype=torch.uint8, generator=g),
                 torch.randint(0, 3, (n_test,), generator=g), classes)
    return train, test


def tiny_config(out, **kw):
    base = dict(method="dinotwins", subset=0, epochs=2, batch_size=16, image_size=16, local_size=8, n_local=1,
                log_every=1, save_every=1, out=str(out), probe_epochs=2, eval_batch_size=32)
    base.update(kw)
    return make_config("cpu-mini", **base)


def interrupt_at(step):
    def callback(event, payload):
        if event == "log" and any(row["step"] == step for row in payload["rows"]):
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
    return callback


def states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("method", ["dinotwins", "barlow_twins"])
def test_interrupt_then_resume_equals_uninterrupted_run(tmp_path, method):
    data = tiny_data()
    full = fit(tiny_config(tmp_path / "full", method=method), data)
    part = fit(tiny_config(tmp_path / "part", method=method), data, callbacks=[interrupt_at(4)])
    assert part.interrupted and part.step == 5
    assert load_checkpoint(tmp_path / "part" / "checkpoint.pt")["step"] == 5
    resumed = fit(tiny_config(tmp_path / "part", method=method), data, resume=True)
    assert not resumed.interrupted and resumed.step == full.step == 8
    assert states_equal(full.model, resumed.model)
    rows = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(8))
    assert [r["loss"] for r in rows] == [r["loss"] for r in full.history]


def test_test_split_never_touches_training(tmp_path):
    train, test = tiny_data()
    noise = Split(torch.randint(0, 256, test.images.shape, dtype=torch.uint8), test.labels.flip(0), test.classes)
    a = fit(tiny_config(tmp_path / "a", knn_every=1), (train, test))
    b = fit(tiny_config(tmp_path / "b", knn_every=1), (train, noise))
    assert states_equal(a.model, b.model)


def test_non_finite_loss_stops_with_clear_message_before_the_update(tmp_path, monkeypatch):
    import dtlib.train as train_module

    real_build = train_module.build_method
    built = {}

    def poisoned(cfg):
        model = real_build(cfg)
        forward = model.forward

        def nan_forward(views, **kw):
            loss, logs = forward(views, **kw)
            logs["loss"] = loss.detach() * float("nan")
            return loss * float("nan"), logs

        model.forward = nan_forward
        built["model"] = model
        built["before"] = {k: v.detach().clone() for k, v in model.named_parameters()}
        return model

    monkeypatch.setattr(train_module, "build_method", poisoned)
    with pytest.raises(TrainingError, match="loss became nan at step 0 .* diverged"):
        fit(tiny_config(tmp_path), tiny_data())
    after = dict(built["model"].named_parameters())  # no weight was updated with the bad loss
    assert all(torch.equal(after[k], v) for k, v in built["before"].items())


def test_checkpoint_round_trip_and_errors(tmp_path):
    data = tiny_data()
    result = fit(tiny_config(tmp_path / "run", epochs=1), data)
    model, cfg = load_trained(tmp_path / "run" / "checkpoint.pt")
    assert cfg.method == "dinotwins" and states_equal(model, result.model.eval())
    with pytest.raises(CheckpointError, match="was trained with method='dinotwins'"):
        fit(tiny_config(tmp_path / "run", method="dino"), data, resume=True)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or not a dtlib checkpoint"):
        load_trained(bad)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_trained(tmp_path / "missing.pt")


def test_schedules_follow_the_ablation_switches():
    cfg = make_config("cpu-mini", epochs=4, teacher_temp_warmup=False, momentum_schedule="fixed")
    s = build_schedules(cfg, steps_per_epoch=10)
    assert (s["teacher_temp"] == cfg.teacher_temp).all() and (s["momentum"] == cfg.momentum_teacher).all()
    s = build_schedules(make_config("cpu-mini", epochs=4), steps_per_epoch=10)
    assert s["teacher_temp"][0] == pytest.approx(0.04) and s["momentum"][-1] > s["momentum"][0]
    assert len(s["lr"]) == 40 and s["lr"].max() == pytest.approx(make_config("cpu-mini").lr * 128 / 256)


def test_a_fresh_run_keeps_the_previous_checkpoint(tmp_path):
    data = tiny_data()
    first = fit(tiny_config(tmp_path, epochs=1), data)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    fit(tiny_config(tmp_path, epochs=1, seed=1), data)
    kept = load_checkpoint(tmp_path / "checkpoint.prev.pt")
    assert kept["step"] == first.step
    assert all(torch.equal(kept["model"][k], v) for k, v in saved["model"].items())
