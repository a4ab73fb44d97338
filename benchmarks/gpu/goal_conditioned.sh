#!/usr/bin/env bash
# GC-SSCP, HIQL, GCIVL and GCBC on pointmaze-{medium,large}-{navigate,stitch} (official size, generated here) with 2
# seeds each, on one GPU machine, in commands of at most 10 minutes (the device tool's limit) that resume one another
# while the machine stays warm. One process per (dataset, agent), both seeds vmapped in it; PARALLEL of them share
# the GPU at a time, the most important first (gc_sscp and hiql on medium-navigate).
#
#   PHASE=first OUT=/tmp/out bash benchmarks/gpu/goal_conditioned.sh   # generate the 4 datasets on every CPU core,
#                                                                      # then start training
#   PHASE=more  OUT=/tmp/out bash benchmarks/gpu/goal_conditioned.sh   # resume training until BUDGET_S is used up
#   SMALL=1 ...                                                        # a smoke test on a CPU machine
#
# Each process is killed by `timeout` when the budget ends; the next call resumes it from its newest checkpoint
# (every SAVE_EVERY steps, atomically). A finished run gets a DONE file and is skipped. Each call leaves
# $OUT/goal-conditioned-runs.tar.gz (every run's config.json, CSV logs and curves.png), one log per run and a table
# of the latest evaluation of every run (success per evaluation goal and overall, mean over the 2 seeds).
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-more}
BUDGET_S=${BUDGET_S:-575}
DATASETS=${DATASETS:-"pointmaze-medium-navigate-v0 pointmaze-large-navigate-v0 pointmaze-medium-stitch-v0 pointmaze-large-stitch-v0"}
AGENTS=${AGENTS:-"gc_sscp hiql gcivl gcbc"}
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
if [ "${SMALL:-0}" = 1 ]; then
  episodes=20; STEPS=${STEPS:-200}; SAVE_EVERY=${SAVE_EVERY:-100}; EVAL_EVERY=${EVAL_EVERY:-0}; LOG_EVERY=100
  PARALLEL=${PARALLEL:-1}; EVAL_WORKERS=0; eval_eps=1
  small=(--eval-max-steps 30 --agent.batch-size 32 --agent.actor-hidden-dims 16 16)
else
  # 500k steps: method.md §5's length for GC-SSCP (OGBench trains its baselines for 1M; STEPS=1000000 for that)
  episodes=; STEPS=${STEPS:-500000}; SAVE_EVERY=${SAVE_EVERY:-10000}; EVAL_EVERY=${EVAL_EVERY:-100000}; LOG_EVERY=1000
  PARALLEL=${PARALLEL:-4}; EVAL_WORKERS=$(( $(nproc) / PARALLEL > 0 ? $(nproc) / PARALLEL : 1 )); eval_eps=50; small=()
fi
# Every process may take this share of the GPU's memory (JAX would take 75 % each by default).
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-$(python3 -c "print(round(0.9 / $PARALLEL, 3))")}
mkdir -p data runs/gc "$OUT"

if [ "$PHASE" = first ]; then
  for d in $DATASETS; do
    [ -f "data/$d.npz" ] && continue
    python3 -m sscp.cli data make "$d" ${episodes:+--episodes $episodes} --out data --workers "$(nproc)" \
      2>&1 | grep -v "^WARNING" | tail -3 | tee -a "$OUT/datagen.log"
  done
fi

run_job() {  # run_job DATASET AGENT: train (or resume) one run folder until done or out of time
  local d=$1 agent=$2 dir="runs/gc/$1/$2" log="$OUT/gc-$1-$2.log"
  [ -f "$dir/DONE" ] && return 0
  local left=$(( BUDGET_S - ($(date +%s) - start) - 20 ))
  if [ "$left" -lt 90 ]; then echo "$d $agent: only ${left}s left, not started"; return 0; fi
  local opts=("${small[@]}")
  if [ "${SMALL:-0}" = 1 ] && [ "$agent" != gcbc ]; then opts+=(--agent.value-hidden-dims 16 16); fi
  if [ "${SMALL:-0}" = 1 ] && [ "$agent" = gc_sscp ]; then opts+=(--agent.time-embed-dim 16); fi
  echo "$d $agent: training for at most ${left}s"
  timeout "$left" python3 -m sscp.cli train --agent "$agent" --dataset "$d" --data-dir data --seeds 0 1 \
    --steps "$STEPS" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --eval-episodes "$eval_eps" \
    --eval-workers "$EVAL_WORKERS" --log-every "$LOG_EVERY" \
    --run-dir "$dir" --no-progress "${opts[@]}" 2>&1 | grep -v "^WARNING" >>"$log"
  if [ "${PIPESTATUS[0]}" = 0 ]; then touch "$dir/DONE"; echo "$d $agent: done"; else echo "$d $agent: stopped"; fi
}
export -f run_job
export OUT BUDGET_S STEPS SAVE_EVERY EVAL_EVERY LOG_EVERY PARALLEL EVAL_WORKERS eval_eps start SMALL
export small_str="${small[*]}"

# Jobs in order of importance: each dataset's agents together, medium-navigate first.
for d in $DATASETS; do for agent in $AGENTS; do echo "$d $agent"; done; done \
  | xargs -P "$PARALLEL" -L 1 bash -c 'small=($small_str); run_job "$0" "$1"'

tar -czf "$OUT/goal-conditioned-runs.tar.gz" --exclude=checkpoints -C runs gc
python3 - <<'EOF' | tee "$OUT/goal-conditioned-summary.txt"
import csv, glob, os
import numpy as np
print(f"{'dataset':<30} {'agent':<8} {'step':>7}  success (mean over seeds): overall | goal 1..5")
for path in sorted(glob.glob("runs/gc/*/*/eval.csv")):
    rows = list(csv.DictReader(open(path)))
    if not rows:
        continue
    last = [r for r in rows if r["step"] == rows[-1]["step"]]
    mean = lambda k: np.mean([float(r[k]) for r in last])
    goals = " ".join(f"{mean(f'eval/success_goal{i}'):.2f}" for i in range(1, 6))
    dataset, agent = path.split(os.sep)[-3:-1]
    done = " (done)" if os.path.exists(os.path.join(os.path.dirname(path), "DONE")) else ""
    print(f"{dataset:<30} {agent:<8} {last[0]['step']:>7}  {mean('eval/success'):.2f} | {goals}{done}")
EOF
echo "total $(( $(date +%s) - start ))s"
