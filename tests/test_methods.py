"""Heads, methods and the teacher: structure, EMA, frozen prototypes, DINO Twins = DINO + β BT."""

import copy

import pytest
import torch
from torch import nn

from dtlib.build import build_method, build_view_maker
from dtlib.config import BACKBONES, METHODS, make_config
from dtlib.heads import DINOHead, Projector
from dtlib.losses import barlow_twins_loss
from dtlib.methods import DINO, BarlowTwins, DinoTwins
from dtlib.train import train_step


class TinyNet(nn.Module):
    """A small conv backbone so method tests run in milliseconds."""

    def __init__(self, dim=16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed_dim = dim

    def forward(self, x):
        return self.net(x)


def views(batch=8, n_local=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, 16, 16, generator=g) for _ in range(2)] + \
           [torch.randn(batch, 3, 8, 8, generator=g) for _ in range(n_local)]


def small_dino(cls=DINO, **kw):
    torch.manual_seed(0)
    return cls(TinyNet(), out_dim=32, head_hidden_dim=24, bottleneck_dim=8, **kw)


def test_projector_batch_normalises_its_hidden_layers_and_ends_linear():
    p = Projector(16, (32, 32, 8)).train()
    hidden = []
    for m in p.net:
        if isinstance(m, nn.BatchNorm1d):
            m.register_forward_hook(lambda module, args, out: hidden.append(out.clone()))  # before the in-place ReLU
    out = p(torch.randn(64, 16) * 5 + 3)
    assert out.shape == (64, 8) and len(hidden) == 2
    for h in hidden:  # (64, 32): every hidden unit standardised over the batch
        torch.testing.assert_close(h.mean(0), torch.zeros(32), atol=1e-5, rtol=0)
        torch.testing.assert_close(h.std(0, unbiased=False), torch.ones(32), atol=1e-2, rtol=0)
    assert (out < 0).any() and out.std(0).min() > 0  # the last layer is linear: no ReLU, no BatchNorm


def test_dino_head_normalised_bottleneck_and_weight_norm():
    head = DINOHead(16, out_dim=10, hidden_dim=12, bottleneck_dim=6)
    x = torch.randn(5, 16)
    feats = nn.functional.normalize(head.mlp(x), dim=-1)
    w = nn.functional.normalize(head.weight_v, dim=-1)
    assert torch.allclose(head(x), feats @ w.T, atol=1e-6)
    assert not head.weight_g.requires_grad  # norm_last_layer=True fixes g = 1
    assert DINOHead(16, 10, norm_last_layer=False).weight_g.requires_grad
    # every logit is a cosine similarity: |logit| <= 1
    assert head(x).abs().max() <= 1 + 1e-6


@pytest.mark.parametrize("m", [0.0, 0.5, 0.996, 1.0])
def test_teacher_ema_update(m):
    model = small_dino()
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    t0 = [p.clone() for p in model.teacher.parameters()]
    s = [p.clone() for p in model.student.parameters()]
    model.update_teacher(m)
    for before, student, after in zip(t0, s, model.teacher.parameters()):
        assert torch.allclose(after, m * before + (1 - m) * student, atol=1e-7)
    if m == 0.0:
        assert all(torch.equal(a, b) for a, b in zip(model.teacher.parameters(), s))
    if m == 1.0:
        assert all(torch.equal(a, b) for a, b in zip(model.teacher.parameters(), t0))


def test_no_gradient_reaches_teacher():
    model = small_dino(DinoTwins, beta=0.01, proj_dims=(16, 16))
    loss, _ = model(views(), teacher_temp=0.04)
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.backbone.parameters())
    assert all(p.grad is not None for p in model.projector.parameters())


