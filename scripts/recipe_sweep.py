"""One point of a cpu-mini recipe sweep: train with overrides, then probe the teacher *and* the student.

DINO evaluates the teacher; in a run of a few hundred steps a slow EMA teacher can lag the student, and
this script shows by how much. Prints one line (and appends it to --log) with the overrides, steps, train
seconds, linear/kNN top-1 and the last logged loss, teacher entropy and embedding std.

usage: python scripts/recipe_sweep.py --data-dir ../shared/data/cifar10-jpeg --set method=barlow_twins \
           --set warmup_epochs=0.5 [--threads 2] [--log results/cpu_recipe_runs.txt]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from dtlib.config import make_config, parse_overrides
from dtlib.data import load_dataset
from dtlib.evaluate import eval_data, evaluate
from dtlib.train import final_logs, fit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--preset", default="cpu-mini")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--out", default="runs/recipe_sweep")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log", default=None, help="append the result line to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = parse_overrides([f"--{item}" for item in args.set])
    cfg = make_config(args.preset, data_dir=args.data_dir, out=args.out, **overrides)
    raw = load_dataset(cfg.dataset, cfg.data_dir)
    result = fit(cfg, raw)  # fit resizes to cfg.data_size itself
    data = eval_data(cfg, raw)
    metrics = evaluate(cfg, result.model.eval_backbone(), data)  # the teacher's backbone for DINO and DINO Twins
    scores = {k: metrics[k] for k in ("linear_top1", "knn_top1_k20")}
    student = getattr(result.model, "student", None)  # DINO and DINO Twins: does the teacher lag?
    if student is not None:
        scores["student_linear_top1"] = evaluate(cfg, student.backbone, data)["linear_top1"]
    final = final_logs(result.history)
    last = {f"final_{k}": round(final[k], 3)
            for k in ("loss", "teacher_entropy", "teacher_marginal_entropy", "emb_std") if k in final}
    line = json.dumps({"overrides": overrides, "steps": result.step, "train_seconds": round(result.seconds),
                       **{k: round(v, 2) for k, v in scores.items()}, **last})
    print(line)
    if args.log:
        with open(args.log, "a") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
