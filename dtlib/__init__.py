"""dtlib: Barlow Twins, DINO and DINO Twins on CIFAR — data, augmentation, models, training, evaluation."""

from ._version import __version__
from .augment import ViewMaker, ViewSpec, barlow_twins_views, multicrop_views
from .backbones import build_backbone
from .build import build_method, build_schedules, build_view_maker
from .checkpoint import load_trained
from .cifar import dataset_stats, normalize
from .config import PRESETS, Config, make_config
from .data import Split, load_dataset, load_split
from .evaluate import eval_data, evaluate, evaluate_config, extract_features, knn_classify, linear_probe
from .export import export_backbone, load_backbone
from .heads import DINOHead, Projector
from .losses import DINOLoss, barlow_twins_loss
from .methods import DINO, BarlowTwins, DinoTwins
from .optim import build_optimizer
from .results import recorded_results
from .train import (
                    epoch_permutation,
                    final_logs,
                    fit,
                    prepare_data,
                    resolve_device,
                    run,
                    seed_everything,
                    set_hyperparameters,
                    steps_per_epoch,
                    train_subset,
)

__all__ = [
    "BarlowTwins", "Config", "DINO", "DINOHead", "DINOLoss", "DinoTwins", "PRESETS", "Projector", "Split",
    "ViewMaker", "ViewSpec", "__version__", "barlow_twins_loss", "barlow_twins_views", "build_backbone",
    "build_method", "build_schedules", "build_view_maker", "dataset_stats", "eval_data", "evaluate",
    "evaluate_config", "export_backbone", "extract_features", "final_logs", "fit", "knn_classify", "linear_probe",
    "load_backbone", "load_dataset", "load_split",
    "load_trained", "make_config", "multicrop_views", "normalize", "recorded_results", "resolve_device", "run",
    "steps_per_epoch",
    # the pieces of fit's loop, for writing a training step by hand (notebook 02)
    "build_optimizer", "epoch_permutation", "prepare_data", "seed_everything", "set_hyperparameters", "train_subset",
]
