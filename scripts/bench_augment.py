"""Benchmark dtlib.augment: batched views vs a torchvision PIL DataLoader pipeline vs kornia.augmentation.

Prints views/s for the Barlow Twins (2 views) and DINO multi-crop (2 global + 6 local) CIFAR recipes,
then a per-op table (dtlib vs kornia's functional op, plus the alternatives dtlib did not pick).

    python scripts/bench_augment.py [--device cpu|cuda] [--batch-size 256] [--iters 10]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import kornia
import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dtlib.augment import (  # noqa: E402
    CIFAR10_MEAN,
    CIFAR10_STD,
    ViewMaker,
    ViewSpec,
    barlow_twins_views,
    multicrop_views,
    normalize,
    sample_crop_boxes,
    sample_jitter,
)
from dtlib.ops import (  # noqa: E402
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    blur_kernel_size,
    color_jitter,
    gaussian_blur,
    hflip,
    resized_crop,
    solarize,
    to_grayscale,
)

DEFAULT_DATA = Path("/work/shared/data/cifar10-jpeg/train")


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_images(n: int, root: Path) -> tuple[Tensor, str]:
    """n CIFAR-10 training images as uint8 (n, 3, 32, 32), or random uint8 when the folder is missing."""
    files = sorted(root.glob("*/*.jpg")) if root.is_dir() else []
    if not files:
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), "random uint8"
    pick = torch.randperm(len(files), generator=torch.Generator().manual_seed(0))[:n].tolist()
    arrays = [np.asarray(Image.open(files[i]).convert("RGB")) for i in pick]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous(), f"CIFAR-10 (JPEG q75 copy), {root}"


# ---------------------------------------------------------------------------------- reference pipelines


def pil_pipeline(spec: ViewSpec, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """The same view as a per-image torchvision PIL pipeline (the usual SSL data-loader recipe)."""
    k = blur_kernel_size(spec.size)
    ops: list[nn.Module] = [
        T.RandomResizedCrop(spec.size, scale=spec.scale, ratio=spec.ratio),
        T.RandomHorizontalFlip(spec.flip_p),
        T.RandomApply([T.ColorJitter(spec.brightness, spec.contrast, spec.saturation, spec.hue)], spec.jitter_p),
        T.RandomGrayscale(spec.gray_p),
    ]
    if spec.blur_p > 0:
        ops.append(T.RandomApply([T.GaussianBlur(k, spec.blur_sigma)], spec.blur_p))
    if spec.solarize_p > 0:
        ops.append(T.RandomSolarize(128, spec.solarize_p))  # threshold 0.5 on [0, 1]
    return T.Compose([*ops, T.ToTensor(), T.Normalize(mean, std)])


class PilViews(Dataset):
    """Dataset over a uint8 tensor that returns one PIL-augmented view per spec."""

    def __init__(self, images: Tensor, specs: Sequence[ViewSpec]) -> None:
        self.arrays = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, 3) for PIL
        self.pipes = [pil_pipeline(s, CIFAR10_MEAN, CIFAR10_STD) for s in specs]

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> list[Tensor]:
        img = Image.fromarray(self.arrays[i])
        return [pipe(img) for pipe in self.pipes]


def kornia_pipeline(spec: ViewSpec) -> nn.Sequential:
    """The same view with kornia.augmentation modules on float images in [0, 1]."""
    k = blur_kernel_size(spec.size)
    ops: list[nn.Module] = [
        K.RandomResizedCrop((spec.size, spec.size), scale=spec.scale, ratio=spec.ratio),
        K.RandomHorizontalFlip(p=spec.flip_p),
        K.ColorJitter(spec.brightness, spec.contrast, spec.saturation, spec.hue, p=spec.jitter_p),
        K.RandomGrayscale(p=spec.gray_p),
    ]
    if spec.blur_p > 0:
        ops.append(K.RandomGaussianBlur((k, k), spec.blur_sigma, p=spec.blur_p))
    if spec.solarize_p > 0:
        ops.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=spec.solarize_p))  # threshold 0.5
    ops.append(K.Normalize(torch.tensor(CIFAR10_MEAN), torch.tensor(CIFAR10_STD)))
    return nn.Sequential(*ops)


# ------------------------------------------------------------------------------------------------ timing


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(fns: Sequence[Callable[[], object]], iters: int, device: torch.device) -> list[float]:
    """Median wall time (s) of each fn, calling them round-robin so bursts of load on a shared CPU hit all alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, ts in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def bench_batched(
    makers: Sequence[Callable[[Tensor], list[Tensor]]], images: Tensor, batch: int, iters: int
) -> list[float]:
    """Views/s of batched view makers, each drawing a random batch from the device-resident uint8 set."""
    gen = torch.Generator(device=images.device).manual_seed(0)

    def step(make: Callable[[Tensor], list[Tensor]]) -> list[Tensor]:
        idx = torch.randint(0, len(images), (batch,), generator=gen, device=images.device)
        return make(images[idx])

    n_views = [len(step(make)) for make in makers]
    secs = interleaved_medians([lambda m=m: step(m) for m in makers], iters, images.device)
    return [n * batch / t for n, t in zip(n_views, secs)]


