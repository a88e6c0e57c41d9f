#!/usr/bin/env bash
# The GPU check (issue 6), for a fresh GPU machine with PyTorch and timm installed and no network:
#   1. python -m dtlib bench for resnet18, resnet50 and vit_tiny (images/s, % of bf16 peak);
#   2. the counted FLOPs of the time-boxed preset, its estimated minutes on T4 / A100 / H100 at 30 % of
#      peak, and a few timed steps of it on this GPU (achieved TFLOP/s, % of bf16 peak);
#   3. a CUDA resume round trip: one short epoch, then --resume to a second one (checkpoint + RNG states);
#   4. the time-boxed DINO Twins ResNet-18 recipe (preset cifar10-resnet18-5min) with its linear probe;
# and writes everything as JSON into OUTDIR (summary.json gathers the numbers).
#
# usage: DTLIB_DATA=path/to/cifar10 scripts/gpu_check.sh OUTDIR [--key value ...]
#   extra --key value pairs go to `dtlib train` (a CPU rehearsal passes --device cpu --epochs 1 ...);
#   BENCH_ARGS overrides the bench options (default: the three GPU backbones), FLOPS_ARGS the FLOP count's
#   (default: 5 timed steps), RESUME_SUBSET the images of the resume round trip (default 4096).
set -euo pipefail
out=${1:?usage: scripts/gpu_check.sh OUTDIR [--key value ...]}
shift
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without pip install -e .
mkdir -p "$out"
start=$(date +%s)
preset=cifar10-resnet18-5min
{ nvidia-smi || echo "no nvidia-smi"; python -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"; git rev-parse HEAD 2>/dev/null || true; } > "$out/environment.txt" 2>&1
# shellcheck disable=SC2086
python -m dtlib bench ${BENCH_ARGS:---backbones resnet18,resnet50,vit_tiny} --json "$out/bench.json" | tee "$out/bench.txt"
# shellcheck disable=SC2086
python -m dtlib bench --preset "$preset" --methods dinotwins ${FLOPS_ARGS:---measure 5} --json "$out/flops.json" | tee "$out/flops.txt"
# Later --key value pairs win, so the round trip's size overrides the caller's.
resume=(--method dinotwins --preset "$preset" --out "$out/resume" "$@" --subset "${RESUME_SUBSET:-4096}" --probe_epochs 1)
python -m dtlib train "${resume[@]}" --epochs 1 --save_every 1 | tee "$out/resume_first.txt"
python -m dtlib train "${resume[@]}" --epochs 2 --save_every 1 --resume | tee "$out/resume_second.txt"
python -m dtlib train --method dinotwins --preset "$preset" --out "$out/dinotwins_r18" "$@" | tee "$out/train.txt"
python - "$out" "$start" <<'PY'
import json, sys, time, pathlib
out = pathlib.Path(sys.argv[1])
metrics = json.loads((out / "dinotwins_r18" / "metrics.json").read_text())
metrics.pop("config", None)
steps = [json.loads(line)["step"] for line in (out / "resume" / "metrics.jsonl").read_text().splitlines()]
resume = {"steps_logged": len(steps), "contiguous": steps == list(range(len(steps))),
          "final_step": json.loads((out / "resume" / "metrics.json").read_text())["step"]}
summary = {"bench": json.loads((out / "bench.json").read_text()), "flops": json.loads((out / "flops.json").read_text()),
           "resume_round_trip": resume, "dinotwins_resnet18": metrics,
           "environment": (out / "environment.txt").read_text(), "wall_seconds": round(time.time() - int(sys.argv[2]))}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: metrics.get(k) for k in ("linear_top1", "knn_top1_k20", "train_seconds")}), "resume", resume,
      "wall", summary["wall_seconds"], "s")
PY
