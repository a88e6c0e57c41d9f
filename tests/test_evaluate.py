"""Tests for dtlib.evaluate: features, weighted kNN and the linear probe, on small synthetic data."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from dtlib.config import make_config
from dtlib.data import Split
from dtlib.evaluate import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    evaluate,
    extract_features,
    fit_linear_classifier,
    knn_classify,
    knn_predict,
    linear_probe,
    probe_splits,
    topk_accuracy,
)


def _loop_knn(train, train_labels, test, k, temperature, num_classes):
    """Plain-Python weighted kNN: cosine similarity, top-k, votes weighted by exp(sim / T)."""
    preds = []
    for q in test.double().tolist():
        q_norm = math.sqrt(sum(v * v for v in q))
        sims = []
        for j, x in enumerate(train.double().tolist()):
            x_norm = math.sqrt(sum(v * v for v in x))
            sims.append((sum(a * b for a, b in zip(q, x, strict=True)) / (q_norm * x_norm), j))
        sims.sort(key=lambda s: -s[0])
        votes = [0.0] * num_classes
        for sim, j in sims[:k]:
            votes[int(train_labels[j])] += math.exp(sim / temperature)
        preds.append(max(range(num_classes), key=lambda c: (votes[c], -c)))  # ties → lowest class
    return torch.tensor(preds)


def _clusters(n_per_class, num_classes, dim, spread, generator):
    """Gaussian clusters of width `spread` around random centres; returns (features, labels)."""
    centres = torch.randn(num_classes, dim, generator=generator) * 3.0
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centres[labels] + spread * torch.randn(labels.shape[0], dim, generator=generator)
    perm = torch.randperm(labels.shape[0], generator=generator)
    return feats[perm], labels[perm]


@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_knn_matches_loop_reference(temperature):
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(60, 8, generator=g), torch.randn(23, 8, generator=g)
    train_labels = torch.randint(0, 4, (60,), generator=g)
    ks = (1, 5, 20)
    # A chunk size that does not divide the test set exercises the chunking and the ragged last chunk.
    preds = knn_predict(train, train_labels, test, ks, temperature, num_classes=4, chunk_size=7)
    for k in ks:
        expected = _loop_knn(train, train_labels, test, k, temperature, 4)
        assert torch.equal(preds[k], expected), k
    test_labels = torch.randint(0, 4, (23,), generator=g)
    acc = knn_classify(train, train_labels, test, test_labels, ks=ks, temperature=temperature, chunk_size=7)
    assert set(acc) == {"knn_top1_k1", "knn_top1_k5", "knn_top1_k20"}
    for k in ks:
        expected = 100.0 * (_loop_knn(train, train_labels, test, k, temperature, 4) == test_labels).float()
        assert acc[f"knn_top1_k{k}"] == pytest.approx(expected.mean().item())


def test_knn_separated_clusters_near_perfect():
    g = torch.Generator().manual_seed(1)
    feats, labels = _clusters(60, 5, 16, 0.3, g)
    acc = knn_classify(feats[:200], labels[:200], feats[200:], labels[200:], ks=(20, 200))
    assert acc["knn_top1_k20"] >= 99.0
    assert acc["knn_top1_k200"] >= 99.0


def test_knn_random_labels_near_chance():
    g = torch.Generator().manual_seed(2)
    train, test = torch.randn(2000, 32, generator=g), torch.randn(1000, 32, generator=g)
    train_labels, test_labels = torch.randint(0, 10, (2000,), generator=g), torch.randint(0, 10, (1000,), generator=g)
    acc = knn_classify(train, train_labels, test, test_labels)
    # Chance is 10 %; the standard error with 1000 test points is ~1 %.
    assert 6.0 < acc["knn_top1_k20"] < 14.0
    assert 6.0 < acc["knn_top1_k200"] < 14.0


def _linear_data(n, dim, num_classes, seed, noise=0.0):
    """Features whose labels are the argmax of a random linear map (plus optional logit noise)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(dim, num_classes, generator=g)
    # Offset and scale so the probe's standardisation has real work to do.
    feats = 5.0 + 3.0 * torch.randn(n, dim, generator=g)
    logits = (feats - 5.0) @ w + noise * torch.randn(n, num_classes, generator=g)
    return feats, logits.argmax(dim=1)


def test_linear_probe_separable_data():
    feats, labels = _linear_data(3000, 20, 5, seed=3)
    acc = linear_probe(feats[:2500], labels[:2500], feats[2500:], labels[2500:], epochs=20, batch_size=256)
    assert acc["linear_top1"] >= 95.0
    assert acc["linear_top5"] == 100.0  # 5 classes: every label is in the top 5


def test_linear_probe_top5_at_least_top1():
    feats, labels = _linear_data(3000, 20, 10, seed=4, noise=20.0)
    acc = linear_probe(feats[:2500], labels[:2500], feats[2500:], labels[2500:], epochs=5, batch_size=256)
    assert 10.0 < acc["linear_top1"] < 95.0  # noisy enough that top-5 has something to add
    assert acc["linear_top5"] > acc["linear_top1"]


