"""Checkpoints: RNG states stay on the CPU whatever device the weights are loaded for."""

import random

import numpy as np
import torch
from torch import nn

from dtlib.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from dtlib.config import make_config


def test_rng_states_stay_on_cpu_when_weights_go_to_another_device(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()  # a momentum buffer in the optimizer state
    generator = torch.Generator().manual_seed(7)
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    path = save_checkpoint(tmp_path / "checkpoint.pt", model=model, optimizer=optimizer,
                           scaler=torch.amp.GradScaler("cpu", enabled=False), step=3,
                           config=make_config("cpu-mini"), generator=generator)
    expected = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=generator))

    # "meta" stands in for "cuda": a device the RNG states must not be moved to.
    payload = load_checkpoint(path, map_location="meta")
    assert all(t.device.type == "meta" for t in payload["model"].values())
    assert payload["rng"]["torch"].device.type == "cpu" and payload["rng"]["augment"].device.type == "cpu"
    set_rng_state(payload["rng"], generator)
    again = (torch.rand(3), np.random.rand(3), random.random(), torch.rand(3, generator=generator))
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2] and torch.equal(expected[3], again[3])
    optimizer.load_state_dict(payload["optimizer"])  # the optimizer state moves to the parameters itself
