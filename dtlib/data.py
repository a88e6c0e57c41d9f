"""Datasets as uint8 tensors: CIFAR-10/100 through torchvision, or an offline ImageFolder copy with a decode cache."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from .atomic import save_atomically

try:  # torchvision 0.29 deprecated its decoders and a later release drops them; PIL then decodes everything
    from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:
    decode_jpeg = None

__all__ = [
    "DATASETS",
    "DATA_SEED",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "DataError",
    "Split",
    "cache_dir",
    "default_data_dir",
    "load_dataset",
    "load_split",
    "random_subset",
    "split_validation",
]

DATASETS = ("cifar10", "cifar100", "imagefolder")
SPLITS = ("train", "test")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

# Every data subset (the validation hold-out, a training subset, the probe's subset) is drawn with this
# seed, never the run's: the runs of a comparison, whatever their seeds, see the same images.
DATA_SEED = 12345
_CACHE_VERSION = 1  # part of every cache key: bump it when the cache layout changes so old files are ignored
_DECODE_CHUNK = 4096  # files read per decode call: bounds the encoded bytes held in memory at once
_JPEG_MAGIC = b"\xff\xd8\xff"
_PRETTY_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
_POINT_AT_COPY = (
    "pass --data-dir (data_dir=...) or set DTLIB_DATA to an existing copy: an ImageFolder root with "
    "train/<class>/<image> and test/<class>/<image>, or a folder holding torchvision's CIFAR files"
)


class DataError(Exception):
    """Bad or missing data; the message names the path and says what to do."""


@dataclass
class Split:
    """One split of a dataset, held in memory."""

    images: torch.Tensor  # uint8 (N, 3, H, W), contiguous, CPU
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]

    def __len__(self) -> int:
        """Number of images."""
        return self.labels.shape[0]


def default_data_dir() -> Path:
    """Folder holding the datasets: $DTLIB_DATA if set, else ~/.cache/dtlib/data."""
    env = os.environ.get("DTLIB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dtlib" / "data"


def cache_dir() -> Path:
    """Writable cache for decoded images: $DTLIB_CACHE if set, else ~/.cache/dtlib."""
    env = os.environ.get("DTLIB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dtlib"


def load_split(
    dataset: str = "cifar10",
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Split:
    """Load one split ("train" or "test") as uint8 images, int64 labels and class names."""
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("split", split, SPLITS)
    folder = _data_folder(data_dir)
    # A folder with train/ or test/ is an offline copy: read it whatever the dataset name, never download
    if _is_image_folder_root(folder):
        return _load_image_folder(folder, split)
    if dataset == "imagefolder":
        if not folder.is_dir():
            raise DataError(f"data folder {folder} does not exist; {_POINT_AT_COPY}")
        raise DataError(
            f"{folder} is not an ImageFolder root: it needs train/ and test/ subfolders, each holding one "
            f"subfolder of images per class ({folder}/train/<class>/<image>.png)"
        )
    return _load_torchvision(dataset, split, folder, download)


def load_dataset(
    dataset: str = "cifar10",
    data_dir: str | Path | None = None,
    download: bool = True,
) -> tuple[Split, Split]:
    """Load (train, test), checking that both splits have the same class list."""
    _check_choice("dataset", dataset, DATASETS)
    folder = _data_folder(data_dir)
    if _is_image_folder_root(folder):  # compare the class folders before spending time on decoding
        _check_same_classes(_class_names(folder / "train"), _class_names(folder / "test"), folder)
    return load_split(dataset, "train", folder, download), load_split(dataset, "test", folder, download)


def resize_split(split: Split, size: int, batch_size: int = 4096) -> Split:
    """The split with every image resized (antialiased) to size x size; unchanged if already that size."""
    if size <= 0 or split.images.shape[-2:] == (size, size):
        return split
    chunks = []
    for x in split.images.split(batch_size):
        y = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True)
        chunks.append(y.round().clamp(0, 255).to(torch.uint8))  # (b, 3, size, size)
    return Split(torch.cat(chunks), split.labels, split.classes)


def split_validation(train: Split, fraction: float) -> tuple[Split, Split]:
    """(rest, val): a fixed, class-stratified hold-out of `fraction` of each class (drawn with DATA_SEED).

    Self-supervised training and the probe's fit see only `rest`; recipe choices are scored on `val`,
    so the test split is left to report the final rows."""
    if fraction <= 0:
        return train, Split(train.images[:0], train.labels[:0], train.classes)
    g = torch.Generator().manual_seed(DATA_SEED)
    val_idx = []
    for c in train.labels.unique(sorted=True).tolist():
        members = (train.labels == c).nonzero().flatten()  # (n_c,) in load order
        n_val = round(fraction * len(members))
        val_idx.append(members[torch.randperm(len(members), generator=g)[:n_val]])
    is_val = torch.zeros(len(train), dtype=torch.bool)
    is_val[torch.cat(val_idx)] = True
    rest, val = (~is_val).nonzero().flatten(), is_val.nonzero().flatten()  # both in load order
    return (Split(train.images[rest], train.labels[rest], train.classes),
            Split(train.images[val], train.labels[val], train.classes))


def random_subset(split: Split, n: int) -> Split:
    """A fixed random subset of `n` images (drawn with DATA_SEED); the whole split when n is 0 or too large."""
    if not n or n >= len(split):
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(DATA_SEED))[:n]
    return Split(split.images[idx], split.labels[idx], split.classes)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Reject an argument outside its allowed values."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _data_folder(data_dir: str | Path | None) -> Path:
    """The folder the caller named, else the default data folder."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def _is_image_folder_root(folder: Path) -> bool:
    """Whether folder is laid out as an ImageFolder root (train/ and/or test/ subfolders)."""
    return any((folder / split).is_dir() for split in SPLITS)


