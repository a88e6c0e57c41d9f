"""The CPU-scale ablation: which DINO hyper-parameters can Barlow Twins make unnecessary?

Runs every row below for each seed through the CLI (`python -m dtlib train --preset cpu-mini ...`),
skips runs whose metrics.json already exists (so it can be stopped and continued), and writes
results/ablation.json and results/ablation.md with mean ± std over seeds and the exact commands.

usage: python scripts/ablation.py --data-dir ../shared/data/cifar10-jpeg [--seeds 0,1,2] [--jobs 2]
                                  [--rows 0-3] [--name ablation]  # some rows only; results/NAME.{json,md}
                                  [--set key=value ...]   # extra overrides for every run (e.g. a rehearsal)

Timings are only comparable with --jobs 1 (two torch threads): parallel runs share the two cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dtlib.config import make_config, parse_overrides
from dtlib.diagnostics import collapse_verdict

# (name, method, overrides); "random_init" evaluates the untrained backbone. "Full" is the cpu-mini recipe
# (Sinkhorn-Knopp centring, teacher temperature fixed at 0.01: results/dino_recipe.md); each ablation row
# removes or reverts one safeguard.
DINO_TEMP_WARMUP = {"warmup_teacher_temp_epochs": "30", "warmup_teacher_temp": "0.04", "teacher_temp": "0.07"}
ROWS = [
    ("Random init (no training)", "random_init", {}),
    ("Barlow Twins", "barlow_twins", {}),
    ("DINO (full)", "dino", {}),
    ("DINO Twins (full)", "dinotwins", {}),
    ("DINO Twins, beta = 0", "dinotwins", {"beta": "0"}),
    ("DINO, no centering", "dino", {"centering": "none"}),
    ("DINO Twins, no centering", "dinotwins", {"centering": "none"}),
    ("DINO, EMA centre (DINO's) instead of Sinkhorn-Knopp", "dino", {"centering": "ema"}),
    ("DINO Twins, EMA centre instead of Sinkhorn-Knopp", "dinotwins", {"centering": "ema"}),
    ("DINO, DINO's teacher-temp warm-up (0.04 -> 0.07)", "dino", DINO_TEMP_WARMUP),
    ("DINO Twins, DINO's teacher-temp warm-up (0.04 -> 0.07)", "dinotwins", DINO_TEMP_WARMUP),
    ("DINO, fixed teacher momentum", "dino", {"momentum_schedule": "fixed"}),
    ("DINO Twins, fixed teacher momentum", "dinotwins", {"momentum_schedule": "fixed"}),
]
METRICS = ("linear_top1", "knn_top1_k20", "final_teacher_entropy", "final_teacher_marginal_entropy",
           "final_teacher_raw_entropy", "final_teacher_raw_marginal_entropy", "final_emb_std", "train_seconds")


def command(method: str, overrides: dict[str, str], seed: int, out: Path, data_dir: str,
            extra: list[str]) -> list[str]:
    """The CLI call of one run."""
    if method == "random_init":
        cmd = ["python", "-m", "dtlib", "eval", "--random-init", "--preset", "cpu-mini", "--method", "dinotwins"]
    else:
        cmd = ["python", "-m", "dtlib", "train", "--preset", "cpu-mini", "--method", method]
    cmd += ["--seed", str(seed), "--data-dir", data_dir, "--out", str(out)]
    for key, value in overrides.items():
        cmd += [f"--{key}", value]
    return cmd + [f"--{item}" for item in extra]  # the CLI reads --key=value


def run_all(jobs: list[tuple[list[str], Path]], parallel: int) -> None:
    """Run the missing jobs, `parallel` at a time, one torch thread each when parallel > 1."""
    env = dict(os.environ)
    if parallel > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    todo = [(cmd, out) for cmd, out in jobs if not (out / "metrics.json").exists()]
    running: list[tuple[subprocess.Popen, Path]] = []
    while todo or running:
        while todo and len(running) < parallel:
            cmd, out = todo.pop(0)
            out.mkdir(parents=True, exist_ok=True)
            log = (out / "log.txt").open("w")
            print("running:", " ".join(cmd), flush=True)
            running.append((subprocess.Popen([sys.executable, *cmd[1:]], stdout=log, stderr=subprocess.STDOUT,
                                             env=env), out))
        time.sleep(2)
        for proc, out in list(running):
            if proc.poll() is not None:
                running.remove((proc, out))
                status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode}), see {out / 'log.txt'}"
                print(f"done: {out} {status}", flush=True)


def parse_rows(spec: str) -> list[int]:
    """'0-3' or '0,2,5' -> row indices into ROWS."""
    indices: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        indices += range(int(lo), int(hi or lo) + 1)
    bad = [i for i in indices if not 0 <= i < len(ROWS)]
    if bad:
        raise SystemExit(f"--rows {spec}: no row {bad[0]}; there are {len(ROWS)} (0-{len(ROWS) - 1})")
    return indices


def summarise(selected: list[tuple[str, str, dict]], jobs_by_row: dict[str, list[Path]]) -> list[dict]:
    """Mean ± std over seeds of each row's metrics."""
    rows = []
    for (name, method, overrides), outs in zip(selected, jobs_by_row.values(), strict=True):
        found = [json.loads((o / "metrics.json").read_text()) for o in outs if (o / "metrics.json").exists()]
        row = {"name": name, "method": method, "changes": overrides, "seeds": len(found)}
        for key in METRICS:
            values = [m[key] for m in found if m.get(key) is not None]
            if values:
                row[f"{key}_mean"] = statistics.fmean(values)
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
                row[f"{key}_values"] = values
        rows.append(row)
    return rows


