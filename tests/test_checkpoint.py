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
    momentum = [state["momentum_buffer"].clone() for state in optimizer.state.values()]
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
    optimizer.load_state_dict(load_checkpoint(path, map_location="cpu")["optimizer"])
    assert all(torch.equal(a, s["momentum_buffer"]) for a, s in zip(momentum, optimizer.state.values()))


def test_a_checkpoint_from_before_the_single_switches_loads_with_the_same_recipe(tmp_path):
    from dtlib.build import build_method
    from dtlib.checkpoint import load_trained

    cfg = make_config("cpu-mini", image_size=16, local_size=8, out_dim=16, head_hidden_dim=8, bottleneck_dim=4,
                      proj_dims=(8,))
    model = build_method(cfg)
    path = save_checkpoint(tmp_path / "checkpoint.pt", model=model, optimizer=torch.optim.SGD(model.parameters()),
                           scaler=torch.amp.GradScaler("cpu", enabled=False), step=1, config=cfg,
                           generator=torch.Generator())
    payload = torch.load(path, weights_only=False)
    old = dict(payload["config"], centering=True, centering_method="sinkhorn", teacher_temp_warmup=False,
               warmup_teacher_temp_epochs=30)  # how cpu-mini was written before
    torch.save(dict(payload, config=old), path)
    loaded, again = load_trained(path)
    assert again == cfg
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
