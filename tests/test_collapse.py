"""Behaviour: does the Barlow Twins term stop DINO's collapse when centering is removed?

Measured on small synthetic data (coloured squares on noise), same settings for every run, two
seeds. What we measured (and assert): without centering, the teacher of *both* DINO and DINO Twins
collapses onto one prototype within a few steps (entropy → 0 nats, ceiling ln K); the Barlow Twins
term does not prevent that, but it keeps the backbone's embeddings more spread (higher std of the
L2-normalised features). These settings are deliberately harsh (sharp teacher at 0.04, fixed
momentum 0.9, high lr) so that collapse shows within seconds; under them DINO *with* centering
collapses too (measured: entropy 0.05 nats at step 12), so the table at CPU scale in
results/ablation.md is the fairer comparison.
"""

import math

import pytest
import torch

from dtlib.config import make_config
from dtlib.data import Split
from dtlib.train import fit

K = 256


def squares(n=256, seed=0):
    """Four classes of coloured 8x8 squares at random places on 16x16 noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    colours = torch.tensor([[230, 40, 40], [40, 230, 40], [40, 40, 230], [230, 230, 40]], dtype=torch.float)
    images = torch.rand(n, 3, 16, 16, generator=g) * 80
    for i in range(n):
        y, x = torch.randint(0, 8, (2,), generator=g).tolist()
        images[i, :, y:y + 8, x:x + 8] = colours[labels[i]][:, None, None]
    split = Split(images.to(torch.uint8), labels, list("abcd"))
    return split, split


def final(method, seed, tmp_path, **kw):
    cfg = make_config("cpu-mini", method=method, seed=seed, subset=0, epochs=3, batch_size=64, image_size=16,
                      local_size=8, n_local=0, teacher_temp=0.04, teacher_temp_warmup=False, out_dim=K,
                      head_hidden_dim=128, bottleneck_dim=32, proj_dims=(128, 128), beta=1.0, lr=1e-2,
                      warmup_epochs=0, freeze_last_layer=0, momentum_schedule="fixed", momentum_teacher=0.9,
                      log_every=4, save_every=100, out=str(tmp_path / f"{method}{seed}"), **kw)
    rows = fit(cfg, squares(seed=seed)).history[-4:]
    return {k: sum(r[k] for r in rows) / len(rows) for k in ("teacher_entropy", "emb_std")}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collapse")
    return {(m, s): final(m, s, tmp, centering=False) for m in ("dino", "dinotwins") for s in (0, 1)}


def test_without_centering_both_teachers_collapse(measured):
    for (method, seed), r in measured.items():
        assert r["teacher_entropy"] < 0.05 * math.log(K), (method, seed, r)


def test_barlow_twins_keeps_embeddings_more_spread(measured):
    for seed in (0, 1):
        assert measured[("dinotwins", seed)]["emb_std"] > 1.15 * measured[("dino", seed)]["emb_std"], measured

