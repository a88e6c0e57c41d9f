"""fit(): the training loop — data on the device, views per step, AMP, schedules, checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .augment import ViewMaker, barlow_twins_views, multicrop_views
from .backbones import build_backbone
from .checkpoint import CheckpointError, check_compatible, load_checkpoint, save_checkpoint, set_rng_state
from .config import Config, validate
from .data import Split, load_dataset, resize_split
from .evaluate import evaluate, extract_features, knn_classify
from .methods import DINO, BarlowTwins, DinoTwins
from .optim import build_optimizer
from .schedules import cosine_schedule, momentum_schedule, teacher_temp_schedule

Callback = Callable[[str, dict[str, Any]], None]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message says what to try."""


@dataclass
class FitResult:
    """What `fit` returns: the trained method, its per-step history and where it was saved."""

    model: nn.Module
    history: list[dict[str, float]]
    config: Config
    out: Path
    step: int
    interrupted: bool
    seconds: float


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda > mps > cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_dtype(device: torch.device, enabled: bool = True) -> torch.dtype | None:
    """bf16 where the GPU supports it, fp16 on older GPUs, none (fp32) on CPU and MPS."""
    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_method(cfg: Config) -> nn.Module:
    """The method named by the config, with its backbone and heads."""
    kwargs: dict[str, Any] = {}
    if cfg.backbone == "vit_tiny":
        kwargs["img_size"] = cfg.image_size
    backbone = build_backbone(cfg.backbone, **kwargs)
    if cfg.method == "barlow_twins":
        return BarlowTwins(backbone, cfg.proj_dims, cfg.lambd)
    dino_kwargs = dict(out_dim=cfg.out_dim, hidden_dim=cfg.head_hidden_dim, bottleneck_dim=cfg.bottleneck_dim,
                       head_layers=cfg.head_layers, norm_last_layer=cfg.norm_last_layer, head_bn=cfg.head_bn,
                       student_temp=cfg.student_temp, teacher_temp=cfg.teacher_temp,
                       center_momentum=cfg.center_momentum, centering=cfg.centering,
                       centering_method=cfg.centering_method)
    if cfg.method == "dino":
        return DINO(backbone, **dino_kwargs)
    return DinoTwins(backbone, beta=cfg.beta, proj_dims=cfg.proj_dims, lambd=cfg.lambd, bt_pairs=cfg.bt_pairs,
                     **dino_kwargs)


def build_view_maker(cfg: Config) -> ViewMaker:
    """Barlow Twins' two asymmetric views, or DINO's multi-crop for DINO and DINO Twins."""
    if cfg.method == "barlow_twins":
        specs = [dataclasses.replace(s, scale=cfg.global_scale) for s in barlow_twins_views(cfg.image_size)]
        return ViewMaker(specs, n_global=2)
    specs = multicrop_views(cfg.n_local, cfg.image_size, cfg.local_size, cfg.global_scale, cfg.local_scale)
    return ViewMaker(specs, n_global=2)


def build_schedules(cfg: Config, steps_per_epoch: int) -> dict[str, np.ndarray]:
    """Per-step lr, weight decay, teacher momentum and teacher temperature (plot them before training)."""
    total = cfg.epochs * steps_per_epoch
    lr = cfg.lr * cfg.batch_size / 256
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    wd_end = cfg.weight_decay if cfg.weight_decay_end is None else cfg.weight_decay_end
    temp_warmup = round(cfg.warmup_teacher_temp_epochs * steps_per_epoch) if cfg.teacher_temp_warmup else 0
    return {
        "lr": cosine_schedule(lr, lr * cfg.min_lr_ratio, total, warmup),
        "weight_decay": cosine_schedule(cfg.weight_decay, wd_end, total),
        "momentum": momentum_schedule(cfg.momentum_teacher, total, cfg.momentum_schedule),
        "teacher_temp": teacher_temp_schedule(cfg.teacher_temp, total, temp_warmup, cfg.warmup_teacher_temp),
    }


def epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The order of epoch `epoch`, a function of (seed, epoch) alone so a resumed run sees the same."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def prepare_data(cfg: Config, data: tuple[Split, Split] | None = None) -> tuple[Split, Split]:
    """Load (train, test) unless given, resized to `cfg.data_size` (the training size) when set."""
    return _sized(cfg, data, cfg.data_size)


def eval_data(cfg: Config, data: tuple[Split, Split] | None = None) -> tuple[Split, Split]:
    """Load (train, test) unless given (at their native size), resized to `cfg.eval_size` when set."""
    return _sized(cfg, data, cfg.eval_size)


def _sized(cfg: Config, data: tuple[Split, Split] | None, size: int) -> tuple[Split, Split]:
    train, test = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    return resize_split(train, size), resize_split(test, size)


