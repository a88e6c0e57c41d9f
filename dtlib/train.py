"""fit(): the training loop — data on the device, views per step, AMP, schedules, checkpoints.

`fit` reads top to bottom: set up (data, model, optimizer, schedules, resume), then one loop over
steps: set the scheduled hyper-parameters, make views, take a step, log, evaluate and checkpoint at
epoch ends, stop cleanly on Ctrl-C. `run` wraps it with the final linear probe and kNN.
"""

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

from . import distributed
from .amp import amp_dtype, resume_states
from .augment import ViewMaker
from .build import build_method, build_schedules, build_view_maker, total_steps
from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .config import Config, validate
from .data import Split, load_dataset, random_subset, resize_split, split_validation
from .evaluate import eval_data, evaluate, knn_report
from .methods import Method
from .optim import build_optimizer

Callback = Callable[[str, dict[str, Any]], None]
SCHEDULED = ("lr", "weight_decay", "momentum", "teacher_temp")


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


def enable_fast_cuda_math() -> None:
    """cuDNN autotuning (the view shapes never change) and TF32 matmuls for the float32 parts."""
    torch.backends.cudnn.benchmark = True
    # TF32 convolutions are PyTorch's default already; matmuls are not.
    torch.set_float32_matmul_precision("high")


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's `random`."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def prepare_data(cfg: Config, data: tuple[Split, Split] | None = None) -> tuple[Split, Split]:
    """Load (train, test) unless given, resized to `cfg.data_size` (the training size) when set."""
    train, test = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    return resize_split(train, cfg.data_size), resize_split(test, cfg.data_size)


