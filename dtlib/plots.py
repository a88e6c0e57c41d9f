"""Figures for the notebooks and the README: architecture diagrams, views, heatmaps and curves.

Every function draws on a `matplotlib.figure.Figure` that is not registered with pyplot and returns
it: nothing is shown from here, figures are garbage-collected like any object, and a notebook
displays one by making it the value of a cell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import Tensor

from .attention import attention_mask
from .augment import CIFAR10_MEAN, CIFAR10_STD
from .diagnostics import entropy

__all__ = [
    "LABELS",
    "LiveCurves",
    "draw_architecture",
    "markdown_table",
    "plot_attention",
    "plot_barlow_terms",
    "plot_cross_correlation",
    "plot_distributions",
    "plot_history",
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
# Fill colours of the diagram boxes, one per role.
_COLORS = {
    "data": "#eeeeee",
    "backbone": "#cfe2f3",
    "head": "#e4d7f5",
    "bt": "#d9ead3",
    "op": "#fff2cc",
    "loss": "#f8cecc",
}
_EDGE = "#444444"
# Mask overlay: opaque black outside the mask, transparent on the kept patches.
_MASK_CMAP = ListedColormap([(0.0, 0.0, 0.0, 0.85), (0.0, 0.0, 0.0, 0.0)], name="outside_mask")


# ------------------------------------------------------------------------------------ architectures


def _box(ax: Axes, x: float, y: float, text: str, kind: str, w: float = 1.8, h: float = 1.0,
         fontsize: float = 10.5) -> FancyBboxPatch:
    """A rounded box centred on (x, y) holding `text`."""
    patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.15",
                           facecolor=_COLORS[kind], edgecolor=_EDGE, linewidth=1.3, zorder=2)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)
    return patch


def _arrow(ax: Axes, a: FancyBboxPatch | tuple[float, float], b: FancyBboxPatch | tuple[float, float],
           label: str | None = None, dashed: bool = False, color: str = _EDGE,
           label_xy: tuple[float, float] | None = None, fontsize: float = 9.5) -> FancyArrowPatch:
    """An arrow from box (or point) `a` to box (or point) `b`, clipped at the boxes' edges."""
    def centre(p: FancyBboxPatch | tuple[float, float]) -> tuple[float, float]:
        if isinstance(p, FancyBboxPatch):
            return p.get_x() + p.get_width() / 2, p.get_y() + p.get_height() / 2
        return p

    (xa, ya), (xb, yb) = centre(a), centre(b)
    arrow = FancyArrowPatch(
        (xa, ya), (xb, yb), arrowstyle="-|>", mutation_scale=14, linewidth=1.4, color=color,
        linestyle=(0, (4, 3)) if dashed else "-", zorder=1,
        patchA=a if isinstance(a, FancyBboxPatch) else None, patchB=b if isinstance(b, FancyBboxPatch) else None,
        shrinkA=2, shrinkB=2,
    )
    ax.add_patch(arrow)
    if label:
        lx, ly = label_xy if label_xy is not None else ((xa + xb) / 2, (ya + yb) / 2 + 0.25)
        ax.text(lx, ly, label, ha="center", va="bottom", fontsize=fontsize, color=color, zorder=3)
    return arrow


def _matrix_icon(ax: Axes, x: float, y: float, side: float, label: str) -> None:
    """A small cross-correlation heatmap (near-identity) centred on (x, y), with a label under it."""
    rng = np.random.default_rng(0)
    c = np.eye(8) * 0.9 + rng.normal(0, 0.12, (8, 8)) * (1 - np.eye(8))
    ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, zorder=2,
              extent=(x - side / 2, x + side / 2, y - side / 2, y + side / 2))
    ax.add_patch(FancyBboxPatch((x - side / 2, y - side / 2), side, side, boxstyle="square,pad=0",
                                fill=False, edgecolor=_EDGE, linewidth=1.3, zorder=3))
    ax.text(x, y - side / 2 - 0.12, label, ha="center", va="top", fontsize=10)


