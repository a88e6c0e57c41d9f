"""Write the README's architecture diagrams to images/arch_<method>.png."""

from __future__ import annotations

import argparse
from pathlib import Path

from dtlib.plots import draw_architecture

METHODS = ("barlow_twins", "dino", "dinotwins")


def main() -> None:
    """Draw each method's diagram and save it as a PNG."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=Path(__file__).resolve().parents[1] / "images", type=Path,
                        help="folder for the PNGs (default: the repository's images/)")
    parser.add_argument("--dpi", default=150, type=int)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for method in METHODS:
        path = args.out / f"arch_{method}.png"
        draw_architecture(method).savefig(path, dpi=args.dpi, facecolor="white")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
