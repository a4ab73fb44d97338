#!/usr/bin/env bash
# What the exactness fixes change (docs/results.md, "The exactness fixes, measured"), on one machine with one GPU:
#  1. SSCP on cube-single-play tasks 2 and 4 x 2 seeds, CUBE_STEPS updates, with the code from before the fixes
#     (the `sscp` package of an earlier commit, in BEFORE_SRC) and with this checkout's, side by side;
#  2. the corrected GC-SSCP against HIQL on pointmaze medium-navigate, large-navigate and medium-stitch, 4 seeds,
#     GC_STEPS updates, 50 episodes per evaluation goal (OGBench's count), side by side.
# Every dataset is generated on the machine at official size. One process per (variant or agent, dataset), all on
# the one GPU at once in the background (jobs_lib.sh); each evaluates only at its last step.
#
#   git archive 5580001 sscp | (mkdir -p .before && tar -x -C .before)   # the package before the fixes
#   BEFORE_SRC=.before PHASE=start  OUT=out bash benchmarks/gpu/exactness.sh   # data, then start every process
#   PHASE=wait   OUT=out bash benchmarks/gpu/exactness.sh                       # wait up to WAIT_S more
#   PHASE=finish OUT=out bash benchmarks/gpu/exactness.sh                       # wait, end what still runs, tables
#   SMALL=1 ...                                                                 # a smoke test on a CPU machine
#
# A process that was cut off (the machine went away, a time limit) resumes from its newest checkpoint when the
# script is started again with PHASE=start: `sscp train --run-dir` continues a run folder, and finished ones
# (DONE) are skipped.
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-560}
RUNS=${RUNS:-runs/exactness}
DATA=${DATA:-data}
BEFORE_SRC=${BEFORE_SRC:-}
GC_DATASETS=${GC_DATASETS:-"pointmaze-medium-navigate-v0 pointmaze-large-navigate-v0 pointmaze-medium-stitch-v0"}
GC_AGENTS=${GC_AGENTS:-"gc_sscp hiql"}
TASKS=${TASKS:-"2 4"}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  CUBE_STEPS=${CUBE_STEPS:-200}; GC_STEPS=${GC_STEPS:-200}; SAVE_EVERY=100; LOG_EVERY=100; EVAL_EPS=2; GC_EVAL_EPS=1
  make=(--episodes 10); gc_make=(--episodes 20)
  cube_small=(--eval-max-steps 20 --agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32
    --agent.time-embed-dim 16 --agent.batch-size 32)
  gc_small=(--eval-max-steps 30 --agent.batch-size 32 --agent.actor-hidden-dims 16 16 --agent.value-hidden-dims 16 16)
  declare -A gc_tiny=([gc_sscp]="--agent.time-embed-dim 16" [hiql]="")
else
  CUBE_STEPS=${CUBE_STEPS:-100000}; GC_STEPS=${GC_STEPS:-25000}; SAVE_EVERY=${SAVE_EVERY:-5000}; LOG_EVERY=1000
  EVAL_EPS=50; GC_EVAL_EPS=50; make=(); gc_make=(); cube_small=(); gc_small=()
  declare -A gc_tiny=()
fi
source "$(dirname "$0")/jobs_lib.sh"
nprocs=$(( 2 + $(echo $GC_DATASETS | wc -w) * $(echo $GC_AGENTS | wc -w) ))
EVAL_WORKERS=${EVAL_WORKERS:-$(cores_each "$nprocs")}
[ "${SMALL:-0}" = 1 ] && EVAL_WORKERS=0

start() {
  mkdir -p "$DATA"
  local n=$(( 1 + $(echo $GC_DATASETS | wc -w) )) d
  if [ ! -f "$DATA/cube-single-play-v0.npz" ]; then
    python3 -m sscp.cli data make cube-single-play-v0 "${make[@]}" --out "$DATA" \
      --workers $(( $(nproc) > 8 ? $(nproc) - 6 : 1 )) >"$OUT/datagen-cube.log" 2>&1 &
  fi
  for d in $GC_DATASETS; do
    [ -f "$DATA/$d.npz" ] && continue
    python3 -m sscp.cli data make "$d" "${gc_make[@]}" --out "$DATA" --workers 2 >"$OUT/datagen-$d.log" 2>&1 &
  done
  wait
  for d in cube-single-play-v0 $GC_DATASETS; do
    [ -f "$DATA/$d.npz" ] || { echo "$d was not made:"; tail -n 3 "$OUT/datagen-"*"$d"*.log 2>/dev/null; }
  done
  echo "data ready after $(( $(date +%s) - T0 ))s; $EVAL_WORKERS eval workers per process"
  local tasks=() t label src
  for t in $TASKS; do tasks+=("cube-single-play-singletask-task$t-v0"); done
  for label in sscp-before sscp-exact; do
    src=$PWD
    if [ "$label" = sscp-before ]; then
      [ -n "$BEFORE_SRC" ] || { echo "BEFORE_SRC unset: sscp-before is not run"; continue; }
      src=$(cd "$BEFORE_SRC" && pwd)
    fi
    # -P: the working directory is not put first on sys.path, so PYTHONPATH's first folder decides which sscp runs
    env PYTHONPATH="$src:$PYTHONPATH" python3 -P -c 'import sscp; print(f"'"$label"' runs {sscp.__file__}")'
    job_add "$RUNS/$label/cube-single" 0 env PYTHONPATH="$src:$PYTHONPATH" python3 -P -m sscp.cli train \
      --agent sscp --dataset "${tasks[@]}" --data-dir "$DATA" --seeds 0 1 --steps "$CUBE_STEPS" \
      --eval-every "$CUBE_STEPS" --save-every "$SAVE_EVERY" --eval-episodes "$EVAL_EPS" \
      --eval-workers "$EVAL_WORKERS" --log-every "$LOG_EVERY" --run-dir "$RUNS/$label/cube-single" --no-progress \
      "${cube_small[@]}"
  done
  local agent
  for d in $GC_DATASETS; do
    for agent in $GC_AGENTS; do
      # shellcheck disable=SC2086
      job_add "$RUNS/$agent/$d" 0 python3 -m sscp.cli train --agent "$agent" --dataset "$d" --data-dir "$DATA" \
        --seeds 0 1 2 3 --steps "$GC_STEPS" --eval-every "$GC_STEPS" --save-every "$SAVE_EVERY" \
        --eval-episodes "$GC_EVAL_EPS" --eval-workers "$EVAL_WORKERS" --eval-slots 20 --log-every "$LOG_EVERY" \
        --run-dir "$RUNS/$agent/$d" --no-progress "${gc_small[@]}" ${gc_tiny[$agent]:-}
    done
  done
  jobs_start "$nprocs"
  sleep 5
}

collect() {
  jobs_archive exactness
  # shellcheck disable=SC2086
  python3 benchmarks/scores_table.py "$RUNS" --agents sscp-before sscp-exact $GC_AGENTS --json "$OUT/exactness.json" \
    --summary --ci | tee "$OUT/exactness.md"
}

jobs_main
