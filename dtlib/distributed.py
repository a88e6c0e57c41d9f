"""Multi-process training with torchrun: process group from the environment, rank helpers, DDP wrapping.

`torchrun --nproc_per_node=N -m dtlib train ...` starts N processes with WORLD_SIZE, RANK and LOCAL_RANK
set; everything here is a no-op in a single process (a notebook, plain `python -m dtlib`).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 without torchrun)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank: the process group's, else torchrun's RANK (before setup, after cleanup), else 0."""
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on the process that writes checkpoints, logs and metrics (rank 0)."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (WORLD_SIZE > 1), once; returns this rank's device.

    NCCL on CUDA (one GPU per process, cuda:LOCAL_RANK), gloo on the CPU.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with a gradient: every rank's output depends on every rank's input, so the
    gradient of an input is the sum over ranks of the output gradients."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def sum_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over all ranks, differentiable (its backward sums the gradients too); `t` alone in one process."""
    return _SumOverRanks.apply(t) if is_distributed() else t


def sum_over_ranks_(t: torch.Tensor) -> torch.Tensor:
    """In-place sum of a tensor without gradient over all ranks (a no-op in one process)."""
    if is_distributed():
        dist.all_reduce(t)
    return t


def max_over_ranks_(t: torch.Tensor) -> torch.Tensor:
    """In-place element-wise maximum of a tensor without gradient over all ranks (a no-op in one process)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm statistics over the whole batch of all ranks (SyncBatchNorm), as one process would compute them.

    Only on CUDA: torch's SyncBatchNorm has no CPU kernel, so gloo runs keep per-rank statistics.
    """
    if is_distributed() and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def data_parallel(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """`model` wrapped in DistributedDataParallel (gradients averaged over ranks), or itself in one process.

    Parameters without gradient (the EMA teacher) are left out of DDP's gradient synchronisation.
    """
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def cleanup() -> None:
    """Leave the process group (at the end of a torchrun command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
