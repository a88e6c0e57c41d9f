"""Shared fixtures: a tiny generated ImageFolder, an isolated decode cache, the real CIFAR-10 copy."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CLASSES = ["ant", "bee", "cat"]
TINY_SIZE = 8


@dataclass
class TinyImageFolder:
    """A generated ImageFolder root and the exact pixels and labels each split must load as."""

    root: Path
    classes: list[str]
    train_images: np.ndarray  # uint8 (N, 3, H, W), in load order
    train_labels: np.ndarray  # int64 (N,)
    test_images: np.ndarray  # uint8 (M, 3, H, W)
    test_labels: np.ndarray  # int64 (M,)


def _write_split(split_dir: Path, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Write per_class random-pixel PNGs into each class folder; return their pixels and labels."""
    images, labels = [], []
    for label, name in enumerate(TINY_CLASSES):
        (split_dir / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (TINY_SIZE, TINY_SIZE, 3), dtype=np.uint8)  # (H, W, 3)
            Image.fromarray(pixels).save(split_dir / name / f"{i:04d}.png")  # PNG: lossless, exact round trip
            images.append(pixels.transpose(2, 0, 1))  # (3, H, W)
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int64)


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point DTLIB_CACHE at a fresh temporary folder so a test never reads or fills the user's cache."""
    folder = tmp_path / "dtlib-cache"
    monkeypatch.setenv("DTLIB_CACHE", str(folder))
    return folder


@pytest.fixture
def tiny_image_folder(tmp_path: Path, tmp_cache: Path) -> TinyImageFolder:
    """3 classes of 8x8 random-pixel PNGs: 4 per class in train/, 2 per class in test/."""
    root = tmp_path / "tiny"
    rng = np.random.default_rng(0)
    train_images, train_labels = _write_split(root / "train", 4, rng)
    test_images, test_labels = _write_split(root / "test", 2, rng)
    return TinyImageFolder(root, list(TINY_CLASSES), train_images, train_labels, test_images, test_labels)


@pytest.fixture(scope="session")
def shared_cifar_dir() -> Path:
    """The real CIFAR-10 as an ImageFolder copy: $DTLIB_DATA, else ../shared/data/cifar10-jpeg, else skip."""
    env = os.environ.get("DTLIB_DATA")
    if env and (Path(env) / "train").is_dir() and (Path(env) / "test").is_dir():
        return Path(env)
    shared = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpeg"
    if shared.is_dir():
        return shared
    pytest.skip("real CIFAR-10 not found: set DTLIB_DATA to an ImageFolder copy (train/, test/) to run this test")
