"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_atomically(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to a uniquely named temporary file next to `path`, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name in the same folder: two writers never share a temporary file, and the final
    # rename stays on one file system, where os.replace is atomic.
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
