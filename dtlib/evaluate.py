"""Frozen-backbone evaluation: feature extraction, weighted kNN and a linear probe.

The test split is only ever reported: the probe is fit on train features and labels alone, with
fixed hyper-parameters and a fixed number of epochs (no early stopping, no selection on test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .amp import autocast
from .cifar import CIFAR10_MEAN, CIFAR10_STD, dataset_stats, normalize
from .config import Config
from .data import Split, load_dataset, random_subset, resize_split, split_validation


def _module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer; CPU for a module with neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def extract_features(
    backbone: nn.Module,
    images: Tensor,
    batch_size: int = 512,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
    device: torch.device | str | None = None,
) -> Tensor:
    """Embed uint8 images (N, 3, H, W) with the backbone in eval mode; returns float32 (N, D) on `device`.

    A float input is taken to be in [0, 1] already; both are normalised with `mean` and `std`.
    """
    device = _module_device(backbone) if device is None else torch.device(device)
    # Remember every submodule's own flag, not just the root's: a caller may keep some parts (e.g.
    # frozen BatchNorms) in eval mode while training, and `train(True)` would silently undo that.
    modes = [(m, m.training) for m in backbone.modules()]
    backbone.eval()
    try:
        chunks = []
        for start in tqdm(range(0, images.shape[0], batch_size), desc="features", unit="batch", leave=False):
            x = images[start : start + batch_size].to(device, non_blocking=True)  # (B, 3, H, W)
            x = normalize(x if x.dtype == torch.uint8 else x.float(), mean, std)
            with autocast(device):  # training's dtype: bf16, fp16 on a T4, fp32 on CPU
                feats = backbone(x)
            chunks.append(feats.float().flatten(1))  # (B, D)
        return torch.cat(chunks)  # (N, D)
    finally:
        for module, mode in modes:
            module.training = mode


def _infer_num_classes(train_labels: Tensor, num_classes: int | None) -> int:
    """Number of classes, from the train labels only when not given."""
    return int(train_labels.max()) + 1 if num_classes is None else num_classes


@torch.no_grad()
def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    ks: Sequence[int] = (20, 200),
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> dict[int, Tensor]:
    """Weighted-kNN predicted labels (N_test,) for each k, on the train features' device."""
    device = train_features.device
    num_classes = _infer_num_classes(train_labels, num_classes)
    train = F.normalize(train_features.float(), dim=1)  # (N, D)
    train_labels = train_labels.to(device).long()
    k_max = min(max(ks), train.shape[0])
    preds: dict[int, list[Tensor]] = {k: [] for k in ks}
    for start in tqdm(range(0, test_features.shape[0], chunk_size), desc="kNN", unit="chunk", leave=False):
        query = F.normalize(test_features[start : start + chunk_size].to(device).float(), dim=1)  # (C, D)
        sim = query @ train.T  # (C, N) cosine similarities
        # topk is sorted, so one retrieval at the largest k serves every smaller k as a prefix.
        top_sim, top_idx = sim.topk(k_max, dim=1)  # (C, k_max)
        top_labels = train_labels[top_idx]  # (C, k_max)
        weights = (top_sim / temperature).exp()  # (C, k_max)
        for k in ks:
            votes = torch.zeros(query.shape[0], num_classes, device=device)  # (C, num_classes)
            votes.scatter_add_(1, top_labels[:, :k], weights[:, :k])
            preds[k].append(votes.argmax(dim=1))  # ties go to the lowest class index
    return {k: torch.cat(p) for k, p in preds.items()}


@torch.no_grad()
def nearest_neighbours(gallery_features: Tensor, query_features: Tensor, k: int = 5) -> Tensor:
    """Indices (Q, k) of each query's k most cosine-similar gallery rows, nearest first: the retrieval
    the kNN classifier votes with, for showing what a representation calls "similar"."""
    gallery = F.normalize(gallery_features.float(), dim=1)  # (N, D)
    query = F.normalize(query_features.to(gallery.device).float(), dim=1)  # (Q, D)
    return (query @ gallery.T).topk(min(k, gallery.shape[0]), dim=1).indices  # (Q, k)