def test_linear_classifier_deterministic_for_a_seed():
    feats, labels = _linear_data(1000, 16, 4, seed=5, noise=5.0)
    a, b, c = (fit_linear_classifier(feats, labels, epochs=3, batch_size=64, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.linear.weight, b.linear.weight) and torch.equal(a.linear.bias, b.linear.bias)
    assert not torch.equal(a.linear.weight, c.linear.weight)  # the seed does drive the batch order


def test_linear_probe_uses_train_split_only():
    feats, labels = _linear_data(1500, 16, 6, seed=6, noise=5.0)
    train_x, train_y, test_x, test_y = feats[:1000], labels[:1000], feats[1000:], labels[1000:]
    model = fit_linear_classifier(train_x, train_y, epochs=3, batch_size=128)
    # Standardisation statistics come from the train features alone.
    torch.testing.assert_close(model.mean, train_x.mean(0))
    shuffled_y = test_y[torch.randperm(test_y.shape[0], generator=torch.Generator().manual_seed(0))]
    for y in (test_y, shuffled_y):
        # The probe's report is exactly the train-only model evaluated on the given test labels, so
        # shuffling the test labels changes the reported accuracy and nothing else.
        acc = linear_probe(train_x, train_y, test_x, y, epochs=3, batch_size=128)
        expected = topk_accuracy(model(test_x), y, ks=(1, 5))
        assert acc == {"linear_top1": expected[1], "linear_top5": expected[5]}
    assert linear_probe(train_x, train_y, test_x, shuffled_y, epochs=3, batch_size=128)["linear_top1"] < 50.0


def _tiny_net() -> nn.Module:
    """A conv net with BatchNorm whose running stats differ from batch stats, so eval mode is visible."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    bn = net[1]
    bn.running_mean.uniform_(-1.0, 1.0)
    bn.running_var.uniform_(0.5, 2.0)
    return net


def _uint8_images(n: int, seed: int = 0) -> torch.Tensor:
    """Random uint8 images (n, 3, 8, 8)."""
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_extract_features_uses_eval_mode_and_restores_modes():
    net = _tiny_net().train()
    net[1].eval()  # a caller-frozen BatchNorm inside a training model must stay frozen
    images = _uint8_images(10)
    running_mean = net[1].running_mean.clone()
    feats = extract_features(net, images, batch_size=4)
    assert feats.shape == (10, 8) and feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert net.training and net[0].training and not net[1].training
    torch.testing.assert_close(net[1].running_mean, running_mean, rtol=0, atol=0)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = (images.float() / 255 - mean) / std
    with torch.no_grad():
        expected = net.eval()(x)
        train_mode_out = net.train()(x)
    torch.testing.assert_close(feats, expected)
    assert not torch.allclose(feats, train_mode_out, atol=1e-3)  # eval vs train BatchNorm really differ


def test_extract_features_batching_and_input_dtype():
    net = _tiny_net().eval()
    images = _uint8_images(13, seed=1)
    one_batch = extract_features(net, images, batch_size=13)
    torch.testing.assert_close(extract_features(net, images, batch_size=5), one_batch)
    torch.testing.assert_close(extract_features(net, images.float() / 255, batch_size=13), one_batch)
    torch.testing.assert_close(extract_features(net, images, device="cpu"), one_batch)
    assert not net.training


def test_evaluate_probes_the_configured_splits_with_the_config_settings():
    net = _tiny_net()
    train = Split(_uint8_images(40, seed=2), torch.arange(40) % 2, ["a", "b"])
    test = Split(_uint8_images(20, seed=3), torch.arange(20) % 2, ["a", "b"])
    cfg = make_config("cpu-mini", probe_epochs=2, val_fraction=0.25, eval_split="val", eval_subset=24,
                      eval_batch_size=7, seed=3)
    out = evaluate(cfg, net, (train, test))
    fit_on, score_on = probe_splits(cfg, (train, test))
    assert (len(fit_on), len(score_on)) == (24, 10) == (out["probe_train_images"], out["scored_images"])
    f, g = extract_features(net, fit_on.images), extract_features(net, score_on.images)
    expected = linear_probe(f, fit_on.labels, g, score_on.labels, epochs=2, seed=3)
    expected.update(knn_classify(f, fit_on.labels, g, score_on.labels, ks=(20, 200)))
    assert {k: out[k] for k in expected} == pytest.approx(expected)
    assert out["knn_top1"] == out["knn_top1_k20"] and out["feature_dim"] == 8.0 and out["split"] == "val"
    assert evaluate(dataclasses.replace(cfg, eval_split="test"), net, (train, test))["scored_images"] == 20
    assert net.training  # the caller's mode is kept


def test_nearest_neighbours_are_the_most_cosine_similar_gallery_rows_in_order():
    from dtlib.evaluate import nearest_neighbours

    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [10.0, 1.0]])  # scale must not matter
    query = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    idx = nearest_neighbours(gallery, query, k=3)
    assert idx.tolist()[0] == [0, 4, 2]  # angles 0°, 5.7°, 45°: nearest first
    assert idx[1, 0] in (0, 3) and idx.shape == (2, 3)  # (0, -1) is 90° from both (1, 0) and (-1, 0)
    assert nearest_neighbours(gallery, query, k=50).shape == (2, 5)  # k is capped by the gallery
