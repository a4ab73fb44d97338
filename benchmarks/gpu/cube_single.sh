#!/usr/bin/env bash
# SSCP on the five cube-single-play single-task variants x 2 seeds on one GPU machine, in commands of at most
# 10 minutes each (for a session or scheduler with such a limit) that resume one another.
#
#   PHASE=first OUT=/tmp/out bash benchmarks/gpu/cube_single.sh   # generate the data on the CPU cores while the GPU
#                                                                  # measures the speed options, then start training
#   PHASE=more  OUT=/tmp/out bash benchmarks/gpu/cube_single.sh   # resume training until BUDGET_S is used up
#   SMALL=1 ...                                                    # a smoke test on a CPU machine
#
# Training is killed by `timeout` when the budget ends; the next call resumes from the newest checkpoint (written
# every SAVE_EVERY steps, atomically). Each call copies the run's config.json, CSV logs and curves.png to $OUT.
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-more}
BUDGET_S=${BUDGET_S:-575}
STEPS=${STEPS:-300000}
SAVE_EVERY=${SAVE_EVERY:-10000}
EVAL_EVERY=${EVAL_EVERY:-100000}
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
if [ "${SMALL:-0}" = 1 ]; then
  episodes=20; eval_eps=2; bench=(--hidden 32 32 --batch 64 --chunk 20 --repeats 1 --transitions 10000)
  agent=(--agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32 --agent.batch-size 64)
else
  episodes=1000; eval_eps=50; bench=(); agent=()
fi
mkdir -p data "$OUT"
if [ "$PHASE" = first ]; then
  python3 -m sscp.cli data make cube-single-play-v0 --episodes $episodes --out data --workers $(( $(nproc) - 1 )) \
    >"$OUT/datagen.log" 2>&1 &
  gen=$!
  # Each named option alone, then both, at 1 and 8 seeds (same JSON file, one row per variant).
  for opts in "" "--compute-dtype bfloat16" "--one-step-mse 0" "--compute-dtype bfloat16 --one-step-mse 0"; do
    # shellcheck disable=SC2086
    python3 benchmarks/throughput.py "${bench[@]}" --seeds 1 8 $opts --out "$OUT/throughput-options.json" \
      2>&1 | grep -v "^WARNING" | tee -a "$OUT/throughput-options.log"
  done
  wait $gen; tail -3 "$OUT/datagen.log"
fi
left=$(( BUDGET_S - ($(date +%s) - start) - 20 ))
if [ "$left" -lt 60 ]; then echo "only ${left}s left: no training in this call"; exit 0; fi
echo "training for at most ${left}s"
timeout "$left" python3 -m sscp.cli train --agent sscp --dataset cube-single-play-singletask-task{1,2,3,4,5}-v0 \
  --data-dir data --seeds 0 1 --steps "$STEPS" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" \
  --eval-episodes $eval_eps --log-every 1000 --run-dir runs/cube-single --no-progress "${agent[@]}" 2>&1 \
  | grep -v "^WARNING" | tee -a "$OUT/train.log"
cp runs/cube-single/{config.json,train.csv,eval.csv,curves.png} "$OUT/" 2>/dev/null
ls runs/cube-single/checkpoints
echo "total $(( $(date +%s) - start ))s"
