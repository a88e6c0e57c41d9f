"""Tests for dtlib.plots: each figure has the expected axes, artists and data (Agg, no display)."""

from __future__ import annotations

import math

import matplotlib.colors
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dtlib import plots
from dtlib.attention import attention_mask
from dtlib.augment import CIFAR10_MEAN, CIFAR10_STD, normalize
from dtlib.config import make_config
from dtlib.plots import (
    markdown_table,
    plot_attention,
    plot_barlow_terms,
    plot_cross_correlation,
    plot_distributions,
    plot_history,
    plot_schedules,
    show_views,
)
from dtlib.train import build_schedules


def texts(fig: Figure) -> str:
    """Every text drawn on the figure's axes, joined."""
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def rows(n: int, **keys: float) -> list[dict]:
    """n history rows: step i has value base + i for each key."""
    return [{"step": i, "epoch": 0, **{k: v + i for k, v in keys.items()}} for i in range(n)]


# ----------------------------------------------------------------------------------------- images


def test_show_views_unnormalises_and_draws_to_scale():
    g = torch.Generator().manual_seed(0)
    originals = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=g)
    pixels = [torch.rand(4, 3, s, s, generator=g) for s in (32, 32, 16)]  # in [0, 1]
    views = [normalize(p, CIFAR10_MEAN, CIFAR10_STD) for p in pixels]
    fig = show_views(views, n_images=3, images=originals, titles=["g1", "g2", "l1"])
    assert len(fig.axes) == 3 * 4  # 3 rows x (original + 3 views)
    by_column = [fig.axes[i * 3:(i + 1) * 3] for i in range(4)]  # added column by column
    assert by_column[0][0].get_title() == "original\n32 px" and by_column[3][0].get_title() == "l1\n16 px"
    np.testing.assert_array_equal(by_column[0][1].images[0].get_array(), originals[1].permute(1, 2, 0).numpy())
    for col, p in zip(by_column[1:], pixels):
        for row, ax in enumerate(col):
            np.testing.assert_allclose(ax.images[0].get_array(), p[row].permute(1, 2, 0).numpy(), atol=1e-5)
    fig.draw_without_rendering()  # applies the layout and each image's aspect
    widths = [col[0].get_position().width for col in by_column]
    assert widths[3] == pytest.approx(widths[1] / 2, rel=0.05)  # a 16-px crop is drawn half as wide


def test_show_views_checks_titles():
    with pytest.raises(ValueError, match="1 titles for 2 views"):
        show_views([torch.zeros(2, 3, 8, 8)] * 2, titles=["a"])


def test_cross_correlation_heatmap_shows_first_dims_and_whole_matrix_stats():
    c = torch.eye(100)
    c[0, 1] = c[1, 0] = 0.5
    fig = plot_cross_correlation(c, title="identity")
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # heatmap + colour bar
    np.testing.assert_array_equal(ax.images[0].get_array(), c[:64, :64].numpy())
    assert ax.images[0].get_clim() == (-1, 1)
    rms = math.sqrt(2 * 0.25 / (100 * 99))
    assert ax.get_title() == f"identity\ndiagonal mean 1.00, off-diagonal RMS {rms:.3f}"
    assert "first 64 of 100" in ax.get_xlabel()
    whole = plot_cross_correlation(c, max_dims=None).axes[0]
    assert whole.images[0].get_array().shape == (100, 100) and "first" not in whole.get_xlabel()


def test_barlow_terms_bars_are_the_loss_terms():
    c = torch.full((4, 4), 0.5)
    c.fill_diagonal_(0.8)
    fig = plot_barlow_terms({"a": c, "b": torch.eye(4)}, lambdas=(0.1, 1.0))
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    on, off = 4 * 0.2**2, 12 * 0.25
    np.testing.assert_allclose(heights, [on, 0.1 * off, 1.0 * off, 0.0, 0.0, 0.0], atol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_distributions_one_panel_each_with_entropy():
    k = 16
    uniform = torch.full((k,), 1 / k)
    peaked = torch.zeros(k)
    peaked[3] = 1.0
    fig = plot_distributions({"uniform": uniform, "peaked": peaked}, sort_by="peaked")
    assert len(fig.axes) == 2
    assert fig.axes[0].get_title() == f"uniform: entropy {math.log(k):.2f} nats (uniform: ln K = {math.log(k):.2f})"
    assert fig.axes[1].get_title().startswith("peaked: entropy 0.00 nats")
    values = fig.axes[1].patches[0].get_data().values  # the filled stairs
    assert values[0] == 1.0 and values[1:].sum() == 0  # sorted: the peak comes first
    assert "sorted by peaked" in fig.axes[1].get_xlabel()


# ----------------------------------------------------------------------------------------- curves


def test_history_one_panel_per_key_and_runs_compared():
    a, b = rows(5, loss=1.0, kl=0.0), rows(3, loss=10.0)
    fig = plot_history({"a": a, "b": b}, ["loss", "kl"], hlines={"kl": (2.0, "ref")})
    loss_ax, kl_ax = fig.axes
    assert loss_ax.get_title() == "loss" and kl_ax.get_title() == "KL(teacher ‖ student) (nats)"
    np.testing.assert_array_equal(loss_ax.lines[0].get_ydata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [10, 11, 12])
    assert len(kl_ax.lines) == 2  # run "b" has no kl; the reference line
    assert kl_ax.lines[1].get_ydata()[0] == 2.0
    assert [t.get_text() for t in kl_ax.get_legend().get_texts()] == ["a", "ref"]


def test_history_smoothing_is_a_trailing_mean_and_spares_schedules():
    history = [{"step": i, "loss": float(v), "lr": float(v)} for i, v in enumerate([0, 2, 4, 6])]
    fig = plot_history(history, ["loss", "lr"], smooth=2)
    loss_ax, lr_ax = fig.axes
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [0, 2, 4, 6])  # raw, faint
    np.testing.assert_allclose(loss_ax.lines[1].get_ydata(), [0, 1, 3, 5])
    assert len(lr_ax.lines) == 1
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata(), [0, 2, 4, 6])


