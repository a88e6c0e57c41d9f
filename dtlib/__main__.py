"""Command line: python -m dtlib {train, eval, bench}."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .checkpoint import CheckpointError
from .config import (
    BACKBONES,
    EVAL_SPLITS,
    METHODS,
    PRESETS,
    WANDB_MODES,
    ConfigError,
    make_config,
    parse_overrides,
    validate,
)
from .data import DataError
from .train import TrainingError

EPILOG = """examples:
  python -m dtlib train                                   # DINO Twins, GPU recipe or cpu-mini
  python -m dtlib train --method barlow_twins --preset cpu-mini --data-dir ../shared/data/cifar10-jpeg
  python -m dtlib train --preset cifar10-resnet18 --beta 0.01 --centering none
  python -m dtlib eval --checkpoint runs/latest/checkpoint.pt
  python -m dtlib bench
  torchrun --nproc_per_node=2 -m dtlib train --preset cifar10-resnet18   # 2 GPUs, each half of every batch
any config field can be set with --name value (see dtlib/config.py)."""


def _print_metrics(metrics: dict[str, Any]) -> None:
    print(f"\n{metrics['method']} / {metrics['backbone']}  ({metrics['train_seconds']} s of training), "
          f"scored on the {metrics.get('split', 'test')} split")
    for key in ("linear_top1", "linear_top5", "knn_top1_k20", "knn_top1_k200"):
        if key in metrics:
            print(f"  {key:<14} {metrics[key]:6.2f} %")


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from .train import resolve_device, run

    preset = args.preset
    if preset is None:
        preset = "cifar10-resnet18" if torch.cuda.is_available() else "cpu-mini"
        print(f"preset: {preset} ({'CUDA GPU found' if preset != 'cpu-mini' else 'no CUDA GPU: CPU-sized run'}); "
              "choose another with --preset")
    overrides = parse_overrides(rest)
    for key in ("method", "backbone", "data_dir", "out", "wandb"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    cfg = make_config(preset, **overrides)
    if cfg.data_dir is not None and not Path(cfg.data_dir).exists():
        raise DataError(f"data folder {cfg.data_dir} does not exist: pass --data-dir with an existing folder "
                        "(an ImageFolder root with train/ and test/, or a torchvision CIFAR folder)")
    if distributed.is_main():
        print(f"training {cfg.method} / {cfg.backbone} for {cfg.epochs} epochs on {resolve_device(cfg.device)}, "
              f"writing to {cfg.out}")
    callbacks = []
    if cfg.wandb != "disabled" and distributed.is_main():  # fit calls callbacks on rank 0 alone
        from .tracking import WandbLogger

        callbacks.append(WandbLogger(cfg))
    try:
        metrics = run(cfg, resume=args.resume, callbacks=callbacks)
    finally:
        distributed.cleanup()  # torchrun: leave the process group
    if metrics["interrupted"]:
        return 130
    if not distributed.is_main():  # under torchrun rank 0 alone evaluates, prints and writes the metrics
        return 0
    _print_metrics(metrics)
    print(f"metrics written to {Path(cfg.out) / 'metrics.json'}")
    return 0


def cmd_eval(args: argparse.Namespace, rest: list[str]) -> int:
    from .build import build_method
    from .checkpoint import load_trained
    from .evaluate import eval_data, evaluate
    from .train import resolve_device

    if args.random_init:  # the baseline every method must beat: the same backbone, untrained
        cfg = make_config(args.preset or "cpu-mini", **parse_overrides(rest))
        torch.manual_seed(cfg.seed)
        model, source = build_method(cfg).eval(), f"random init (seed {cfg.seed})"
        args.out = args.out or cfg.out
    elif args.checkpoint is None:
        raise ConfigError("eval needs --checkpoint PATH (or --random-init [--preset NAME] for the baseline)")
    else:
        if rest:
            raise ConfigError(f"unexpected arguments {' '.join(rest)}: a checkpoint carries its own config")
        model, cfg = load_trained(args.checkpoint)
        source = str(args.checkpoint)
    cfg = dataclasses.replace(cfg, device=str(resolve_device(args.device)),
                              data_dir=args.data_dir if args.data_dir is not None else cfg.data_dir,
                              eval_split=args.split or cfg.eval_split)
    validate(cfg)
    train, test = eval_data(cfg)  # the run's dataset, at the evaluation size
    model.to(cfg.device)
    metrics: dict[str, Any] = {"method": "random_init" if args.random_init else cfg.method,
                               "backbone": cfg.backbone, "checkpoint": source, "train_seconds": 0.0}
    metrics.update(evaluate(cfg, model.eval_backbone(), (train, test)))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    out.mkdir(parents=True, exist_ok=True)
    metrics["config"] = dataclasses.asdict(cfg)
    path = out / "metrics.json"
    if not args.random_init and path.exists():  # re-evaluating a run: keep what its training recorded
        previous = json.loads(path.read_text())
        metrics = {**previous, **metrics, "train_seconds": previous.get("train_seconds", 0.0)}
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    _print_metrics(metrics)
    print(f"metrics written to {out / 'metrics.json'}")
    return 0


def cmd_bench(args: argparse.Namespace, rest: list[str]) -> int:
    from .bench import main as bench_main

    return bench_main(rest)


def cmd_pack_data(args: argparse.Namespace, rest: list[str]) -> int:
    from .pack import main as pack_main

    return pack_main(rest)


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input gives one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m dtlib", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a method, then linear probe + kNN")
    p.add_argument("--method", choices=METHODS)
    p.add_argument("--backbone", choices=BACKBONES)
    p.add_argument("--preset", help=" | ".join(PRESETS))
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--out")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--wandb", choices=WANDB_MODES)
    p = sub.add_parser("eval", help="linear probe + kNN of a checkpoint")
    p.add_argument("--checkpoint")
    p.add_argument("--random-init", dest="random_init", action="store_true",
                   help="evaluate an untrained backbone (use --preset and --key value to choose it)")
    p.add_argument("--preset", help=" | ".join(PRESETS))
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--out")
    p.add_argument("--device", default="auto")
    p.add_argument("--split", choices=EVAL_SPLITS,
                   help="score the validation hold-out (recipe choices) or the test split (final rows); "
                        "default: the run's eval_split")
    sub.add_parser("bench", help="images/s of a training step per method and backbone", add_help=False)
    sub.add_parser("pack-data", help="an ImageFolder dataset as one .tgz (for a device run)", add_help=False)
    args, rest = parser.parse_known_args(argv)
    commands = {"train": cmd_train, "eval": cmd_eval, "bench": cmd_bench, "pack-data": cmd_pack_data}
    try:
        return commands[args.command](args, rest)
    except (ConfigError, DataError, CheckpointError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