def _draw_barlow_twins(ax: Axes) -> tuple[float, float, float]:
    """Barlow Twins: two views, one shared encoder + projector, a cross-correlation loss; returns the x, y extent."""
    top, bot, mid = 3.9, 1.1, 2.5
    image = _box(ax, 0.8, mid, "image\n$x$", "data", w=1.2)
    views, encoders = [], []
    for y, name, t in ((top, "A", r"$t \sim \mathcal{T}$"), (bot, "B", r"$t' \sim \mathcal{T}'$")):
        view = _box(ax, 2.9, y, f"view $x^{name}$", "data", w=1.5)
        _arrow(ax, image, view, t, label_xy=(1.85, y + 0.05 if y > mid else y - 0.45))
        encoder = _box(ax, 5.0, y, "encoder $f_\\theta$\n(ResNet / ViT)", "backbone", w=2.0)
        projector = _box(ax, 7.4, y, "projector $g_\\theta$\n3-layer MLP", "bt", w=2.0)
        z = _box(ax, 9.6, y, f"$Z^{name}$  (N×D)\nstandardised", "bt", w=1.9)
        _arrow(ax, view, encoder)
        _arrow(ax, encoder, projector, "$y$")
        _arrow(ax, projector, z, "$z$")
        views.append(z)
        encoders.append(encoder)
    ax.plot([5.0, 5.0], [bot + 0.55, top - 0.55], color=_EDGE, linestyle=(0, (2, 2)), linewidth=1.2, zorder=1)
    ax.text(5.1, mid, "shared\nweights", ha="left", va="center", fontsize=9.5, style="italic")
    _matrix_icon(ax, 12.0, mid, 1.1, r"$\mathcal{C} = \frac{1}{N}\,Z^{A\top} Z^B$  (D×D)")
    for z in views:
        _arrow(ax, z, (11.4, mid + (0.3 if z.get_y() > mid else -0.3)))
    loss = _box(ax, 15.0, mid, r"$\mathcal{L}_{BT} = \sum_i (1-\mathcal{C}_{ii})^2$" "\n"
                r"$+\ \lambda \sum_i \sum_{j \neq i} \mathcal{C}_{ij}^2$", "loss", w=3.1, h=1.2)
    _arrow(ax, (12.6, mid), loss)
    ax.text(15.0, mid - 0.8, "invariance: diagonal → 1\nredundancy reduction:\noff-diagonal → 0",
            ha="center", va="top", fontsize=9.5, color="#555555")
    return 16.7, 0.35, 4.65


