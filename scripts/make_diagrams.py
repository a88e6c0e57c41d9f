"""Draw the architecture diagrams of the three methods and write them to images/arch_<method>.png.

The notebooks and the README embed these PNGs. Usage: python scripts/make_diagrams.py [--out DIR] [--dpi N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

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
    center = _box(ax, 9.8, y_t, "sharpening\n$\\exp(\\cdot\\,/\\,\\tau_t)$", "op", w=1.7)
    s_soft = _box(ax, 12.0, y_s, "softmax$(\\cdot\\,/\\,\\tau_s)$\n$P_s$", "op", w=2.0)
    t_soft = _box(ax, 12.0, y_t, "Sinkhorn-Knopp\ncentring, $P_t$", "op", w=2.2)
    for a, b in ((s_crops, s_back), (t_crops, t_back), (s_back, s_head), (t_back, t_head), (s_head, s_soft),
                 (t_head, center), (center, t_soft)):
        _arrow(ax, a, b)
    # Every preset centres with Sinkhorn-Knopp (Config.centering_method), not DINO's running-mean centre.
    ax.text(12.0, y_t - 0.62,
            "each prototype $1/K$ of the batch, each image $1/B$\n(3 row / column rescalings per batch)",
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


def main(argv: list[str] | None = None) -> int:
    """Draw each method's diagram and save it as images/arch_<method>.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=Path(__file__).resolve().parents[1] / "images", type=Path,
                        help="folder for the PNGs (default: the repository's images/)")
    parser.add_argument("--dpi", default=150, type=int)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for method in _ARCHITECTURES:
        path = args.out / f"arch_{method}.png"
        draw_architecture(method).savefig(path, dpi=args.dpi, facecolor="white")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
