"""CI runs exactly the README's test command, and the README names files that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    command = ci_lines[-1].strip()
    assert "pytest" in command and "ruff check" in command
    assert f"\n{command}\n" in readme


def test_readme_structure_table_names_existing_files():
    readme = (ROOT / "README.md").read_text()
    paths = set(re.findall(r"`((?:dtlib|scripts|notebooks|tests)/[\w./]+)`", readme))
    # Every notebook, and every module of the data flow, has its line (a dropped row fails here).
    expected = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    expected |= {f"dtlib/{m}.py" for m in ("data", "augment", "methods", "train", "evaluate", "config", "build")}
    assert expected - paths == set()
    missing = [p for p in paths if "<" not in p and not (ROOT / p).exists()]
    assert not missing, missing


def test_every_results_file_named_anywhere_exists():
    """A results/ file cited by the README, the code, the notebooks or another results file exists (a renamed or
    removed file leaves its citations behind)."""
    sources = [ROOT / "README.md", *ROOT.glob("dtlib/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("scripts/*.sh"),
               *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("results/*.md")]
    cited = {(source.name, name) for source in sources
             for name in re.findall(r"results/([\w.-]+\.(?:md|json))", source.read_text())}
    missing = sorted((source, name) for source, name in cited
                     if not name.split(".")[0].isupper() and not (ROOT / "results" / name).exists())  # NAME: a pattern
    assert not missing, missing
