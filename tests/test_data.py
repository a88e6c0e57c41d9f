"""Tests for dtlib.data: ImageFolder loading and its cache, torchvision CIFAR, errors, duplicates, real CIFAR-10."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import dtlib.data as data
from dtlib.data import DataError, Split, load_dataset, load_split, resize_split

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _save(path: Path, pixels: np.ndarray, **options: object) -> None:
    """Write an (H, W[, C]) uint8 array as an image file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)


def _cache_files(folder: Path) -> list[Path]:
    """Cache files in a cache folder (none when it does not exist)."""
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


@pytest.fixture
def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many files each call of the decoder receives."""
    calls: list[int] = []
    real = data._decode_files

    def counting(files: list[str]) -> torch.Tensor:
        calls.append(len(files))
        return real(files)

    monkeypatch.setattr(data, "_decode_files", counting)
    return calls


# Paths and the tiny ImageFolder --------------------------------------------------------------------------


def test_default_dirs_follow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DTLIB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("DTLIB_CACHE", str(tmp_path / "c"))
    assert data.default_data_dir() == tmp_path / "d"
    assert data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("DTLIB_DATA")
    monkeypatch.delenv("DTLIB_CACHE")
    assert data.default_data_dir() == Path.home() / ".cache" / "dtlib" / "data"
    assert data.cache_dir() == Path.home() / ".cache" / "dtlib"


def test_image_folder_round_trips_pixels_and_labels(tiny_image_folder) -> None:
    train, test = load_dataset("imagefolder", tiny_image_folder.root)
    for split, images, labels in [
        (train, tiny_image_folder.train_images, tiny_image_folder.train_labels),
        (test, tiny_image_folder.test_images, tiny_image_folder.test_labels),
    ]:
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert split.images.shape == (len(labels), 3, 8, 8)
        assert split.labels.dtype == torch.int64
        assert split.classes == ["ant", "bee", "cat"]
        assert torch.equal(split.images, torch.from_numpy(images))
        assert torch.equal(split.labels, torch.from_numpy(labels))
    assert len(train) == 12 and len(test) == 6


def test_image_folder_root_wins_over_cifar_name(tiny_image_folder) -> None:
    split = load_split("cifar10", "test", tiny_image_folder.root, download=True)
    assert torch.equal(split.images, torch.from_numpy(tiny_image_folder.test_images))


def test_default_data_dir_is_used(tiny_image_folder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTLIB_DATA", str(tiny_image_folder.root))
    assert len(load_split("imagefolder", "train")) == 12


def test_second_load_reads_cache(tiny_image_folder, count_decodes: list[int]) -> None:
    first = load_split("imagefolder", "train", tiny_image_folder.root)
    cache_files = _cache_files(tiny_image_folder.root / ".dtlib_cache")
    assert len(cache_files) == 1 and "-train-" in cache_files[0].name
    second = load_split("imagefolder", "train", tiny_image_folder.root)
    assert count_decodes == [12]  # the second load decoded nothing
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.classes == first.classes


def test_cache_is_rebuilt_after_adding_a_file(tiny_image_folder, count_decodes: list[int]) -> None:
    root = tiny_image_folder.root
    load_split("imagefolder", "train", root)
    new_pixels = np.full((8, 8, 3), 7, dtype=np.uint8)
    _save(root / "train" / "bee" / "0100.png", new_pixels)
    split = load_split("imagefolder", "train", root)
    assert count_decodes == [12, 13]
    assert len(split) == 13
    assert torch.equal(split.images[8], torch.from_numpy(new_pixels).permute(2, 0, 1))  # after bee's 4 files
    assert split.labels[8] == 1
    assert len(_cache_files(root / ".dtlib_cache")) == 1  # the stale cache file was removed


def test_corrupt_cache_is_ignored_and_rebuilt(tiny_image_folder, count_decodes: list[int]) -> None:
    root = tiny_image_folder.root
    load_split("imagefolder", "test", root)
    (cache_file,) = _cache_files(root / ".dtlib_cache")
    cache_file.write_bytes(b"not a torch file")
    split = load_split("imagefolder", "test", root)
    assert torch.equal(split.images, torch.from_numpy(tiny_image_folder.test_images))
    load_split("imagefolder", "test", root)
    assert count_decodes == [6, 6]  # rebuilt once, then read from the repaired cache


def test_read_only_root_caches_under_cache_dir(tiny_image_folder, tmp_cache: Path, count_decodes) -> None:
    root = tiny_image_folder.root
    root.chmod(0o555)  # no write bit: honoured even when the tests run as root
    try:
        first = load_split("imagefolder", "train", root)
        second = load_split("imagefolder", "train", root)
    finally:
        root.chmod(0o755)
    assert not (root / ".dtlib_cache").exists()
    assert len(_cache_files(tmp_cache / "imagefolder")) == 1
    assert count_decodes == [12]
    assert torch.equal(first.images, second.images)


@pytest.mark.parametrize("torchvision_jpeg", [True, False], ids=["torchvision-jpeg", "pil-only"])
def test_decodes_formats_to_rgb(tmp_path: Path, tmp_cache: Path, monkeypatch, torchvision_jpeg: bool) -> None:
    if not torchvision_jpeg:
        monkeypatch.setattr(data, "decode_jpeg", None)
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    split_dir = tmp_path / "formats" / "train"
    _save(split_dir / "a" / "1_gray.PNG", gray)  # upper-case extension
    _save(split_dir / "a" / "2_rgba.png", rgba)
    _save(split_dir / "a" / "3.bmp", rgb)
    _save(split_dir / "a" / "4.webp", rgb, lossless=True)
    _save(split_dir / "a" / "5.jpeg", rgb, quality=90)
    _save(split_dir / "a" / "nested" / "6.jpg", gray)
    (split_dir / "a" / "notes.txt").write_text("not an image, ignored")
    (split_dir / "a" / "._7.jpg").write_bytes(b"macOS resource fork, ignored")
    split = load_split("imagefolder", "train", tmp_path / "formats")
    pil_jpeg = np.array(Image.open(split_dir / "a" / "5.jpeg").convert("RGB"))
    expected = [np.stack([gray] * 3, -1), rgba[..., :3], rgb, rgb, pil_jpeg]
    assert len(split) == 6
    for image, pixels in zip(split.images, expected, strict=False):
        assert torch.equal(image, torch.from_numpy(pixels).permute(2, 0, 1))
    assert torch.equal(split.images[5, 0], split.images[5, 1])  # a grayscale JPEG becomes equal channels


# Error paths ----------------------------------------------------------------------------------------------


def test_missing_folder_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere.*does not exist.*DTLIB_DATA"):
        load_split("imagefolder", "train", missing)
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        load_split("cifar10", "train", missing, download=False)


def test_folder_without_splits_is_not_an_image_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"{re.escape(str(tmp_path))}.*train/ and test/"):
        load_split("imagefolder", "train", tmp_path)


def test_missing_test_split_names_path(tiny_image_folder) -> None:
    shutil.rmtree(tiny_image_folder.root / "test")
    with pytest.raises(DataError, match=r"tiny/test does not exist"):
        load_dataset("imagefolder", tiny_image_folder.root)


def test_split_without_class_folders(tmp_path: Path, tmp_cache: Path) -> None:
    _save(tmp_path / "flat" / "train" / "0.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"flat/train has no class subfolders"):
        load_split("imagefolder", "train", tmp_path / "flat")


def test_empty_class_folder(tiny_image_folder) -> None:
    (tiny_image_folder.root / "train" / "dog").mkdir()
    with pytest.raises(DataError, match=r"class folder .*tiny/train/dog holds no images"):
        load_split("imagefolder", "train", tiny_image_folder.root)


def test_different_class_sets_are_listed(tiny_image_folder) -> None:
    root = tiny_image_folder.root
    (root / "test" / "cat").rename(root / "test" / "cow")
    with pytest.raises(DataError, match=r"only in train: \['cat'\]; only in test: \['cow'\]") as info:
        load_dataset("imagefolder", root)
    assert str(root) in str(info.value)


@pytest.mark.parametrize("name, content", [("0002.png", b"not an image"), ("0002.jpg", b"\xff\xd8\xff\xe0oops")])
def test_corrupt_file_is_named(tiny_image_folder, name: str, content: bytes) -> None:
    # Good JPEGs next to the bad file exercise the batched decoder's per-file fallback
    for i in range(2):
        _save(tiny_image_folder.root / "train" / "bee" / f"{i:04d}.jpg", np.zeros((8, 8, 3), np.uint8))
    (tiny_image_folder.root / "train" / "bee" / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"cannot decode .*bee/{name}") as info:
        load_split("imagefolder", "train", tiny_image_folder.root)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_different_image_sizes_name_file_and_sizes(tiny_image_folder) -> None:
    _save(tiny_image_folder.root / "train" / "cat" / "big.png", np.zeros((16, 12, 3), np.uint8))
    with pytest.raises(DataError, match=r"cat/big.png is 16x12 \(HxW\) .* is 8x8 \(HxW\).*resize"):
        load_split("imagefolder", "train", tiny_image_folder.root)


def test_unknown_dataset_or_split() -> None:
    with pytest.raises(ValueError, match="cifar10, cifar100, imagefolder"):
        load_split("mnist")
    with pytest.raises(ValueError, match="train, test"):
        load_split("cifar10", "val")


# torchvision CIFAR ----------------------------------------------------------------------------------------


def _write_fake_cifar(root: Path, dataset_class: type, n_classes: int) -> dict[str, tuple[np.ndarray, list]]:
    """Write tiny batches in torchvision's pickle format; return each split's (rows, labels)."""
    folder = root / dataset_class.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if dataset_class is torchvision.datasets.CIFAR10 else "fine_labels"
    rng = np.random.default_rng(2)
    expected = {}
    for split, batches in [("train", dataset_class.train_list), ("test", dataset_class.test_list)]:
        rows, labels = [], []
        for filename, _md5 in batches:
            batch_rows = rng.integers(0, 256, (3, 3 * 32 * 32), dtype=np.uint8)  # (B, C*H*W), channel-major
            batch_labels = rng.integers(0, n_classes, 3).tolist()
            (folder / filename).write_bytes(pickle.dumps({"data": batch_rows, label_key: batch_labels}))
            rows.append(batch_rows)
            labels += batch_labels
        expected[split] = (np.concatenate(rows), labels)
    names = [f"class{i}" for i in range(n_classes)]
    (folder / dataset_class.meta["filename"]).write_bytes(pickle.dumps({dataset_class.meta["key"]: names}))
    return expected


@pytest.mark.parametrize("dataset, n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_torchvision_cifar_folder(tmp_path: Path, monkeypatch, dataset: str, n_classes: int) -> None:
    # The fake batches cannot match the real md5 sums: accept any file that exists
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    dataset_class = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    expected = _write_fake_cifar(tmp_path, dataset_class, n_classes)
    train, test = load_dataset(dataset, tmp_path, download=True)
    for split, (rows, labels) in [(train, expected["train"]), (test, expected["test"])]:
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert torch.equal(split.images, torch.from_numpy(rows).reshape(-1, 3, 32, 32))
        assert split.labels.dtype == torch.int64 and split.labels.tolist() == labels
        assert split.classes == [f"class{i}" for i in range(n_classes)]
    assert len(train) == 3 * len(dataset_class.train_list)


def test_download_without_network_gives_data_error(tmp_path: Path, monkeypatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    target = tmp_path / "empty"
    with pytest.raises(DataError, match=r"could not download CIFAR-10 to .*empty.*--data-dir.*DTLIB_DATA") as info:
        load_split("cifar10", "train", target, download=True)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_existing_folder_without_cifar_and_no_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"no CIFAR-100 found in {re.escape(str(tmp_path))}"):
        load_split("cifar100", "test", tmp_path, download=False)


# The real CIFAR-10 copy (default cache, so re-runs take seconds) -----------------------------------------


def test_shared_cifar10_copy(shared_cifar_dir: Path) -> None:
    train, test = load_dataset("cifar10", shared_cifar_dir, download=False)
    for split, n, per_class in [(train, 50_000, 5_000), (test, 10_000, 1_000)]:
        assert split.images.shape == (n, 3, 32, 32) and split.images.dtype == torch.uint8
        assert split.labels.shape == (n,) and split.labels.dtype == torch.int64
        assert split.classes == CIFAR10_CLASSES
        assert split.labels.bincount(minlength=10).tolist() == [per_class] * 10
    assert 0 < train.images.float().mean() < 255  # decoded pixels, not an all-zero buffer


# Resizing ------------------------------------------------------------------------------------------------


def test_resize_split_resizes_every_image_and_keeps_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=generator)
    images[0] = 77  # a flat image stays flat at any size
    images[1, :, :, :4], images[1, :, :, 4:] = 0, 255  # left half black, right half white
    images[2] = 0
    images[2, :, 0, 0] = 255  # one bright pixel, which plain bilinear sampling at 1/4 never reads
    split = Split(images, torch.arange(5), list("abcde"))
    small = resize_split(split, 2, batch_size=2)  # several chunks
    assert small.images.shape == (5, 3, 2, 2) and small.images.dtype == torch.uint8
    assert torch.equal(small.labels, split.labels) and small.classes == split.classes
    assert (small.images[0] == 77).all()
    assert (small.images[1, :, :, 0] < 64).all() and (small.images[1, :, :, 1] > 191).all()  # dark left, light right
    # antialiased: the bright pixel is averaged into its corner, not skipped
    assert (small.images[2, :, 0, 0] > 0).all() and (small.images[2, :, 1, 1] == 0).all()
    assert resize_split(split, 8) is split and resize_split(split, 0) is split