def bench_pil(images: Tensor, specs: Sequence[ViewSpec], batch: int, rounds: int, workers: int) -> float:
    """Views/s of the PIL pipeline through a shuffling DataLoader in steady state.

    Each worker builds whole batches, so batches arrive ``workers`` at a time: the clock starts once the
    first round is in (worker start-up excluded) and stops after ``rounds`` more rounds.
    """
    loader = DataLoader(PilViews(images, specs), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    for _ in range(workers):
        next(it)
    t0 = time.perf_counter()
    for _ in range(rounds * workers):
        next(it)
    return rounds * workers * batch * len(specs) / (time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- per-op table


def grouped_conv_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Alternative blur: per-sample separable kernels as a grouped conv2d with B*C groups."""
    b, c, h, w = x.shape
    r = kernel_size // 2
    taps = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - r
    k = torch.exp(-0.5 * (taps / sigma[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (B*C, k)
    y = F.pad(x, (r, r, r, r), mode="reflect").reshape(1, b * c, h + 2 * r, w + 2 * r)
    y = F.conv2d(y, k[:, None, None, :], groups=b * c)
    return F.conv2d(y, k[:, None, :, None], groups=b * c).reshape(b, c, h, w)


def fixed_order_jitter(x: Tensor, factors: Tensor) -> Tensor:
    """The alternative to a random per-sample order: brightness, contrast, saturation, hue for every sample."""
    x = adjust_brightness(x, factors[:, 0])
    x = adjust_contrast(x, factors[:, 1])
    x = adjust_saturation(x, factors[:, 2])
    return adjust_hue(x, factors[:, 3])


def op_table(device: torch.device, batch: int, iters: int) -> list[tuple[str, str, float]]:
    """(op, implementation, ms) for each op on a (batch, 3, 32, 32) float batch."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(batch, 3, 32, 32, generator=g, device=device)
    f = 0.6 + 0.8 * torch.rand(batch, generator=g, device=device)
    hue = 0.2 * torch.rand(batch, generator=g, device=device) - 0.1
    sigma = 0.1 + 1.9 * torch.rand(batch, generator=g, device=device)
    boxes = sample_crop_boxes(batch, 32, 32, (0.2, 1.0), (3 / 4, 4 / 3), g, device)
    # kornia's crop_and_resize wants the corners (x, y): tl, tr, br, bl, inclusive.
    top, left, h, w = boxes.float().unbind(1)
    x0, y0, x1, y1 = left, top, left + w - 1, top + h - 1
    corners = torch.stack([torch.stack(p, 1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], 1)  # (B, 4, 2)
    mean, std = torch.tensor(CIFAR10_MEAN, device=device), torch.tensor(CIFAR10_STD, device=device)
    spec = ViewSpec(jitter_p=1.0)
    factors, order = sample_jitter(batch, spec, g, device)
    kornia_jitter = K.ColorJitter(spec.brightness, spec.contrast, spec.saturation, spec.hue, p=1.0).to(device)
    ke, kg = kornia.enhance, kornia.geometry.transform
    cases: list[tuple[str, str, Callable[[], object]]] = [
        ("resized_crop 32", "dtlib", lambda: resized_crop(x, boxes, 32)),
        ("resized_crop 32", "kornia crop_and_resize", lambda: kg.crop_and_resize(x, corners, (32, 32))),
        ("hflip", "dtlib", lambda: hflip(x)),
        ("hflip", "kornia", lambda: kg.hflip(x)),
        ("brightness", "dtlib", lambda: adjust_brightness(x, f)),
        ("brightness", "kornia", lambda: ke.adjust_brightness_accumulative(x, f)),
        ("contrast", "dtlib", lambda: adjust_contrast(x, f)),
        ("contrast", "kornia", lambda: ke.adjust_contrast_with_mean_subtraction(x, f)),
        ("saturation", "dtlib", lambda: adjust_saturation(x, f)),
        ("saturation", "kornia", lambda: ke.adjust_saturation_with_gray_subtraction(x, f)),
        ("hue", "dtlib", lambda: adjust_hue(x, hue)),
        ("hue", "kornia", lambda: ke.adjust_hue(x, hue * 2 * math.pi)),
        ("grayscale", "dtlib", lambda: to_grayscale(x)),
        ("grayscale", "kornia", lambda: kornia.color.rgb_to_grayscale(x).expand_as(x)),
        ("gaussian_blur k3", "dtlib", lambda: gaussian_blur(x, sigma, 3)),
        ("gaussian_blur k3", "grouped conv2d", lambda: grouped_conv_blur(x, sigma, 3)),
        ("gaussian_blur k3", "kornia", lambda: kornia.filters.gaussian_blur2d(x, 3, torch.stack([sigma, sigma], 1))),
        ("solarize", "dtlib", lambda: solarize(x)),
        ("solarize", "kornia", lambda: ke.solarize(x, 0.5)),
        ("normalize", "dtlib", lambda: normalize(x, CIFAR10_MEAN, CIFAR10_STD)),
        ("normalize", "kornia", lambda: ke.normalize(x, mean, std)),
        ("color_jitter", "dtlib (per-sample random order)", lambda: color_jitter(x, factors, order)),
        ("color_jitter", "fixed order b, c, s, h", lambda: fixed_order_jitter(x, factors)),
        ("color_jitter", "kornia ColorJitter (per-batch order)", lambda: kornia_jitter(x)),
    ]
    secs = interleaved_medians([fn for _, _, fn in cases], iters, device)
    return [(op, impl, 1e3 * t) for (op, impl, _), t in zip(cases, secs)]


# ------------------------------------------------------------------------------------------------------ main


def main() -> None:
    """Run the recipe and per-op benchmarks and print markdown tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=10, help="timed batches per batched measurement")
    ap.add_argument("--pil-rounds", type=int, default=1, help="timed DataLoader rounds (a batch per worker)")
    ap.add_argument("--images", type=int, default=1024, help="images loaded as the device-resident pool")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ImageFolder of 32-px JPEGs")
    ap.add_argument("--no-ops", action="store_true", help="skip the per-op table")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads in this process (0: torch's default); 1 because on a shared CPU "
        "OpenMP's spin-waits cost ~10 ms per op (results/bench_augment.md)",
    )
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    workers = len(os.sched_getaffinity(0))
    images, source = load_images(max(args.images, args.batch_size * workers * (args.pil_rounds + 1)), args.data)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"CPU: {cpu_name()}, {workers} cores usable, torch threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, kornia {kornia.__version__}")
    print(
        f"images: {source}, {len(images)} as uint8 on {device}; batch {args.batch_size}; median of "
        f"{args.iters} batches; PIL DataLoader num_workers={workers}, {args.pil_rounds * workers} batches\n"
    )

    on_device = images.to(device)
    recipes = {"Barlow Twins (2 views)": barlow_twins_views(), "DINO (2 global + 6 local)": multicrop_views()}
    print("| recipe | dtlib views/s | kornia views/s | PIL DataLoader views/s | dtlib / PIL | dtlib / kornia |")
    print("|---|---|---|---|---|---|")
    for name, specs in recipes.items():
        pipes = [kornia_pipeline(s).to(device) for s in specs]
        ours, kor = bench_batched(
            [ViewMaker(specs), lambda b, pipes=pipes: [p(b.float() / 255) for p in pipes]],
            on_device,
            args.batch_size,
            args.iters,
        )
        pil = bench_pil(images, specs, args.batch_size, args.pil_rounds, workers)
        print(f"| {name} | {ours:,.0f} | {kor:,.0f} | {pil:,.0f} | {ours / pil:.1f}x | {ours / kor:.1f}x |")

    if args.no_ops:
        return
    print(f"\nper-op, (B={args.batch_size}, 3, 32, 32) float on {device}, median ms:\n")
    print("| op | implementation | ms | vs dtlib |")
    print("|---|---|---|---|")
    rows = op_table(device, args.batch_size, args.iters)
    ours_ms = {op: ms for op, impl, ms in rows if impl.startswith("dtlib")}
    for op, impl, ms in rows:
        print(f"| {op} | {impl} | {ms:.2f} | {ms / ours_ms[op]:.2f}x |")


if __name__ == "__main__":
    main()
