"""Figures for the notebooks: views, heatmaps, distributions, curves and attention maps.

The architecture diagrams are drawn by scripts/make_diagrams.py (images/arch_*.png); the live
training curves are a `fit` callback in dtlib/tracking.py.

Every function draws on a `matplotlib.figure.Figure` that is not registered with pyplot and returns
it: nothing is shown from here, figures are garbage-collected like any object, and a notebook
displays one by making it the value of a cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from torch import Tensor

from .attention import attention_mask
from .cifar import CIFAR10_MEAN, CIFAR10_STD, unnormalize
from .diagnostics import entropy
from .losses import barlow_twins_terms

__all__ = [
    "LABELS",
    "MASK_CMAP",
    "markdown_table",
    "plot_attention",
    "plot_barlow_terms",
    "plot_cross_correlation",
    "plot_distributions",
    "plot_history",
    "plot_retrieval",
    "plot_schedules",
    "show_views",
]

# Axis titles for the keys of `fit`'s history rows and of `build_schedules`.
LABELS: dict[str, str] = {
    "loss": "loss",
    "loss_dino": "DINO loss",
    "loss_bt": "Barlow Twins loss",
    "teacher_entropy": "teacher entropy (nats)",
    "kl": "KL(teacher ‖ student) (nats)",
    "emb_std": "embedding std",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "momentum": "teacher momentum",
    "teacher_temp": "teacher temperature",
}

# History keys that are schedules: exact values, never smoothed.
_SCHEDULES = frozenset({"lr", "weight_decay", "momentum", "teacher_temp"})
# Mask overlay: black outside the mask, transparent on the kept patches (the caller sets the opacity).
MASK_CMAP = ListedColormap([(0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, 0.0)], name="outside_mask")
_MASK_ALPHA = 0.85  # opacity of the darkening in `plot_attention`: the image stays faintly visible


# ------------------------------------------------------------------------------------------- images


def _to_hwc(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised float images (B, 3, H, W) back to displayable (B, H, W, 3) values in [0, 1]."""
    return unnormalize(images, mean, std).permute(0, 2, 3, 1).numpy()


def _uint8_hwc(images: Tensor | Sequence[np.ndarray]) -> list[np.ndarray]:
    """uint8 images as a list of (H, W, 3) arrays, from a (B, 3, H, W) tensor or a list of arrays."""
    if isinstance(images, Tensor):
        return list(images.detach().cpu().permute(0, 2, 3, 1).numpy())
    return [np.asarray(img) for img in images]


