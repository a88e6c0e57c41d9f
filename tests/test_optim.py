"""LARS against a plain per-parameter implementation; parameter groups."""

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

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


class CountHostReads(TorchDispatchMode):
    """Counts device-to-host reads of a tensor's value (.item(), bool(t)): each one syncs a GPU."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


def _lars_pair(seed=0):
    """Two identical models with a LARS each, and one batch's loss function."""
    models = []
    for _ in range(2):
        torch.manual_seed(seed)
        models.append(nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.Linear(7, 3)))
    opts = [build_optimizer("lars", m, 0.3, 1e-4) for m in models]
    return models, opts


def test_lars_takes_the_scale_from_grad_scaler_without_a_host_sync():
    assert LARS._step_supports_amp_scaling  # GradScaler then skips its unscale_ and found_inf.item()
    models, opts = _lars_pair()
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=1000)
    x = torch.randn(8, 5)
    for step in range(3):
        for model, opt, scaled in zip(models, opts, (False, True)):
            opt.zero_grad()
            loss = model(x + step).pow(2).mean()
            if scaled:
                scaler.scale(loss).backward()
                with CountHostReads() as reads:
                    scaler.step(opt)
                assert reads.count == 0  # a plain optimizer's step reads found_inf with .item()
                scaler.update()
            else:
                loss.backward()
                opt.step()
        for a, b in zip(*(m.parameters() for m in models)):
            assert torch.equal(a, b), step  # scale 1: the same update as the plain path, bit for bit
    for a, b in zip(*(o.state_dict()["state"].values() for o in opts)):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])


def test_lars_under_grad_scaler_unscales_and_skips_a_step_with_an_inf_gradient():
    models, opts = _lars_pair()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x = torch.randn(8, 5)
    for model, opt, scale in zip(models, opts, (None, scaler)):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        (scale.scale(loss) if scale else loss).backward()
        if scale:
            scale.step(opt)
            scale.update()
        else:
            opt.step()
    for a, b in zip(*(m.parameters() for m in models)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # the 1024 was divided out
    before = [p.detach().clone() for p in models[1].parameters()]
    bufs = [s["momentum_buffer"].clone() for s in opts[1].state_dict()["state"].values()]
    opts[1].zero_grad()
    loss = models[1](x).pow(2).mean()
    scaler.scale(loss).backward()
    next(models[1].parameters()).grad[0, 0] = float("inf")
    scaler.step(opts[1])
    scaler.update()
    assert scaler.get_scale() == 512.0  # the inf was seen: the scale backs off
    for p, b in zip(models[1].parameters(), before):
        assert torch.equal(p, b)  # and the step was skipped
    for s, b in zip(opts[1].state_dict()["state"].values(), bufs):
        assert torch.equal(s["momentum_buffer"], b)
