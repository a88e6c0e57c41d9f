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


def study_file(diffs, knn_sign=1.0):
    """A study file with rows A and B, B = 50 + seed/10, A = B + diffs[i] (kNN A − B of the sign given)."""
    runs = []
    for seed, d in enumerate(diffs):
        runs += [{"row": "A", "seed": seed, "linear_top1": 50 + seed / 10 + d, "knn_top1_k20": 40 + knn_sign * abs(d)},
                 {"row": "B", "seed": seed, "linear_top1": 50 + seed / 10, "knn_top1_k20": 40.0}]
    return {"study": "toy", "runs": runs, "table": [{"row": "A", "seeds": len(diffs), "linear_top1": "1 ± 0"}]}


def test_comparison_sentences_say_beats_only_when_the_numbers_allow():
    from dtlib.results import compare_rows, comparison_sentence, study_rows

    clear = [1.0, 1.2, 0.8, 1.1, 0.9, 1.0, 1.3, 0.7, 1.05, 0.95]
    c = compare_rows(study_file(clear), "A", "B")
    assert c["n"] == 10 and abs(c["linear"]["mean"] - 1.0) < 1e-9
    assert comparison_sentence(c).endswith("→ A beats B.")
    assert "[+0." in comparison_sentence(c)  # the CI is in the sentence
    assert "a hint only (5 seeds" in comparison_sentence(compare_rows(study_file(clear[:5]), "A", "B"))
    noisy = [1.0, -1.2, 0.8, -1.1, 0.9, -1.0, 1.3, -0.7, 0.2, -0.1]
    assert "no evidence of a difference" in comparison_sentence(compare_rows(study_file(noisy), "A", "B"))
    assert "disagree in sign" in comparison_sentence(compare_rows(study_file(clear, knn_sign=-1.0), "A", "B"))
    rows, columns = study_rows(study_file(clear))
    assert rows[0]["row"] == "A" and "verdict" not in columns
    with pytest.raises(KeyError, match="no row 'C'"):
        compare_rows(study_file(clear), "A", "C")


def test_the_recorded_power_study_reads_as_its_pre_registered_result():
    from dtlib.results import compare_rows, comparison_sentence, recorded_results

    power = recorded_results("power")
    recorded = {(c["a"], c["b"]): c for c in power["comparisons"]}
    mine = compare_rows(power, "DINO Twins", "DINO")
    assert abs(mine["linear"]["mean"] - recorded[("DINO Twins", "DINO")]["linear"]["mean"]) < 1e-9
    assert comparison_sentence(recorded[("DINO Twins", "DINO")]).endswith("DINO Twins beats DINO.")
    parity = recorded[("DINO Twins", "Barlow Twins, DINO Twins' compute")]
    assert comparison_sentence(parity).endswith(
        "no evidence of a difference in linear top-1; kNN alone favours Barlow Twins, DINO Twins' compute.")


def test_recorded_bands_read_a_row_of_the_curves_file(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    (tmp_path / "results").mkdir()
    curves = {"rows": {"DINO": {"seeds": 3, "step": [0, 1], "loss": {"mean": [2.0, 1.0], "sd": [0.1, 0.2]}}}}
    (tmp_path / "results" / "curves.json").write_text(json.dumps(curves))
    bands = results.recorded_bands("DINO", ["loss", "emb_std"])
    assert bands == {"loss": {"step": [0, 1], "mean": [2.0, 1.0], "sd": [0.1, 0.2],
                              "label": "recorded DINO, mean ± sd of 3 seeds"}}
    assert results.recorded_bands("DINO Twins", ["loss"]) is None
