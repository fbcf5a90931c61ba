#!/bin/bash
# The issue-16 measurement on the lent GPU, in one call (see notes/issue-16): small ops
# (suite queued vs deep-queue direct, three rounds), decode attention, then fidelity's large cases.
set -o pipefail
export PYTHONPATH=/tmp/mlx-site:$PYTHONPATH PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
python3 -c 'import torch, jax, mlx.core as mx; print("torch", torch.__version__, "jax", jax.__version__, "mlx", mx.__version__, "mlx cuda", mx.cuda.is_available())'
timeout "${SMALL_S:-300}" python3 scripts/small_ops.py --device cuda -f torch,jax,mlx --rounds 3 ${CPUS:+--cpus $CPUS} --json "$OUT/small_ops.json" 2>&1 | tee "$OUT/small_ops.log"
timeout "${FID_S:-170}" python3 scripts/fidelity.py --device cuda -f torch,jax,mlx --suite full --rounds 1 --budget 2 --json "$OUT/fidelity.json" 2>&1 | tee "$OUT/fidelity.log"
