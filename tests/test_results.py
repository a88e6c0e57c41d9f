"""dtlib.results: the repository URL from pyproject, recorded results from the checkout or the repository."""

from __future__ import annotations

import io
import json
import urllib.error
from pathlib import Path

import pytest

from dtlib import results

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORDED = {"rows": [{"name": "DINO, no centering", "method": "dino", "changes": {"centering": "false"}, "seeds": 3,
                      "linear_top1_mean": 41.234, "linear_top1_std": 0.5}],
            "command": "python scripts/ablation.py", "hardware": "2 CPU cores", "commit": "abc1234"}


def test_repository_url_is_pyprojects():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert results.repository_url() == pyproject["project"]["urls"]["Repository"]
    assert results.raw_url("results/x.json") == (
        results.repository_url().replace("https://github.com/", "https://raw.githubusercontent.com/")
        + "/main/results/x.json")


def test_recorded_results_reads_the_checkout_first(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mine.json").write_text(json.dumps(RECORDED))
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(results.urllib.request, "urlopen", lambda *a, **k: pytest.fail("fetched a local file"))
    assert results.recorded_results("mine") == RECORDED


def test_recorded_results_fetches_from_the_repository(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)  # not a checkout: no results/ folder
    monkeypatch.setattr(results, "repository_url", lambda: "https://github.com/owner/repo")
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(json.dumps(RECORDED).encode())

    monkeypatch.setattr(results.urllib.request, "urlopen", urlopen)
    assert results.recorded_results("mine") == RECORDED
    assert asked == ["https://raw.githubusercontent.com/owner/repo/main/results/mine.json"]


@pytest.mark.parametrize("error, message", [
    (urllib.error.URLError("no network"), "Offline? Could not fetch"),
    (urllib.error.HTTPError("u", 404, "Not Found", None, None), "has not been recorded yet"),
])
def test_recorded_results_says_why_it_has_none(tmp_path, monkeypatch, capsys, error, message):
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(results, "repository_url", lambda: "https://github.com/owner/repo")

    def urlopen(url, timeout):
        raise error

    monkeypatch.setattr(results.urllib.request, "urlopen", urlopen)
    assert results.recorded_results("mine") is None
    assert message in capsys.readouterr().out


def test_recorded_rows_and_provenance():
    rows, columns = results.recorded_rows(RECORDED)
    assert rows == [{"name": "DINO, no centering", "method": "dino", "seeds": 3, "changes": "centering=false",
                     "linear_top1": "41.23 ± 0.5"}]
    assert columns["linear_top1"] == "linear top-1 (%), mean ± std"
    assert results.provenance(RECORDED) == "hardware: 2 CPU cores\ncommand: python scripts/ablation.py\ncommit: abc1234"


def test_compare_to_recorded_says_within_or_outside():
    from dtlib.results import compare_to_recorded
    runs = [80.0, 82.0, 84.0]  # mean 82, sd 2
    assert "within" in compare_to_recorded(85.9, runs) and "82 ± 2" in compare_to_recorded(85.9, runs)
    assert "outside" in compare_to_recorded(86.1, runs)
    assert "outside" in compare_to_recorded(77.9, runs)
    with pytest.raises(ValueError, match="at least 2"):
        compare_to_recorded(1.0, [1.0])