def knn_classify(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    ks: Sequence[int] = (20, 200),
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Weighted kNN (InstDisc / DINO) top-1 accuracy in percent, as {"knn_top1_k{k}": ...}."""
    preds = knn_predict(train_features, train_labels, test_features, ks, temperature, num_classes, chunk_size)
    test_labels = test_labels.to(train_features.device).long()
    return {f"knn_top1_k{k}": 100.0 * (p == test_labels).float().mean().item() for k, p in preds.items()}


class LinearClassifier(nn.Module):
    """Fixed train-split standardisation (a non-affine BatchNorm in eval mode) followed by a linear layer."""

    def __init__(self, mean: Tensor, std: Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)  # (D,)
        self.register_buffer("std", std)  # (D,)
        self.linear = nn.Linear(mean.shape[0], num_classes)

    def standardise(self, features: Tensor) -> Tensor:
        """Standardise (N, D) features with the stored train-split statistics."""
        return (features.float() - self.mean) / self.std

    def forward(self, features: Tensor) -> Tensor:
        """Logits (N, num_classes) for raw (N, D) features."""
        return self.linear(self.standardise(features))


def fit_linear_classifier(
    train_features: Tensor,
    train_labels: Tensor,
    epochs: int = 100,
    batch_size: int = 1024,
    lr: float = 3e-2,
    weight_decay: float = 5e-4,
    seed: int = 0,
    num_classes: int | None = None,
) -> LinearClassifier:
    """Train a LinearClassifier on train features/labels only (AdamW, cosine lr, cross-entropy)."""
    device = train_features.device
    num_classes = _infer_num_classes(train_labels, num_classes)
    feats = train_features.float()
    labels = train_labels.to(device).long()
    # Statistics from the train split only; eps as in BatchNorm keeps constant (dead) units finite.
    var, mean = torch.var_mean(feats, dim=0, correction=0)  # (D,), (D,)
    model = LinearClassifier(mean, (var + 1e-5).sqrt(), num_classes)
    model.to(device)
    # Zero init: the problem is convex, so this loses nothing and leaves the seed to govern only the
    # batch order — one source of randomness, fully reproduced by a seeded CPU generator.
    nn.init.zeros_(model.linear.weight)
    nn.init.zeros_(model.linear.bias)
    with torch.no_grad():
        x_all = model.standardise(feats)  # (N, D), standardised once rather than per step
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(x_all.shape[0] / batch_size)
    total_steps = epochs * steps_per_epoch
    # Why lr 3e-2: standardised features are still correlated (ill-conditioned); on random-conv CIFAR-10
    # features, 1e-3 ended ~5 points below the L-BFGS optimum after 100 epochs while 3e-2 matched it.
    # The small decoupled weight decay only bounds the weights on (nearly) separable features.
    optimizer = torch.optim.AdamW(model.linear.parameters(), lr=lr, weight_decay=weight_decay)
    # Cosine to zero over a fixed budget: the last iterate is used, so nothing is selected on any split.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    )
    with torch.enable_grad():
        for _ in tqdm(range(epochs), desc="linear probe", unit="epoch", leave=False):
            order = torch.randperm(x_all.shape[0], generator=generator).to(device)
            for start in range(0, x_all.shape[0], batch_size):
                idx = order[start : start + batch_size]
                # index_select rather than x_all[idx]: several times faster on CPU for row gathers.
                x, y = x_all.index_select(0, idx), labels.index_select(0, idx)  # (B, D), (B,)
                loss = F.cross_entropy(model.linear(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
    return model.eval()


@torch.no_grad()
def topk_accuracy(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Top-k accuracy in percent for each k (k is capped at the number of classes)."""
    labels = labels.to(logits.device).long()
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices  # (N, k_max)
    hits = top == labels[:, None]  # (N, k_max)
    return {k: 100.0 * hits[:, :k].any(dim=1).float().mean().item() for k in ks}


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    epochs: int = 100,
    batch_size: int = 1024,
    lr: float = 3e-2,
    weight_decay: float = 5e-4,
    seed: int = 0,
    num_classes: int | None = None,
) -> dict[str, float]:
    """Fit a linear classifier on train features and report test top-1/top-5 in percent."""
    model = fit_linear_classifier(train_features, train_labels, epochs, batch_size, lr, weight_decay, seed, num_classes)
    with torch.no_grad():
        logits = model(test_features.to(train_features.device))  # (N_test, num_classes)
    acc = topk_accuracy(logits, test_labels, ks=(1, 5))
    return {"linear_top1": acc[1], "linear_top5": acc[5]}