def show_views(views: Sequence[Tensor], n_images: int = 6, mean: Sequence[float] = CIFAR10_MEAN,
               std: Sequence[float] = CIFAR10_STD, images: Tensor | None = None,
               titles: Sequence[str] | None = None) -> Figure:
    """Grid of augmented views, one row per image and one column per view, drawn to scale.

    `views` are normalised float batches (B, 3, h, w) as `ViewMaker` returns them; column widths
    follow each view's size, so 16-px local crops look half as large as 32-px global ones.
    `images` (uint8, B, 3, H, W) adds the original as the first column.
    """
    n_images = min(n_images, views[0].shape[0])
    columns = [_to_hwc(v[:n_images], mean, std) for v in views]
    names = list(titles) if titles is not None else [f"view {i + 1}" for i in range(len(views))]
    if len(names) != len(views):
        raise ValueError(f"{len(names)} titles for {len(views)} views")
    names = [f"{name}\n{v.shape[-1]} px" for name, v in zip(names, views)]
    if images is not None:
        columns.insert(0, images[:n_images].detach().cpu().permute(0, 2, 3, 1).numpy())
        names.insert(0, f"original\n{images.shape[-1]} px")
    widths = [c.shape[2] for c in columns]
    fig = Figure(figsize=(1.2 * sum(widths) / max(widths) + 0.4, 1.25 * n_images + 0.5), layout="constrained")
    grid = fig.add_gridspec(n_images, len(columns), width_ratios=widths)
    for col, (name, pixels) in enumerate(zip(names, columns)):
        for row in range(n_images):
            ax = fig.add_subplot(grid[row, col])
            ax.imshow(pixels[row], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
    return fig


def plot_retrieval(queries: Tensor, gallery: Tensor, neighbours: Mapping[str, Tensor],
                   query_labels: Sequence[str] | None = None,
                   gallery_labels: Sequence[str] | None = None) -> Figure:
    """A retrieval grid: per query image (uint8 (Q, 3, H, W)) one row per representation, the query then its
    nearest gallery images (`neighbours[name]` (Q, k) indices into `gallery`, nearest first), each neighbour
    titled with its label and framed green when it matches the query's, red otherwise."""
    names = list(neighbours)
    n_query, k = next(iter(neighbours.values())).shape
    fig = Figure(figsize=(1.1 * (k + 1) + 1.6, 1.2 * n_query * len(names) + 0.3), layout="constrained")
    axes = fig.subplots(n_query * len(names), k + 1, squeeze=False)
    query_hwc, gallery_hwc = _uint8_hwc(queries), _uint8_hwc(gallery)
    for q in range(n_query):
        for r, name in enumerate(names):
            row = axes[q * len(names) + r]
            row[0].imshow(query_hwc[q], interpolation="nearest")
            row[0].set_ylabel(name, fontsize=8)
            if query_labels is not None:
                row[0].set_title(f"query: {query_labels[q]}", fontsize=8)
            for j, index in enumerate(neighbours[name][q].tolist()):
                ax = row[j + 1]
                ax.imshow(gallery_hwc[index], interpolation="nearest")
                if gallery_labels is not None:
                    ax.set_title(gallery_labels[index], fontsize=8)
                    if query_labels is not None:
                        colour = "tab:green" if gallery_labels[index] == query_labels[q] else "tab:red"
                        for spine in ax.spines.values():
                            spine.set(color=colour, linewidth=2.5)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
    return fig


def plot_cross_correlation(c: Tensor, ax: Axes | None = None, title: str | None = None,
                           max_dims: int | None = 64) -> Figure:
    """Heatmap of a cross-correlation matrix (its first `max_dims` dimensions), statistics in the title.

    The statistics (mean diagonal, RMS off-diagonal) are over the whole matrix.
    """
    c = c.detach().float().cpu()
    d = c.shape[0]
    off = c[~torch.eye(d, dtype=torch.bool)]
    stats = f"diagonal mean {c.diagonal().mean():.2f}, off-diagonal RMS {off.pow(2).mean().sqrt():.3f}"
    if ax is None:
        ax = Figure(figsize=(5, 4.4), layout="constrained").add_subplot()
    shown = c if max_dims is None else c[:max_dims, :max_dims]
    image = ax.imshow(shown.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    ax.set_title(f"{title + chr(10) if title else ''}{stats}", fontsize=10)
    first = "" if shown.shape[0] == d else f" (first {shown.shape[0]} of {d})"
    ax.set_xlabel(f"dimension of $z^B${first}")
    ax.set_ylabel("dimension of $z^A$")
    return ax.figure


def plot_barlow_terms(matrices: Mapping[str, Tensor], lambdas: Sequence[float] = (5e-3, 5e-2),
                      ax: Axes | None = None) -> Figure:
    """Bars of Barlow Twins' two loss terms, Σ(1−Cᵢᵢ)² and λ·Σᵢ≠ⱼ Cᵢⱼ², for each matrix and each λ."""
    if ax is None:
        ax = Figure(figsize=(6.5, 3.8), layout="constrained").add_subplot()
    bars = ["invariance\n" r"$\sum_i (1-\mathcal{C}_{ii})^2$"] + [
        f"redundancy, λ = {lam:g}\n" r"$\lambda \sum_{i \neq j} \mathcal{C}_{ij}^2$" for lam in lambdas
    ]
    width = 0.8 / len(matrices)
    for k, (name, c) in enumerate(matrices.items()):
        on, off = (float(t) for t in barlow_twins_terms(c.detach().float().cpu()))
        values = [on] + [lam * off for lam in lambdas]
        x = np.arange(len(values)) + (k - (len(matrices) - 1) / 2) * width
        drawn = ax.bar(x, values, width=width, label=name)
        ax.bar_label(drawn, fmt="%.0f", fontsize=8)
    ax.set_xticks(np.arange(len(bars)), bars, fontsize=9)
    ax.set_ylabel("contribution to the loss")
    ax.legend()
    return ax.figure


def plot_distributions(probs: Mapping[str, Tensor], sort_by: str | None = None) -> Figure:
    """One panel per named distribution over the K prototypes (1-D tensors), its entropy in the title.

    `sort_by` names the distribution whose order (largest first) is used for every panel.
    """
    fig = Figure(figsize=(8, 1.6 * len(probs) + 0.4), layout="constrained")
    axes = fig.subplots(len(probs), 1, sharex=True, squeeze=False)[:, 0]
    order = None
    if sort_by is not None:
        order = torch.argsort(probs[sort_by].detach().float().cpu(), descending=True)
    for ax, (name, p) in zip(axes, probs.items()):
        p = p.detach().float().cpu()
        if order is not None:
            p = p[order]
        k = p.shape[0]
        h = max(0.0, entropy(p[None]).item())  # max: a one-hot row sums to -0.0
        ax.stairs(p.numpy(), np.arange(k + 1), fill=True, alpha=0.8)
        ax.set_ylim(0, max(float(p.max()) * 1.1, 1.5 / k))
        ax.set_title(f"{name}: entropy {h:.2f} nats (uniform: ln K = {math.log(k):.2f})", fontsize=10)
        ax.set_ylabel("probability")
    axes[-1].set_xlabel("prototype" + (f" (sorted by {sort_by})" if sort_by else ""))
    return fig


# ------------------------------------------------------------------------------------------- curves


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` points (shorter at the start), same length as `values`."""
    if window <= 1 or len(values) == 0:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    start = np.maximum(idx - window, 0)
    return (cumsum[idx] - cumsum[start]) / (idx - start)


def grid_figure(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A figure with n panels on rows of at most `ncols`."""
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def plot_history(history: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
                 keys: Sequence[str] = ("loss",), ax: Axes | Sequence[Axes] | None = None, smooth: int = 1,
                 hlines: Mapping[str, tuple[float, str]] | None = None, ncols: int = 3,
                 bands: Mapping[str, Mapping[str, Any]] | None = None) -> Figure:
    """Curves of `keys` against the step, one panel per key.

    `history` is `fit`'s list of rows, or {run name: rows} to compare runs in the same panels.
    `ax` is one Axes (every key on it) or one Axes per key; `smooth` is a moving-average window
    (schedules are drawn as they are);
    `hlines` maps a key to a (value, label) reference line, e.g. ln K for the teacher entropy.
    `bands` maps a key to recorded runs' {"step", "mean", "sd", "label"}: drawn first, a faint mean ± sd band
    under the live curve (results/curves.json via `dtlib.results.recorded_bands`).
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    if ax is None:
        fig, axes = grid_figure(len(keys), ncols, (4.2, 3.0))
    else:
        axes = [ax] * len(keys) if isinstance(ax, Axes) else list(ax)
        if len(axes) != len(keys):
            raise ValueError(f"{len(axes)} axes for {len(keys)} keys")
        fig = axes[0].figure
    shared = len(set(map(id, axes))) == 1
    for axis, key in zip(axes, keys):
        if bands and key in bands:
            band = bands[key]
            mean, sd = np.asarray(band["mean"], dtype=float), np.asarray(band["sd"], dtype=float)
            axis.fill_between(band["step"], mean - sd, mean + sd, color="0.75", alpha=0.5, linewidth=0,
                              label=band.get("label"))
            axis.plot(band["step"], mean, color="0.55", linewidth=0.8)
        for run, rows in runs.items():
            rows = [r for r in rows if key in r]
            if not rows:
                continue
            steps = np.array([r["step"] for r in rows])
            values = np.array([r[key] for r in rows], dtype=float)
            name = " ".join(part for part in (run, LABELS.get(key, key) if shared else "") if part)
            if smooth > 1 and key not in _SCHEDULES:
                line, = axis.plot(steps, values, alpha=0.25, linewidth=1)
                axis.plot(steps, _moving_average(values, smooth), color=line.get_color(), label=name or None)
            else:
                axis.plot(steps, values, label=name or None)
        if hlines and key in hlines:
            value, label = hlines[key]
            axis.axhline(value, color="0.4", linestyle="--", linewidth=1, label=label)
        if not shared:
            axis.set_title(LABELS.get(key, key), fontsize=10)
        axis.set_xlabel("step")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    return fig


def plot_schedules(schedules: Mapping[str, np.ndarray], steps_per_epoch: int | None = None,
                   ncols: int = 4) -> Figure:
    """One panel per precomputed schedule (`build_schedules`), against the epoch when `steps_per_epoch` is given."""
    fig, axes = grid_figure(len(schedules), ncols, (3.2, 2.5))
    for ax, (key, values) in zip(axes, schedules.items()):
        values = np.asarray(values)
        x = np.arange(len(values)) / (steps_per_epoch or 1)
        ax.plot(x, values)
        ax.set_title(LABELS.get(key, key), fontsize=10)
        ax.set_xlabel("epoch" if steps_per_epoch else "step")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    return fig


# ---------------------------------------------------------------------------------------- attention


def plot_attention(images: Tensor | Sequence[np.ndarray], attn: Tensor, keep: float | None = None,
                   names: Sequence[str] | None = None, cmap: str = "inferno") -> Figure:
    """[CLS] attention of each head over each image: heatmaps, or with `keep` DINO's masks.

    `images` are uint8 (B, 3, H, W) or a list of (H, W, 3) arrays; `attn` is (B, heads, h, w) on
    the patch grid (`dtlib.attention.cls_attention`). One row per image: the image, one column per
    head and one for the mean over heads. With `keep` (e.g. 0.6) each map becomes the smallest set
    of patches holding that fraction of its attention mass, shown over the image.
    """
    pictures = _uint8_hwc(images)
    attn = attn.detach().float().cpu()
    if attn.ndim != 4 or attn.shape[0] != len(pictures):
        raise ValueError(f"attn must be (B, heads, h, w) with B = {len(pictures)} images, got {tuple(attn.shape)}")
    maps = torch.cat([attn, attn.mean(1, keepdim=True)], dim=1)  # (B, heads + 1, h, w)
    heads = attn.shape[1]
    titles = ["image"] + [f"head {h}" for h in range(heads)] + ["mean of heads"]
    fig = Figure(figsize=(1.6 * len(titles), 1.65 * len(pictures) + 0.3), layout="constrained")
    axes = fig.subplots(len(pictures), len(titles), squeeze=False)
    masks = attention_mask(maps, keep) if keep is not None else None
    for row, picture in enumerate(pictures):
        h, w = picture.shape[:2]
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
        axes[row, 0].imshow(picture)
        if names is not None:
            axes[row, 0].set_ylabel(names[row], fontsize=9)
        for col in range(heads + 1):
            ax = axes[row, col + 1]
            if masks is None:
                ax.imshow(maps[row, col].numpy(), cmap=cmap, extent=extent, interpolation="nearest")
            else:
                ax.imshow(picture)
                ax.imshow(masks[row, col].float().numpy(), cmap=MASK_CMAP, alpha=_MASK_ALPHA, vmin=0, vmax=1,
                          extent=extent, interpolation="nearest")
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=9)
    if keep is not None:
        fig.suptitle(f"each map's smallest set of patches holding {keep:.0%} of its attention mass (rest darkened)",
                     fontsize=10)
    return fig


# -------------------------------------------------------------------------------------------- tables


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], digits: int = 1) -> str:
    """A Markdown table of `rows` with {key: header} `columns`; floats rounded, missing values as '—'."""
    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines)
