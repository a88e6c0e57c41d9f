"""Tests for dtlib.widgets.AttentionViewer, driven from Python without a browser.

The viewer draws on its own Agg canvas (never pyplot), so no display or backend setup is needed.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from dtlib.attention import attention_mask, cls_attention, crop_resize, normalize
from dtlib.backbones import ViTBackbone, build_backbone
from dtlib.widgets import SAMPLE_PHOTOS, AttentionViewer


@pytest.fixture(scope="module")
def model() -> ViTBackbone:
    """A small ViT (3 layers, 3 heads, patch 4): enough layers and heads to tell them apart."""
    torch.manual_seed(0)
    return build_backbone("vit_tiny", depth=3, embed_dim=48)


@pytest.fixture()
def images() -> torch.Tensor:
    """Three random uint8 CIFAR-sized images, (N, 3, 32, 32)."""
    return torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.fixture()
def viewer(model: ViTBackbone, images: torch.Tensor) -> AttentionViewer:
    """A viewer over the three images."""
    return AttentionViewer(model, images, names=["a", "b", "c"])


def _expected(model: ViTBackbone, image: torch.Tensor, layer: int) -> np.ndarray:
    """Attention maps of one uint8 image (3, H, W) computed directly, (heads, h, w)."""
    return cls_attention(model, normalize(image), layer)[0].numpy()


def _overlay(viewer: AttentionViewer) -> np.ndarray:
    """The data the overlay artist currently shows."""
    return np.asarray(viewer.overlay.get_array())


def test_initial_state(viewer: AttentionViewer, model: ViTBackbone, images: torch.Tensor) -> None:
    assert viewer.layer.max == 2 and viewer.layer.value == 2
    assert viewer.head.value == "mean" and len(viewer.head.options) == 4  # 3 heads + mean
    np.testing.assert_allclose(_overlay(viewer), _expected(model, images[0], -1).mean(0), rtol=1e-5)
    assert bytes(viewer.output.value).startswith(b"\x89PNG")
    assert viewer.overlay.get_extent() == viewer.image_artist.get_extent() == [-0.5, 31.5, 31.5, -0.5]


def test_layer_and_head_select_the_map(viewer: AttentionViewer, model: ViTBackbone, images: torch.Tensor) -> None:
    for layer in (0, 1):
        viewer.layer.value = layer
        np.testing.assert_allclose(_overlay(viewer), _expected(model, images[0], layer).mean(0), rtol=1e-5)
    expected = _expected(model, images[0], 1)
    for head in range(3):
        viewer.head.value = head
        np.testing.assert_allclose(_overlay(viewer), expected[head], rtol=1e-5)
    assert not np.allclose(expected[0], expected[1])  # the head test could not pass by accident


def test_image_picker_switches_image(viewer: AttentionViewer, model: ViTBackbone, images: torch.Tensor) -> None:
    viewer.image_picker.value = 2
    assert np.array_equal(viewer.image_artist.get_array(), images[2].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(_overlay(viewer), _expected(model, images[2], -1).mean(0), rtol=1e-5)


def test_mask_mode_and_threshold(viewer: AttentionViewer) -> None:
    heatmap = _overlay(viewer).copy()
    viewer.mode.value = "mask"
    viewer.threshold.value = 0.3
    small = _overlay(viewer)
    assert np.array_equal(small, attention_mask(torch.from_numpy(heatmap), 0.3).numpy())
    viewer.threshold.value = 0.9
    large = _overlay(viewer)
    assert np.array_equal(large, attention_mask(torch.from_numpy(heatmap), 0.9).numpy())
    assert large.sum() > small.sum()
    viewer.mode.value = "heatmap"
    np.testing.assert_array_equal(_overlay(viewer), heatmap)


def test_alpha_sets_artist_alpha(viewer: AttentionViewer) -> None:
    viewer.alpha.value = 0.25
    assert viewer.overlay.get_alpha() == pytest.approx(0.25)


def test_model_runs_once_per_image(model: ViTBackbone, images: torch.Tensor) -> None:
    calls = []
    handle = model.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    try:
        viewer = AttentionViewer(model, images)
        viewer.layer.value = 0
        viewer.head.value = 1
        viewer.mode.value = "mask"
        viewer.threshold.value = 0.8
        viewer.alpha.value = 0.3
        assert len(calls) == 1
        viewer.image_picker.value = 1
        viewer.layer.value = 2
        viewer.image_picker.value = 0
        viewer.head.value = "mean"
        assert len(calls) == 2
    finally:
        handle.remove()


def test_upload_adds_and_selects_image(viewer: AttentionViewer) -> None:
    buf = io.BytesIO()
    Image.fromarray(skimage.data.coffee()).save(buf, format="png")
    content = buf.getvalue()
    # The shape of one FileUpload entry in ipywidgets 8.
    entry = {
        "name": "coffee.png",
        "type": "image/png",
        "size": len(content),
        "content": memoryview(content),
        "last_modified": datetime.datetime.now(datetime.timezone.utc),
    }
    viewer.upload.value = (entry,)
    assert viewer.image_picker.value == 3 and viewer.names[-1] == "coffee.png"
    assert viewer.images[-1].shape == (128, 128, 3)
    assert _overlay(viewer).shape == (32, 32)  # 128 px / patch 4
    assert viewer.ax.get_xlim() == viewer.photo_ax.get_xlim() == (-0.5, 127.5)


def test_upload_ipywidgets7_format(viewer: AttentionViewer) -> None:
    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()[:, :, 0]).save(buf, format="png")  # a grey photo
    viewer._on_upload({"new": {"grey.png": {"metadata": {"name": "grey.png"}, "content": buf.getvalue()}}})
    assert viewer.names[-1] == "grey.png" and viewer.images[-1].shape == (128, 128, 3)


def test_list_input_is_cropped_to_patches(model: ViTBackbone) -> None:
    photo = np.zeros((34, 37, 3), dtype=np.uint8)
    viewer = AttentionViewer(model, [photo])
    assert viewer.images[0].shape == (32, 36, 3)
    assert _overlay(viewer).shape == (8, 9)
    assert viewer.names == ["#0"]


def test_bad_inputs(model: ViTBackbone, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        AttentionViewer(model, images.float())
    with pytest.raises(ValueError, match="names"):
        AttentionViewer(model, images, names=["only one"])


def test_photo_and_attention_side_by_side_fit_one_screen(viewer: AttentionViewer) -> None:
    viewer.image_picker.value = 1
    # The left panel shows the photo alone, whatever the overlay's alpha.
    assert np.array_equal(viewer.photo_artist.get_array(), viewer.images[1])
    assert viewer.photo_ax is not viewer.ax
    width, height = Image.open(io.BytesIO(bytes(viewer.output.value))).size
    assert width <= 600 and height <= 400


def test_sample_picker_adds_a_bundled_photo(viewer: AttentionViewer) -> None:
    viewer.sample.value = "chelsea"
    assert viewer.names[-1] == "chelsea" and viewer.image_picker.value == 3
    assert np.array_equal(viewer.images[-1], crop_resize(skimage.data.chelsea(), 128))
    assert viewer.sample.value == ""  # ready for the next pick
    viewer.image_picker.value = 0
    viewer.sample.value = "chelsea"  # already there: selected, not added twice
    assert viewer.image_picker.value == 3 and len(viewer.images) == 4


@pytest.mark.parametrize("name", SAMPLE_PHOTOS)
def test_every_sample_photo_loads(viewer: AttentionViewer, name: str) -> None:
    viewer.add_sample(name)  # bundled with scikit-image: no download
    assert viewer.names[-1] == name and viewer.images[-1].shape == (128, 128, 3)


def test_add_file_takes_a_large_photo(viewer: AttentionViewer, tmp_path) -> None:
    path = tmp_path / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(path)
    assert path.stat().st_size > 1_000_000  # the size Colab's upload widget silently drops
    viewer.add_file(path)
    assert viewer.names[-1] == "big.png" and viewer.images[-1].shape == (128, 128, 3)
    with pytest.raises(FileNotFoundError, match="upload it first"):
        viewer.add_file(tmp_path / "missing.jpg")


def test_the_viewer_loads_a_checkpoint_and_says_where_its_maps_come_from(viewer, images, tmp_path) -> None:
    from dtlib.build import build_method
    from dtlib.config import make_config
    from dtlib.export import export_backbone
    from dtlib.widgets import describe_run

    torch.manual_seed(1)
    cfg = make_config("cpu-mini", method="dinotwins", backbone="vit_tiny", image_size=32)
    path = export_backbone(build_method(cfg), cfg, tmp_path / "vit.pt")
    before = _overlay(viewer).copy()
    viewer.checkpoint_path.value = str(path)
    viewer.load_button.click()  # what a user does in the browser
    assert "loaded" in viewer.status.value and "short run" in viewer.source.value
    vit = viewer.model
    assert vit.patch_size == 4 and viewer.layer.max == len(vit.blocks) - 1 == 11  # the loaded ViT's 12 blocks
    assert viewer.head.options[-2] == ("head 2", 2)  # ViT-T: 3 heads
    np.testing.assert_allclose(viewer.attention(0)[viewer.layer.value].mean(0), _overlay(viewer), rtol=1e-5)
    assert before.shape != _overlay(viewer).shape or not np.allclose(before, _overlay(viewer))  # new maps
    viewer.load_checkpoint(tmp_path / "missing.pt")  # a bad path: said, and the loaded model stays
    assert "not loaded" in viewer.status.value and viewer.model is vit
    from_file = AttentionViewer.from_checkpoint(path, images)
    assert from_file.source.value == f"<small>maps of: {describe_run(cfg, path)}</small>"
    assert "short run" not in describe_run(make_config("cifar10-vit-tiny"))
    with pytest.raises(ValueError, match="backbone='vit_tiny'"):
        AttentionViewer(build_backbone("resnet_mini"), images)
