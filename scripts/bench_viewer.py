"""How fast the attention viewer answers: first view of an image (attention computed) and each control.

Builds a ViT-T/4 (random init: the timing does not depend on the weights) and an AttentionViewer over
scikit-image's photos at 128 px and CIFAR-sized 32-px images, then times, on the current device:
- the first view of a new image (all layers' attention computed, then cached),
- every later change of each control (layer, head, threshold, alpha, mode, image): cache hits,
  so only the redraw and the PNG encoding are left.
Prints median and max milliseconds per control; a script that prints numbers, not a timed test.

usage: python scripts/bench_viewer.py [--repeats 20] [--photo-size 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import skimage.data
import torch

from dtlib.attention import crop_resize
from dtlib.backbones import build_backbone
from dtlib.widgets import AttentionViewer


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--photo-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vit = build_backbone("vit_tiny", img_size=32).eval()
    names = ["astronaut", "chelsea", "coffee", "rocket"]
    photos = [crop_resize(getattr(skimage.data, n)(), args.photo_size) for n in names]
    small = list(np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    viewer = AttentionViewer(vit, photos + small, names=names + [f"cifar-sized {i}" for i in range(4)])

    first = {"photo": [], "32 px": []}
    for index in range(1, len(viewer.images)):  # image 0 was computed by the constructor
        kind = "photo" if index < len(photos) else "32 px"
        first[kind].append(timed(lambda i=index: setattr(viewer.image_picker, "value", i)))

    rng = np.random.default_rng(1)
    controls = {
        "layer": (viewer.layer, lambda: int(rng.integers(viewer.layer.min, viewer.layer.max + 1))),
        "head": (viewer.head, lambda: viewer.head.options[int(rng.integers(len(viewer.head.options)))][1]),
        "threshold": (viewer.threshold, lambda: float(rng.choice(np.arange(0.05, 1.0, 0.05)))),
        "alpha": (viewer.alpha, lambda: float(rng.choice(np.arange(0.0, 1.0, 0.05)))),
        "mode": (viewer.mode, lambda: "mask" if viewer.mode.value == "heatmap" else "heatmap"),
        "image (cached)": (viewer.image_picker, lambda: int(rng.integers(len(viewer.images)))),
    }
    viewer.image_picker.value = 0  # a 128-px photo: the largest map to draw
    print(f"ViT-T/4, {sum(p.numel() for p in vit.parameters()) / 1e6:.1f}M parameters, "
          f"{torch.get_num_threads()} thread(s); photos {args.photo_size} px "
          f"({(args.photo_size // 4) ** 2} patches)")
    print(f"{'action':<26}{'median ms':>10}{'max ms':>10}{'n':>5}")
    for kind, values in first.items():
        print(f"{'first view, ' + kind:<26}{statistics.median(values):>10.1f}{max(values):>10.1f}{len(values):>5}")
    for name, (control, new_value) in controls.items():
        values = []
        for _ in range(args.repeats):
            value = new_value()
            if value == control.value:  # an unchanged value fires no redraw: nothing to time
                continue
            values.append(timed(lambda c=control, v=value: setattr(c, "value", v)))
        print(f"{name:<26}{statistics.median(values):>10.1f}{max(values):>10.1f}{len(values):>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
