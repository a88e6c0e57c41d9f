"""Factories: the method, the view maker and the schedules a Config describes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .augment import ViewMaker, barlow_twins_views, multicrop_views
from .backbones import build_backbone
from .cifar import dataset_stats
from .config import Config
from .methods import DINO, BarlowTwins, DinoTwins, Method
from .schedules import cosine_schedule, momentum_schedule, teacher_temp_schedule


def build_method(cfg: Config) -> Method:
    """The method named by the config, with its backbone and heads."""
    kwargs: dict[str, Any] = {}
    if cfg.backbone == "vit_tiny":
        kwargs["img_size"] = cfg.image_size
    backbone = build_backbone(cfg.backbone, **kwargs)
    if cfg.method == "barlow_twins":
        return BarlowTwins(backbone, cfg.proj_dims, cfg.lambd)
    dino_kwargs = dict(out_dim=cfg.out_dim, head_hidden_dim=cfg.head_hidden_dim, bottleneck_dim=cfg.bottleneck_dim,
                       head_layers=cfg.head_layers, norm_last_layer=cfg.norm_last_layer, head_bn=cfg.head_bn,
                       student_temp=cfg.student_temp, center_momentum=cfg.center_momentum, centering=cfg.centering)
    if cfg.method == "dino":
        return DINO(backbone, **dino_kwargs)
    return DinoTwins(backbone, beta=cfg.beta, proj_dims=cfg.proj_dims, lambd=cfg.lambd, bt_pairs=cfg.bt_pairs,
                     **dino_kwargs)


def build_view_maker(cfg: Config) -> ViewMaker:
    """Barlow Twins' two asymmetric views, or DINO's multi-crop for DINO and DINO Twins.

    Crop scales come from the config, the normalisation from the dataset's channel statistics; the views
    come out channels_last when the config asks for it.
    """
    if cfg.method == "barlow_twins":
        specs = barlow_twins_views(cfg.image_size, scale=cfg.global_scale)
    else:
        specs = multicrop_views(cfg.n_local, cfg.image_size, cfg.local_size, cfg.global_scale, cfg.local_scale)
    mean, std = dataset_stats(cfg.dataset)
    return ViewMaker(specs, n_global=2, mean=mean, std=std, channels_last=cfg.channels_last)


def total_steps(cfg: Config, steps_per_epoch: int) -> int:
    """The run's length in optimiser steps: `cfg.steps` when set, else `cfg.epochs` whole epochs."""
    return cfg.steps or cfg.epochs * steps_per_epoch


def build_schedules(cfg: Config, steps_per_epoch: int) -> dict[str, np.ndarray]:
    """Per-step lr, weight decay, teacher momentum and teacher temperature (plot them before training)."""
    total = total_steps(cfg, steps_per_epoch)
    lr = cfg.lr * cfg.batch_size / 256
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    wd_end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    temp_warmup = round(cfg.warmup_teacher_temp_epochs * steps_per_epoch)
    return {
        "lr": cosine_schedule(lr, lr * cfg.min_lr_ratio, total, warmup),
        "weight_decay": cosine_schedule(cfg.weight_decay, wd_end, total),
        "momentum": momentum_schedule(cfg.momentum_teacher, total, cfg.momentum_schedule),
        "teacher_temp": teacher_temp_schedule(cfg.teacher_temp, total, temp_warmup, cfg.warmup_teacher_temp),
    }