def train_subset(cfg: Config, train: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 training images and labels: all, or a fixed random subset of `cfg.subset`."""
    if not cfg.subset or cfg.subset >= len(train.images):
        return train.images, train.labels
    idx = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.subset]
    return train.images[idx], train.labels[idx]


class _StopFlag:
    """First Ctrl-C asks the loop to stop at the end of the step; a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train_step(model: nn.Module, step_fn: Callable, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, views: list[torch.Tensor], dtype: torch.dtype | None, *,
               teacher_temp: float, momentum: float, clip_grad: float = 0.0, freeze_last_layer: bool = False,
               check_finite: bool = False) -> dict[str, torch.Tensor]:
    """Forward, backward, optimizer step and teacher EMA; returns detached logs (no host sync).

    With `check_finite` (cheap on CPU) a non-finite loss returns before any weight changes.
    """
    device_type = views[0].device.type
    with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        loss, logs = step_fn(views, teacher_temp=teacher_temp)
    if check_finite and not torch.isfinite(loss):
        return logs
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    if freeze_last_layer:
        model.cancel_last_layer_gradients()
    scaler.step(optimizer)
    scaler.update()
    model.update_teacher(momentum)
    return logs


def fit(cfg: Config, data: tuple[Split, Split] | None = None, callbacks: Sequence[Callback] = (),
        resume: bool = False) -> FitResult:
    """Train `cfg.method`; returns the model and history. Ctrl-C saves a checkpoint and returns.

    Callbacks receive ("log", {"rows": [...]}) at every log flush, ("epoch", {...}) after each
    epoch and ("end", {...}) once; the test split is only used for the optional kNN report.
    """
    validate(cfg)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    device = resolve_device(cfg.device)
    train, test = prepare_data(cfg, data)
    images, labels = train_subset(cfg, train)
    images = images.to(device)  # uint8 (N, 3, H, W), held on the device for the whole run
    n = len(images)
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(f"batch_size {cfg.batch_size} is larger than the {n} training images")
    total_steps = cfg.epochs * steps_per_epoch

    model = build_method(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay, cfg.head_lr_scale)
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    schedules = build_schedules(cfg, steps_per_epoch)
    freeze_steps = round(cfg.freeze_last_layer * steps_per_epoch)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    view_maker = build_view_maker(cfg)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "checkpoint.pt", out / "metrics.jsonl"
    start = 0
    if not resume and ckpt_path.exists():  # a fresh run never destroys an earlier one's checkpoint
        backup = ckpt_path.with_name("checkpoint.prev.pt")
        os.replace(ckpt_path, backup)
        print(f"{ckpt_path} already existed: moved to {backup} (use --resume to continue a run instead)")
    if resume and ckpt_path.exists():
        payload = load_checkpoint(ckpt_path, map_location=device)
        check_compatible(payload, cfg, ckpt_path)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scaler.load_state_dict(payload["scaler"])
        set_rng_state(payload["rng"], generator)
        start = payload["step"]
    kept = []
    if start and log_path.exists():  # drop rows logged after the checkpoint we resume from
        kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] < start]
    log_path.write_text("".join(line + "\n" for line in kept))
    history = [json.loads(line) for line in kept]

    step_fn = torch.compile(model) if cfg.compile else model
    pending: list[tuple[int, dict[str, torch.Tensor]]] = []
    t0, seen_since, last_flush = time.perf_counter(), 0, time.perf_counter()

    def emit(event: str, payload: dict[str, Any]) -> None:
        for cb in callbacks:
            cb(event, payload)

    def flush() -> None:
        nonlocal seen_since, last_flush
        if not pending:
            return
        steps = [s for s, _ in pending]
        keys = pending[0][1].keys()
        values = torch.stack([torch.stack([logs[k].float() for k in keys]) for _, logs in pending]).tolist()
        rows = []
        for s, vals in zip(steps, values):
            row = {"step": s, "epoch": s // steps_per_epoch, **dict(zip(keys, vals))}
            row.update({k: float(schedules[k][s]) for k in ("lr", "weight_decay", "momentum", "teacher_temp")})
            rows.append(row)
        for row in rows:
            if not math.isfinite(row["loss"]):
                raise TrainingError(
                    f"loss became {row['loss']} at step {row['step']} (epoch {row['epoch']}): training "
                    f"diverged. Try a lower --lr, --clip_grad 3, or --amp false; the last good checkpoint is "
                    f"{ckpt_path if ckpt_path.exists() else 'not written yet'} (resume with --resume)")
        with log_path.open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        history.extend(rows)
        now = time.perf_counter()
        speed = seen_since / max(now - last_flush, 1e-9)
        seen_since, last_flush = 0, now
        pbar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", lr=f"{rows[-1]['lr']:.2e}", img_s=f"{speed:.0f}")
        pending.clear()
        emit("log", {"rows": rows, "images_per_s": speed})

    def checkpoint(step: int) -> None:
        flush()
        save_checkpoint(ckpt_path, model=model, optimizer=optimizer, scaler=scaler, step=step, config=cfg,
                        generator=generator)

    model.train()
    interrupted, done = False, start
    perm = epoch_permutation(cfg.seed, start // steps_per_epoch, n, device)
    pbar = tqdm(total=total_steps, initial=start, desc=f"{cfg.method} {cfg.backbone}", unit="step")
    with _StopFlag() as stop:
        for step in range(start, total_steps):
            epoch, it = divmod(step, steps_per_epoch)
            if it == 0:
                perm = epoch_permutation(cfg.seed, epoch, n, device)
            batch = images[perm[it * cfg.batch_size:(it + 1) * cfg.batch_size]]  # (B, 3, H, W) uint8
            for group in optimizer.param_groups:
                group["lr"] = float(schedules["lr"][step]) * group["lr_scale"]
                if group["decay"]:
                    group["weight_decay"] = float(schedules["weight_decay"][step])
            views = view_maker(batch, generator)
            if cfg.channels_last:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            logs = train_step(model, step_fn, optimizer, scaler, views, dtype,
                              teacher_temp=float(schedules["teacher_temp"][step]),
                              momentum=float(schedules["momentum"][step]), clip_grad=cfg.clip_grad,
                              freeze_last_layer=step < freeze_steps,
                              check_finite=device.type == "cpu")
            pending.append((step, logs))
            if device.type == "cpu" and not torch.isfinite(logs["loss"]):  # caught before the update
                flush()
            seen_since += len(batch)
            pbar.update(1)
            done = step + 1
            if done % cfg.log_every == 0 or done == total_steps:
                flush()
            if done % steps_per_epoch == 0:
                info: dict[str, Any] = {"epoch": epoch, "step": done, "model": model, "images": images}
                if cfg.knn_every and (epoch + 1) % cfg.knn_every == 0:
                    info.update(knn_report(model, images, labels, test,
                                           cfg.eval_batch_size))
                    pbar.write(f"epoch {epoch + 1}: kNN top-1 (test, report only) {info['knn_top1_k20']:.2f} %")
                if (epoch + 1) % cfg.save_every == 0 or done == total_steps:
                    checkpoint(done)
                emit("epoch", info)
            if stop.requested and done < total_steps:
                checkpoint(done)
                pbar.write(f"interrupted: checkpoint saved at step {done} in {ckpt_path}; "
                           "continue with --resume")
                interrupted = True
                break
    flush()
    pbar.close()
    seconds = time.perf_counter() - t0
    emit("end", {"step": done, "seconds": seconds})
    return FitResult(model, history, cfg, out, done, interrupted, seconds)


def knn_report(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, test: Split,
               batch_size: int) -> dict[str, float]:
    """Online kNN accuracy of the evaluated backbone; reported, never used to steer training."""
    backbone = model.eval_backbone()
    train_f = extract_features(backbone, images, batch_size)
    test_f = extract_features(backbone, test.images, batch_size)
    device = train_f.device
    return knn_classify(train_f, labels.to(device), test_f, test.labels.to(device), ks=(20,))


def evaluate_config(cfg: Config, model: nn.Module, data: tuple[Split, Split]) -> dict[str, float]:
    """Linear probe + kNN of the method's evaluated backbone, fitted on the train split (or its
    `cfg.eval_subset`, a fixed random subset) and reported on the whole test split."""
    train, test = data
    images, labels = train.images, train.labels
    if cfg.eval_subset and cfg.eval_subset < len(labels):
        idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(12345))[: cfg.eval_subset]
        images, labels = images[idx], labels[idx]
    device = resolve_device(cfg.device)
    metrics = evaluate(model.eval_backbone(), images.to(device), labels.to(device), test.images.to(device),
                       test.labels.to(device), batch_size=cfg.eval_batch_size, probe_epochs=cfg.probe_epochs,
                       seed=cfg.seed)
    metrics["probe_train_images"] = len(labels)
    return metrics


def run(cfg: Config, data: tuple[Split, Split] | None = None, resume: bool = False,
        callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """fit, then linear probe + kNN on the frozen backbone; writes and returns metrics.json.

    `data`, when given, is at its native size: training resizes it to `cfg.data_size`, the final
    evaluation to `cfg.eval_size`."""
    raw = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    result = fit(cfg, raw, callbacks, resume)  # fit resizes to cfg.data_size itself
    metrics: dict[str, Any] = {"method": cfg.method, "backbone": cfg.backbone, "step": result.step,
                               "train_seconds": round(result.seconds, 1), "interrupted": result.interrupted}
    if result.interrupted:
        return metrics
    metrics.update(evaluate_config(cfg, result.model, eval_data(cfg, raw)))
    tail = result.history[-20:]  # the last logged steps, averaged: one step is noisy
    for key in ("teacher_entropy", "teacher_marginal_entropy", "emb_std", "loss"):
        if tail and key in tail[-1]:
            metrics[f"final_{key}"] = sum(row[key] for row in tail) / len(tail)
    metrics["config"] = dataclasses.asdict(cfg)
    (result.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def load_trained(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """Rebuild the method saved in a checkpoint (its own config) and load its weights."""
    payload = load_checkpoint(path, map_location)
    names = {f.name for f in dataclasses.fields(Config)}
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items() if k in names}
    cfg = Config(**saved)
    model = build_method(cfg)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path} does not match a {cfg.method}/{cfg.backbone} model ({first}); "
                              "was it written by another dtlib version?") from None
    return model.to(map_location).eval(), cfg
