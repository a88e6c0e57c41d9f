"""The DINO recipe study: which settings keep DINO's teacher alive at cpu-mini scale.

Each variant is the cpu-mini preset plus a few overrides. A run trains, probes the teacher's backbone
(linear + kNN, as `python -m dtlib train` does) and records the final teacher entropy, the entropy of the
batch-mean teacher distribution and the entropy trajectory. Rows accumulate in results/dino_recipe.json
(one per variant and seed); --report rewrites results/dino_recipe.md and images/dino_recipe_entropy.png
from it.

    python scripts/dino_recipe.py --data-dir ../shared/data/cifar10-jpeg --only dino_base,dino_bn --seeds 0
    python scripts/dino_recipe.py --report
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import sys
from pathlib import Path

import torch

from dtlib.config import make_config
from dtlib.data import load_dataset
from dtlib.diagnostics import collapse_verdict
from dtlib.train import eval_data, evaluate_config, fit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "dino_recipe.json"
TABLE_START, TABLE_END = "<!-- rows: written by scripts/dino_recipe.py -->", "<!-- end of rows -->"

# name -> (what it tests, overrides of the cpu-mini preset as of the study's start). The preset later
# adopted the winning settings; rows keep the overrides they ran with (`config` in the JSON).
OLD = dict(head_bn=False, centering_method="ema", teacher_temp_warmup=True, teacher_temp=0.07,
           warmup_teacher_temp=0.04,
           lr=4e-3, warmup_epochs=0.05, head_lr_scale=1.0, freeze_last_layer=0, out_dim=1024, n_local=2,
           center_momentum=0.9, momentum_teacher=0.9, momentum_schedule="cosine", beta=0.2,
           warmup_teacher_temp_epochs=1)
VARIANTS: dict[str, tuple[str, dict]] = {}


def variant(name: str, what: str, **changes) -> None:
    """Register a study row: the old cpu-mini DINO settings with `changes`."""
    VARIANTS[name] = (what, {**OLD, **changes})


variant("dino_base", "the old cpu-mini DINO (teacher temp 0.04 -> 0.07 over the run)", method="dino")
variant("dino_bn", "+ BatchNorm in the head's hidden layers", method="dino", head_bn=True)
variant("dino_bn_t04", "+ head BN, teacher temp fixed at 0.04", method="dino", head_bn=True,
        teacher_temp_warmup=False, teacher_temp=0.04)
variant("dino_bn_t04_lr1", "+ head BN, temp 0.04, lr 1e-3, warm-up 0.2 epoch", method="dino", head_bn=True,
        teacher_temp_warmup=False, teacher_temp=0.04, lr=1e-3, warmup_epochs=0.2)
variant("dino_t04_lr1", "temp 0.04, lr 1e-3, warm-up 0.2 epoch (no head BN)", method="dino",
        teacher_temp_warmup=False, teacher_temp=0.04, lr=1e-3, warmup_epochs=0.2)

BN04 = dict(method="dino", head_bn=True, teacher_temp_warmup=False, teacher_temp=0.04)
variant("dino_bn_t04_m99", "+ head BN, temp 0.04, teacher momentum 0.99 -> 1", **BN04, momentum_teacher=0.99)
variant("dino_bn_t04_m996", "+ head BN, temp 0.04, teacher momentum 0.996 -> 1", **BN04, momentum_teacher=0.996)
variant("dino_bn_t02", "+ head BN, teacher temp fixed at 0.02", **{**BN04, "teacher_temp": 0.02})
variant("dino_bn_t04_k256", "+ head BN, temp 0.04, K = 256 prototypes", **BN04, out_dim=256)
variant("dino_bn_t04_l0", "+ head BN, temp 0.04, no local crops (two global crops only)", **BN04, n_local=0)
variant("dino_bn_t04_lbig", "+ head BN, temp 0.04, 2 local crops of 12 px at 25-60 % area", **BN04,
        local_size=12, local_scale=(0.25, 0.6))
variant("dino_sk", "Sinkhorn-Knopp centring instead of the EMA centre", method="dino",
        centering_method="sinkhorn")
variant("dino_sk_k256", "Sinkhorn-Knopp centring, K = 256", method="dino", centering_method="sinkhorn", out_dim=256)
variant("dino_bn_sk", "Sinkhorn-Knopp centring + head BN", method="dino", centering_method="sinkhorn", head_bn=True)
SK = dict(method="dino", centering_method="sinkhorn", teacher_temp_warmup=False)
variant("dino_sk_t04", "Sinkhorn-Knopp, teacher temp fixed at 0.04", **SK, teacher_temp=0.04)
variant("dino_sk_t02", "Sinkhorn-Knopp, teacher temp fixed at 0.02", **SK, teacher_temp=0.02)
variant("dino_sk_t01", "Sinkhorn-Knopp, teacher temp fixed at 0.01", **SK, teacher_temp=0.01)
variant("dt_base", "DINO Twins (beta 0.2) with the old cpu-mini DINO settings", method="dinotwins")
variant("dt_sk_t02", "DINO Twins, Sinkhorn-Knopp, teacher temp 0.02", **{**SK, "method": "dinotwins"},
        teacher_temp=0.02)
variant("dino_bn_sk_t02", "Sinkhorn-Knopp, teacher temp 0.02, head BN", **SK, teacher_temp=0.02, head_bn=True)
variant("dt_bn_sk_t02", "DINO Twins, Sinkhorn-Knopp, teacher temp 0.02, head BN", **{**SK, "method": "dinotwins"},
        teacher_temp=0.02, head_bn=True)
variant("dt_sk_t02_b05", "DINO Twins, Sinkhorn-Knopp, temp 0.02, beta 0.05", **{**SK, "method": "dinotwins"},
        teacher_temp=0.02, beta=0.05)
variant("dt_sk_t02_b1", "DINO Twins, Sinkhorn-Knopp, temp 0.02, beta 1", **{**SK, "method": "dinotwins"},
        teacher_temp=0.02, beta=1.0)
variant("bt", "Barlow Twins alone (the reference DINO Twins must beat)", method="barlow_twins")
variant("dino_sk_t005", "Sinkhorn-Knopp, teacher temp fixed at 0.005", **SK, teacher_temp=0.005)
variant("dt_sk_t01", "DINO Twins, Sinkhorn-Knopp, teacher temp 0.01", **{**SK, "method": "dinotwins"},
        teacher_temp=0.01)
variant("dt_sk_t01_b05", "DINO Twins, Sinkhorn-Knopp, temp 0.01, beta 0.05", **{**SK, "method": "dinotwins"},
        teacher_temp=0.01, beta=0.05)
variant("dt_sk_t01_b01", "DINO Twins, Sinkhorn-Knopp, temp 0.01, beta 0.01", **{**SK, "method": "dinotwins"},
        teacher_temp=0.01, beta=0.01)
variant("dt_sk_t01_b002", "DINO Twins, Sinkhorn-Knopp, temp 0.01, beta 0.002", **{**SK, "method": "dinotwins"},
        teacher_temp=0.01, beta=0.002)
variant("dino_bn_t04_l6", "+ head BN, temp 0.04, 6 local 8-px crops (not 2)", **BN04, n_local=6)


def run_variant(name: str, seed: int, data_dir: str, raw) -> dict:
    """Train and probe one variant; returns its JSON row."""
    what, overrides = VARIANTS[name]
    cfg = make_config("cpu-mini", data_dir=data_dir, out=f"runs/dino_recipe/{name}_s{seed}", seed=seed,
                      **overrides)
    result = fit(cfg, raw)
    metrics = evaluate_config(cfg, result.model, eval_data(cfg, raw))
    tail = result.history[-20:]  # the last logged steps, averaged: one step is noisy
    final = {k: sum(r[k] for r in tail) / len(tail) for k in tail[-1]
             if k in ("teacher_entropy", "teacher_marginal_entropy", "emb_std", "loss")}
    flags = " ".join(f"--{k} {','.join(map(str, v)) if isinstance(v, tuple) else v}"
                     for k, v in overrides.items())
    return {
        "name": name, "what": what, "seed": seed, "steps": result.step,
        "command": f"python -m dtlib train --preset cpu-mini --seed {seed} {flags}",
        "train_seconds": round(result.seconds, 1),
        "linear_top1": metrics["linear_top1"], "knn_top1_k20": metrics["knn_top1_k20"],
        **{f"final_{k}": v for k, v in final.items()},
        "out_dim": cfg.out_dim,
        "entropy_trajectory": [(r["step"], round(r["teacher_entropy"], 3)) for r in result.history
                               if "teacher_entropy" in r],
        "config": overrides,
    }


def load_rows() -> list[dict]:
    """Rows recorded so far."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else []


