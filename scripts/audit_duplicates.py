"""Print how many test images of a dataset are exact (byte-identical pixel) duplicates of train images.

Usage: python scripts/audit_duplicates.py DATA_DIR [--dataset cifar10|cifar100|imagefolder] [--no-download]
"""

from __future__ import annotations

import argparse
import sys
import time

from dtlib.data import DATASETS, DataError, count_duplicates, load_dataset


def main(argv: list[str] | None = None) -> int:
    """Load train and test from DATA_DIR and print the exact-duplicate count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="ImageFolder root (train/, test/) or torchvision CIFAR folder")
    parser.add_argument("--dataset", default="cifar10", choices=DATASETS)
    parser.add_argument("--no-download", action="store_true", help="never try to download CIFAR")
    args = parser.parse_args(argv)
    try:
        train, test = load_dataset(args.dataset, args.data_dir, download=not args.no_download)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    duplicates = count_duplicates(train, test)
    seconds = time.perf_counter() - start
    print(f"train images: {len(train)}  test images: {len(test)}")
    print(f"test images with a byte-identical copy in train: {duplicates} ({100 * duplicates / len(test):.2f} %)")
    print(f"count_duplicates took {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
