"""`python -m dtlib pack-data OUT.tgz`: an ImageFolder dataset (train/ and test/) as one gzipped tarball.

A device run carries one file instead of 60,000 (CIFAR-10 as JPEGs: 55 MB of files, about 20 MB packed,
since gzip folds the JPEG headers every file repeats), and unpacks it with `unpack_data`.
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

from .data import DataError, _data_folder, _is_image_folder_root


def pack_data(dest: str | Path, data_dir: str | Path | None = None) -> Path:
    """Write the ImageFolder root `data_dir` (default $DTLIB_DATA) as `dest`, its files in sorted order."""
    root = _data_folder(data_dir)
    if not _is_image_folder_root(root):
        raise DataError(f"{root} is not an ImageFolder root with train/ and test/: pass --data-dir or set DTLIB_DATA")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        for split in ("train", "test"):
            for path in sorted((root / split).rglob("*")):
                if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
                    tar.add(path, arcname=f"{root.name}/{path.relative_to(root)}", recursive=False)
    tmp.replace(dest)
    return dest


def unpack_data(tgz: str | Path, dest: str | Path) -> Path:
    """Extract `pack_data`'s tarball under `dest`; returns the dataset root (dest/<name>)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:
        names = tar.getnames()
        tar.extractall(dest, filter="data")
    return dest / names[0].split("/")[0]


def main(argv: list[str] | None = None) -> int:
    """Parse `pack-data DEST [--data-dir DIR]` and write the tarball."""
    parser = argparse.ArgumentParser(prog="python -m dtlib pack-data")
    parser.add_argument("dest", type=Path, help="the .tgz to write, e.g. .gpu/cifar10-jpeg.tgz")
    parser.add_argument("--data-dir", default=None, help="ImageFolder root (default: $DTLIB_DATA)")
    args = parser.parse_args(argv)
    path = pack_data(args.dest, args.data_dir)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0
