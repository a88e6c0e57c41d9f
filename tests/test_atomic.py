"""Atomic writes: a unique temporary file in the target's folder, renamed over the target."""

import os

import pytest
import torch

import dtlib.atomic
from dtlib.atomic import save_atomically


def test_saves_through_a_unique_temporary_file_in_the_same_folder(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace

    def spy(src, dst):
        renames.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(dtlib.atomic.os, "replace", spy)
    target = tmp_path / "sub" / "state.pt"
    save_atomically({"x": torch.arange(3)}, target)
    save_atomically({"x": torch.arange(4)}, target)
    (first, dst1), (second, dst2) = renames
    assert first != second  # two writers never share a temporary file
    assert {os.path.dirname(first), os.path.dirname(second)} == {str(target.parent)}
    assert dst1 == dst2 == target
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.arange(4))
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.pt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "state.pt"
    save_atomically({"x": 1}, target)

    def broken_save(obj, file):
        file.write(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(dtlib.atomic.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomically({"x": 2}, target)
    assert torch.load(target, weights_only=True) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
