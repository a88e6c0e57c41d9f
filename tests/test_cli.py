"""python -m dtlib: one clear error per bad input, and a whole train → eval round trip."""

import json

import pytest
from PIL import Image

from dtlib.__main__ import main


@pytest.mark.parametrize("args, message", [
    (["train", "--batch_size", "1"], "batch_size must be >= 2"),
    (["train", "--teacher_temp", "-1"], "teacher_temp must be > 0"),
    (["train", "--beta", "-0.5"], "beta must be >= 0"),
    (["train", "--backbone", "vit_tiny", "--image_size", "30"], "patch size 4, which does not divide"),
    (["train", "--no_such_setting", "3"], "unknown setting 'no_such_setting'; valid settings: method"),
    (["train", "--preset", "cifar10-resnet9"], "unknown preset"),
    (["train", "--data-dir", "/nonexistent/cifar"], "data folder /nonexistent/cifar does not exist"),
    (["eval", "--checkpoint", "/nonexistent/checkpoint.pt"], "no checkpoint at /nonexistent/checkpoint.pt"),
    (["eval"], "eval needs --checkpoint"),
])
def test_bad_input_gives_one_clear_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_unknown_method_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--method", "simclr"])
    assert exc.value.code == 2 and "invalid choice: 'simclr'" in capsys.readouterr().err


def make_image_folder(root, n_train=24, n_test=12):
    for split, n in (("train", n_train), ("test", n_test)):
        for c, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n // 3):
                Image.new("RGB", (16, 16), tuple(min(255, v + 5 * i) for v in colour)).save(folder / f"{i}.png")


def test_train_then_eval_round_trip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DTLIB_CACHE", str(tmp_path / "cache"))
    data, out = tmp_path / "data", tmp_path / "run"
    make_image_folder(data)
    common = ["--data-dir", str(data), "--out", str(out)]
    assert main(["train", "--preset", "cpu-mini", *common, "--epochs", "1", "--batch_size", "8", "--subset", "0",
                 "--probe_epochs", "2", "--n_local", "1", "--val_fraction", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"linear_top1", "knn_top1_k20", "linear_top5"} <= metrics.keys()
    assert metrics["method"] == "dinotwins" and metrics["backbone"] == "resnet_mini"
    assert (out / "checkpoint.pt").exists() and (out / "metrics.jsonl").read_text().count("\n") == 3
    printed = capsys.readouterr().out
    assert "linear_top1" in printed
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "eval")]) == 0
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert again["linear_top1"] == metrics["linear_top1"] and again["knn_top1_k20"] == metrics["knn_top1_k20"]
    assert main(["eval", "--random-init", "--data-dir", str(data), "--out", str(tmp_path / "rand"),
                 "--probe_epochs", "2"]) == 0
    assert json.loads((tmp_path / "rand" / "metrics.json").read_text())["method"] == "random_init"
    assert metrics["split"] == "test"  # the run's own eval_split
    # Recipe choices score the validation hold-out instead: `--split val` (it needs val_fraction > 0).
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "val"),
                 "--split", "val"]) == 2
    assert "needs a validation hold-out" in capsys.readouterr().err
    assert main(["eval", "--random-init", "--data-dir", str(data), "--out", str(tmp_path / "rv"),
                 "--probe_epochs", "2", "--split", "val"]) == 0
    scored = json.loads((tmp_path / "rv" / "metrics.json").read_text())
    assert scored["split"] == "val" and scored["scored_images"] == 3  # a tenth of each class of 8 images, rounded


def test_eval_probes_at_native_size_and_keeps_the_training_record(tmp_path, monkeypatch):
    monkeypatch.setenv("DTLIB_CACHE", str(tmp_path / "cache"))
    data, out = tmp_path / "data", tmp_path / "run"
    make_image_folder(data)  # 16-px images
    assert main(["train", "--preset", "cpu-mini", "--data-dir", str(data), "--out", str(out), "--epochs", "1",
                 "--batch_size", "8", "--subset", "0", "--probe_epochs", "2", "--n_local", "1",
                 "--data_size", "8", "--image_size", "8", "--local_size", "4"]) == 0
    trained = json.loads((out / "metrics.json").read_text())
    assert trained["config"]["data_size"] == 8 and trained["config"]["eval_size"] == 0
    from dtlib.checkpoint import load_trained
    from dtlib.evaluate import eval_data
    model, cfg = load_trained(out / "checkpoint.pt")
    train, test = eval_data(cfg)
    assert train.images.shape[-1] == test.images.shape[-1] == 16  # native, not the 8-px training size
    assert eval_data(cfg.__class__(**{**cfg.__dict__, "eval_size": 12}))[1].images.shape[-1] == 12
    # Re-evaluating in the run's folder updates the scores and keeps what training recorded.
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt")]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["train_seconds"] == trained["train_seconds"] > 0 and again["step"] == trained["step"]
    assert again["linear_top1"] == trained["linear_top1"]  # the same native-size evaluation, reproduced


def test_train_help_names_every_preset_method_and_backbone(capsys):
    from dtlib.config import BACKBONES, METHODS, PRESETS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
    assert [name for name in (*PRESETS, *METHODS, *BACKBONES) if name not in text] == []
