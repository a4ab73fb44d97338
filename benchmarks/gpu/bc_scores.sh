#!/usr/bin/env bash
# Issue 6's score table: SSCP-BC, flow BC (10 steps, and 1), diffusion BC (10 DDIM steps, and 1, 5, 50) and Gaussian
# BC on the locally made demonstration suites (docs/behaviour_cloning.md), each without and with action chunks
# (Diffusion Policy's H = 16, n = 8, m = 2), 5 tasks x 2 seeds per suite, the same steps for every agent, on one
# machine with one or more GPUs. One process per (agent, chunking, suite), its 5 tasks x 2 seeds vmapped; flow and
# diffusion BC are trained once and evaluated at every step count (`sscp eval --sample-steps K`).
#
#   PHASE=start   OUT=/tmp/out bash benchmarks/gpu/bc_scores.sh   # make the demos, start the job queue in the
#                                                                 # background, wait up to WAIT_S
#   PHASE=wait    OUT=/tmp/out bash benchmarks/gpu/bc_scores.sh   # wait up to WAIT_S more, print progress
#   PHASE=collect OUT=/tmp/out bash benchmarks/gpu/bc_scores.sh   # the table, the logs and the latencies into $OUT
#   PHASE=all WAIT_S=520 ...                                      # all in one call (a machine that is given back
#                                                                 # between calls): start, wait, end what still runs
#                                                                 # at WAIT_S, collect (jobs_main in jobs_lib.sh)
#   SMALL=1 ...                                                   # a smoke test on a CPU machine
#   DIFFUSION_STEPS="50" FLOW_STEPS="" ...                        # sampler steps evaluated besides the defaults
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-540}
RUNS=${RUNS:-runs/bc-scores}
DATA=${DATA:-data}
# pointmaze-large, not -medium: every policy solves the medium maze (docs/behaviour_cloning.md)
SUITES=${SUITES:-"cube-single puzzle-3x3 pointmaze-large"}
AGENTS=${AGENTS:-"sscp_bc flow_bc diffusion_bc bc"}
CHUNKS=${CHUNKS:-"1 16"}  # H: 1 is one action per call; H > 1 executes H/2 of each chunk and sees 2 observations
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  STEPS=${STEPS:-200}; LOG_EVERY=100; SAVE_EVERY=100; EPISODES="--episodes 4"; EVAL_EPS=2
  small=(--eval-max-steps 20); tiny=(--agent.hidden-dims 32 32 --agent.batch-size 32)
else
  STEPS=${STEPS:-100000}; LOG_EVERY=1000; SAVE_EVERY=10000; EPISODES=""; EVAL_EPS=${EVAL_EPS:-50}; small=(); tiny=()
fi
# Sampler steps evaluated besides each agent's default (FLOW_STEPS="" / DIFFUSION_STEPS="50": fewer evaluations)
declare -A extra_steps=([flow_bc]="${FLOW_STEPS-1}" [diffusion_bc]="${DIFFUSION_STEPS-1 5 50}")
source "$(dirname "$0")/jobs_lib.sh"
PARALLEL=${PARALLEL:-8}
EVAL_WORKERS=${EVAL_WORKERS:-$(cores_each "$PARALLEL")}
# Slots: envs stepped side by side; results do not depend on them, and more slots make fewer policy calls, which
# matters for the 50-step diffusion sampler on 1,000-step maze episodes.
EVAL_SLOTS=${EVAL_SLOTS:-50}
[ "${SMALL:-0}" = 1 ] && EVAL_WORKERS=0 && EVAL_SLOTS=4
mkdir -p "$DATA"

start() {  # make the demonstrations, queue one process per (agent, chunking, suite), start the queue
  for suite in $SUITES; do
    [ -f "$DATA/$suite-task5-demos-v0.npz" ] && continue
    # shellcheck disable=SC2086
    python3 -m sscp.cli data make "$suite-demos-v0" $EPISODES --out "$DATA" >"$OUT/datagen-$suite.log" 2>&1 &
  done
  wait
  tail -qn 1 "$OUT"/datagen-*.log 2>/dev/null
  echo "demos ready after $(( $(date +%s) - T0 ))s"
  i=0
  for suite in $SUITES; do
    for agent in $AGENTS; do
      for h in $CHUNKS; do
        label=$agent; chunk=()
        if [ "$h" -gt 1 ]; then
          label=$agent-chunk$h
          chunk=(--agent.chunk-size "$h" --agent.execute-steps $(( h / 2 )) --agent.obs-history 2)
        fi
        dir="$RUNS/$label/$suite"
        job_add "$dir" "$i" python3 -m sscp.cli train --agent "$agent" --dataset "$suite"-task{1,2,3,4,5}-demos-v0 \
          --data-dir "$DATA" --seeds 0 1 --steps "$STEPS" --eval-every 0 --save-every "$SAVE_EVERY" \
          --eval-episodes "$EVAL_EPS" --eval-workers "$EVAL_WORKERS" --eval-slots "$EVAL_SLOTS" \
          --log-every "$LOG_EVERY" --run-dir "$dir" --no-progress "${small[@]}" "${tiny[@]}" "${chunk[@]}"
        for k in ${extra_steps[$agent]:-}; do
          job_then "$dir" python3 -m sscp.cli eval "$dir" --episodes "$EVAL_EPS" --workers "$EVAL_WORKERS" \
            --slots "$EVAL_SLOTS" --sample-steps "$k"
        done
        i=$(( i + 1 ))
      done
    done
  done
  jobs_start "$PARALLEL"
  sleep 5
}

collect() {
  jobs_progress | tee "$OUT/progress.txt"
  tar -czf "$OUT/bc-scores-runs.tar.gz" --exclude=checkpoints -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
  order=()
  for agent in $AGENTS; do for h in $CHUNKS; do
    if [ "$h" -gt 1 ]; then order+=("$agent-chunk$h"); else order+=("$agent"); fi
  done; done
  python3 benchmarks/scores_table.py "$RUNS" --agents "${order[@]}" --json "$OUT/bc-scores.json" \
    | tee "$OUT/bc-scores.md"
  # Latency per policy call (one chunk) at batch 1, each suite's shapes: observation x m, action x H.
  [ "${SMALL:-0}" = 1 ] && lat=(--hidden 32 32 --calls 30) || lat=()
  [ "${LATENCY:-1}" = 0 ] && return 0  # LATENCY=0: the table only
  for suite in $SUITES; do
    dims=$(python3 -c "import numpy as np; d = np.load('$DATA/$suite-task1-demos-v0.npz'); \
print(d['observations'].shape[1], d['actions'].shape[1])")
    set -- $dims
    for h in $CHUNKS; do
      m=$(( h > 1 ? 2 : 1 ))
      python3 -m benchmarks.latency --agents $AGENTS --weights constant --batches 1 "${lat[@]}" \
        --obs-dim $(( $1 * m )) --action-dim $(( $2 * h )) --out "$OUT/bc-latency.json" 2>&1 | grep -v WARNING | tail -n 5
    done
  done
}

jobs_main
