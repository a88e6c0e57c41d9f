#!/usr/bin/env bash
# The GPU check (issue 6), for a fresh GPU machine with PyTorch and timm installed and no network:
#   1. python -m dtlib bench for resnet18, resnet50 and vit_tiny (images/s, % of bf16 peak);
#   2. the time-boxed DINO Twins ResNet-18 recipe (preset cifar10-resnet18-5min) with its linear probe;
# and writes everything as JSON into OUTDIR (summary.json gathers the numbers).
#
# usage: DTLIB_DATA=path/to/cifar10 scripts/gpu_check.sh OUTDIR [--key value ...]
#   extra --key value pairs go to `dtlib train` (a CPU rehearsal passes --device cpu --epochs 1 ...);
#   BENCH_ARGS overrides the bench options (default: the three GPU backbones).
set -euo pipefail
out=${1:?usage: scripts/gpu_check.sh OUTDIR [--key value ...]}
shift
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without pip install -e .
mkdir -p "$out"
start=$(date +%s)
{ nvidia-smi || echo "no nvidia-smi"; python -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"; git rev-parse HEAD 2>/dev/null || true; } > "$out/environment.txt" 2>&1
# shellcheck disable=SC2086
python -m dtlib bench ${BENCH_ARGS:---backbones resnet18,resnet50,vit_tiny} --json "$out/bench.json" | tee "$out/bench.txt"
python -m dtlib train --method dinotwins --preset cifar10-resnet18-5min --out "$out/dinotwins_r18" "$@" | tee "$out/train.txt"
python - "$out" "$start" <<'PY'
import json, sys, time, pathlib
out = pathlib.Path(sys.argv[1])
metrics = json.loads((out / "dinotwins_r18" / "metrics.json").read_text())
metrics.pop("config", None)
summary = {"bench": json.loads((out / "bench.json").read_text()), "dinotwins_resnet18": metrics,
           "environment": (out / "environment.txt").read_text(), "wall_seconds": round(time.time() - int(sys.argv[2]))}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: metrics.get(k) for k in ("linear_top1", "knn_top1_k20", "train_seconds")}), "wall", summary["wall_seconds"], "s")
PY
