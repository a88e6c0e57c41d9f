"""The measured studies of results/: recipe selection on the validation hold-out, the pre-registered main
comparison on test, the budget sweep. Every run is one CLI call (`python -m dtlib train|eval ...`).

usage: python scripts/study.py run STUDY --data-dir ../shared/data/cifar10-jpeg [--jobs 2]
       python scripts/study.py summarise STUDY      # tables only, from the runs that finished

Runs whose metrics.json exists, or that results/ already records, are skipped, so a study can be stopped
and continued (in a later session too: each recorded run keeps the commit it ran at). With --jobs 2 the runs
go two at a time, each with one torch thread and pinned to its own core (`taskset -c CORE`), as the numbers
in results/ say next to them. results/STUDY.json holds one object per run (method, seed, split, epochs,
linear_top1, knn_top1_k20, train_seconds, the command, the diagnostics) plus the commit and hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dtlib.config import make_config
from dtlib.diagnostics import collapse_verdict, raw_information
from dtlib.plots import markdown_table
from dtlib.stats import holm, mean_sd, paired_difference

RESULTS = Path(__file__).resolve().parents[1] / "results"
PRESET = "cpu-mini"
SELECTION_SEEDS = (0, 1, 2)  # the seeds the earlier cpu-mini results used
POWER_SEEDS = tuple(range(100, 110))  # fresh: no earlier run used them
SAFEGUARD_SEEDS = tuple(range(110, 115))  # fresh again (results/safeguards.md)
NON_INFERIORITY = 0.5  # points of linear top-1, set in results/safeguards.md before the runs
# DINO's safeguards, each as the overrides that take it away from the frozen recipe (results/safeguards.md)
SAFEGUARDS = {"no centring": {"centering": "none"}, "EMA centre": {"centering": "ema"},
              "DINO's temperature schedule": {"teacher_temp": "0.07", "warmup_teacher_temp": "0.04",
                                              "warmup_teacher_temp_epochs": "0.3"},
              "fixed momentum 0.9": {"momentum_schedule": "fixed"}}
BETAS = ("0", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.02")
TEACHER_TEMPS = ("0.005", "0.01", "0.02", "0.04")
KEPT = ("linear_top1", "linear_top5", "knn_top1_k20", "knn_top1_k200", "train_seconds", "step", "split",
        "final_teacher_entropy", "final_teacher_marginal_entropy", "final_teacher_raw_entropy",
        "final_teacher_raw_marginal_entropy", "final_emb_std", "final_loss")


@dataclass
class Row:
    """One arm of a study: a method and its CLI overrides, run once per seed."""

    name: str
    method: str  # barlow_twins | dino | dinotwins | random_init
    overrides: dict[str, str] = field(default_factory=dict)
    same_as: tuple[str, str] | None = None  # (study, row): the identical command already ran there


def frozen_recipe() -> dict[str, str]:
    """The recipe values chosen on val (results/selection.json): {beta, teacher_temp} as CLI strings."""
    frozen = json.loads((RESULTS / "selection.json").read_text()).get("frozen") if (
        RESULTS / "selection.json").exists() else None
    if not frozen:
        raise SystemExit("results/selection.json has no frozen recipe: run both selection studies, then `freeze`")
    return frozen


def chosen_beta() -> str:
    """β with the best mean val linear top-1 in selection_beta (the rule written in results/selection.md)."""
    return best(load_runs("selection_beta"), "beta")


def preset_teacher_temp() -> str:
    """The preset's teacher temperature as the CLI string used in BETAS' runs."""
    return f"{make_config(PRESET).teacher_temp:g}"


def parity_steps() -> str:
    """Barlow Twins' steps at DINO Twins' compute, from the step-time ratio in results/parity.json."""
    path = RESULTS / "parity.json"
    if not path.exists():
        raise SystemExit("results/parity.json is missing: run `python scripts/study.py parity` first")
    return str(json.loads(path.read_text())["barlow_twins_steps_at_parity"])


def study(name: str) -> tuple[list[Row], tuple[int, ...], str]:
    """(rows, seeds, split) of a study."""
    if name == "selection_beta":
        return [Row(f"beta {b}", "dinotwins", {"beta": b}) for b in BETAS], SELECTION_SEEDS, "val"
    if name == "selection_temp":
        beta = chosen_beta()
        return ([Row(f"teacher_temp {t}", "dinotwins", {"beta": beta, "teacher_temp": t},
                     same_as=("selection_beta", f"beta {beta}") if t == preset_teacher_temp() else None)
                 for t in TEACHER_TEMPS], SELECTION_SEEDS, "val")
    if name == "power":
        r = frozen_recipe()
        return ([Row("random init", "random_init"), Row("Barlow Twins", "barlow_twins"),
                 Row("DINO", "dino", {"teacher_temp": r["teacher_temp"]}),
                 Row("DINO Twins", "dinotwins", {"beta": r["beta"], "teacher_temp": r["teacher_temp"]}),
                 Row("Barlow Twins, DINO Twins' compute", "barlow_twins", {"steps": parity_steps()})],
                POWER_SEEDS, "test")
    if name == "budget":
        r = frozen_recipe()
        rows = []
        for epochs in ("2", "4"):
            rows += [Row(f"Barlow Twins, {epochs} epochs", "barlow_twins", {"epochs": epochs}),
                     Row(f"DINO, {epochs} epochs", "dino", {"epochs": epochs, "teacher_temp": r["teacher_temp"]}),
                     Row(f"DINO Twins, {epochs} epochs", "dinotwins",
                         {"epochs": epochs, "beta": r["beta"], "teacher_temp": r["teacher_temp"]})]
        return rows, POWER_SEEDS[:3], "test"
    if name == "safeguards":
        r = frozen_recipe()
        dino, twins = {"teacher_temp": r["teacher_temp"]}, {"beta": r["beta"], "teacher_temp": r["teacher_temp"]}
        rows = [Row("DINO Twins", "dinotwins", twins), Row("DINO", "dino", dino)]
        for what, overrides in SAFEGUARDS.items():
            rows += [Row(f"DINO, {what}", "dino", {**dino, **overrides}),
                     Row(f"DINO Twins, {what}", "dinotwins", {**twins, **overrides})]
        return rows, SAFEGUARD_SEEDS, "test"
    raise SystemExit(f"unknown study {name!r}: selection_beta, selection_temp, power, budget, safeguards")


def command(row: Row, seed: int, split: str, out: Path, data_dir: str) -> list[str]:
    """The CLI call of one run (printed and recorded as `python -m dtlib ...`)."""
    if row.method == "random_init":
        cmd = ["python", "-m", "dtlib", "eval", "--random-init", "--preset", PRESET, "--method", "dinotwins",
               "--split", split]
    else:
        cmd = ["python", "-m", "dtlib", "train", "--preset", PRESET, "--method", row.method, "--eval_split", split]
    cmd += ["--seed", str(seed), "--data-dir", data_dir, "--out", str(out)]
    for key, value in row.overrides.items():
        cmd += [f"--{key}", value]
    return cmd


def run_all(jobs: list[tuple[list[str], Path]], parallel: int) -> None:
    """Run the missing jobs, `parallel` at a time, one torch thread each, each pinned to its own core."""
    earlier = recorded()
    todo = [(cmd, out) for cmd, out in jobs if not (out / "metrics.json").exists() and str(out) not in earlier]
    free = list(range(parallel))
    running: list[tuple[subprocess.Popen, Path, int]] = []
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    while todo or running:
        while todo and free:
            (cmd, out), core = todo.pop(0), free.pop(0)
            out.mkdir(parents=True, exist_ok=True)
            print(f"core {core}:", " ".join(cmd), flush=True)
            with (out / "log.txt").open("w") as log:
                proc = subprocess.Popen(["taskset", "-c", str(core), sys.executable, *cmd[1:]], stdout=log,
                                        stderr=subprocess.STDOUT, env=env)
            running.append((proc, out, core))
        time.sleep(2)
        for proc, out, core in list(running):
            if proc.poll() is not None:
                running.remove((proc, out, core))
                free.append(core)
                status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode}), see {out / 'log.txt'}"
                print(f"done: {out} {status}", flush=True)


def run_dir(name: str, row: Row, seed: int) -> Path:
    """Where one run writes (under runs/STUDY/), or where its identical command already ran."""
    if row.same_as is not None:
        name, row_name = row.same_as
        row = Row(row_name, row.method)
    slug = "".join(c if c.isalnum() or c in ".-" else "_" for c in row.name.lower())
    return Path("runs") / name / f"{slug}_seed{seed}"


def load_runs(name: str) -> list[dict]:
    """One object per finished run of a study, with its row, seed, command and kept metrics."""
    rows, seeds, split = study(name)
    found, earlier, now = [], recorded(), commit()
    for row in rows:
        for seed in seeds:
            out = run_dir(name, row, seed)
            if not (out / "metrics.json").exists():
                if str(out) in earlier:  # recorded by an earlier session, whose runs/ folder is gone
                    found.append({**earlier[str(out)], "row": row.name, "seed": seed})
                continue
            m = json.loads((out / "metrics.json").read_text())
            cfg = m.get("config", {})
            record = {"row": row.name, "method": row.method, "seed": seed, "split": m.get("split"),
                      "epochs": cfg.get("epochs"), "steps": m.get("step"), "overrides": row.overrides,
                      "command": " ".join(command(row, seed, split, out, "DATA")), "run_dir": str(out),
                      "commit": earlier.get(str(out), {}).get("commit", now), **{k: m[k] for k in KEPT if k in m}}
            if "beta" in row.overrides:
                record["beta"] = row.overrides["beta"]
            if "teacher_temp" in row.overrides:
                record["teacher_temp"] = row.overrides["teacher_temp"]
            if "final_teacher_raw_entropy" in m:
                record["raw_information"] = raw_information(m["final_teacher_raw_entropy"],
                                                            m["final_teacher_raw_marginal_entropy"])
                record["verdict"] = collapse_verdict(
                    m["final_teacher_entropy"], m["final_teacher_marginal_entropy"], cfg["out_dim"],
                    raw_entropy=m["final_teacher_raw_entropy"],
                    raw_marginal_entropy=m["final_teacher_raw_marginal_entropy"])
            found.append(record)
    return found


def recorded() -> dict[str, dict]:
    """Every run already in results/{selection,power,budget,safeguards}.json, by its run folder: a later session
    continues a study from these records (runs/ is not committed)."""
    records: dict[str, dict] = {}
    for path in (RESULTS / f"{name}.json" for name in ("selection", "power", "budget", "safeguards")):
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for result in data.get("stages", {"": data}).values():
            records.update({r["run_dir"]: r for r in result.get("runs", []) if "run_dir" in r})
    return records


def best(runs: list[dict], key: str) -> str:
    """The value of `key` whose runs have the highest mean val linear top-1 (all seeds needed)."""
    by_value: dict[str, list[float]] = {}
    for r in runs:
        by_value.setdefault(r[key], []).append(r["linear_top1"])
    complete = {v: xs for v, xs in by_value.items() if len(xs) == len(SELECTION_SEEDS)}
    if not complete:
        raise SystemExit(f"no complete row to choose {key} from")
    return max(complete, key=lambda v: mean_sd(complete[v])[0])


def table(runs: list[dict], row_names: list[str]) -> list[dict]:
    """Mean ± sd per row of the metrics that matter, with the verdicts counted."""
    out = []
    for name in row_names:
        rs = [r for r in runs if r["row"] == name]
        if not rs:
            continue
        line = {"row": name, "seeds": len(rs)}
        for key in ("linear_top1", "knn_top1_k20", "train_seconds", "final_teacher_entropy", "raw_information"):
            values = [r[key] for r in rs if key in r]
            if values:
                mean, sd = mean_sd(values)
                line[key] = f"{mean:.2f} ± {sd:.2f}"
        verdicts = [r["verdict"] for r in rs if "verdict" in r]
        line["verdict"] = ", ".join(f"{verdicts.count(v)}× {v}" for v in dict.fromkeys(verdicts)) or None
        out.append(line)
    return out


COLUMNS = {"row": "run", "seeds": "seeds", "linear_top1": "linear top-1 (%)", "knn_top1_k20": "kNN k=20 (%)",
           "train_seconds": "train s", "final_teacher_entropy": "target entropy (nats)",
           "raw_information": "raw teacher info (nats)", "verdict": "teacher verdict"}


def comparisons(runs: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """Paired-by-seed differences (linear top-1 and kNN) for each (a, b) pair, Holm-adjusted over the pairs."""
    out = []
    for a, b in pairs:
        by_seed = {r["seed"]: r for r in runs if r["row"] == a}
        other = {r["seed"]: r for r in runs if r["row"] == b}
        seeds = sorted(set(by_seed) & set(other))
        if len(seeds) < 2:
            continue
        lin = paired_difference([by_seed[s]["linear_top1"] for s in seeds], [other[s]["linear_top1"] for s in seeds])
        knn = paired_difference([by_seed[s]["knn_top1_k20"] for s in seeds],
                                [other[s]["knn_top1_k20"] for s in seeds])
        out.append({"a": a, "b": b, "n": len(seeds), "linear": lin, "knn": knn})
    for c, p in zip(out, holm([c["linear"]["p_t"] for c in out])):
        c["linear"]["p_holm"] = p
    return out


def comparison_lines(comps: list[dict]) -> list[str]:
    """Markdown rows of the paired comparisons."""
    lines = ["| comparison | seeds | Δ linear (points) | 95 % CI | p (t) | p (Holm) | p (sign flip) | Δ kNN |",
             "|" + "---|" * 8]
    for c in comps:
        lin, knn = c["linear"], c["knn"]
        lines.append(f"| {c['a']} − {c['b']} | {c['n']} | {lin['mean']:+.2f} ± {lin['sd']:.2f} | "
                     f"[{lin['ci_low']:+.2f}, {lin['ci_high']:+.2f}] | {lin['p_t']:.4f} | {lin['p_holm']:.4f} | "
                     f"{lin['p_sign_flip']:.4f} | {knn['mean']:+.2f} [{knn['ci_low']:+.2f}, {knn['ci_high']:+.2f}] |")
    return lines


def budget_comparisons(runs: list[dict], seeds: tuple[int, ...]) -> tuple[dict, list[str]]:
    """Per budget (1 epoch from results/power.json's runs of the same seeds, 2 and 4 epochs here), the paired
    differences DINO Twins − DINO and DINO Twins − Barlow Twins, and the trend rule of results/budget.md."""
    power = json.loads((RESULTS / "power.json").read_text())["runs"]
    one = [dict(r, row=f"{r['row']}, 1 epochs") for r in power
           if r["seed"] in seeds and r["row"] in ("Barlow Twins", "DINO", "DINO Twins")]
    out, lines = {}, []
    for epochs in ("1", "2", "4"):
        pool = one if epochs == "1" else runs
        out[epochs] = comparisons(pool, [(f"DINO Twins, {epochs} epochs", f"DINO, {epochs} epochs"),
                                         (f"DINO Twins, {epochs} epochs", f"Barlow Twins, {epochs} epochs")])
    lines += comparison_lines([c for epochs in out for c in out[epochs]])
    lines.append("")
    for i, against in enumerate(("DINO", "Barlow Twins")):
        if len(out["1"]) > i and len(out["4"]) > i:
            base, last = out["1"][i]["linear"]["mean"], out["4"][i]["linear"]
            trend = ("grows" if last["ci_low"] > base else "shrinks" if last["ci_high"] < base
                     else "no clear trend at this budget")
            out[f"trend vs {against}"] = trend
            lines.append(f"- DINO Twins − {against}: {base:+.2f} at 1 epoch, {last['mean']:+.2f} "
                         f"[{last['ci_low']:+.2f}, {last['ci_high']:+.2f}] at 4 epochs → **{trend}** "
                         f"(3 seeds: a hint).")
    return out, lines


def safeguard_comparisons(runs: list[dict]) -> tuple[dict, list[str]]:
    """The three families of results/safeguards.md: every arm − DINO Twins (Holm over 9); the rescues
    (DINO Twins without s) − (DINO without s) (Holm over 4); DINO Twins without s − DINO, against the
    0.5-point non-inferiority margin. The verdict per safeguard follows the plan's decision rule."""
    rows, _, _ = study("safeguards")
    primary = comparisons(runs, [(r.name, "DINO Twins") for r in rows[1:]])
    rescue = comparisons(runs, [(f"DINO Twins, {s}", f"DINO, {s}") for s in SAFEGUARDS])
    margin = comparisons(runs, [(f"DINO Twins, {s}", "DINO") for s in SAFEGUARDS])
    verdicts = {}
    for s in SAFEGUARDS:
        res = next((c["linear"] for c in rescue if c["a"] == f"DINO Twins, {s}"), None)
        non = next((c["linear"] for c in margin if c["a"] == f"DINO Twins, {s}"), None)
        if res is None or non is None:
            continue
        rescued = res["ci_low"] > 0 and res["p_holm"] < 0.05
        verdicts[s] = ("Barlow Twins replaces it" if rescued and non["ci_low"] > -NON_INFERIORITY
                       else "rescues DINO; not shown to be within 0.5 points of full DINO" if rescued
                       else "no evidence Barlow Twins replaces it")
    lines = ["Every arm − DINO Twins (full), Holm over the 9:", "", *comparison_lines(primary), "",
             "Does Barlow Twins rescue DINO without the safeguard? (DINO Twins without s) − (DINO without s), "
             "Holm over the 4:", "", *comparison_lines(rescue), "",
             f"Non-inferiority: (DINO Twins without s) − DINO (full); margin −{NON_INFERIORITY} points "
             "(the CI's lower end must lie above it):", "", *comparison_lines(margin), "",
             *(f"- {s}: **{v}**" for s, v in verdicts.items())]
    return {"primary": primary, "rescue": rescue, "non_inferiority": margin, "verdicts": verdicts}, lines


def hardware(jobs: int) -> str:
    """What the numbers ran on."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; {jobs} run(s) at a time, "
            "one torch thread each, each pinned to its own core")


def commit() -> str:
    """The commit the runs were made at (with '+dirty' if the tree had changes)."""
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return sha + ("+dirty" if dirty else "")


def summarise(name: str, jobs: int) -> dict:
    """Write results/STUDY.json (one object per run) and return it."""
    rows, seeds, split = study(name)
    runs = load_runs(name)
    result = {"study": name, "preset": PRESET, "split": split, "seeds": list(seeds), "commit": commit(),
              "hardware": hardware(jobs), "data": "CIFAR-10 (JPEG q75 copy)",
              "command": f"python scripts/study.py run {name} --data-dir DATA --jobs {jobs}",
              "table": table(runs, [r.name for r in rows]), "runs": runs}
    text = [markdown_table(result["table"], COLUMNS, digits=2)]
    if name == "power":
        result["comparisons"] = comparisons(runs, [("DINO Twins", "DINO"), ("DINO Twins", "Barlow Twins"),
                                                   ("DINO Twins", "Barlow Twins, DINO Twins' compute")])
        text += ["", *comparison_lines(result["comparisons"])]
    if name == "budget":
        result["comparisons"], text_more = budget_comparisons(runs, seeds)
        text += ["", *text_more]
    if name == "safeguards":
        result["comparisons"], text_more = safeguard_comparisons(runs)
        text += ["", *text_more]
    if name.startswith("selection"):  # both stages live in results/selection.{json,md}
        path = RESULTS / "selection.json"
        combined = json.loads(path.read_text()) if path.exists() else {}
        combined.setdefault("stages", {})[name] = result
        path.write_text(json.dumps(combined, indent=2) + "\n")
        write_section("selection", name, "\n".join(text), result)
    else:
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        write_section(name, name, "\n".join(text), result)
    print("\n".join(text))
    return result


def write_section(md_name: str, section: str, body: str, result: dict) -> None:
    """Replace the generated section of results/MD_NAME.md between its markers (the plan above stays)."""
    path = RESULTS / f"{md_name}.md"
    text = path.read_text() if path.exists() else f"# {md_name}\n"
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = (f"{start}\nGenerated by `{result['command']}` at commit {result['commit']} ({result['hardware']}; "
             f"{result['data']}, split {result['split']}, seeds {', '.join(map(str, result['seeds']))}).\n\n"
             f"{body}\n{end}")
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def freeze() -> dict[str, str]:
    """Choose β, then the teacher temperature at it, by mean val linear top-1; record them in selection.json."""
    beta = chosen_beta()
    temp = best(load_runs("selection_temp"), "teacher_temp")
    path = RESULTS / "selection.json"
    combined = json.loads(path.read_text())
    combined["frozen"] = {"beta": beta, "teacher_temp": temp}
    path.write_text(json.dumps(combined, indent=2) + "\n")
    return combined["frozen"]


def time_parity(data_dir: str, steps: int = 20, rounds: int = 3) -> dict:
    """Seconds per step of Barlow Twins and DINO Twins at cpu-mini, measured in one process, one thread,
    in alternating blocks (so a change in the machine's load hits both alike): Barlow Twins' steps at the
    compute of one DINO Twins epoch."""
    import torch

    from dtlib.bench import time_steps

    torch.set_num_threads(1)
    recipe = frozen_recipe()
    cfgs = {"barlow_twins": make_config(PRESET, method="barlow_twins", data_dir=data_dir),
            "dinotwins": make_config(PRESET, method="dinotwins", data_dir=data_dir, **recipe)}
    seconds: dict[str, list[float]] = {k: [] for k in cfgs}
    for _ in range(rounds):
        for method, cfg in cfgs.items():
            seconds[method].append(time_steps(cfg, torch.device("cpu"), steps, warmup=3, side=cfg.data_size)[0])
    per_step = {k: sorted(v)[len(v) // 2] for k, v in seconds.items()}  # the median block
    from dtlib.train import prepare_data, steps_per_epoch

    epoch_steps = steps_per_epoch(cfgs["dinotwins"], prepare_data(cfgs["dinotwins"])[0])
    ratio = per_step["dinotwins"] / per_step["barlow_twins"]
    return {"s_per_step": per_step, "blocks": seconds, "ratio": ratio, "dinotwins_steps": epoch_steps,
            "barlow_twins_steps_at_parity": round(epoch_steps * ratio), "commit": commit(),
            "hardware": hardware(1), "command": "python scripts/study.py parity --data-dir DATA"}


CURVE_KEYS = ("loss", "loss_dino", "loss_bt", "teacher_entropy", "teacher_marginal_entropy", "emb_std")


def curves(name: str, row_names: tuple[str, ...] = ("DINO Twins", "DINO")) -> dict:
    """Per logged step, the mean and sd over seeds of the logged curves of a study's rows (from each run's
    metrics.jsonl under runs/): the recorded bands notebooks 02 and 03 draw under their live curves."""
    rows, seeds, _ = study(name)
    out: dict = {"study": name, "preset": PRESET, "commit": commit(), "hardware": hardware(2),
                 "command": f"python scripts/study.py curves {name}", "rows": {}}
    for row in (r for r in rows if r.name in row_names):
        logs = []
        for seed in seeds:
            path = run_dir(name, row, seed) / "metrics.jsonl"
            if path.exists():
                logs.append({r["step"]: r for r in map(json.loads, path.read_text().splitlines())})
        if len(logs) < 2:
            continue
        steps = sorted(set.intersection(*(set(log) for log in logs)))
        entry = {"seeds": len(logs), "overrides": row.overrides, "step": steps}
        for key in CURVE_KEYS:
            if all(key in log[steps[0]] for log in logs):
                stats = [mean_sd([log[s][key] for log in logs]) for s in steps]
                entry[key] = {"mean": [round(m, 5) for m, _ in stats], "sd": [round(sd, 5) for _, sd in stats]}
        out["rows"][row.name] = entry
    return out


def main() -> int:
    """run / summarise / parity / freeze / curves."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "summarise", "parity", "freeze", "curves"))
    parser.add_argument("study", nargs="?")
    parser.add_argument("--data-dir", default=os.environ.get("DTLIB_DATA", "../shared/data/cifar10-jpeg"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=None,
                        help="run only the study's first N rows (e.g. its reference arms first); the order of the "
                             "runs changes nothing in them")
    args = parser.parse_args()
    if args.action == "freeze":
        print(freeze())
        return 0
    if args.action == "parity":
        result = time_parity(args.data_dir)
        (RESULTS / "parity.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0
    if args.action == "curves":
        result = curves(args.study)
        (RESULTS / "curves.json").write_text(json.dumps(result) + "\n")
        print({row: entry["seeds"] for row, entry in result["rows"].items()})
        return 0
    rows, seeds, split = study(args.study)
    if args.action == "run":
        jobs = [(command(row, seed, split, run_dir(args.study, row, seed), args.data_dir),
                 run_dir(args.study, row, seed)) for seed in seeds for row in rows[:args.rows] if row.same_as is None]
        run_all(jobs, args.jobs)
    summarise(args.study, args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
