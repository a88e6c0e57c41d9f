"""Presets, overrides and one clear error per impossible setting."""

import pytest

from dtlib.config import PRESETS, Config, ConfigError, make_config


def test_preset_sets_backbone_and_overrides_win():
    cfg = make_config("cifar10-vit-tiny", lr="1e-3", global_scale="0.2,1.0", centering="false")
    assert cfg.backbone == "vit_tiny" and cfg.lr == 1e-3 and cfg.global_scale == (0.2, 1.0)
    assert cfg.centering is False
    assert make_config("cpu-mini").backbone == "resnet_mini"
    assert set(PRESETS) >= {"cifar10-resnet18", "cifar10-resnet50", "cifar10-vit-tiny", "cpu-mini"}


def test_every_field_can_be_overridden():
    defaults = Config()
    for name, value in vars(defaults).items():
        if isinstance(value, bool):
            assert getattr(make_config(**{name: str(not value).lower()}), name) is (not value)


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
])
def test_impossible_config_gives_one_clear_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="cpu-mini"):
        make_config("cifar10-resnet9")
