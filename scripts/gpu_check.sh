#!/usr/bin/env bash
# The GPU check (issue 17) as ONE device command: one Python process (scripts/gpu_check.py) that writes
# OUT/summary.json after every stage, OUT/gpu_check.log and OUT/vit_tiny_teacher_fp16.pt; nothing else
# under OUT (checkpoints and the unpacked data go to /tmp). results/gpu_check.md has the exact call:
#   run(command='OUT="$OUT" bash scripts/gpu_check.sh', carry=[".gpu"], timeout_s=570)
# with .gpu/cifar10-jpeg.tgz made here first by `python -m dtlib pack-data .gpu/cifar10-jpeg.tgz`.
# CPU rehearsal (the tests run it): GC_DEVICE=cpu GC_DATA=path.tgz OUT=DIR bash scripts/gpu_check.sh
# No `set -e`: the driver records a failed stage and goes on; its exit status is this script's.
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export DTLIB_CACHE="${DTLIB_CACHE:-/tmp/gpu_check/cache}"  # the decode cache stays out of OUT and the tree
PY=$(command -v python3 || command -v python)
# timeout: a hard cap a little past the driver's own deadline (GC_DEADLINE, 470 s by default)
timeout --signal=KILL "${GC_TIMEOUT:-540}" "$PY" scripts/gpu_check.py 2>&1 | tee "$OUT/gpu_check.log"
