"""dtlib: Barlow Twins, DINO and DINO Twins on CIFAR — data, augmentation, models, training, evaluation."""

__version__ = "0.1.0"