def _check_same_classes(train: list[str], test: list[str], folder: Path) -> None:
    """Raise DataError listing the classes found in only one of the two splits."""
    if train == test:
        return
    only_train = sorted(set(train) - set(test)) or "none"
    only_test = sorted(set(test) - set(train)) or "none"
    raise DataError(
        f"{folder}/train and {folder}/test have different class folders (only in train: {only_train}; "
        f"only in test: {only_test}); give both splits the same class subfolders"
    )


# torchvision CIFAR ---------------------------------------------------------------------------------------


def _load_torchvision(dataset: str, split: str, folder: Path, download: bool) -> Split:
    """CIFAR-10/100 through torchvision, downloading into folder when allowed."""
    name = _PRETTY_NAMES[dataset]
    if not download and not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist (and download=False); {_POINT_AT_COPY}")
    dataset_class = torchvision.datasets.CIFAR10 if dataset == "cifar10" else torchvision.datasets.CIFAR100
    try:
        data = dataset_class(root=str(folder), train=split == "train", download=download)
    except (OSError, RuntimeError) as err:
        # No network surfaces as URLError (an OSError); a missing or corrupt archive as RuntimeError
        if download:
            raise DataError(f"could not download {name} to {folder} ({err}); {_POINT_AT_COPY}") from None
        raise DataError(f"no {name} found in {folder} ({err}); {_POINT_AT_COPY}") from None
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    labels = torch.as_tensor(data.targets, dtype=torch.int64)
    return Split(images, labels, list(data.classes))


# ImageFolder ---------------------------------------------------------------------------------------------


def _load_image_folder(root: Path, split: str) -> Split:
    """Read root/split as an ImageFolder, from the decode cache while its files are unchanged."""
    root = root.resolve()
    classes, files, labels, key = _list_split(root, split)
    # The root id in the name lets a shared cache folder hold many roots and drop a root's stale files
    prefix = f"{hashlib.sha256(str(root).encode()).hexdigest()[:12]}-{split}-"
    name = f"{prefix}{key[:16]}.pt"
    cached = _read_cache(root, name, key)
    if cached is not None:
        return cached
    result = Split(_decode_files(files), torch.tensor(labels, dtype=torch.int64), classes)
    _write_cache(root, prefix, name, key, result)
    return result


def _class_names(split_dir: Path) -> list[str]:
    """Sorted class subfolder names of one split folder."""
    if not split_dir.is_dir():
        raise DataError(
            f"{split_dir} does not exist: an ImageFolder root needs both train/ and test/, each with one "
            "subfolder of images per class"
        )
    # Hidden folders (.ipynb_checkpoints, .dtlib_cache) are tool debris, not classes
    names = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise DataError(
            f"{split_dir} has no class subfolders: put the images in {split_dir}/<class name>/, "
            "one subfolder per class"
        )
    return names


