"""Presets, overrides and one clear error per impossible setting."""

import inspect
from dataclasses import fields

import pytest

from dtlib.config import PRESETS, RECIPE, Config, ConfigError, make_config
from dtlib.losses import DINOLoss
from dtlib.methods import DINO, BarlowTwins, DinoTwins


def test_preset_sets_backbone_and_overrides_win():
    cfg = make_config("cifar10-vit-tiny", lr="1e-3", global_scale="0.2,1.0", centering="none")
    assert cfg.backbone == "vit_tiny" and cfg.lr == 1e-3 and cfg.global_scale == (0.2, 1.0)
    assert cfg.centering == "none"
    assert make_config("cpu-mini").backbone == "resnet_mini"
    assert set(PRESETS) >= {"cifar10-resnet18", "cifar10-resnet50", "cifar10-vit-tiny", "cpu-mini"}


# A valid value other than the default for every field, written as on the command line.
OVERRIDES = {
    "method": ("barlow_twins", "barlow_twins"), "backbone": ("resnet50", "resnet50"),
    "dataset": ("cifar100", "cifar100"), "data_dir": ("/data", "/data"), "out": ("runs/x", "runs/x"),
    "val_fraction": ("0.2", 0.2), "eval_split": ("val", "val"),
    "subset": ("512", 512), "steps": ("100", 100), "data_size": ("16", 16), "eval_size": ("24", 24), "epochs": ("7", 7),
    "batch_size": ("64", 64), "optimizer": ("sgd", "sgd"), "lr": ("0.5", 0.5), "min_lr_ratio": ("0.1", 0.1),
    "warmup_epochs": ("2.5", 2.5), "weight_decay": ("0.04", 0.04), "weight_decay_end": ("0.4", 0.4),
    "clip_grad": ("3", 3.0), "image_size": ("24", 24), "global_scale": ("0.5,0.9", (0.5, 0.9)),
    "n_local": ("4", 4), "local_size": ("12", 12), "local_scale": ("0.1,0.2", (0.1, 0.2)),
    "proj_dims": ("64,32", (64, 32)), "lambd": ("0.01", 0.01), "out_dim": ("512", 512),
    "head_hidden_dim": ("256", 256), "bottleneck_dim": ("64", 64), "head_layers": ("2", 2),
    "norm_last_layer": ("false", False), "freeze_last_layer": ("0.5", 0.5),
    "head_bn": ("true", True), "head_lr_scale": ("0.1", 0.1), "centering": ("sinkhorn", "sinkhorn"),
    "student_temp": ("0.2", 0.2),
    "teacher_temp": ("0.05", 0.05), "warmup_teacher_temp": ("0.03", 0.03),
    "warmup_teacher_temp_epochs": ("5", 5.0), "center_momentum": ("0.8", 0.8),
    "momentum_teacher": ("0.99", 0.99), "momentum_schedule": ("fixed", "fixed"), "beta": ("0.5", 0.5),
    "bt_pairs": ("all", "all"), "seed": ("3", 3), "device": ("cpu", "cpu"), "amp": ("false", False),
    "compile": ("true", True), "channels_last": ("false", False), "log_every": ("5", 5), "save_every": ("2", 2),
    "knn_every": ("1", 1), "probe_epochs": ("9", 9), "eval_subset": ("1000", 1000),
    "eval_batch_size": ("128", 128), "wandb": ("offline", "offline"),
}


@pytest.mark.parametrize("name", [f.name for f in fields(Config)])
def test_every_field_can_be_overridden_from_a_string(name):
    assert name in OVERRIDES, f"add a non-default value for the new field {name!r} to OVERRIDES"
    text, expected = OVERRIDES[name]
    assert getattr(Config(), name) != expected  # the override must change something
    cfg = make_config(**{name: text})
    assert getattr(cfg, name) == expected and type(getattr(cfg, name)) is type(expected)


@pytest.mark.parametrize("overrides, message", [
    ({"method": "simclr"}, "unknown method 'simclr'"),
    ({"backbone": "resnet34"}, "unknown backbone 'resnet34'"),
    ({"batch_size": "1"}, "batch_size must be >= 2"),
    ({"backbone": "vit_tiny", "image_size": "30"}, "does not divide image_size=30"),
    ({"teacher_temp": "0"}, "teacher_temp must be > 0"),
    ({"student_temp": "-0.1"}, "student_temp must be > 0"),
    ({"beta": "-1"}, "beta must be >= 0"),
    ({"global_scale": "0.5,0.2"}, "global_scale must satisfy"),
    ({"momentum_schedule": "linear"}, "unknown momentum_schedule"),
    ({"epochs": "many"}, "cannot read 'many'"),
    ({"no_such_key": "1"}, "valid settings: method, backbone"),
    ({"eval_split": "train"}, "unknown eval_split 'train'"),
    ({"val_fraction": "1"}, r"val_fraction must be in \[0, 1\)"),
    ({"val_fraction": "0", "eval_split": "val"}, "needs a validation hold-out"),
])
def test_impossible_config_gives_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="cpu-mini"):
        make_config("cifar10-resnet9")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_sets_every_recipe_value_itself(name):
    assert set(RECIPE) - set(PRESETS[name]) == set()


@pytest.mark.parametrize("cls", [BarlowTwins, DINO, DinoTwins, DINOLoss])
def test_constructor_defaults_are_the_config_defaults(cls):
    config = {f.name: f.default for f in fields(Config)}
    shared = {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n in config}
    assert shared, "the constructor should take its settings under the Config's names"
    assert {n: d for n, d in shared.items() if d is not inspect.Parameter.empty and d != config[n]} == {}


def test_presets_md_states_each_presets_values():
    """results/presets.md quotes the values it justifies: each `name=value` it lists for a preset is that preset's."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "results" / "presets.md").read_text()
    base = re.search(r"Base GPU recipe: (.*)\n", text).group(1)
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\S+) \| (.*?) \|", text, re.M) if m.group(1) in PRESETS}
    assert set(rows) == set(PRESETS)
    for name, listed in [("cifar10-resnet18", base), *rows.items()]:
        cfg = make_config(name)
        for field_name, value in re.findall(r"`(\w+)=([^`]*)`", listed):
            assert repr(getattr(cfg, field_name)) == value, (name, field_name, value)
