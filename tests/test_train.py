"""The training loop: exact resume, Ctrl-C, no test-set leak, non-finite stop, checkpoint errors, and how fit
wires the config (subsets, dataset statistics, crop scales, frozen prototypes, the fp16 grad scaler)."""

import json
import os
import signal

import pytest
import torch

from dtlib.build import build_method, build_schedules, build_view_maker
from dtlib.checkpoint import CheckpointError, load_checkpoint, load_trained
from dtlib.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from dtlib.config import make_config
from dtlib.data import Split, split_validation
from dtlib.evaluate import evaluate_config, probe_splits
from dtlib.train import TrainingError, fit, train_step, train_subset


def tiny_data(n_train=64, n_test=32, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    classes = ["a", "b", "c"]
    train = Split(torch.randint(0, 256, (n_train, 3, size, size), dtype=torch.uint8, generator=g),
                  torch.randint(0, 3, (n_train,), generator=g), classes)
    test = Split(torch.randint(0, 256, (n_test, 3, size, size), dtype=torch.uint8, generator=g),
                 torch.randint(0, 3, (n_test,), generator=g), classes)
    return train, test


def tiny_config(out, **kw):
    base = dict(method="dinotwins", subset=0, val_fraction=0, epochs=2, batch_size=16, image_size=16, local_size=8,
                n_local=1, log_every=1, save_every=1, out=str(out), probe_epochs=2, eval_batch_size=32)
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
    cfg = make_config("cpu-mini", epochs=4, warmup_teacher_temp_epochs=0, momentum_schedule="fixed")
    s = build_schedules(cfg, steps_per_epoch=10)
    assert (s["teacher_temp"] == cfg.teacher_temp).all() and (s["momentum"] == cfg.momentum_teacher).all()
    warm = make_config("cpu-mini", epochs=4, warmup_teacher_temp=0.04, teacher_temp=0.07,
                       warmup_teacher_temp_epochs=2)
    s = build_schedules(warm, steps_per_epoch=10)
    assert s["teacher_temp"][0] == pytest.approx(0.04) and s["teacher_temp"][20:].tolist() == [0.07] * 20
    assert s["momentum"][-1] > s["momentum"][0]
    assert len(s["lr"]) == 40 and s["lr"].max() == pytest.approx(make_config("cpu-mini").lr * 128 / 256)


def test_a_fresh_run_keeps_the_previous_checkpoint(tmp_path):
    data = tiny_data()
    first = fit(tiny_config(tmp_path, epochs=1), data)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    fit(tiny_config(tmp_path, epochs=1, seed=1), data)
    kept = load_checkpoint(tmp_path / "checkpoint.prev.pt")
    assert kept["step"] == first.step
    assert all(torch.equal(kept["model"][k], v) for k, v in saved["model"].items())


def index_of(images, pool):
    """Where each image of `images` sits in `pool` (raises StopIteration if one is not there)."""
    return [next(i for i in range(len(pool)) if torch.equal(pool[i], img)) for img in images]


def test_train_subset_is_a_fixed_random_subset_with_its_labels_whatever_the_seed():
    train, _ = tiny_data(n_train=64)
    cfg = tiny_config("unused", subset=16)
    images, labels = train_subset(cfg, train)
    again, _ = train_subset(cfg, train)
    other_seed, _ = train_subset(tiny_config("unused", subset=16, seed=1), train)
    # One rule for every subset: drawn with DATA_SEED, so runs of different seeds train on the same images.
    assert images.shape == (16, 3, 16, 16) and torch.equal(images, again) and torch.equal(images, other_seed)
    assert not torch.equal(images, train.images[:16])  # random, not the first images
    assert torch.equal(labels, train.labels[index_of(images, train.images)])  # each label still its image's
    everything, all_labels = train_subset(tiny_config("unused", subset=0), train)
    assert everything is train.images and all_labels is train.labels


def test_validation_hold_out_is_stratified_fixed_and_never_trained_on(tmp_path):
    train, test = tiny_data(n_train=300)
    rest, val = split_validation(train, 0.1)
    assert len(rest) + len(val) == 300 and len(val) == sum(round(0.1 * int(n)) for n in train.labels.bincount())
    for c in range(3):  # each class gives its own tenth
        assert (val.labels == c).sum() == round(0.1 * int((train.labels == c).sum()))
    val_index, rest_index = index_of(val.images, train.images), index_of(rest.images, train.images)
    assert not set(val_index) & set(rest_index)
    assert torch.equal(split_validation(train, 0.1)[1].images, val.images)  # the same hold-out every time
    images, _ = train_subset(tiny_config("unused", val_fraction=0.1), train)
    assert torch.equal(images, rest.images)
    # Replacing the held-out images by noise changes nothing in training.
    noisy = train.images.clone()
    noisy[val_index] = torch.randint(0, 256, val.images.shape, dtype=torch.uint8)
    a = fit(tiny_config(tmp_path / "a", val_fraction=0.1, epochs=1), (train, test))
    b = fit(tiny_config(tmp_path / "b", val_fraction=0.1, epochs=1), (Split(noisy, train.labels, train.classes), test))
    assert states_equal(a.model, b.model)


@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_subset_fits_the_probe_on_a_fixed_subset_of_the_rest_and_scores_the_chosen_split(split):
    train, test = tiny_data(n_train=100, n_test=32)
    rest, val = split_validation(train, 0.1)
    cfg = tiny_config("unused", eval_subset=20, val_fraction=0.1, eval_split=split)
    (fit_on, score_on), (again, _) = probe_splits(cfg, (train, test)), probe_splits(cfg, (train, test))
    images, labels = fit_on.images, fit_on.labels
    assert images.shape[0] == 20 and torch.equal(images, again.images) and not torch.equal(images, rest.images[:20])
    assert torch.equal(labels, rest.labels[index_of(images, rest.images)])  # fitted on the rest only
    target = val if split == "val" else test
    assert torch.equal(score_on.images, target.images) and torch.equal(score_on.labels, target.labels)
    assert len(probe_splits(tiny_config("unused", eval_subset=0, val_fraction=0.1), (train, test))[0]) == len(rest)


@pytest.mark.parametrize("dataset, mean, std", [("cifar10", CIFAR10_MEAN, CIFAR10_STD),
                                                ("cifar100", CIFAR100_MEAN, CIFAR100_STD)])
def test_views_and_evaluation_use_the_datasets_statistics(monkeypatch, dataset, mean, std):
    import sys

    evaluate_module = sys.modules["dtlib.evaluate"]  # the module (dtlib.evaluate the attribute is the function)
    seen = []
    real = evaluate_module.extract_features
    monkeypatch.setattr(evaluate_module, "extract_features",
                        lambda net, x, batch, m, s: seen.append((m, s)) or real(net, x, batch, m, s))
    cfg = tiny_config("unused", dataset=dataset)
    evaluate_config(cfg, build_method(cfg), tiny_data())
    assert seen and all(pair == (mean, std) for pair in seen)
    for method in ("barlow_twins", "dinotwins"):
        maker = build_view_maker(tiny_config("unused", dataset=dataset, method=method))
        assert (maker.mean, maker.std) == (mean, std)


@pytest.mark.parametrize("method", ["barlow_twins", "dino"])
def test_crop_scales_come_from_the_config(method):
    cfg = tiny_config("unused", method=method, global_scale="0.55,0.95", local_scale="0.1,0.25", n_local=2)
    specs = build_view_maker(cfg).specs
    assert [s.scale for s in specs[:2]] == [(0.55, 0.95)] * 2
    assert [s.scale for s in specs[2:]] == ([] if method == "barlow_twins" else [(0.1, 0.25)] * 2)


def test_fit_freezes_the_prototypes_for_freeze_last_layer_epochs(tmp_path):
    prototypes = []

    def record(event, payload):
        if event == "epoch":
            prototypes.append([p.detach().clone() for p in payload["model"].student.head.last_layer_parameters()])

    cfg = tiny_config(tmp_path, epochs=3, freeze_last_layer=2, norm_last_layer="false")
    torch.manual_seed(cfg.seed)  # fit seeds itself with cfg.seed, so this builds the model it starts from
    initial = [p.detach().clone() for p in build_method(cfg).student.head.last_layer_parameters()]
    fit(cfg, tiny_data(), callbacks=[record])
    assert len(prototypes) == 3
    for epoch in (0, 1):  # frozen: every step of the first two epochs left them as built
        assert all(torch.equal(a, b) for a, b in zip(initial, prototypes[epoch]))
    assert any(not torch.equal(a, b) for a, b in zip(initial, prototypes[2]))  # then they train


def test_fp16_grad_scaler_clips_the_true_gradients():
    cfg = tiny_config("unused", method="barlow_twins")
    views = build_view_maker(cfg)(tiny_data()[0].images[:16], torch.Generator().manual_seed(0))
    params = []
    for enabled in (False, True):
        torch.manual_seed(0)
        model = build_method(cfg)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=enabled)
        train_step(model, model, optimizer, scaler, views, None, teacher_temp=0.04, momentum=0.9, clip_grad=0.5)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert scaler.get_scale() == 2.0 ** 12  # finite gradients: the step was taken, the scale kept
    torch.testing.assert_close(params[1], params[0], rtol=1e-4, atol=1e-6)


def test_steps_sets_the_run_length_inside_an_epoch_and_the_schedules_span_it(tmp_path):
    data = tiny_data()  # 64 images / batch 16 = 4 steps per epoch
    cfg = tiny_config(tmp_path, epochs=1, steps=6, warmup_epochs=0)
    result = fit(cfg, data)
    assert result.step == 6 and [r["step"] for r in result.history] == list(range(6))
    assert [r["epoch"] for r in result.history] == [0, 0, 0, 0, 1, 1]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 6  # saved though the epoch did not end
    lr = build_schedules(cfg, steps_per_epoch=4)["lr"]
    assert len(lr) == 6 and [r["lr"] for r in result.history] == pytest.approx(list(lr))