def _scan_images(folder: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every image file under folder, recursively."""
    found = []
    for entry in os.scandir(folder):
        if entry.name.startswith("."):  # macOS "._x.jpg" resource forks carry image extensions
            continue
        if entry.is_dir():
            found.extend(_scan_images(entry.path))
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
            stat = entry.stat()
            found.append((entry.path, stat.st_size, stat.st_mtime_ns))
    return found


def _list_split(root: Path, split: str) -> tuple[list[str], list[str], list[int], str]:
    """Classes, image paths, labels and a cache key covering the root, the split and every file's stat."""
    split_dir = root / split
    classes = _class_names(split_dir)
    files: list[str] = []
    labels: list[int] = []
    key = hashlib.sha256(f"v{_CACHE_VERSION}\0{root}\0{split}\n".encode())
    for label, class_name in enumerate(classes):
        entries = sorted(_scan_images(str(split_dir / class_name)))
        if not entries:
            raise DataError(
                f"class folder {split_dir / class_name} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                "add images or remove the folder"
            )
        for path, size, mtime_ns in entries:
            files.append(path)
            labels.append(label)
            key.update(f"{path}\0{size}\0{mtime_ns}\n".encode())
    return classes, files, labels, key.hexdigest()


def _decode_files(files: list[str]) -> torch.Tensor:
    """Decode image files into one uint8 (N, 3, H, W) tensor; every image must have the same size."""
    images = torch.empty(0, dtype=torch.uint8)
    for start in range(0, len(files), _DECODE_CHUNK):
        chunk = files[start : start + _DECODE_CHUNK]
        decoded = _decode_chunk(chunk)  # list of (3, H, W)
        if start == 0:
            images = torch.empty((len(files), *decoded[0].shape), dtype=torch.uint8)
        for offset, (path, image) in enumerate(zip(chunk, decoded, strict=True)):
            if image.shape != images.shape[1:]:
                raise DataError(
                    f"{path} is {_size(image.shape)} pixels but {files[0]} is {_size(images.shape[1:])}: "
                    "all images must have one size; resize them to one size first"
                )
            images[start + offset] = image
    return images


def _size(shape: torch.Size) -> str:
    """'HxW' of a (3, H, W) shape."""
    return f"{shape[1]}x{shape[2]} (HxW)"


def _decode_chunk(paths: list[str]) -> list[torch.Tensor]:
    """Decode files to uint8 (3, H, W) tensors: JPEGs in one torchvision call, other formats with PIL."""
    blobs = [_read_bytes(path) for path in paths]
    is_jpeg = [decode_jpeg is not None and blob[:3] == _JPEG_MAGIC for blob in blobs]
    jpegs = iter(_decode_jpegs([p for p, j in zip(paths, is_jpeg) if j], [b for b, j in zip(blobs, is_jpeg) if j]))
    return [next(jpegs) if j else _decode_pil(p, b) for p, b, j in zip(paths, blobs, is_jpeg)]


def _read_bytes(path: str) -> bytearray:
    """A file's bytes (a bytearray, so torch can wrap it without a read-only-buffer warning)."""
    try:
        with open(path, "rb") as file:
            return bytearray(file.read())
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror}); check its permissions") from None


def _decode_jpegs(paths: list[str], blobs: list[bytearray]) -> list[torch.Tensor]:
    """Decode JPEGs with torchvision's batched decoder (measured ~3x faster than PIL on CIFAR JPEGs)."""
    if not blobs:
        return []
    tensors = [torch.frombuffer(blob, dtype=torch.uint8) for blob in blobs]
    with warnings.catch_warnings():
        # The deprecation notice concerns our call, not the user's code, and PIL is the fallback once it is gone
        warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities", category=DeprecationWarning)
        try:
            return decode_jpeg(tensors, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass
    # One bad file fails the whole batch: PIL decodes the rest and names the file it cannot read
    return [_decode_pil(path, blob) for path, blob in zip(paths, blobs, strict=True)]


def _decode_pil(path: str, blob: bytearray) -> torch.Tensor:
    """Decode one image with PIL into uint8 (3, H, W); grayscale, palette and RGBA become RGB."""
    try:
        with Image.open(io.BytesIO(blob)) as image:
            rgb = np.array(image.convert("RGB"))  # (H, W, 3)
    except Exception as err:  # PIL's format plugins raise assorted types (OSError, SyntaxError, struct.error)
        raise DataError(f"cannot decode {path} as an image ({err}); replace or delete the file") from None
    return torch.from_numpy(rgb).permute(2, 0, 1)  # (3, H, W)


# Decode cache --------------------------------------------------------------------------------------------


def _cache_folders(root: Path) -> list[Path]:
    """Where a root's decoded splits may be cached, preferred first: next to the data, then the user cache."""
    return [root / ".dtlib_cache", cache_dir() / "imagefolder"]


def _writable(folder: Path) -> bool:
    """Whether we may write into folder; a folder with no write bit counts as read-only even for root."""
    # root bypasses permission bits, so honour them explicitly: a copy marked read-only stays untouched
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def _read_cache(root: Path, name: str, key: str) -> Split | None:
    """The cached split for this key, or None when no readable, matching cache file exists."""
    for folder in _cache_folders(root):
        path = folder / name
        if not path.is_file():
            continue
        try:
            payload = torch.load(path, weights_only=True)
            images, labels, classes = payload["images"], payload["labels"], payload["classes"]
            valid = (
                payload["key"] == key
                and images.dtype == torch.uint8
                and images.ndim == 4
                and labels.dtype == torch.int64
                and labels.shape == (len(images),)
            )
        except Exception:  # any unreadable or foreign file is only a cache miss: the split is decoded again
            continue
        if valid:
            return Split(images, labels, list(classes))
    return None


def _write_cache(root: Path, prefix: str, name: str, key: str, split: Split) -> None:
    """Save the decoded split atomically in the first writable cache folder and drop its stale versions."""
    payload = {"key": key, "images": split.images, "labels": split.labels, "classes": split.classes}
    for folder in _cache_folders(root):
        if folder.parent == root and not _writable(root):
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            save_atomically(payload, folder / name)
        except OSError:
            continue
        for stale in folder.glob(f"{prefix}*.pt"):
            if stale.name != name:
                with contextlib.suppress(OSError):  # another process may hold or have removed it
                    stale.unlink()
        return
    warnings.warn(
        f"could not cache the decoded images of {root} (no writable cache folder); "
        "set DTLIB_CACHE to a writable folder to make the next load fast",
        stacklevel=3,
    )

