"""Optimizers: AdamW, SGD and LARS, with biases and norm parameters kept out of decay and adaptation."""

from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float, head_lr_scale: float = 1.0) -> list[dict]:
    """Weights (decayed, LARS-adapted) and biases / norm gains (neither), each split into the DINO
    head (the student's `head`, whose `lr_mult` is `head_lr_scale`) and the rest (`lr_mult` 1); the
    training loop sets each group's lr to the scheduled lr × `lr_mult`. Empty groups are dropped."""
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
                           "decay": decay, "lr_mult": scale}
        groups[key]["params"].append(p)
    return list(groups.values())


# The Barlow Twins reference trains biases and norm gains at a much smaller rate than the weights
# (lr_biases 0.0048 vs lr_weights 0.2): LARS gives the no-decay group this fraction of the lr.
BIAS_LR_SCALE = 0.0048 / 0.2


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (You et al., 2017), foreach kernels.

    A LARS-adapted parameter steps by lr · trust · (g + λw), with trust = η‖w‖/‖g + λw‖ (the Barlow
    Twins reference) clipped as solo-learn's `clip_lr`: trust ← min(trust / lr, 1), so no layer
    moves faster than plain SGD at lr would; η = 0.02 is solo-learn's value for this clip.
    Groups with `lars=False` (biases, norm gains) get plain momentum SGD at lr · `lr_scale`.
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02, clip: bool = True):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, clip=clip,
                                      lars=True, lr_scale=1.0))

    # GradScaler hands this optimizer its scale and inf flag (`grad_scale`, `found_inf` device tensors)
    # instead of unscaling the gradients and reading the flag on the host before every step.
    _step_supports_amp_scaling = True

    @torch.no_grad()
    def step(self, closure=None):
        """One update; no host sync (trust ratios, and under a GradScaler the unscaling and the skip of a
        step with an inf/NaN gradient, stay on the device)."""
        grad_scale = getattr(self, "grad_scale", None)  # set by GradScaler.step for this call only
        found_inf = getattr(self, "found_inf", None)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            lr = group["lr"] * group.get("lr_scale", 1.0)  # get: checkpoints from before the scale
            grads = [p.grad for p in params]
            if grad_scale is not None:
                grads = torch._foreach_mul(grads, grad_scale.double().reciprocal().float())
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            if group["lars"]:
                p_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(grads))
                trust = torch.where((p_norm > 0) & (g_norm > 0), group["eta"] * p_norm / g_norm,
                                    torch.ones_like(p_norm))
                if group.get("clip", True) and lr > 0:
                    trust = trust.div_(lr).clamp_(max=1.0)
                grads = torch._foreach_mul(grads, list(trust.unbind()))
            if found_inf is not None:  # a skipped step must leave weights and momenta as they are
                grads = [torch.where(found_inf > 0, 0.0, g) for g in grads]
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                bufs.append(state["momentum_buffer"])
            if found_inf is None:
                torch._foreach_mul_(bufs, group["momentum"])
                torch._foreach_add_(bufs, grads)
                torch._foreach_add_(params, bufs, alpha=-lr)
            else:  # keep = 0 on a skipped step: buffers times 1 plus 0, parameters minus 0
                keep = (found_inf <= 0).float()
                torch._foreach_mul_(bufs, keep * group["momentum"] + (1 - keep))
                torch._foreach_add_(bufs, grads)
                torch._foreach_add_(params, torch._foreach_mul(bufs, keep), alpha=-lr)


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
        for group in groups:
            group["lr_scale"] = 1.0 if group["lars"] else BIAS_LR_SCALE
        return LARS(groups, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}: choose adamw, sgd or lars")
