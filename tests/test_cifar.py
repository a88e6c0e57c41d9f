"""Dataset statistics and the one normalisation: uint8, float, photo and batch inputs agree."""

import numpy as np
import pytest
import torch

from dtlib.cifar import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, dataset_stats, normalize, unnormalize


def test_every_input_form_gives_the_same_normalised_batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8, generator=g)
    expected = (images.double() / 255 - torch.tensor(CIFAR10_MEAN, dtype=torch.float64).view(1, 3, 1, 1)) \
        / torch.tensor(CIFAR10_STD, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize(images).double(), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalize(images.float() / 255), normalize(images))  # float in [0, 1]
    torch.testing.assert_close(normalize(images[0]), normalize(images)[:1])  # (3, H, W)
    photo = images[0].permute(1, 2, 0).numpy()  # (H, W, 3)
    torch.testing.assert_close(normalize(photo), normalize(images)[:1])
    torch.testing.assert_close(unnormalize(normalize(images)), images.float() / 255, atol=1e-6, rtol=0)


def test_stats_per_dataset():
    assert dataset_stats("cifar10") == (CIFAR10_MEAN, CIFAR10_STD)
    assert dataset_stats("cifar100")[0] == CIFAR100_MEAN != CIFAR10_MEAN
    with pytest.raises(ValueError, match="choose one of cifar10, cifar100"):
        dataset_stats("imagenet")
    assert np.allclose(normalize(torch.full((1, 3, 1, 1), 0.5), *dataset_stats("cifar100")).flatten(),
                       [(0.5 - m) / s for m, s in zip(*dataset_stats("cifar100"))])


def test_normalize_writes_the_asked_layout_and_keeps_gradients():
    x = torch.rand(2, 3, 4, 4)
    out = normalize(x, memory_format=torch.channels_last)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, normalize(x))
    x.requires_grad_(True)
    normalize(x).sum().backward()
    expected = (1 / torch.tensor(CIFAR10_STD)).view(1, 3, 1, 1).expand_as(x)
    torch.testing.assert_close(x.grad, expected)
