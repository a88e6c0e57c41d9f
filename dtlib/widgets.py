"""Interactive DINO attention viewer built from core ipywidgets and a matplotlib figure.

The figure is drawn with the Agg backend and shown as a PNG in an ``ipywidgets.Image``, so the
viewer needs no ipympl or custom widget manager and behaves the same in JupyterLab and Colab.
The photo and its attention are drawn side by side, 600 px wide, so the controls and the image
fit on one laptop screen.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as W
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor, nn

from dtlib.attention import attention_mask, cls_attention_layers, crop_resize
from dtlib.cifar import normalize
from dtlib.plots import MASK_CMAP

# Photos of scikit-image's data module (bundled with it, no download) offered by the "sample" picker.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
# Why the upload can fail silently: Colab's widget channel drops messages of about 1 MB and more.
UPLOAD_HELP = ("Photos of 1 MB or more do not reach the viewer on Colab (its widget channel drops them): "
               "shrink the photo first, or upload it with Colab's Files panel and run "
               "<code>viewer.add_file('photo.jpg')</code> in a cell.")
SHORT_EPOCHS = 10  # fewer training epochs than this: the viewer says its maps come from a short run
FIGURE_SIZE = (6.0, 3.3)  # inches at 100 dpi: a 600 x 330 px PNG, photo and attention side by side


def describe_run(cfg, path: str | Path | None = None) -> str:
    """Where a model's maps come from, in words: its file, method, backbone and training budget; says when the
    budget is short (fewer than SHORT_EPOCHS epochs), since such maps show little of what a long run learns."""
    budget = f"{cfg.epochs} epoch(s)" + (f" on {cfg.subset:,} images" if cfg.subset else "")
    where = f"{path}: " if path else ""
    short = (f" — a short run (< {SHORT_EPOCHS} epochs): its maps show little of what a long GPU run learns"
             if cfg.epochs < SHORT_EPOCHS else "")
    return f"{where}{cfg.method}, {cfg.backbone}, {budget} at {cfg.image_size} px{short}"


class AttentionViewer:
    """Browse [CLS] attention maps of a ViT over images by layer, head and mask threshold."""

    def __init__(
        self,
        model: nn.Module,
        images: Tensor | Sequence[np.ndarray],
        names: Sequence[str] | None = None,
        upload_size: int = 128,
        heatmap_cmap: str = "inferno",
        source: str = "a model given in code",
    ) -> None:
        self.model = self._as_vit(model)
        self.patch_size: int = model.patch_size
        self.upload_size = upload_size
        self.heatmap_cmap = heatmap_cmap
        if isinstance(images, Tensor):
            if images.dtype != torch.uint8 or images.ndim != 4:
                raise ValueError("image tensor must be uint8 (N, 3, H, W)")
            images = list(images.cpu().permute(0, 2, 3, 1).numpy())  # N x (H, W, 3)
        if not images:
            raise ValueError("need at least one image")
        names = list(names) if names is not None else [f"#{i}" for i in range(len(images))]
        if len(names) != len(images):
            raise ValueError(f"{len(names)} names for {len(images)} images")
        self.images: list[np.ndarray] = [self._fit_to_patches(np.asarray(img)) for img in images]
        self.names: list[str] = names
        # Per image: [CLS] attention of all layers and heads, (L, heads, h, w); computed once.
        self._cache: dict[int, np.ndarray] = {}
        n_layers, n_heads = self.attention(0).shape[:2]

        self.image_picker = W.Dropdown(options=self._picker_options(), value=0, description="image")
        self.sample = W.Dropdown(options=[("add a sample photo…", "")] + [(n, n) for n in SAMPLE_PHOTOS],
                                 value="", description="sample")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload photo")
        self.status = W.HTML(f"<small>{UPLOAD_HELP}</small>")
        self.source = W.HTML(f"<small>maps of: {source}</small>")
        self.checkpoint_path = W.Text(placeholder="runs/…/checkpoint.pt or an fp16 export", description="checkpoint")
        self.load_button = W.Button(description="load")
        self.load_button.on_click(lambda _: self.load_checkpoint(self.checkpoint_path.value))
        self.layer = W.IntSlider(value=n_layers - 1, min=0, max=n_layers - 1, description="layer")
        head_options = [(f"head {h}", h) for h in range(n_heads)] + [("mean", "mean")]
        self.head = W.Dropdown(options=head_options, value="mean", description="head")
        self.threshold = W.FloatSlider(value=0.6, min=0.05, max=1.0, step=0.05, description="mask keep")
        self.alpha = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="alpha")
        self.mode = W.ToggleButtons(options=["heatmap", "mask"], value="heatmap", description="show")
        self.output = W.Image(format="png")

        self.fig = Figure(figsize=FIGURE_SIZE, dpi=100)
        # Fixed margins rather than a layout engine: constrained layout re-measured every text
        # on each redraw and cost more than drawing the images.
        self.fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.04)
        FigureCanvasAgg(self.fig)
        # Left the photo alone, right the attention over it: the photo stays readable whatever alpha.
        self.photo_ax, self.ax = self.fig.subplots(1, 2)
        for ax in (self.photo_ax, self.ax):
            ax.set_axis_off()
        self.photo_artist = self.photo_ax.imshow(self.images[0])
        self.image_artist = self.ax.imshow(self.images[0])
        # The overlay holds the patch grid itself, stretched over the photo by its extent: no
        # upsampling per redraw, and tests can read the exact map back with get_array().
        self.overlay = self.ax.imshow(
            np.zeros((1, 1)), cmap=heatmap_cmap, alpha=self.alpha.value, interpolation="nearest"
        )
        self.title = self.fig.suptitle("", fontsize=9)

        self.image_picker.observe(self._on_image, names="value")
        self.sample.observe(self._on_sample, names="value")
        self.upload.observe(self._on_upload, names="value")
        for control in (self.layer, self.head, self.threshold, self.alpha, self.mode):
            control.observe(self.redraw, names="value")
        self.widget = W.VBox(
            [
                W.HBox([self.image_picker, self.sample]),
                W.HBox([self.layer, self.head]),
                W.HBox([self.threshold, self.alpha]),
                W.HBox([self.mode, self.upload]),
                W.HBox([self.checkpoint_path, self.load_button]),
                self.status,
                self.source,
                self.output,
            ],
            layout=W.Layout(max_width="620px"),
        )
        self._on_image()

    @classmethod
    def from_checkpoint(cls, path: str | Path, images: Tensor | Sequence[np.ndarray], **kwargs) -> AttentionViewer:
        """A viewer of the teacher ViT saved at `path`: a training checkpoint.pt or `export_backbone`'s file."""
        from dtlib.export import load_backbone

        model, cfg = load_backbone(path)
        return cls(model, images, source=describe_run(cfg, path), **kwargs)

    def load_checkpoint(self, path: str | Path) -> None:
        """Show the maps of the ViT saved at `path` instead (the controls keep the image); a bad path or a
        checkpoint without a ViT is said in the status line and the current model stays."""
        from dtlib.checkpoint import CheckpointError
        from dtlib.export import load_backbone

        try:
            model, cfg = load_backbone(str(path).strip())
            model = self._as_vit(model)
        except (CheckpointError, ValueError) as err:
            self.status.value = f"<small>not loaded: {err}</small>"
            return
        if model.patch_size != self.patch_size:
            self.status.value = (f"<small>not loaded: its patch size {model.patch_size} differs from the viewer's "
                                 f"{self.patch_size}; open a new viewer for it</small>")
            return
        self.model = model.to(next(self.model.parameters()).device).eval()
        self._cache.clear()
        n_layers, n_heads = self.attention(self.image_picker.value).shape[:2]
        self.layer.max, self.layer.value = n_layers - 1, min(self.layer.value, n_layers - 1)
        self.head.options = [(f"head {h}", h) for h in range(n_heads)] + [("mean", "mean")]
        self.head.value = "mean"
        self.source.value = f"<small>maps of: {describe_run(cfg, path)}</small>"
        self.status.value = f"<small>loaded {path}</small>"
        self.redraw()

    @staticmethod
    def _as_vit(model: nn.Module) -> nn.Module:
        """The model itself if it is a ViT with attention maps, else one clear error."""
        if not hasattr(model, "patch_size"):
            raise ValueError(f"the viewer shows a ViT's attention, and this model is a {type(model).__name__}: "
                             "train or load one with backbone='vit_tiny'")
        return model

    def _ipython_display_(self) -> None:
        """Display the viewer's widget when the viewer is the value of a notebook cell."""
        # _ipython_display_ rather than _repr_mimebundle_: ipywidgets 7 widgets lack the latter.
        from IPython.display import display

        display(self.widget)

    def _fit_to_patches(self, image: np.ndarray) -> np.ndarray:
        """Centre-crop an HxWx3 uint8 image so both sides are multiples of the patch size."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"images must be uint8 HxWx3, got {image.dtype} {image.shape}")
        h, w = (s - s % self.patch_size for s in image.shape[:2])
        top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
        return image[top : top + h, left : left + w]

    def _picker_options(self) -> list[tuple[str, int]]:
        """(label, index) pairs for the image dropdown."""
        return [(f"{i}: {name}", i) for i, name in enumerate(self.names)]

    def attention(self, index: int) -> np.ndarray:
        """[CLS] attention of image ``index`` for every layer and head, (L, heads, h, w), cached."""
        if index not in self._cache:
            device = next(self.model.parameters()).device
            x = normalize(self.images[index]).to(device)  # (1, 3, H, W)
            self._cache[index] = cls_attention_layers(self.model, x)[:, 0].float().cpu().numpy()
        return self._cache[index]

    def current_map(self) -> np.ndarray:
        """Attention map (h, w) selected by the image, layer and head controls."""
        maps = self.attention(self.image_picker.value)[self.layer.value]  # (heads, h, w)
        return maps.mean(0) if self.head.value == "mean" else maps[self.head.value]

    def add_image(self, image: np.ndarray, name: str) -> None:
        """Add an HxWx3 uint8 photo (crop-resized to upload_size) and select it."""
        self.images.append(crop_resize(self._as_rgb(image), self.upload_size))
        self.names.append(name)
        self.image_picker.options = self._picker_options()
        self.image_picker.value = len(self.images) - 1

    def add_file(self, path: str | Path) -> None:
        """Add a photo from an image file of any size (the way round Colab's upload limit)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: upload it first (on Colab: the Files panel)")
        with Image.open(path) as img:
            self.add_image(np.asarray(img.convert("RGB")), path.name)

    def add_sample(self, name: str) -> None:
        """Add one of scikit-image's bundled photos (SAMPLE_PHOTOS), or select it if already shown."""
        if name in self.names:
            self.image_picker.value = self.names.index(name)
            return
        import skimage.data  # only when a sample is asked for: scikit-image is an optional dependency

        self.add_image(self._as_rgb(getattr(skimage.data, name)()), name)

    def _on_sample(self, change: dict) -> None:
        """Add the picked sample photo, then reset the picker so the same one can be picked again."""
        if change["new"]:
            self.add_sample(change["new"])
            self.sample.value = ""

    @staticmethod
    def _as_rgb(image: np.ndarray) -> np.ndarray:
        """Drop an alpha channel or broadcast a grey image so every photo is HxWx3."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])

    def _on_upload(self, change: dict) -> None:
        """Decode the uploaded files and add them to the picker."""
        files = change["new"]
        # ipywidgets 7 (still preinstalled on Colab) gives {name: {"content": ...}}, 8 a tuple of dicts.
        if isinstance(files, dict):
            files = [{"name": name, **entry} for name, entry in files.items()]
        for item in files:
            with Image.open(io.BytesIO(bytes(item["content"]))) as img:
                self.add_image(np.asarray(img.convert("RGB")), item["name"])
            self.status.value = f"<small>added {item['name']} ({len(bytes(item['content'])) / 1e6:.1f} MB)</small>"

    def _on_image(self, change: dict | None = None) -> None:
        """Show the picked image and fit both artists to its size."""
        image = self.images[self.image_picker.value]
        h, w = image.shape[:2]
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
        for artist in (self.photo_artist, self.image_artist):
            artist.set_data(image)
            artist.set_extent(extent)
        self.overlay.set_extent(extent)
        for ax in (self.photo_ax, self.ax):
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
        self.redraw()

    def redraw(self, change: dict | None = None) -> None:
        """Update the overlay from the cached maps and render the figure to the Image widget."""
        amap = self.current_map()  # (h, w)
        if self.mode.value == "mask":
            data = attention_mask(torch.from_numpy(amap), self.threshold.value).numpy().astype(np.float32)
            self.overlay.set_cmap(MASK_CMAP)
            self.overlay.set_clim(0.0, 1.0)
        else:
            data = amap
            self.overlay.set_cmap(self.heatmap_cmap)
            self.overlay.set_clim(float(amap.min()), float(amap.max()))
        self.overlay.set_data(data)
        self.overlay.set_alpha(self.alpha.value)
        head = "mean of heads" if self.head.value == "mean" else f"head {self.head.value}"
        title = f"{self.names[self.image_picker.value]} | layer {self.layer.value} | {head}"
        if self.mode.value == "mask":
            title += f" | keep {self.threshold.value:.2f}"
        self.title.set_text(title)
        self.output.value = self.render_png()

    def render_png(self) -> bytes:
        """Draw the figure and encode it as PNG bytes."""
        self.fig.canvas.draw()
        rgb = np.asarray(self.fig.canvas.buffer_rgba())[:, :, :3]  # (H, W, 3)
        buf = io.BytesIO()
        # Low zlib effort: 3-4x faster to encode than the default and only ~15% larger, which
        # matters for a redraw on every slider step; savefig would also draw the figure twice.
        Image.fromarray(rgb).save(buf, format="png", compress_level=1)
        return buf.getvalue()