def save_row(row: dict) -> None:
    """Replace the row of the same (name, seed), or append it (under a lock: runs may go in parallel)."""
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [r for r in load_rows() if (r["name"], r["seed"]) != (row["name"], row["seed"])] + [row]
        RESULTS.write_text(json.dumps(rows, indent=1) + "\n")


def report(rows: list[dict]) -> str:
    """The markdown table of every recorded row, in VARIANTS order."""
    order = {n: i for i, n in enumerate(VARIANTS)}
    rows = sorted(rows, key=lambda r: (order.get(r["name"], 1e9), r["seed"]))
    lines = ["| variant | what changes | seed | train s | linear top-1 (%) | kNN k=20 (%) | teacher entropy "
             "(nats, / ln K) | batch-mean entropy (nats) | verdict |", "|" + "---|" * 9]
    for r in rows:
        h, hm = r.get("final_teacher_entropy"), r.get("final_teacher_marginal_entropy")
        if h is None:  # Barlow Twins: no teacher
            teacher, verdict = "— | —", "—"
        else:
            teacher = f"{h:.2f} ({h / math.log(r['out_dim']):.2f}) | {hm:.2f}"
            raw = r.get("final_teacher_raw_entropy"), r.get("final_teacher_raw_marginal_entropy")
            verdict = "— (no raw teacher logged)" if raw[0] is None else collapse_verdict(
                h, hm, r["out_dim"], raw_entropy=raw[0], raw_marginal_entropy=raw[1])
        lines.append(f"| `{r['name']}` | {r['what']} | {r['seed']} | {r['train_seconds']:.0f} | "
                     f"{r['linear_top1']:.2f} | {r['knn_top1_k20']:.2f} | {teacher} | {verdict} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Teacher entropy / ln K against the step (seed 0): EMA-centre variants left, Sinkhorn-Knopp right."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for r in rows:
        if r["seed"] != 0 or not r["entropy_trajectory"]:
            continue
        steps, h = zip(*r["entropy_trajectory"])
        ax = axes[1 if r["config"].get("centering_method") == "sinkhorn" else 0]
        ax.plot(steps, [v / math.log(r["out_dim"]) for v in h], lw=1.1,
                label=f"{r['name']} ({r['linear_top1']:.1f} %)")
    for ax, title in zip(axes, ("EMA centre (DINO)", "Sinkhorn-Knopp centring")):
        ax.axhline(0.85, color="k", ls="--", lw=0.8)
        ax.set(xlabel="step", title=title, ylim=(0, 1.05))
        ax.legend(fontsize=6, loc="lower right")
    axes[0].set_ylabel("teacher entropy / ln K")
    fig.suptitle("Teacher entropy during one cpu-mini epoch (seed 0; legend: linear top-1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", action="store_true", help="only rewrite the markdown table and the plot")
    args = parser.parse_args()
    if not args.report:
        if not args.data_dir:
            parser.error("--data-dir is required to train (or pass --report)")
        names = [n for n in args.only.split(",") if n] or list(VARIANTS)
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        torch.set_num_threads(args.threads)
        raw = load_dataset("cifar10", args.data_dir)
        for name in names:
            for seed in (int(s) for s in args.seeds.split(",")):
                row = run_variant(name, seed, args.data_dir, raw)
                save_row(row)
                print(json.dumps({k: v for k, v in row.items() if k not in ("entropy_trajectory", "config")}))
    rows = load_rows()
    md = ROOT / "results" / "dino_recipe.md"  # the table goes between its two markers
    before, _, rest = md.read_text().partition(TABLE_START)
    md.write_text(before + TABLE_START + "\n" + report(rows) + "\n" + TABLE_END + rest.partition(TABLE_END)[2])
    plot(rows, ROOT / "images" / "dino_recipe_entropy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
