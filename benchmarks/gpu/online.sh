#!/usr/bin/env bash
# Online RL from scratch on one GPU machine: SSCP vs SAC on HalfCheetah-v5, Walker2d-v5 and Hopper-v5, 2 seeds each,
# in commands of at most 10 minutes that resume one another while the machine stays warm. Four processes share the
# GPU (each agent x {HalfCheetah + Walker2d (same sizes, vmapped together), Hopper}).
#
#   OUT=/tmp/out bash benchmarks/gpu/online.sh            # start or resume; stops when BUDGET_S is used up
#   SMALL=1 OUT=/tmp/out bash benchmarks/gpu/online.sh    # a smoke test on a CPU machine
#   AGENTS=sscp SSCP_EXTRA="--agent.exploration-noise 0.1" TAG=-noise0.1 OUT=... bash benchmarks/gpu/online.sh
#                                                         # SSCP alone, with extra options, in runs named ...-noise0.1
#   TRAIN_EXTRA="--online-chunk 50" TAG=-chunk50 OUT=... bash benchmarks/gpu/online.sh   # options for both agents
#
# Each call leaves $OUT/online-runs.tar.gz: every run folder's config.json, CSV logs and curves.png.
set -uo pipefail
OUT=${OUT:?set OUT}
BUDGET_S=${BUDGET_S:-575}
STEPS=${STEPS:-300000}
SAVE_EVERY=${SAVE_EVERY:-10000}
EVAL_EVERY=${EVAL_EVERY:-50000}
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # four JAX processes share the GPU; each would take 75 % of it
if [ "${SMALL:-0}" = 1 ]; then
  eval_eps=1; tiny=(--eval-max-steps 50)
  sscp=(--agent.actor-hidden-dims 16 16 --agent.critic-hidden-dims 16 16 --agent.batch-size 32 --agent.time-embed-dim 16)
  sac=(--agent.actor-hidden-dims 16 16 --agent.critic-hidden-dims 16 16 --agent.batch-size 32)
else
  eval_eps=10; tiny=(); sscp=(); sac=()
fi
mkdir -p runs/online "$OUT"
left=$(( BUDGET_S - ($(date +%s) - start) - 25 ))
pids=()
read -r -a extra <<<"${SSCP_EXTRA:-}"
read -r -a both <<<"${TRAIN_EXTRA:-}"
for agent in ${AGENTS:-sscp sac}; do
  for envs in "HalfCheetah-v5 Walker2d-v5" "Hopper-v5"; do
    name="$agent-$(echo "$envs" | tr -d ' ' | tr 'A-Z' 'a-z' | sed 's/-v5//g')${TAG:-}"
    opts=("${sscp[@]}" "${extra[@]}"); [ "$agent" = sac ] && opts=("${sac[@]}")
    opts+=("${both[@]}")
    # shellcheck disable=SC2086
    timeout "$left" python3 -m sscp.cli train --agent $agent --env $envs --seeds 0 1 --online-steps "$STEPS" \
      --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --eval-episodes $eval_eps --eval-workers 2 \
      --log-every 1000 --run-dir "runs/online/$name" --no-progress "${tiny[@]}" "${opts[@]}" \
      >>"$OUT/$name.log" 2>&1 &
    pids+=($!)
  done
done
wait "${pids[@]}"
for f in "$OUT"/*.log; do echo "== $f"; grep -v "^WARNING" "$f" | tail -4; done
tar -czf "$OUT/online-runs${TAG:-}.tar.gz" --exclude=checkpoints -C runs online
echo "total $(( $(date +%s) - start ))s"
