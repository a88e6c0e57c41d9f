"""torchrun on the CPU (gloo): two processes make the same training steps as one with the same global batch,
and a 2-process `torchrun -m dtlib train` finishes with rank 0 writing the metrics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from dtlib import distributed
from dtlib.augment import ViewMaker, multicrop_views
from dtlib.methods import DinoTwins
from dtlib.optim import build_optimizer
from dtlib.train import train_step

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyBackbone(nn.Sequential):
    """conv + pool, no BatchNorm (torch's SyncBatchNorm needs a GPU) and no drop path (random per process)."""

    embed_dim = 8

    def __init__(self):
        super().__init__(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def train_steps(steps: int) -> dict[str, torch.Tensor]:
    """A few DINO Twins steps (DINO loss and centre, Barlow Twins term, teacher EMA) on a fixed batch of 8."""
    torch.manual_seed(0)
    model = DinoTwins(TinyBackbone(), beta=0.5, proj_dims=(16,), out_dim=32, head_hidden_dim=16, bottleneck_dim=8)
    step_fn = distributed.data_parallel(model, torch.device("cpu"))
    optimizer = build_optimizer("sgd", model, 0.01, 1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    view_maker = ViewMaker(multicrop_views(n_local=2, global_size=8, local_size=4))
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    for _ in range(steps):
        views = view_maker(images, generator, (distributed.rank(), distributed.world_size()))
        train_step(model, step_fn, optimizer, scaler, views, None, teacher_temp=0.04, momentum=0.9)
    return {k: v.clone() for k, v in model.state_dict().items()}


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    state = train_steps(3)
    if distributed.is_main():
        torch.save(state, out)
    distributed.cleanup()


def test_two_processes_take_the_steps_of_one_with_the_same_global_batch(tmp_path):
    out = tmp_path / "two.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2)
    two = torch.load(out)
    one = train_steps(3)
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
    assert not torch.equal(one["loss_fn.center"], torch.zeros_like(one["loss_fn.center"]))


def test_torchrun_two_processes_train_and_rank0_writes_metrics(tiny_image_folder, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         "-m", "dtlib", "train", "--preset", "cpu-mini", "--dataset", "imagefolder",
         "--data-dir", str(tiny_image_folder.root), "--out", str(out), "--epochs", "2", "--batch_size", "6",
         "--data_size", "0", "--image_size", "8", "--local_size", "4", "--n_local", "1", "--probe_epochs", "2",
         "--eval_batch_size", "64", "--log_every", "1"],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 4
    # the reported accuracy is the evaluation of the weights rank 0 saved: re-evaluated here, in one process
    from dtlib.checkpoint import load_trained
    from dtlib.evaluate import eval_data, evaluate

    model, cfg = load_trained(out / "checkpoint.pt")
    data = eval_data(cfg)
    again = evaluate(cfg, model.eval_backbone(), data)["linear_top1"]
    assert abs(again - metrics["linear_top1"]) <= 100 / len(data[1]) + 1e-6  # one test image, at most
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # one writer: no row twice
    assert done.stdout.count("metrics written to") == 1