def eval_data(cfg: Config, data: tuple[Split, Split] | None = None) -> tuple[Split, Split]:
    """Load (train, test) unless given (at their native size), resized to `cfg.eval_size` when set."""
    train, test = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    return resize_split(train, cfg.eval_size), resize_split(test, cfg.eval_size)


def probe_splits(cfg: Config, data: tuple[Split, Split]) -> tuple[Split, Split]:
    """(fit, score): the probe and kNN are fitted on the train split less its validation hold-out (or
    `cfg.eval_subset` of it) and score `cfg.eval_split` — the hold-out (val) or the test split."""
    train, test = data
    rest, val = split_validation(train, cfg.val_fraction)
    return random_subset(rest, cfg.eval_subset), val if cfg.eval_split == "val" else test


def evaluate(cfg: Config, backbone: nn.Module, data: tuple[Split, Split], ks: Sequence[int] = (20, 200)
             ) -> dict[str, Any]:
    """Linear probe + weighted kNN (in percent) of the frozen `backbone`, on the splits `probe_splits` picks
    from `data` (the probe: `cfg.probe_epochs`, seeded by `cfg.seed`; features in batches of
    `cfg.eval_batch_size`, normalised with the dataset's statistics)."""
    fit_on, score_on = probe_splits(cfg, data)
    mean, std = dataset_stats(cfg.dataset)
    train_feats = extract_features(backbone, fit_on.images, cfg.eval_batch_size, mean, std)  # (N_fit, D)
    test_feats = extract_features(backbone, score_on.images, cfg.eval_batch_size, mean, std)  # (N_score, D)
    train_labels, test_labels = fit_on.labels.to(train_feats.device), score_on.labels.to(train_feats.device)
    results: dict[str, Any] = linear_probe(train_feats, train_labels, test_feats, test_labels,
                                           epochs=cfg.probe_epochs, seed=cfg.seed)
    results.update(knn_classify(train_feats, train_labels, test_feats, test_labels, ks=ks))
    results["knn_top1"] = results[f"knn_top1_k{ks[0]}"]
    results["feature_dim"] = float(train_feats.shape[1])
    results.update(split=cfg.eval_split, probe_train_images=len(fit_on), scored_images=len(score_on))
    return results


def evaluate_config(cfg: Config, model: nn.Module, data: tuple[Split, Split]) -> dict[str, Any]:
    """`evaluate` of a trained method's evaluated backbone (the teacher's for DINO and DINO Twins)."""
    return evaluate(cfg, model.eval_backbone(), data)


def knn_report(cfg: Config, backbone: nn.Module, images: Tensor, labels: Tensor, test: Split) -> dict[str, float]:
    """Online kNN accuracy (k = 20) of `backbone` during training; reported, never used to steer it."""
    mean, std = dataset_stats(cfg.dataset)
    train_f = extract_features(backbone, images, cfg.eval_batch_size, mean, std)
    test_f = extract_features(backbone, test.images, cfg.eval_batch_size, mean, std)
    return knn_classify(train_f, labels.to(train_f.device), test_f, test.labels.to(train_f.device), ks=(20,))
