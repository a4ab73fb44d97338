#!/usr/bin/env bash
# Do the one-seed speed options change what SSCP learns? SSCP with every default (float32) against SSCP with the
# fastest measured one-seed settings (bf16 networks, the critics' LayerNorm grads as matmuls, no diagnostics, scan
# unroll 2), on cube-single-play tasks 1-3 (the ones SSCP learns within 100k updates, docs/results.md) x 2 seeds,
# the same updates for both, on one GPU. Before training, while the data is generated on the CPU cores, the GPU
# measures where a training step's time goes by kernel kind at 1 and 8 seeds, and the rate of the step's matrix
# products alone (benchmarks/gemm_rate.py).
#
#   PHASE=start  OUT=/tmp/out bash benchmarks/gpu/speed_scores.sh   # data + measurements, then start both trainings
#                                                                   # in the background (they outlive the call
#                                                                   # while the machine stays warm: jobs_lib.sh)
#   PHASE=finish OUT=/tmp/out bash benchmarks/gpu/speed_scores.sh   # wait up to WAIT_S, end what still runs, collect
#   SMALL=1 ...                                                     # a smoke test on a CPU machine
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-560}
RUNS=${RUNS:-runs/speed-scores}
DATA=${DATA:-data}
TASKS=${TASKS:-"1 2 3"}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
FAST=(--scan-unroll 2 --agent.compute-dtype bfloat16 --agent.log-grad-norm False --agent.log-one-step-mse False
  --agent.matmul-norm-grads True)
if [ "${SMALL:-0}" = 1 ]; then
  STEPS=${STEPS:-200}; EVAL_EVERY=${EVAL_EVERY:-100}; SAVE_EVERY=100; LOG_EVERY=100; EVAL_EPS=2
  make=(--episodes 10); small=(--eval-max-steps 20 --agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32
    --agent.time-embed-dim 16 --agent.batch-size 32)
  measure=(--hidden 32 32 --batch 32 --steps 20); rate=(--stack 1 --rows 64 --width 32 --iters 10)
else
  STEPS=${STEPS:-100000}; EVAL_EVERY=${EVAL_EVERY:-50000}; SAVE_EVERY=10000; LOG_EVERY=1000; EVAL_EPS=50
  make=(); small=(); measure=(); rate=()
fi
AGENTS="sscp-default sscp-fast"
source "$(dirname "$0")/jobs_lib.sh"

start() {
  mkdir -p "$DATA"
  if [ ! -f "$DATA/cube-single-play-v0.npz" ]; then
    python3 -m sscp.cli data make cube-single-play-v0 "${make[@]}" --out "$DATA" \
      --workers $(( $(nproc) > 5 ? $(nproc) - 4 : 1 )) >"$OUT/datagen.log" 2>&1 &
  fi
  python3 benchmarks/gemm_rate.py "${rate[@]}" --out "$OUT/gemm-rate.json" 2>&1 | grep -v "^WARNING" | tail -n 3
  python3 benchmarks/profile_step.py "${measure[@]}" --seeds 1 8 --out "$OUT/profile-float32.json" 2>&1 |
    grep "updates_per_sec\|by kind"
  python3 benchmarks/profile_step.py "${measure[@]}" --seeds 1 8 --compute-dtype bfloat16 --grad-norm 0 \
    --one-step-mse 0 --matmul-norm-grads 1 --out "$OUT/profile-bf16-fast.json" 2>&1 | grep "updates_per_sec\|by kind"
  wait
  tail -n 2 "$OUT/datagen.log" 2>/dev/null
  echo "data ready after $(( $(date +%s) - T0 ))s"
  local tasks=() t
  for t in $TASKS; do tasks+=("cube-single-play-singletask-task$t-v0"); done
  for label in $AGENTS; do
    extra=()
    [ "$label" = sscp-fast ] && extra=("${FAST[@]}")
    job_add "$RUNS/$label/cube-single" 0 python3 -m sscp.cli train --agent sscp --dataset "${tasks[@]}" \
      --data-dir "$DATA" --seeds 0 1 --steps "$STEPS" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" \
      --eval-episodes "$EVAL_EPS" --eval-workers "$(cores_each 2)" --log-every "$LOG_EVERY" \
      --run-dir "$RUNS/$label/cube-single" --no-progress "${small[@]}" "${extra[@]}"
  done
  jobs_start 2
  sleep 5
}

collect() {
  jobs_archive speed-scores
  # shellcheck disable=SC2086
  python3 benchmarks/scores_table.py "$RUNS" --agents $AGENTS --json "$OUT/speed-scores.json" |
    tee "$OUT/speed-scores.md"
}

jobs_main