def train_subset(cfg: Config, train: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 training images and labels: the train split less its validation hold-out, or a fixed
    random subset of `cfg.subset` of that."""
    rest = random_subset(split_validation(train, cfg.val_fraction)[0], cfg.subset)
    return rest.images, rest.labels


def steps_per_epoch(cfg: Config, train: Split) -> int:
    """Optimiser steps per epoch of `cfg` on `train` (its `cfg.subset`; whole batches only), as in fit."""
    return len(train_subset(cfg, train)[0]) // cfg.batch_size


def epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The order of epoch `epoch`, a function of (seed, epoch) alone so a resumed run sees the same."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def set_hyperparameters(optimizer: torch.optim.Optimizer, schedules: dict[str, np.ndarray], step: int) -> None:
    """This step's scheduled lr, and weight decay on the groups that decay."""
    for group in optimizer.param_groups:
        group["lr"] = float(schedules["lr"][step]) * group.get("lr_mult", 1.0)  # get: older checkpoints
        if group["decay"]:
            group["weight_decay"] = float(schedules["weight_decay"][step])


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
        scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    if freeze_last_layer:
        for p in model.last_layer_parameters():
            p.grad = None  # the optimiser step leaves the frozen prototypes unchanged
    scaler.step(optimizer)
    scaler.update()
    model.update_teacher(momentum)
    return logs


class MetricsLog:
    """Per-step logs held on the device until `flush`, which syncs once, stops on a non-finite loss,
    appends the rows to metrics.jsonl and hands them to the callbacks ("log" event).

    On resume, rows logged after the checkpoint's step are dropped from the file and the history.
    With `write=False` (the other ranks under torchrun) the file is left to rank 0. With `eager` (CPU, one
    process: the step was checked before its update) a non-finite loss is flushed, and so stops, at once.
    """

    def __init__(self, path: Path, start: int, steps_per_epoch: int, callbacks: Sequence[Callback],
                 write: bool = True, eager: bool = False):
        kept = []
        if start and path.exists():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] < start]
        if write:
            path.write_text("".join(line + "\n" for line in kept))
        self.history: list[dict[str, float]] = [json.loads(line) for line in kept]
        self.path, self.steps_per_epoch, self.callbacks, self.write, self.eager = (
            path, steps_per_epoch, callbacks, write, eager)
        self.pending: list[tuple[int, dict[str, torch.Tensor], dict[str, float]]] = []
        self.images_since, self.last_flush, self.images_per_s = 0, time.perf_counter(), 0.0

    def add(self, step: int, logs: dict[str, torch.Tensor], n_images: int, extra: dict[str, float]) -> None:
        """Keep one step's logs (device tensors) and its host values (`extra`) for the next flush."""
        self.pending.append((step, logs, extra))
        self.images_since += n_images
        if self.eager and not torch.isfinite(logs["loss"]):
            self.flush()

    def flush(self) -> list[dict[str, float]]:
        """Write the pending rows and return them; TrainingError if a loss is not finite."""
        if not self.pending:
            return []
        keys = list(self.pending[0][1])
        values = torch.stack([torch.stack([logs[k].float() for k in keys]) for _, logs, _ in self.pending]).tolist()
        rows = [{"step": step, "epoch": step // self.steps_per_epoch, **dict(zip(keys, vals)), **extra}
                for (step, _, extra), vals in zip(self.pending, values)]
        self.pending.clear()
        for row in rows:
            if not math.isfinite(row["loss"]):
                raise TrainingError(
                    f"loss became {row['loss']} at step {row['step']} (epoch {row['epoch']}): training "
                    f"diverged. Try a lower --lr, --clip_grad 3, or --amp false; the last good checkpoint, if "
                    f"any, is in {self.path.parent} (resume with --resume)")
        if self.write:
            with self.path.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        self.history.extend(rows)
        now = time.perf_counter()
        self.images_per_s = self.images_since / max(now - self.last_flush, 1e-9)
        self.images_since, self.last_flush = 0, now
        emit(self.callbacks, "log", {"rows": rows, "images_per_s": self.images_per_s})
        return rows


def emit(callbacks: Sequence[Callback], event: str, payload: dict[str, Any]) -> None:
    """Call every callback with (event, payload)."""
    for cb in callbacks:
        cb(event, payload)


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


@dataclass
class Training:
    """Everything a run's steps need, built once from a Config by `Training.setup`: the model (DDP-wrapped
    under torchrun), optimiser, schedules, grad scaler, view maker and the images. `fit` and
    `bench.time_steps` both step through one, so a benchmark times exactly what training runs."""

    cfg: Config
    model: Method
    step_fn: Callable
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    schedules: dict[str, np.ndarray]
    view_maker: ViewMaker
    generator: torch.Generator  # the augmentations' own random stream
    images: torch.Tensor  # uint8 (N, 3, H, W), held on the device for the whole run
    steps_per_epoch: int
    n_steps: int
    check_finite: bool  # CPU, one process: a non-finite loss is caught before its update
    _perm: tuple[int, torch.Tensor] | None = None  # (epoch, its order)

    @classmethod
    def setup(cls, cfg: Config, images: torch.Tensor, device: torch.device) -> Training:
        """Build the model and its training state for `images` (uint8, any device) on `device`."""
        steps_per_epoch = len(images) // cfg.batch_size
        if steps_per_epoch == 0:
            raise TrainingError(f"batch_size {cfg.batch_size} is larger than the {len(images)} training images")
        world = distributed.world_size()  # each rank makes views of its slice of a batch
        if cfg.batch_size % world:
            raise TrainingError(f"batch_size {cfg.batch_size} must be divisible by the {world} processes")
        model = build_method(cfg).to(device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model = distributed.sync_batchnorm(model, device)
        optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay, cfg.head_lr_scale)
        dtype = amp_dtype(device, cfg.amp)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)  # bf16, fp32: no scaling
        schedules = build_schedules(cfg, steps_per_epoch)
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
        view_maker = build_view_maker(cfg)  # channels_last views when cfg.channels_last
        # DDP averages the student's gradients over the ranks; the teacher (no gradients) stays out of it.
        step_fn = distributed.data_parallel(model, device, find_unused_parameters=model.unused_parameters)
        step_fn = torch.compile(step_fn) if cfg.compile else step_fn
        return cls(cfg, model, step_fn, optimizer, scaler, dtype, schedules, view_maker, generator,
                   images.to(device), steps_per_epoch, total_steps(cfg, steps_per_epoch),
                   device.type == "cpu" and world == 1)  # a skipped step would stall DDP

    def batch(self, step: int) -> torch.Tensor:
        """Step `step`'s images (B, 3, H, W) uint8: its slice of the epoch's order."""
        epoch, it = divmod(step, self.steps_per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, epoch_permutation(self.cfg.seed, epoch, len(self.images), self.images.device))
        return self.images[self._perm[1][it * self.cfg.batch_size:(it + 1) * self.cfg.batch_size]]

    def hyperparameters(self, step: int) -> dict[str, float]:
        """Step `step`'s scheduled values (lr, weight decay, teacher momentum and temperature)."""
        return {k: float(self.schedules[k][step]) for k in SCHEDULED}

    def step(self, step: int, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on `batch` with step `step`'s schedules; detached logs (no host sync)."""
        set_hyperparameters(self.optimizer, self.schedules, step)
        views = self.view_maker(batch, self.generator, (distributed.rank(), distributed.world_size()))
        hyper = self.hyperparameters(step)
        freeze = step < round(self.cfg.freeze_last_layer * self.steps_per_epoch)  # fractions count steps
        return train_step(self.model, self.step_fn, self.optimizer, self.scaler, views, self.dtype,
                          teacher_temp=hyper["teacher_temp"], momentum=hyper["momentum"],
                          clip_grad=self.cfg.clip_grad, freeze_last_layer=freeze, check_finite=self.check_finite)

    def save(self, path: Path, step: int) -> None:
        """Checkpoint everything bit-exact resume needs after `step` steps."""
        save_checkpoint(path, model=self.model, optimizer=self.optimizer, scaler=self.scaler, step=step,
                        config=self.cfg, generator=self.generator)

    def resume(self, path: Path) -> int:
        """Load the checkpoint at `path` into this training state; the step to continue from."""
        payload = load_checkpoint(path, map_location=self.images.device)
        check_compatible(payload, self.cfg, path)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        resume_states(payload, self.scaler, self.generator, self.cfg.seed)  # across device kinds too (dtlib/amp.py)
        return payload["step"]


def fit(cfg: Config, data: tuple[Split, Split] | None = None, callbacks: Sequence[Callback] = (),
        resume: bool = False) -> FitResult:
    """Train `cfg.method`; returns the model and history. Ctrl-C saves a checkpoint and returns.

    Callbacks receive ("log", {"rows": [...]}) at every log flush, ("epoch", {...}) after each
    epoch and ("end", {...}) once. The kNN report (`cfg.knn_every`) scores the validation hold-out.
    """
    validate(cfg)
    seed_everything(cfg.seed)
    device = distributed.setup(resolve_device(cfg.device))  # cuda:LOCAL_RANK under torchrun
    if device.type == "cuda":
        enable_fast_cuda_math()
    main = distributed.is_main()  # rank 0 alone writes checkpoints, logs and metrics, and evaluates
    callbacks = callbacks if main else ()
    train, test = prepare_data(cfg, data)
    images, labels = train_subset(cfg, train)
    monitor = split_validation(train, cfg.val_fraction)[1] if cfg.val_fraction > 0 else test  # the kNN report's
    t = Training.setup(cfg, images, device)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    start = t.resume(ckpt_path) if resume and ckpt_path.exists() else 0
    if not resume and ckpt_path.exists() and main:  # a fresh run never destroys an earlier one's checkpoint
        os.replace(ckpt_path, ckpt_path.with_name("checkpoint.prev.pt"))
        print(f"{ckpt_path} already existed: moved to checkpoint.prev.pt (use --resume to continue a run instead)")
    log = MetricsLog(out / "metrics.jsonl", start, t.steps_per_epoch, callbacks, write=main, eager=t.check_finite)

    t.model.train()
    t0 = time.perf_counter()
    interrupted, done = False, start
    pbar = tqdm(total=t.n_steps, initial=start, desc=f"{cfg.method} {cfg.backbone}", unit="step", disable=not main)
    with _StopFlag() as stop:
        for step in range(start, t.n_steps):
            batch = t.batch(step)
            log.add(step, t.step(step, batch), len(batch), t.hyperparameters(step))
            pbar.update(1)
            done = step + 1
            epoch, epoch_end = divmod(step, t.steps_per_epoch)[0], done % t.steps_per_epoch == 0
            # The last step saves too when `cfg.steps` ends the run inside an epoch.
            save = (epoch_end and (epoch + 1) % cfg.save_every == 0) or done == t.n_steps
            if save or done % cfg.log_every == 0 or done == t.n_steps:
                show_progress(pbar, log.flush(), log.images_per_s)
            if save and main:
                t.save(ckpt_path, done)
            if epoch_end:
                info: dict[str, Any] = {"epoch": epoch, "step": done, "model": t.model, "images": t.images}
                if cfg.knn_every and (epoch + 1) % cfg.knn_every == 0 and main:
                    info.update(knn_report(cfg, t.model.eval_backbone(), t.images, labels, monitor))
                    split = "val" if cfg.val_fraction > 0 else "test"
                    pbar.write(f"epoch {epoch + 1}: kNN top-1 ({split}, report only) {info['knn_top1_k20']:.2f} %")
                emit(callbacks, "epoch", info)
            if stop.requested and done < t.n_steps:
                show_progress(pbar, log.flush(), log.images_per_s)
                if main:
                    t.save(ckpt_path, done)
                pbar.write(f"interrupted: checkpoint saved at step {done} in {ckpt_path}; continue with --resume")
                interrupted = True
                break
    pbar.close()
    seconds = time.perf_counter() - t0
    emit(callbacks, "end", {"step": done, "seconds": seconds})
    return FitResult(t.model, log.history, cfg, out, done, interrupted, seconds)


def show_progress(pbar: tqdm, rows: list[dict[str, float]], images_per_s: float) -> None:
    """Latest loss, lr and training speed on the progress bar."""
    if rows:
        pbar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", lr=f"{rows[-1]['lr']:.2e}", img_s=f"{images_per_s:.0f}")


def final_logs(history: list[dict[str, float]], n: int = 20) -> dict[str, float]:
    """The mean of every logged value over the last `n` logged steps (one step is noisy); {} if none."""
    tail = history[-n:]
    return {key: sum(row[key] for row in tail) / len(tail) for key in (tail[-1] if tail else {})
            if key not in ("step", "epoch")}


def run(cfg: Config, data: tuple[Split, Split] | None = None, resume: bool = False,
        callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """fit, then linear probe + kNN on the frozen backbone; writes and returns metrics.json.

    `data`, when given, is at its native size: training resizes it to `cfg.data_size`, the final
    evaluation to `cfg.eval_size`."""
    raw = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    result = fit(cfg, raw, callbacks, resume)  # fit resizes to cfg.data_size itself
    metrics: dict[str, Any] = {"method": cfg.method, "backbone": cfg.backbone, "step": result.step,
                               "train_seconds": round(result.seconds, 1), "interrupted": result.interrupted}
    if result.interrupted or not distributed.is_main():  # under torchrun rank 0 alone evaluates
        return metrics
    metrics.update(evaluate(cfg, result.model.eval_backbone(), eval_data(cfg, raw)))
    final = final_logs(result.history)
    for key in ("teacher_entropy", "teacher_marginal_entropy", "teacher_raw_entropy",
                "teacher_raw_marginal_entropy", "emb_std", "loss"):
        if key in final:
            metrics[f"final_{key}"] = final[key]
    metrics["config"] = dataclasses.asdict(cfg)
    (result.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
