"""One dataclass per run, named presets, and validation with clear messages."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

# The names every choice accepts live here, so reading or validating a config never imports the model code.
METHODS = ("barlow_twins", "dino", "dinotwins")
BACKBONES = ("resnet18", "resnet50", "vit_tiny", "resnet_mini")
BT_PAIRS = ("global", "all")
CENTERING = ("ema", "sinkhorn", "none")
OPTIMIZERS = ("lars", "sgd", "adamw")
MOMENTUM_SCHEDULES = ("cosine", "fixed", "zero")
WANDB_MODES = ("disabled", "offline", "online")
EVAL_SPLITS = ("val", "test")


class ConfigError(ValueError):
    """An impossible or unknown setting; the message says which and what is allowed."""


@dataclass
class Config:
    """Every setting of a run. Presets fill it; CLI flags and `dataclasses.replace` override it."""

    method: str = "dinotwins"  # barlow_twins | dino | dinotwins
    backbone: str = "resnet18"  # resnet18 | resnet50 | vit_tiny | resnet_mini
    dataset: str = "cifar10"  # cifar10 | cifar100 | imagefolder
    data_dir: str | None = None  # None: $DTLIB_DATA or ~/.cache/dtlib/data
    out: str = "runs/latest"  # checkpoint.pt, metrics.jsonl, metrics.json go here
    val_fraction: float = 0.1  # class-stratified hold-out of the train split, never trained on (5,000 of 50,000)
    subset: int = 0  # train on this many images (a fixed random subset of the rest); 0 = all of the rest
    data_size: int = 0  # resize every image to this size once for training (and the kNN monitor); 0 = native
    eval_size: int = 0  # image size of the final probe and kNN; 0 = native (32 for CIFAR), even under data_size
    # optimisation
    epochs: int = 100
    steps: int = 0  # the run's length in steps when > 0 (its schedules span them), instead of whole epochs
    batch_size: int = 256
    optimizer: str = "lars"  # lars | sgd | adamw
    lr: float = 0.3  # for a batch of 256, scaled linearly with batch_size
    min_lr_ratio: float = 0.01  # cosine ends at lr * min_lr_ratio
    warmup_epochs: float = 10
    weight_decay: float = 1e-4
    weight_decay_end: float | None = None  # cosine weight-decay target (DINO); None = constant
    clip_grad: float = 0.0  # max global grad norm; 0 = off
    # views
    image_size: int = 32  # global crop size
    global_scale: tuple[float, float] = (0.3, 1.0)
    n_local: int = 6  # DINO local crops (0 = two global crops only)
    local_size: int = 16
    local_scale: tuple[float, float] = (0.05, 0.3)
    # Barlow Twins (and the DINO Twins projector)
    proj_dims: tuple[int, ...] = (2048, 2048, 2048)
    lambd: float = 5e-3
    # DINO
    out_dim: int = 4096  # prototypes K
    head_hidden_dim: int = 2048
    bottleneck_dim: int = 256
    head_layers: int = 3
    norm_last_layer: bool = True
    head_bn: bool = False  # BatchNorm after the DINO head's hidden layers
    head_lr_scale: float = 1.0  # the DINO head's lr is lr * head_lr_scale (backbone and BT projector: lr)
    freeze_last_layer: float = 1  # epochs (fractions count steps) with frozen prototypes
    student_temp: float = 0.1
    teacher_temp: float = 0.07
    warmup_teacher_temp: float = 0.04  # the teacher temperature rises from this to teacher_temp ...
    warmup_teacher_temp_epochs: float = 30  # ... over these epochs; 0 = no warm-up (fixed teacher_temp)
    centering: str = "ema"  # ema (DINO's centre) | sinkhorn (Sinkhorn-Knopp, as DINOv2) | none (ablation)
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996
    momentum_schedule: str = "cosine"  # cosine (to 1) | fixed | zero — ablation switch
    # DINO Twins
    beta: float = 0.05  # weight of the Barlow Twins term; 0 = plain DINO
    bt_pairs: str = "global"  # global | all
    # machinery
    seed: int = 0
    device: str = "auto"  # auto: cuda > mps > cpu
    amp: bool = True  # bf16 (fp16 + grad scaler on older GPUs); ignored on CPU
    compile: bool = False
    channels_last: bool = True
    log_every: int = 20  # steps between host syncs for logging
    save_every: int = 10  # epochs between checkpoints (and one at the end)
    knn_every: int = 0  # epochs between online kNN reports on the val hold-out (test if val_fraction = 0; 0 = off)
    probe_epochs: int = 100
    eval_subset: int = 0  # linear probe / kNN fitted on this many train images (fixed random subset); 0 = all
    eval_split: str = "test"  # what the final probe and kNN score: val (recipe choices) | test (final rows only)
    eval_batch_size: int = 1024
    wandb: str = "disabled"  # disabled | offline | online


# The recipe: every value that decides a result. Each preset sets every one of them on purpose
# (tests/test_config.py checks it); the Config defaults above only fill what a preset leaves to the machine.
RECIPE = (
    "backbone", "data_size", "subset", "epochs", "batch_size", "optimizer", "lr", "min_lr_ratio", "warmup_epochs",
    "weight_decay", "weight_decay_end", "clip_grad", "image_size", "global_scale", "n_local", "local_size",
    "local_scale", "proj_dims", "lambd", "out_dim", "head_hidden_dim", "bottleneck_dim", "head_layers",
    "norm_last_layer", "head_bn", "head_lr_scale", "freeze_last_layer", "student_temp", "teacher_temp",
    "warmup_teacher_temp", "warmup_teacher_temp_epochs", "centering", "center_momentum", "momentum_teacher",
    "momentum_schedule", "beta", "bt_pairs", "probe_epochs", "eval_subset",
)

# The GPU recipe (results/presets.md: not measured yet; DINO's and Barlow Twins' published values).
_GPU: dict[str, Any] = dict(
    backbone="resnet18", data_size=0, subset=0, epochs=200, batch_size=512, optimizer="lars", lr=0.3,
    min_lr_ratio=0.01, warmup_epochs=10, weight_decay=1e-5, weight_decay_end=None, clip_grad=0.0, image_size=32,
    global_scale=(0.3, 1.0), n_local=6, local_size=16, local_scale=(0.05, 0.3), proj_dims=(2048, 2048, 2048),
    lambd=5e-3, out_dim=4096, head_hidden_dim=2048, bottleneck_dim=256, head_layers=3, norm_last_layer=True,
    head_bn=False, head_lr_scale=1.0, freeze_last_layer=1, student_temp=0.1, teacher_temp=0.07,
    warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=30, centering="sinkhorn", center_momentum=0.9,
    momentum_teacher=0.996, momentum_schedule="cosine", beta=5e-4, bt_pairs="global", probe_epochs=100,
    eval_subset=0, device="auto", log_every=50,
)
_VIT: dict[str, Any] = dict(backbone="vit_tiny", optimizer="adamw", lr=5e-4, weight_decay=0.04, weight_decay_end=0.4,
                            clip_grad=3.0, channels_last=False)
# The short GPU runs take cpu-mini's frozen DINO recipe (results/selection.md; beta scaled to D = 2048: presets.md).
_LESSON: dict[str, Any] = dict(epochs=6, n_local=2, warmup_epochs=1, teacher_temp=0.005, warmup_teacher_temp_epochs=0,
                               beta=5e-4, momentum_teacher=0.99, freeze_last_layer=0, probe_epochs=50)

PRESETS: dict[str, dict[str, Any]] = {
    "cifar10-resnet18": dict(_GPU),  # results/presets.md
    "cifar10-resnet18-5min": dict(_GPU, epochs=30, n_local=4, warmup_epochs=3, warmup_teacher_temp_epochs=5,
                                  momentum_teacher=0.99),  # results/presets.md
    "cifar10-resnet50": dict(_GPU, backbone="resnet50"),  # results/presets.md
    "cifar10-vit-tiny": dict(_GPU, **_VIT),  # results/presets.md
    "cifar10-resnet18-lesson": dict(_GPU, **_LESSON),  # results/presets.md
    "cifar10-vit-tiny-lesson": dict(_GPU, **_VIT, **dict(_LESSON, epochs=10)),  # results/presets.md
    "cpu-mini": dict(  # results/cpu_recipe.md, results/dino_recipe.md, results/selection.md
        backbone="resnet_mini", data_size=16, subset=0, epochs=1, batch_size=128, optimizer="adamw", lr=4e-3,
        min_lr_ratio=0.01, warmup_epochs=0.05, weight_decay=1e-4, weight_decay_end=None, clip_grad=0.0,
        image_size=16, global_scale=(0.3, 1.0), n_local=2, local_size=8, local_scale=(0.05, 0.3),
        proj_dims=(512, 512, 512), lambd=5e-3, out_dim=1024, head_hidden_dim=512, bottleneck_dim=128, head_layers=3,
        norm_last_layer=True, head_bn=False, head_lr_scale=1.0, freeze_last_layer=0, student_temp=0.1,
        teacher_temp=0.005, warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=0, centering="sinkhorn",
        center_momentum=0.9, momentum_teacher=0.9, momentum_schedule="cosine", beta=0.002, bt_pairs="global",
        probe_epochs=50, eval_subset=10000,
        device="cpu", channels_last=True, log_every=10, save_every=1, eval_batch_size=1024,
    ),
}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: Config) -> Config:
    """Raise ConfigError naming the setting when a config cannot run."""
    _check(cfg.method in METHODS, f"unknown method {cfg.method!r}: choose one of {', '.join(METHODS)}")
    _check(cfg.backbone in BACKBONES,
           f"unknown backbone {cfg.backbone!r}: choose one of {', '.join(BACKBONES)}")
    _check(cfg.optimizer in OPTIMIZERS, f"unknown optimizer {cfg.optimizer!r}: choose one of {OPTIMIZERS}")
    _check(cfg.momentum_schedule in MOMENTUM_SCHEDULES,
           f"unknown momentum_schedule {cfg.momentum_schedule!r}: choose one of {MOMENTUM_SCHEDULES}")
    _check(cfg.centering in CENTERING, f"unknown centering {cfg.centering!r}: choose one of {CENTERING}")
    _check(cfg.bt_pairs in BT_PAIRS, f"unknown bt_pairs {cfg.bt_pairs!r}: choose one of {BT_PAIRS}")
    _check(cfg.eval_split in EVAL_SPLITS, f"unknown eval_split {cfg.eval_split!r}: choose one of {EVAL_SPLITS}")
    _check(0 <= cfg.val_fraction < 1, f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    _check(cfg.eval_split != "val" or cfg.val_fraction > 0,
           "eval_split 'val' needs a validation hold-out: set val_fraction > 0 (e.g. 0.1)")
    _check(cfg.wandb in WANDB_MODES, f"unknown wandb mode {cfg.wandb!r}: choose one of {WANDB_MODES}")
    _check(cfg.batch_size >= 2, f"batch_size must be >= 2 (batch statistics need two samples), got {cfg.batch_size}")
    _check(cfg.epochs >= 1, f"epochs must be >= 1, got {cfg.epochs}")
    _check(cfg.steps >= 0, f"steps must be >= 0 (0 = epochs whole epochs), got {cfg.steps}")
    _check(cfg.lr > 0, f"lr must be > 0, got {cfg.lr}")
    for name in ("student_temp", "teacher_temp", "warmup_teacher_temp"):
        _check(getattr(cfg, name) > 0, f"{name} must be > 0, got {getattr(cfg, name)}")
    _check(cfg.beta >= 0, f"beta must be >= 0 (0 is plain DINO), got {cfg.beta}")
    _check(cfg.lambd >= 0, f"lambd must be >= 0, got {cfg.lambd}")
    _check(0 <= cfg.momentum_teacher <= 1, f"momentum_teacher must be in [0, 1], got {cfg.momentum_teacher}")
    _check(0 <= cfg.center_momentum <= 1, f"center_momentum must be in [0, 1], got {cfg.center_momentum}")
    _check(cfg.n_local >= 0, f"n_local must be >= 0, got {cfg.n_local}")
    for name in ("global_scale", "local_scale"):
        lo, hi = getattr(cfg, name)
        _check(0 < lo <= hi <= 1, f"{name} must satisfy 0 < min <= max <= 1, got {(lo, hi)}")
    _check(cfg.subset >= 0, f"subset must be >= 0, got {cfg.subset}")
    _check(cfg.eval_subset >= 0, f"eval_subset must be >= 0 (0 = the whole train split), got {cfg.eval_subset}")
    _check(cfg.data_size >= 0, f"data_size must be >= 0 (0 = native size), got {cfg.data_size}")
    _check(cfg.eval_size >= 0, f"eval_size must be >= 0 (0 = native size), got {cfg.eval_size}")
    _check(cfg.subset == 0 or cfg.subset >= cfg.batch_size,
           f"subset ({cfg.subset}) must be 0 (all) or at least batch_size ({cfg.batch_size})")
    if cfg.backbone == "vit_tiny":
        for name, size in (("image_size", cfg.image_size), ("local_size", cfg.local_size)):
            _check(size % 4 == 0, f"vit_tiny uses patch size 4, which does not divide {name}={size}; "
                                  "use a multiple of 4")
    return cfg


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    """Turn a CLI string into the field's type ("0.4,1.0" for tuples, true/false for bools)."""
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    kind = str(field.type)
    try:
        if kind.startswith("tuple[float"):
            return tuple(float(v) for v in value.split(","))
        if kind.startswith("tuple[int"):
            return tuple(int(v) for v in value.split(","))
        if kind == "bool":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if kind == "int":
            return int(value)
        if kind.startswith("float"):
            return None if value.lower() == "none" else float(value)
        if kind.startswith("str | None"):
            return None if value.lower() == "none" else value
    except ValueError:
        raise ConfigError(f"--{field.name}: cannot read {value!r} as {kind}") from None
    return value


def parse_overrides(rest: list[str]) -> dict[str, str]:
    """Turn ['--beta', '0.1', '--centering=none'] into {'beta': '0.1', 'centering': 'none'} (the CLI's syntax)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--"):
            raise ConfigError(f"unexpected argument {token!r}: settings are given as --name value")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        elif i + 1 < len(rest):
            key, value = token[2:], rest[i + 1]
            i += 2
        else:
            raise ConfigError(f"{token} needs a value")
        out[key.replace("-", "_")] = value
    return out


def make_config(preset: str | None = None, **overrides: Any) -> Config:
    """A validated Config: defaults, then the preset's values, then `overrides` (strings are parsed)."""
    valid = {f.name: f for f in fields(Config)}
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[preset])
    for key, value in overrides.items():
        key = key.replace("-", "_")
        if key not in valid:
            raise ConfigError(f"unknown setting {key!r}; valid settings: {', '.join(valid)}")
        values[key] = _coerce(valid[key], value)
    return validate(Config(**{k: _coerce(valid[k], v) for k, v in values.items()}))
