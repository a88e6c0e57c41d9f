"""dtlib: Barlow Twins, DINO and DINO Twins on CIFAR — data, augmentation, models, training, evaluation."""

__version__ = "0.1.0"

from .augment import ViewMaker, ViewSpec, barlow_twins_views, multicrop_views  # noqa: E402
from .backbones import build_backbone  # noqa: E402
from .config import PRESETS, Config, make_config  # noqa: E402
from .data import Split, load_dataset, load_split  # noqa: E402
from .evaluate import evaluate, extract_features, knn_classify, linear_probe  # noqa: E402
from .heads import DINOHead, Projector  # noqa: E402
from .losses import DINOLoss, barlow_twins_loss, dino_twins_loss  # noqa: E402
from .methods import DINO, BarlowTwins, DinoTwins  # noqa: E402
from .results import recorded_results  # noqa: E402
from .train import (  # noqa: E402
    build_method,
    build_schedules,
    build_view_maker,
    eval_data,
    evaluate_config,
    fit,
    load_trained,
    resolve_device,
    run,
    steps_per_epoch,
)

__all__ = [
    "BarlowTwins", "Config", "DINO", "DINOHead", "DINOLoss", "DinoTwins", "PRESETS", "Projector", "Split",
    "ViewMaker", "ViewSpec", "barlow_twins_loss", "barlow_twins_views", "build_backbone", "build_method",
    "build_schedules", "build_view_maker", "dino_twins_loss", "eval_data", "evaluate", "evaluate_config",
    "extract_features", "fit", "knn_classify", "linear_probe", "load_dataset", "load_split", "load_trained",
    "make_config", "multicrop_views", "recorded_results", "resolve_device", "run", "steps_per_epoch",
]
