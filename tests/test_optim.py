"""LARS against a plain per-parameter implementation; parameter groups."""

import pytest
import torch
from torch import nn

from dtlib.heads import DINOHead
from dtlib.optim import BIAS_LR_SCALE, LARS, build_optimizer, param_groups


def plain_lars_step(params, grads, bufs, lr, wd, momentum, eta, adapt, clip):
    for p, g, buf in zip(params, grads, bufs):
        g = g + wd * p
        if adapt and p.norm() > 0 and g.norm() > 0:
            trust = eta * p.norm() / g.norm()
            if clip:
                trust = min(trust / lr, 1.0)
            g = g * trust
        buf.mul_(momentum).add_(g)
        p.sub_(lr * buf)


@pytest.mark.parametrize("clip", [True, False])
def test_lars_matches_plain_loop(clip):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))
    with torch.no_grad():
        model[0].weight.mul_(0.01)  # a small weight norm: its trust ratio stays under the clip
    ref = [p.detach().clone() for p in model.parameters()]
    groups = param_groups(model, 1e-4)
    groups[1]["lr_scale"] = 0.5
    opt = LARS(groups, lr=0.3, momentum=0.9, eta=0.02, clip=clip)
    decay_ids = {id(p) for p in opt.param_groups[0]["params"]}
    adapt = [id(p) in decay_ids for p in model.parameters()]
    bufs = [torch.zeros_like(p) for p in ref]
    clipped = set()
    for step in range(3):
        x = torch.randn(8, 5)
        model.zero_grad()
        (1e-3 * model(x).pow(2).sum()).backward()  # small gradients: large trust ratios, clipped
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        for i, (p, g, buf, a) in enumerate(zip(ref, grads, bufs, adapt)):
            if a and 0.02 * p.norm() / (g + 1e-4 * p).norm() > 0.3:
                clipped.add(i)
            plain_lars_step([p], [g], [buf], 0.3 if a else 0.15, 1e-4 if a else 0.0, 0.9, 0.02, a, clip)
        for p, r in zip(model.parameters(), ref):
            assert torch.allclose(p, r, atol=1e-6), step
        # continue from identical weights so gradients stay comparable
        with torch.no_grad():
            for p, r in zip(model.parameters(), ref):
                p.copy_(r)
    assert clipped and clipped != {i for i, a in enumerate(adapt) if a}  # both branches of the clip ran


def test_lars_gives_biases_and_norms_the_reference_fraction_of_the_lr():
    opt = build_optimizer("lars", nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), 0.2, 1e-6)
    assert [g["lr_scale"] for g in opt.param_groups] == [1.0, BIAS_LR_SCALE]
    assert 0.2 * BIAS_LR_SCALE == pytest.approx(0.0048)  # Barlow Twins' lr_biases for lr_weights 0.2


def test_param_groups_exclude_biases_norms_and_weight_norm_gain():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    head = DINOHead(4, out_dim=6, hidden_dim=5, bottleneck_dim=3, norm_last_layer=False)
    groups = param_groups(nn.ModuleList([model, head]), 0.05)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert id(model[0].weight) in decay  # a 1x1 conv is a weight, not a gain
    assert {id(model[0].bias), id(model[1].weight), id(model[1].bias), id(head.weight_g)} <= no_decay
    assert id(head.weight_v) in decay
    assert groups[0]["weight_decay"] == 0.05 and groups[1]["weight_decay"] == 0.0


def test_build_optimizer_kinds():
    model = nn.Linear(3, 2)
    assert isinstance(build_optimizer("adamw", model, 1e-3, 0.05), torch.optim.AdamW)
    assert isinstance(build_optimizer("sgd", model, 0.1, 0.0), torch.optim.SGD)
    assert isinstance(build_optimizer("lars", model, 0.1, 1e-6), LARS)