def test_frozen_prototypes_do_not_move():
    model = small_dino(norm_last_layer=False)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    last = [p.clone() for p in model.last_layer_parameters()]
    mlp = [p.clone() for p in model.student.head.mlp.parameters()]
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for i in range(3):
        train_step(model, model, opt, scaler, views(seed=i), None, teacher_temp=0.04, momentum=0.9,
                   freeze_last_layer=True)
    assert all(torch.equal(a, b) for a, b in zip(last, model.student.head.last_layer_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(mlp, model.student.head.mlp.parameters()))


def test_dino_twins_with_beta_zero_equals_dino():
    dino = small_dino()
    twins = DinoTwins(TinyNet(), beta=0.0, out_dim=32, head_hidden_dim=24, bottleneck_dim=8, proj_dims=(16, 16))
    twins.load_state_dict(dino.state_dict(), strict=False)  # the projector is extra and unused at β = 0
    v = views()
    a, logs_a = dino(v, teacher_temp=0.04)
    b, logs_b = twins(v, teacher_temp=0.04)
    assert torch.equal(a, b)
    assert "loss_bt" not in logs_b
    assert torch.equal(dino.loss_fn.center, twins.loss_fn.center)


@pytest.mark.parametrize("pairs", ["global", "all"])
def test_dino_twins_adds_beta_times_barlow_twins(pairs):
    beta = 0.02
    twins = small_dino(DinoTwins, beta=beta, proj_dims=(16, 12), bt_pairs=pairs)
    dino = copy.deepcopy(twins)
    dino.beta = 0.0
    v = views(n_local=2)
    plain, _ = dino(v, teacher_temp=0.05)
    total, logs = twins(v, teacher_temp=0.05)
    feats = torch.cat([twins.student.backbone(torch.cat(v[:2])), twins.student.backbone(torch.cat(v[2:]))])
    n = 2 if pairs == "global" else 4
    z = twins.projector(feats[: n * 8]).chunk(n)
    bt = [barlow_twins_loss(z[i], z[j]) for i in range(n) for j in range(i + 1, n)]
    expected_bt = sum(bt) / len(bt)
    assert logs["loss_bt"].item() == pytest.approx(expected_bt.item(), rel=1e-5)
    assert total.item() == pytest.approx(plain.item() + beta * expected_bt.item(), rel=1e-5)


def test_barlow_twins_method_uses_two_views():
    torch.manual_seed(0)
    model = BarlowTwins(TinyNet(), proj_dims=(16, 12), lambd=0.01)
    v = views(n_local=0)
    loss, logs = model(v, teacher_temp=0.04)
    z1, z2 = model.projector(model.backbone(torch.cat(v))).chunk(2)
    assert loss.item() == pytest.approx(barlow_twins_loss(z1, z2, 0.01).item(), rel=1e-6)
    assert set(logs) >= {"loss", "loss_bt", "emb_std"}
    assert model.eval_backbone() is model.backbone


def test_dino_logs_diagnostics_without_host_sync():
    loss, logs = small_dino()(views(), teacher_temp=0.04)
    assert {"teacher_entropy", "kl", "emb_std", "loss", "loss_dino"} <= set(logs)
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad for v in logs.values())


@pytest.mark.parametrize("cls", [DINO, DinoTwins])
def test_teacher_sees_only_the_global_crops(cls):
    model = small_dino(cls)
    seen = []
    model.teacher.backbone.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    model(views(batch=8, n_local=3), teacher_temp=0.04)
    assert seen == [(16, 3, 16, 16)]  # both 16-px global crops in one batch, none of the 8-px local crops


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_backbone_keeps_the_contract(method, backbone):
    cfg = make_config("cpu-mini", method=method, backbone=backbone, image_size=16, local_size=8, n_local=1,
                      proj_dims=(16, 16), out_dim=32, head_hidden_dim=16, bottleneck_dim=8, beta=0.5,
                      channels_last=False)
    torch.manual_seed(0)
    model = build_method(cfg).train()
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    v = build_view_maker(cfg)(images, torch.Generator().manual_seed(0))
    loss, logs = model(v, teacher_temp=0.04)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(x.ndim == 0 and not x.requires_grad for x in logs.values()) and logs["loss"] == loss.detach()
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert [n for n, p in trainable.items() if p.grad is None] == []
    teacher = getattr(model, "teacher", None)
    assert teacher is None or all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    backbone_net = model.eval_backbone()
    assert backbone_net(v[0]).shape == (4, backbone_net.embed_dim)
    c = model.cross_correlation(v)
    assert (c is None) == (method == "dino")
    assert c is None or c.shape == (16, 16)
    ids = {id(p) for p in model.parameters()}
    assert all(id(p) in ids for p in model.last_layer_parameters())
    assert (model.last_layer_parameters() == []) == (method == "barlow_twins")
