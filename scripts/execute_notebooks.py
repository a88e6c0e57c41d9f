"""Executed copies of the notebooks, for reading without running: docs/NAME.ipynb, rendered by GitHub.

The sources in notebooks/ stay output-free; this script runs each one from its own folder exactly as a
learner would (the preset the machine picks, every exercise filled with its shipped solution) and writes
the copy with its outputs, plus docs/executed.json saying where, when and from which sources they ran.
A notebook whose code changed since its copy was made is found by tests/test_docs.py.

    python scripts/execute_notebooks.py [--data-dir DIR] [NAME ...]   # e.g. 01_barlow_twins; default: all four
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs"
NAMES = ("01_barlow_twins", "02_dino", "03_dinotwins", "04_attention_maps")


def code_digest(nb: nbformat.NotebookNode) -> str:
    """sha256 of a notebook's code cells, in order: what an executed copy's outputs depend on."""
    text = "\n\0".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    return hashlib.sha256(text.encode()).hexdigest()


def execute(name: str, data_dir: str, runs_dir: str, out: Path = DOCS, quick: bool = False) -> dict:
    """Run notebooks/NAME.ipynb in full (`quick`: DTLIB_QUICK's smoke test, for a rehearsal) and write
    OUT/NAME.ipynb; its record for OUT/executed.json."""
    from nbclient import NotebookClient

    source = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(source, as_version=4)
    env = {"DTLIB_SOLUTIONS": "1", "DTLIB_DATA": data_dir, "DTLIB_RUNS": runs_dir}
    saved = {k: os.environ.get(k) for k in (*env, "DTLIB_QUICK", "DTLIB_CHECKPOINT")}
    os.environ.update(env)  # the kernel inherits this process's environment
    os.environ.pop("DTLIB_QUICK", None)
    if quick:
        os.environ["DTLIB_QUICK"] = "1"
    os.environ.pop("DTLIB_CHECKPOINT", None)
    start = time.monotonic()
    try:
        resources = {"metadata": {"path": str(NOTEBOOKS)}}  # run from notebooks/, as `jupyter lab` does
        client = NotebookClient(nb, kernel_name="python3", timeout=None, resources=resources)
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / f"{name}.ipynb")
    return {"name": name, "seconds": round(time.monotonic() - start), "code_sha256": code_digest(nb),
            "executed": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def main() -> int:
    """Execute the named notebooks (all four by default) and record them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(NAMES), help=f"any of {', '.join(NAMES)}")
    default_data = os.environ.get("DTLIB_DATA", str(ROOT.parent / "shared/data/cifar10-jpeg"))
    parser.add_argument("--data-dir", default=default_data)
    parser.add_argument("--out", type=Path, default=DOCS, help="where the copies go (default docs/)")
    parser.add_argument("--quick", action="store_true", help="DTLIB_QUICK's smoke test: a rehearsal, not docs/")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"unknown notebook(s) {unknown}: choose from {', '.join(NAMES)}")
    if args.quick and args.out.resolve() == DOCS.resolve():
        parser.error("--quick outputs are a rehearsal: give --out DIR, docs/ holds full runs only")
    record_path = args.out / "executed.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {"notebooks": {}}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in args.names:
            print(f"executing {name} ...", flush=True)
            entry = execute(name, args.data_dir, runs_dir, args.out, args.quick)
            entry.update(commit=commit.strip(), device=device, python=platform.python_version(),
                         torch=torch.__version__, mode="quick" if args.quick else "full")
            record["notebooks"][name] = entry
            print(f"  {args.out}/{name}.ipynb in {entry['seconds']} s", flush=True)
            record_path.write_text(json.dumps(record, indent=2) + "\n")  # after each: a later failure keeps these
    return 0


if __name__ == "__main__":
    sys.exit(main())