def test_history_on_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_history(rows(3, loss=0.0, kl=1.0), ["loss", "kl"], ax=ax) is fig
    assert len(ax.lines) == 2 and len(fig.axes) == 1
    with pytest.raises(ValueError, match="1 axes for 2 keys"):
        plot_history(rows(3, loss=0.0), ["loss", "kl"], ax=[ax])


def test_schedules_in_epochs():
    cfg = make_config("cpu-mini", method="dino", epochs=3, warmup_epochs=1)
    schedules = build_schedules(cfg, steps_per_epoch=10)
    fig = plot_schedules(schedules, steps_per_epoch=10)
    assert len(fig.axes) == 4
    for ax, (key, values) in zip(fig.axes, schedules.items()):
        assert ax.get_title() == plots.LABELS[key]
        np.testing.assert_allclose(ax.lines[0].get_ydata(), values)
        np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(30) / 10)
        assert ax.get_xlabel() == "epoch"


# -------------------------------------------------------------------------------------- attention


def test_attention_heatmaps_per_head_and_mean():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    attn = torch.rand(2, 3, 8, 8, generator=g)
    fig = plot_attention(images, attn, names=["cat", "dog"])
    axes = np.array(fig.axes).reshape(2, 5)  # image, 3 heads, mean
    assert [ax.get_title() for ax in axes[0]] == ["image", "head 0", "head 1", "head 2", "mean of heads"]
    assert axes[1, 0].get_ylabel() == "dog"
    np.testing.assert_array_equal(axes[1, 0].images[0].get_array(), images[1].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(axes[1, 2].images[0].get_array(), attn[1, 1].numpy())
    np.testing.assert_allclose(axes[0, 4].images[0].get_array(), attn[0].mean(0).numpy(), rtol=1e-6)
    assert tuple(axes[0, 1].images[0].get_extent()) == (-0.5, 31.5, 31.5, -0.5)  # 8x8 grid stretched over 32 px


def test_attention_masks_over_photos():
    g = torch.Generator().manual_seed(0)
    photos = [np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    attn = torch.rand(1, 2, 16, 16, generator=g)
    fig = plot_attention(photos, attn, keep=0.6)
    axes = fig.axes
    assert len(axes) == 4
    mask = attention_mask(attn[0, 0], 0.6)
    head0 = axes[1]
    assert len(head0.images) == 2  # the photo, then the mask over it
    np.testing.assert_array_equal(head0.images[1].get_array(), mask.float().numpy())
    assert "60%" in fig.get_suptitle()


def test_attention_checks_shapes():
    with pytest.raises(ValueError, match="B = 2 images"):
        plot_attention(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.rand(3, 1, 2, 2))


# ----------------------------------------------------------------------------------------- tables


def test_markdown_table():
    table = markdown_table([{"a": 1.234, "b": "x|y"}, {"a": None, "b": 3}], {"a": "A", "b": "B"})
    assert table == "| A | B |\n|---|---|\n| 1.2 | x\\|y |\n| — | 3 |"


def test_retrieval_grid_one_row_per_query_and_representation_framed_by_label():
    from dtlib.plots import plot_retrieval

    gallery = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    queries = gallery[:2]
    neighbours = {"random init": torch.tensor([[1, 2, 3], [0, 2, 4]]), "trained": torch.tensor([[0, 5, 1], [1, 3, 5]])}
    labels = ["cat", "dog", "cat", "dog", "cat", "dog"]
    fig = plot_retrieval(queries, gallery, neighbours, query_labels=labels[:2], gallery_labels=labels)
    axes = np.array(fig.axes).reshape(4, 4)  # 2 queries x 2 representations, query + 3 neighbours
    assert axes[0, 0].get_ylabel() == "random init" and axes[1, 0].get_ylabel() == "trained"
    assert axes[0, 0].get_title() == "query: cat" and axes[2, 0].get_title() == "query: dog"
    np.testing.assert_array_equal(axes[1, 1].images[0].get_array(), gallery[0].permute(1, 2, 0).numpy())
    green, red = (matplotlib.colors.to_rgba(c) for c in ("tab:green", "tab:red"))
    assert axes[1, 1].spines["top"].get_edgecolor() == green  # trained, query 0 (cat) -> gallery 0 (cat)
    assert axes[0, 1].spines["top"].get_edgecolor() == red  # random init, query 0 (cat) -> gallery 1 (dog)


def test_history_draws_a_recorded_band_under_the_live_curve():
    history = [{"step": s, "loss": 5.0 - s} for s in range(4)]
    band = {"step": [0, 1, 2, 3], "mean": [5.0, 4.5, 4.0, 3.5], "sd": [0.5] * 4, "label": "recorded, 3 seeds"}
    fig = plots.plot_history(history, ["loss", "emb_std"], bands={"loss": band})
    ax = fig.axes[0]
    (fill,) = ax.collections  # the band
    np.testing.assert_allclose(fill.get_paths()[0].vertices[:, 1].max(), 5.5)
    np.testing.assert_allclose(fill.get_paths()[0].vertices[:, 1].min(), 3.0)
    assert "recorded, 3 seeds" in ax.get_legend_handles_labels()[1]
    assert not fig.axes[1].collections  # no band where none was given
