"""Optimizers: AdamW, SGD and LARS, with biases and norm parameters kept out of decay and adaptation."""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, head_lr_scale: float = 1.0) -> list[dict]:
    """Weights (decayed, LARS-adapted) and biases / norm gains (neither), each split into the DINO
    head (the student's `head`, lr × `head_lr_scale`) and the rest (lr × 1); empty groups are dropped."""
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # 1-d tensors are biases and BatchNorm/LayerNorm gains; the DINO weight-norm gain is (K, 1).
        decay = not (p.ndim <= 1 or name.endswith("weight_g"))
        scale = head_lr_scale if name.startswith("student.head.") else 1.0
        key = (decay, scale)
        if key not in groups:
            groups[key] = {"params": [], "weight_decay": weight_decay if decay else 0.0, "lars": decay,
                           "decay": decay, "lr_scale": scale}
        groups[key]["params"].append(p)
    return list(groups.values())


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratio η‖w‖/‖g + λw‖ (You et al., 2017), foreach kernels.

    Groups with `lars=False` get plain momentum SGD (the Barlow Twins paper excludes biases and
    BatchNorm parameters from both the adaptation and the weight decay).
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True))

    @torch.no_grad()
    def step(self, closure=None):
        """One update; no host sync (trust ratios stay on the device)."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if group["lars"]:
                p_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(grads))
                trust = torch.where((p_norm > 0) & (g_norm > 0), group["eta"] * p_norm / g_norm,
                                    torch.ones_like(p_norm))
                grads = torch._foreach_mul(grads, list(trust.unbind()))
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                bufs.append(state["momentum_buffer"])
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, grads)
            torch._foreach_add_(params, bufs, alpha=-group["lr"])


def build_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float,
                    head_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """'adamw', 'sgd' or 'lars' over `param_groups(model)`; fused kernels on CUDA."""
    groups = param_groups(model, weight_decay, head_lr_scale)
    on_cuda = next(model.parameters()).is_cuda
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, fused=on_cuda or None)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, fused=on_cuda or None)
    if name == "lars":
        return LARS(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}: choose adamw, sgd or lars")
