"""LARS against a plain per-parameter implementation; parameter groups."""

import torch
from torch import nn

from dtlib.heads import DINOHead
from dtlib.optim import LARS, build_optimizer, param_groups


def plain_lars_step(params, grads, bufs, lr, wd, momentum, eta, adapt):
    for p, g, buf in zip(params, grads, bufs):
        g = g + wd * p
        if adapt and p.norm() > 0 and g.norm() > 0:
            g = g * (eta * p.norm() / g.norm())
        buf.mul_(momentum).add_(g)
        p.sub_(lr * buf)


def test_lars_matches_plain_loop():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Linear(7, 3))
    ref = [p.detach().clone() for p in model.parameters()]
    opt = LARS(param_groups(model, 1e-4), lr=0.3, momentum=0.9, eta=0.02)
    decay_ids = {id(p) for p in opt.param_groups[0]["params"]}
    adapt = [id(p) in decay_ids for p in model.parameters()]
    bufs = [torch.zeros_like(p) for p in ref]
    for step in range(3):
        x = torch.randn(8, 5)
        model.zero_grad()
        model(x).pow(2).sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        opt.step()
        for p, g, buf, a in zip(ref, grads, bufs, adapt):
            plain_lars_step([p], [g], [buf], 0.3, 1e-4 if a else 0.0, 0.9, 0.02, a)
        for p, r in zip(model.parameters(), ref):
            assert torch.allclose(p, r, atol=1e-6), step
        # continue from identical weights so gradients stay comparable
        with torch.no_grad():
            for p, r in zip(model.parameters(), ref):
                p.copy_(r)


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
