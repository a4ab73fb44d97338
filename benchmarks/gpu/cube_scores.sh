#!/usr/bin/env bash
# Issue 3's score table: SSCP, FQL, ReBRAC, IQL and BC on the five single-task variants of cube-single-play and
# cube-double-play (official size, generated here), 2 seeds, the same number of updates for every agent, on one
# machine with one or more GPUs. One process per (agent, dataset family): its 5 tasks x 2 seeds are vmapped in it.
# Processes are pinned to GPUs so that the expensive ones (SSCP at batch 1024) do not share a GPU with each other.
#
#   PHASE=start   OUT=/tmp/out bash benchmarks/gpu/cube_scores.sh   # make the data, start every process in the
#                                                                    # background (setsid), wait up to WAIT_S
#   PHASE=wait    OUT=/tmp/out bash benchmarks/gpu/cube_scores.sh   # wait up to WAIT_S more, print progress
#   PHASE=stop STOP_AT=50000 ...                                     # stop each process once it has evaluated at
#                                                                    # STOP_AT (waits up to WAIT_S for the slowest)
#   PHASE=collect OUT=/tmp/out bash benchmarks/gpu/cube_scores.sh   # the table and the logs, into $OUT
#   PHASE=all [STOP_AT=50000] WAIT_S=520 ...                         # all in one call: start, stop at STOP_AT (or
#                                                                    # wait), end the rest at WAIT_S, collect
#   SMALL=1 ...                                                      # a smoke test on a CPU machine
#
# The processes run in the background (jobs_lib.sh) and outlive the command that started them, so training goes on
# between the script's phases (commands with a time limit); `wait`
# returns early once every process has finished. Each process writes <runs>/<agent>/<family>/{config.json,
# train.csv,eval.csv,...} and a DONE file when it finished.
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-540}
RUNS=${RUNS:-runs/cube-scores}
DATA=${DATA:-data}
FAMILIES=${FAMILIES:-"cube-single cube-double"}
AGENTS=${AGENTS:-"sscp fql rebrac iql bc"}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  STEPS=${STEPS:-200}; EVAL_EVERY=${EVAL_EVERY:-100}; SAVE_EVERY=${SAVE_EVERY:-100}; LOG_EVERY=100
  EPISODES="--episodes 10"; EVAL_EPS=2; small=(--eval-max-steps 20)
  declare -A tiny=([sscp]="--agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32 --agent.time-embed-dim 16 --agent.batch-size 32"
    [fql]="--agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32 --agent.batch-size 32"
    [rebrac]="--agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32 --agent.batch-size 32"
    [iql]="--agent.actor-hidden-dims 32 32 --agent.value-hidden-dims 32 32 --agent.batch-size 32"
    [bc]="--agent.hidden-dims 32 32 --agent.batch-size 32")
else
  STEPS=${STEPS:-100000}; EVAL_EVERY=${EVAL_EVERY:-50000}; SAVE_EVERY=${SAVE_EVERY:-10000}; LOG_EVERY=1000
  EPISODES=""; EVAL_EPS=50; small=()
  declare -A tiny=()
fi
# Per-task hyperparameters where the baselines' authors give them for the cube domain: FQL's README runs FQL on
# every cube-single/-double task with alpha 300, and IQL (AWR alpha 1) and ReBRAC (actor 1, critic 0) on
# visual-cube-single; the rest are each agent's defaults (docs/agents.md). SSCP: every default of docs/method.md.
declare -A opts=([sscp]="" [fql]="--agent.alpha 300" [rebrac]="--agent.alpha-actor 1" [iql]="--agent.temperature 1" [bc]="")
source "$(dirname "$0")/jobs_lib.sh"
gpu_of() {  # gpu_of AGENT FAMILY: 4+ GPUs: SSCP (batch 1024) alone on two, the rest balanced on two; 2-3 GPUs: by
            # family; 1 GPU: all together
  local agent=$1 family=$2
  if [ "$NGPU" -ge 4 ]; then
    case "$agent:$family" in
      sscp:cube-single|bc:*) echo 0 ;; sscp:cube-double) echo 1 ;; *:cube-single) echo 2 ;; *) echo 3 ;;
    esac
  elif [ "$NGPU" -ge 2 ]; then
    case "$family" in cube-single) echo 0 ;; *) echo 1 ;; esac
  else
    echo 0
  fi
}
nprocs=$(( $(echo $AGENTS | wc -w) * $(echo $FAMILIES | wc -w) ))
eval_workers=$(cores_each "$nprocs")
[ "${SMALL:-0}" = 1 ] && eval_workers=0
mkdir -p "$DATA"

start() {  # make the data, queue one process per (agent, family), start the queue
  for family in $FAMILIES; do
    [ -f "$DATA/$family-play-v0.npz" ] && continue
    # shellcheck disable=SC2086
    python3 -m sscp.cli data make "$family-play-v0" $EPISODES --out "$DATA" \
      --workers "$(cores_each "$(echo $FAMILIES | wc -w)")" >"$OUT/datagen-$family.log" 2>&1 &
  done
  wait
  tail -n 2 "$OUT"/datagen-*.log 2>/dev/null
  echo "data ready after $(( $(date +%s) - T0 ))s; $eval_workers eval workers per process"
  for agent in $AGENTS; do
    for family in $FAMILIES; do
      dir="$RUNS/$agent/$family"
      job_add "$dir" "$(gpu_of "$agent" "$family")" python3 -m sscp.cli train --agent "$agent" \
        --dataset "$family"-play-singletask-task{1,2,3,4,5}-v0 --data-dir "$DATA" --seeds 0 1 --steps "$STEPS" \
        --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --eval-episodes "$EVAL_EPS" \
        --eval-workers "$eval_workers" --log-every "$LOG_EVERY" --run-dir "$dir" --no-progress "${small[@]}" \
        ${opts[$agent]} ${tiny[$agent]:-}
    done
  done
  jobs_start "$nprocs"
  sleep 5
}

collect() {
  jobs_archive cube-scores
  python3 benchmarks/scores_table.py "$RUNS" --agents $AGENTS --json "$OUT/cube-scores.json" | tee "$OUT/cube-scores.md"
}

jobs_main