def markdown(rows: list[dict], header: str, k: int) -> str:
    """The table as Markdown."""
    def cell(row: dict, key: str, digits: int) -> str:
        if f"{key}_mean" not in row:
            return "—"
        return f"{row[f'{key}_mean']:.{digits}f} ± {row[f'{key}_std']:.{digits}f}"

    def verdict(row: dict) -> str:
        if "final_teacher_raw_entropy_values" not in row:  # no teacher, or runs from before the raw teacher
            return "—"
        states = [collapse_verdict(h, hm, k, raw_entropy=r, raw_marginal_entropy=rm) for h, hm, r, rm in zip(
            row["final_teacher_entropy_values"], row["final_teacher_marginal_entropy_values"],
            row["final_teacher_raw_entropy_values"], row["final_teacher_raw_marginal_entropy_values"])]
        return ", ".join(f"{states.count(s)}× {s}" for s in dict.fromkeys(states))

    lines = [header, "", "| run | seeds | linear top-1 (%) | kNN top-1 k=20 (%) | teacher entropy (nats) | "
                         "batch-mean entropy (nats) | teacher | embedding std | train s |", "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['name']} | {r['seeds']} | {cell(r, 'linear_top1', 2)} | {cell(r, 'knn_top1_k20', 2)} | "
                     f"{cell(r, 'final_teacher_entropy', 3)} | {cell(r, 'final_teacher_marginal_entropy', 3)} | "
                     f"{verdict(r)} | {cell(r, 'final_emb_std', 4)} | {cell(r, 'train_seconds', 0)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the ablation and write results/ablation.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one torch thread each if > 1)")
    parser.add_argument("--runs", default="runs/ablation", help="folder for the individual runs")
    parser.add_argument("--results", default="results", help="folder for ablation.json / ablation.md")
    parser.add_argument("--rows", default=f"0-{len(ROWS) - 1}", help="row indices, e.g. 0-3 or 0,2,5")
    parser.add_argument("--name", default="ablation", help="results file name (without extension)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--summarise-only", action="store_true",
                        help="train nothing: summarise the runs that finished (rows report their seed count)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [ROWS[i] for i in parse_rows(args.rows)]
    jobs, by_row = [], {}
    for name, method, overrides in rows:
        slug = name.lower().replace(",", "").replace(" ", "_").replace("(", "").replace(")", "").replace("-", "")
        by_row[name] = []
        for seed in seeds:
            out = Path(args.runs) / f"{slug}_seed{seed}"
            jobs.append((command(method, overrides, seed, out, args.data_dir, args.set), out))
            by_row[name].append(out)
    if not args.summarise_only:
        run_all(sorted(jobs, key=lambda job: int(job[0][job[0].index("--seed") + 1])), args.jobs)  # seed 0 first
    rows = summarise(rows, by_row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    hardware = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, " \
               f"{args.jobs} run(s) in parallel"
    example = " ".join(jobs[0][0])
    result = {"rows": rows, "command": "python scripts/ablation.py " + " ".join(sys.argv[1:]),
              "example_run": example, "hardware": hardware, "commit": commit, "seeds": seeds,
              "data": "CIFAR-10 (JPEG q75 copy)" if "jpeg" in args.data_dir else args.data_dir}
    Path(args.results).mkdir(parents=True, exist_ok=True)
    (Path(args.results) / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    k = make_config("cpu-mini", **parse_overrides([f"--{item}" for item in args.set])).out_dim
    header = (f"# Ablation (cpu-mini, {result['data']}, seeds {args.seeds})\n\n"
              f"Command: `{result['command']}` at commit {commit}; each run is e.g. `{example}`.\n"
              f"Hardware: {hardware}. Mean ± std over seeds; teacher entropy and embedding std are the means "
              f"of the last 20 logged steps (ceiling ln K = ln {k} ≈ {math.log(k):.2f} nats); the teacher column "
              f"is the collapse verdict of each seed (`dtlib.diagnostics.collapse_verdict`).")
    (Path(args.results) / f"{args.name}.md").write_text(markdown(rows, header, k))
    print(markdown(rows, header, k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
