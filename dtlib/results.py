"""Recorded results (results/NAME.json): read from a checkout, else fetched from the repository; tabulated."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Headers of the metrics a results file may hold (anything else is shown under its own name).
METRIC_NAMES = {"linear_top1": "linear top-1 (%)", "knn_top1_k20": "kNN top-1, k = 20 (%)",
                "final_teacher_entropy": "teacher entropy (nats)", "final_emb_std": "embedding std",
                "train_seconds": "training time (s)"}


def repository_url() -> str:
    """The project's repository URL, from pyproject.toml's [project.urls] (a checkout) or the installed metadata."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.is_file():
        match = re.search(r'^Repository\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    for entry in metadata.metadata("dtlib").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise LookupError("no Repository URL: add it to pyproject.toml's [project.urls] and reinstall dtlib")


def raw_url(path: str, branch: str = "main") -> str:
    """The download URL of a file of the repository, e.g. raw_url("results/ablation.json")."""
    owner_repo = repository_url().removeprefix("https://github.com/").removesuffix(".git")
    return f"https://raw.githubusercontent.com/{owner_repo}/{branch}/{path}"


def recorded_results(name: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """results/NAME.json from this checkout, else from the repository; None (and says why) when neither."""
    local = REPO_ROOT / "results" / f"{name}.json"
    if local.is_file():
        return json.loads(local.read_text())
    url = raw_url(f"results/{name}.json")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        print(f"results/{name}.json is not in the repository ({url}: HTTP {err.code}): it has not been recorded yet.")
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        print(f"Offline? Could not fetch {url} ({err}). Recorded results ship with a clone of "
              f"{repository_url()}: run this notebook from the clone's notebooks/ folder.")
    return None


def recorded_rows(recorded: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows (mean ± std over seeds) and {key: header} columns of a results file, for plots.markdown_table."""
    metrics = [k.removesuffix("_mean") for k in recorded["rows"][0] if k.endswith("_mean")]
    rows = [{"name": r["name"], "method": r["method"], "seeds": r.get("seeds"),
             "changes": ", ".join(f"{k}={v}" for k, v in (r.get("changes") or {}).items()) or "—",
             **{m: f"{r[m + '_mean']:.4g} ± {r.get(m + '_std', 0.0):.2g}" for m in metrics if m + "_mean" in r}}
            for r in recorded["rows"]]
    columns = {"name": "configuration", "method": "method", "changes": "changes", "seeds": "seeds",
               **{m: f"{METRIC_NAMES.get(m, m)}, mean ± std" for m in metrics}}
    return rows, columns


def provenance(recorded: Mapping[str, Any]) -> str:
    """One line per field saying how a results file was produced: data, hardware, command, commit."""
    return "\n".join(f"{key}: {recorded[key]}" for key in ("data", "hardware", "command", "commit") if key in recorded)


def compare_to_recorded(value: float, recorded: Sequence[float], n_sd: float = 2.0) -> str:
    """'your x vs recorded mean ± sd (n runs): within / outside the recorded spread' (mean ± n_sd·sd)."""
    runs = [float(v) for v in recorded]
    if len(runs) < 2:
        raise ValueError(f"need at least 2 recorded runs for a spread, got {len(runs)}")
    mean = sum(runs) / len(runs)
    sd = (sum((v - mean) ** 2 for v in runs) / (len(runs) - 1)) ** 0.5
    inside = abs(value - mean) <= n_sd * sd
    return (f"yours {value:.4g} vs recorded {mean:.4g} ± {sd:.2g} (sd, {len(runs)} runs): "
            f"{'within' if inside else 'outside'} the recorded spread (mean ± {n_sd:g} sd)")


# Headers of a study file's table (scripts/study.py writes results/{power,budget,safeguards,selection}.json).
STUDY_COLUMNS = {"row": "run", "seeds": "seeds", "linear_top1": "linear top-1 (%), mean ± sd",
                 "knn_top1_k20": "kNN k = 20 (%), mean ± sd", "verdict": "teacher verdict"}
HEADLINE_SEEDS = 10  # a comparison is a result, not a hint, from this many paired seeds on (the science standards)


def study_rows(recorded: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows (mean ± sd over seeds, as the study tabulated them) and columns of a study file."""
    rows = recorded["table"]
    return rows, {k: v for k, v in STUDY_COLUMNS.items() if any(r.get(k) is not None for r in rows)}


def compare_rows(recorded: Mapping[str, Any], a: str, b: str) -> dict[str, Any]:
    """Row a − row b of a study file, paired by seed (linear top-1 and kNN): scripts/study.py's comparison."""
    from .stats import paired_difference

    by_row: dict[str, dict[int, Mapping[str, Any]]] = {}
    for run in recorded["runs"]:
        by_row.setdefault(run["row"], {})[run["seed"]] = run
    for name in (a, b):
        if name not in by_row:
            raise KeyError(f"no row {name!r} in the study {recorded.get('study')!r}: it has {sorted(by_row)}")
    seeds = sorted(set(by_row[a]) & set(by_row[b]))
    return {"a": a, "b": b, "n": len(seeds),
            **{key: paired_difference([by_row[a][s][metric] for s in seeds], [by_row[b][s][metric] for s in seeds])
               for key, metric in (("linear", "linear_top1"), ("knn", "knn_top1_k20"))}}


def comparison_sentence(comparison: Mapping[str, Any]) -> str:
    """One sentence for a paired comparison, its words set by the numbers: 'beats' only with ≥ 10 seeds and a
    95 % CI that excludes 0 and a kNN difference of the same sign; 'a hint' with fewer seeds."""
    a, b, n, lin, knn = (comparison[k] for k in ("a", "b", "n", "linear", "knn"))
    p = f", Holm-adjusted p = {lin['p_holm']:.2g}" if "p_holm" in lin else f", p = {lin['p_t']:.2g}"
    numbers = (f"{a} − {b}: {lin['mean']:+.2f} points of linear top-1 (95 % CI [{lin['ci_low']:+.2f}, "
               f"{lin['ci_high']:+.2f}], {n} seeds paired{p}); kNN {knn['mean']:+.2f} "
               f"[{knn['ci_low']:+.2f}, {knn['ci_high']:+.2f}]")
    excludes_zero = lin["ci_low"] > 0 or lin["ci_high"] < 0
    significant = excludes_zero and lin.get("p_holm", lin["p_t"]) < 0.05
    if n < HEADLINE_SEEDS:
        verdict = f"a hint only ({n} seeds < {HEADLINE_SEEDS})"
    elif not significant:
        verdict = "no evidence of a difference in linear top-1"
        if knn["ci_low"] > 0 or knn["ci_high"] < 0:
            verdict += f"; kNN alone favours {a if knn['mean'] > 0 else b}"
    elif (knn["mean"] > 0) != (lin["mean"] > 0):
        verdict = "the linear probe and kNN disagree in sign: no claim"
    else:
        verdict = f"{a} beats {b}" if lin["mean"] > 0 else f"{b} beats {a}"
    return f"{numbers} → {verdict}."


def recorded_bands(row: str, keys: Sequence[str], name: str = "curves") -> dict[str, dict[str, Any]] | None:
    """{key: {"step", "mean", "sd", "label"}} of a recorded row's curves (results/curves.json, written by
    `scripts/study.py curves`), for `plots.plot_history(bands=...)`; None when the file or row is missing."""
    recorded = recorded_results(name)
    entry = (recorded or {}).get("rows", {}).get(row)
    if entry is None:
        return None
    label = f"recorded {row}, mean ± sd of {entry['seeds']} seeds"
    return {key: {"step": entry["step"], **entry[key], "label": label} for key in keys if key in entry}
