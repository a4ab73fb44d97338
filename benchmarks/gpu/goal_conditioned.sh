#!/usr/bin/env bash
# Issue 5's table: GC-SSCP, HIQL, GCIVL and GCBC on pointmaze-{medium,large,giant,teleport}-{navigate,stitch}
# (official size, generated here), 2 seeds each, the same number of updates for every agent, on one machine with one
# or more GPUs. One process per (dataset, agent), both seeds vmapped in it, all processes at once in the background
# (jobs_lib.sh), so training goes on between the script's phases (commands with a time limit).
#
#   PHASE=start   OUT=/tmp/out bash benchmarks/gpu/goal_conditioned.sh   # make the datasets on every CPU core, start
#                                                                         # the processes, wait up to WAIT_S
#   PHASE=wait    OUT=/tmp/out bash benchmarks/gpu/goal_conditioned.sh   # wait up to WAIT_S more, print progress
#   PHASE=stop STOP_AT=100000 ...                                         # stop each process once it has evaluated
#                                                                         # at STOP_AT
#   PHASE=collect OUT=/tmp/out bash benchmarks/gpu/goal_conditioned.sh   # the tables and the logs, into $OUT
#   PHASE=all STOP_AT=50000 WAIT_S=520 ...                                # all in one call (a machine that is given
#                                                                         # back between calls): start, stop each
#                                                                         # process after its evaluation at STOP_AT
#                                                                         # (unset: wait until all finish), end the
#                                                                         # rest at WAIT_S, collect (jobs_main)
#   SMALL=1 ...                                                           # a smoke test on a CPU machine
#
# GPUS="1 2 3" keeps the processes on those GPUs (another script may use the rest); EVAL_WORKERS sets the env
# workers per process (default: the cores divided among the processes), EVAL_SLOTS the envs each steps side by side.
# Each process writes <runs>/<agent>/<dataset>/{config.json,train.csv,eval.csv,...} and DONE when it finished. The
# table compares every agent at the largest step all of a dataset's agents have evaluated (benchmarks/scores_table.py;
# its columns are the five evaluation goals).
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-540}
RUNS=${RUNS:-runs/gc-scores}
DATA=${DATA:-data}
DATASETS=${DATASETS:-"pointmaze-medium-navigate-v0 pointmaze-large-navigate-v0 pointmaze-giant-navigate-v0
  pointmaze-teleport-navigate-v0 pointmaze-medium-stitch-v0 pointmaze-large-stitch-v0 pointmaze-giant-stitch-v0
  pointmaze-teleport-stitch-v0"}
AGENTS=${AGENTS:-"gc_sscp hiql gcivl gcbc"}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  STEPS=${STEPS:-200}; EVAL_EVERY=${EVAL_EVERY:-100}; SAVE_EVERY=100; LOG_EVERY=100; EPISODES="--episodes 20"
  EVAL_EPS=1; small=(--eval-max-steps 30 --agent.batch-size 32 --agent.actor-hidden-dims 16 16)
  declare -A tiny=([gc_sscp]="--agent.value-hidden-dims 16 16 --agent.time-embed-dim 16"
    [hiql]="--agent.value-hidden-dims 16 16" [gcivl]="--agent.value-hidden-dims 16 16" [gcbc]="")
else
  # The authors train GC-SSCP for 500k steps (docs/method.md, "Goal-conditioned SSCP") and OGBench its baselines
  # for 1M; PHASE=stop ends them earlier, at an evaluated step that every agent has reached.
  STEPS=${STEPS:-500000}; EVAL_EVERY=${EVAL_EVERY:-50000}; SAVE_EVERY=${SAVE_EVERY:-10000}; LOG_EVERY=1000
  EPISODES=""; EVAL_EPS=${EVAL_EPS:-50}; small=()
  declare -A tiny=()
fi
source "$(dirname "$0")/jobs_lib.sh"
nprocs=$(( $(echo $DATASETS | wc -w) * $(echo $AGENTS | wc -w) ))
EVAL_WORKERS=${EVAL_WORKERS:-$(cores_each "$nprocs")}
[ "${SMALL:-0}" = 1 ] && EVAL_WORKERS=0
# Env slots stepped side by side per evaluation (0: twice the workers, at least 4); more slots, fewer policy calls.
EVAL_SLOTS=${EVAL_SLOTS:-0}
mkdir -p "$DATA"

start() {  # make the datasets, queue one process per (dataset, agent), start the queue
  n=$(echo $DATASETS | wc -w)
  for d in $DATASETS; do
    [ -f "$DATA/$d.npz" ] && continue
    # shellcheck disable=SC2086
    python3 -m sscp.cli data make "$d" $EPISODES --out "$DATA" --workers "$(cores_each "$n")" \
      >"$OUT/datagen-$d.log" 2>&1 &
  done
  wait
  for d in $DATASETS; do [ -f "$DATA/$d.npz" ] || { echo "$d was not made:"; tail -n 3 "$OUT/datagen-$d.log"; }; done
  echo "data ready after $(( $(date +%s) - T0 ))s; $EVAL_WORKERS eval workers per process"
  i=0
  for d in $DATASETS; do
    for agent in $AGENTS; do
      dir="$RUNS/$agent/$d"
      # shellcheck disable=SC2086
      job_add "$dir" "$i" python3 -m sscp.cli train --agent "$agent" --dataset "$d" --data-dir "$DATA" --seeds 0 1 \
        --steps "$STEPS" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --eval-episodes "$EVAL_EPS" \
        --eval-workers "$EVAL_WORKERS" --eval-slots "$EVAL_SLOTS" --log-every "$LOG_EVERY" --run-dir "$dir" \
        --no-progress "${small[@]}" ${tiny[$agent]:-}
      i=$(( i + 1 ))
    done
  done
  jobs_start "$nprocs"
  sleep 5
}

collect() {
  jobs_archive gc-scores gc-progress.txt
  python3 benchmarks/scores_table.py "$RUNS" --agents $AGENTS --json "$OUT/gc-scores.json" --summary \
    | tee "$OUT/gc-scores.md"
}

jobs_main