def _draw_dino(ax: Axes, twins: bool) -> tuple[float, float, float]:
    """DINO (with `twins`, also DINO Twins' Barlow Twins branch and summed loss); returns the x, y extent."""
    y_s, y_t = 4.6, 1.2
    mid = (y_s + y_t) / 2
    image = _box(ax, 0.8, mid, "image\n$x$", "data", w=1.2)
    s_crops = _box(ax, 2.9, y_s, "all crops\n2 global + local", "data", w=1.9)
    t_crops = _box(ax, 2.9, y_t, "2 global crops\n$x_1^g, x_2^g$", "data", w=1.9)
    _arrow(ax, image, s_crops)
    _arrow(ax, image, t_crops)
    s_back = _box(ax, 5.2, y_s, "student\nbackbone $f_{\\theta_s}$", "backbone", w=1.9)
    t_back = _box(ax, 5.2, y_t, "teacher\nbackbone $f_{\\theta_t}$", "backbone", w=1.9)
    s_head = _box(ax, 7.5, y_s, "DINO head $h_{\\theta_s}$\nK prototypes", "head", w=2.0)
    t_head = _box(ax, 7.5, y_t, "DINO head $h_{\\theta_t}$\nK prototypes", "head", w=2.0)
    center = _box(ax, 9.8, y_t, "centering\n$-\\,c$", "op", w=1.5)
    s_soft = _box(ax, 12.0, y_s, "softmax$(\\cdot\\,/\\,\\tau_s)$\n$P_s$", "op", w=2.0)
    t_soft = _box(ax, 12.0, y_t, "sharpening\nsoftmax$(\\cdot\\,/\\,\\tau_t)$, $P_t$", "op", w=2.2)
    for a, b in ((s_crops, s_back), (t_crops, t_back), (s_back, s_head), (t_back, t_head), (s_head, s_soft),
                 (t_head, center), (center, t_soft)):
        _arrow(ax, a, b)
    ax.text(10.9, y_t - 0.62, "$c \\leftarrow m_c\\,c + (1-m_c)\\,\\mathrm{mean}_{batch}\\,h_{\\theta_t}(x)$",
            ha="center", va="top", fontsize=9.5, color="#555555")
    # Student and teacher are each backbone + head; the teacher follows the student by EMA.
    for y, name in ((y_s, "student $g_{\\theta_s}$"), (y_t, "teacher $g_{\\theta_t}$")):
        ax.add_patch(FancyBboxPatch((4.1, y - 0.72), 4.5, 1.44, boxstyle="round,pad=0,rounding_size=0.2",
                                    fill=False, edgecolor="#888888", linestyle=(0, (3, 2)), zorder=1))
        ax.text(4.15, y + (0.76 if y == y_s else -0.76), name, ha="left", va="bottom" if y == y_s else "top",
                fontsize=9.5, color="#555555")
    _arrow(ax, (6.35, y_s - 0.72), (6.35, y_t + 0.72), dashed=True, color="#1f5fa8")
    ax.text(6.5, mid, "EMA (no gradient)\n$\\theta_t \\leftarrow m\\,\\theta_t + (1-m)\\,\\theta_s$",
            ha="left", va="center", fontsize=9.5, color="#1f5fa8")
    dino = _box(ax, 14.5, mid, "$\\mathcal{L}_{DINO} = -\\,P_t \\log P_s$\nteacher crop $i$,\nstudent crop $j \\neq i$",
                "loss", w=2.4, h=1.3)
    _arrow(ax, s_soft, dino)
    _arrow(ax, t_soft, dino)
    # Stop-gradient: the loss does not back-propagate into the teacher.
    x_sg, y_sg = 13.45, y_t + 0.8
    ax.text(x_sg, y_sg, "stop-grad", ha="center", va="center", fontsize=9, color="#b03030", zorder=4,
            bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="#b03030", linewidth=1))
    if not twins:
        return 16.0, 0.0, 6.0
    y_bt = 7.2
    proj = _box(ax, 7.5, y_bt, "BT projector $g_\\phi$\n3-layer MLP", "bt", w=2.0)
    _arrow(ax, s_back, proj, "global crops", label_xy=(7.35, 5.75))
    z = _box(ax, 9.8, y_bt, "$Z^1, Z^2$\n(N×D)", "bt", w=1.5)
    _arrow(ax, proj, z)
    _matrix_icon(ax, 11.7, y_bt, 1.0, r"$\mathcal{C}$")
    _arrow(ax, z, (11.15, y_bt))
    bt = _box(ax, 14.5, y_bt, "$\\mathcal{L}_{BT}$\n"
              r"$\sum_i (1-\mathcal{C}_{ii})^2 + \lambda\!\sum_{i\neq j}\mathcal{C}_{ij}^2$", "loss", w=2.9, h=1.1)
    _arrow(ax, (12.25, y_bt), bt)
    total = _box(ax, 17.6, (y_bt + mid) / 2, "$\\mathcal{L} = \\mathcal{L}_{DINO}$\n$+\\ \\beta\\,\\mathcal{L}_{BT}$",
                 "loss", w=2.1, h=1.2, fontsize=12)
    _arrow(ax, dino, total)
    _arrow(ax, bt, total, "× β", label_xy=(16.35, 6.0), fontsize=11)
    return 18.8, 0.0, 8.0


_ARCHITECTURES = {"barlow_twins": "Barlow Twins", "dino": "DINO", "dinotwins": "DINO Twins"}


def draw_architecture(method: str, ax: Axes | None = None) -> Figure:
    """Diagram of `method` (barlow_twins | dino | dinotwins): views → encoders → heads → losses."""
    if method not in _ARCHITECTURES:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(_ARCHITECTURES)}")
    if ax is None:
        ax = Figure(figsize={"barlow_twins": (12.0, 3.6), "dino": (12.0, 4.9), "dinotwins": (13.5, 6.2)}[method],
                    layout="constrained").add_subplot()
    if method == "barlow_twins":
        width, y_min, y_max = _draw_barlow_twins(ax)
    else:
        width, y_min, y_max = _draw_dino(ax, twins=method == "dinotwins")
    ax.set_xlim(0, width)
    ax.set_ylim(y_min, y_max)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(_ARCHITECTURES[method], fontsize=15, fontweight="bold")
    return ax.figure


