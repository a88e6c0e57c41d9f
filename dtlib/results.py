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