# ------------------------------------------------------------------------------------------- images


def _to_hwc(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Normalised float images (B, 3, H, W) back to displayable (B, H, W, 3) values in [0, 1]."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    x = images.detach().float().cpu() * s + m
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


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
        c = c.detach().float().cpu()
        diag = c.diagonal()
        on = float((1 - diag).pow(2).sum())
        off = float(c.pow(2).sum() - diag.pow(2).sum())
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


def _grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
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
                 hlines: Mapping[str, tuple[float, str]] | None = None, ncols: int = 3) -> Figure:
    """Curves of `keys` against the step, one panel per key.

    `history` is `fit`'s list of rows, or {run name: rows} to compare runs in the same panels.
    `ax` is one Axes (every key on it) or one Axes per key; `smooth` is a moving-average window
    (schedules are drawn as they are);
    `hlines` maps a key to a (value, label) reference line, e.g. ln K for the teacher entropy.
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    if ax is None:
        fig, axes = _grid(len(keys), ncols, (4.2, 3.0))
    else:
        axes = [ax] * len(keys) if isinstance(ax, Axes) else list(ax)
        if len(axes) != len(keys):
            raise ValueError(f"{len(axes)} axes for {len(keys)} keys")
        fig = axes[0].figure
    shared = len(set(map(id, axes))) == 1
    for axis, key in zip(axes, keys):
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
    fig, axes = _grid(len(schedules), ncols, (3.2, 2.5))
    for ax, (key, values) in zip(axes, schedules.items()):
        values = np.asarray(values)
        x = np.arange(len(values)) / (steps_per_epoch or 1)
        ax.plot(x, values)
        ax.set_title(LABELS.get(key, key), fontsize=10)
        ax.set_xlabel("epoch" if steps_per_epoch else "step")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    return fig


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where display handles can be updated in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LiveCurves:
    """`fit` callback that redraws curves of `keys` in the notebook as logged rows arrive.

    The figure is shown once and then updated in place through an IPython display handle, at most
    every `min_interval` seconds (rendering costs CPU time the training loop would otherwise get) and
    once more at the end. Outside a notebook nothing is shown; `figure` and `rows` are kept either way.

    Args:
        keys: history keys to plot, one panel each.
        hlines: {key: (value, label)} reference lines, as in `plot_history`.
        min_interval: seconds between two redraws.
        smooth: moving-average window.
    """

    def __init__(self, keys: Sequence[str] = ("loss",), hlines: Mapping[str, tuple[float, str]] | None = None,
                 min_interval: float = 2.0, smooth: int = 1, ncols: int = 4):
        self.keys = list(keys)
        self.hlines = hlines
        self.min_interval = min_interval
        self.smooth = smooth
        self.rows: list[dict[str, Any]] = []
        self.figure, self.axes = _grid(len(self.keys), ncols, (3.6, 2.7))
        self.redraws = 0
        self._handle = None
        self._last = -math.inf

    def __call__(self, event: str, payload: dict[str, Any]) -> None:
        """Collect rows on "log" (redrawing when due) and redraw on "end"."""
        if event == "log":
            self.rows.extend(payload["rows"])
            if time.monotonic() - self._last >= self.min_interval:
                self.redraw()
        elif event == "end":
            self.redraw()

    def redraw(self) -> None:
        """Draw the rows received so far and update the notebook output."""
        for ax in self.axes:
            ax.clear()
        plot_history(self.rows, self.keys, ax=self.axes, smooth=self.smooth, hlines=self.hlines)
        self.redraws += 1
        self._last = time.monotonic()
        if not _in_notebook():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)


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
                ax.imshow(masks[row, col].float().numpy(), cmap=_MASK_CMAP, vmin=0, vmax=1, extent=extent,
                          interpolation="nearest")
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
