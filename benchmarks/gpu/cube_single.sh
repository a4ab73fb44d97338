#!/usr/bin/env bash
# One GPU-machine session (10-minute command limit): generates cube-single-play-v0 at official size on the CPU cores
# while the GPU profiles the training step (scan unroll, XLA command buffers), then trains SSCP on the five
# single-task variants x 2 seeds in one vmapped process for as many steps as the remaining time allows.
#   OUT=/tmp/out bash benchmarks/gpu/cube_single.sh            (on the GPU machine, after installing .whl/)
#   SMALL=1 OUT=/tmp/out bash benchmarks/gpu/cube_single.sh    (a smoke test on a CPU machine)
set -uo pipefail
OUT=${OUT:?set OUT}
BUDGET_S=${BUDGET_S:-570}            # seconds this script may run in total
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
if [ "${SMALL:-0}" = 1 ]; then
  episodes=20; prof=(--hidden 32 32 --batch 64 --steps 20)
  agent=(--agent.actor-hidden-dims 32 32 --agent.critic-hidden-dims 32 32 --agent.batch-size 64); eval_eps=2
else
  episodes=1000; prof=(); agent=(); eval_eps=50
fi
mkdir -p data "$OUT"
python3 -m sscp.cli data make cube-single-play-v0 --episodes $episodes --out data --workers $(( $(nproc) - 1 )) \
  >"$OUT/datagen.log" 2>&1 &
gen=$!
python3 -m benchmarks.profile_step "${prof[@]}" --seeds 1 8 --unroll 1 10 --out "$OUT/profile.json" 2>&1 | tee "$OUT/profile.log"
XLA_FLAGS=--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL python3 -m benchmarks.profile_step "${prof[@]}" \
  --seeds 1 8 --unroll 1 10 --out "$OUT/profile_cmdbuf.json" 2>&1 | tee "$OUT/profile_cmdbuf.log"
wait $gen; tail -3 "$OUT/datagen.log"
# Best (command buffers or not, unroll) at 8 seeds; steps from the time left.
read -r cmdbuf unroll steps left < <(python3 - "$OUT" "$start" "$BUDGET_S" <<'PY'
import json, os, sys, time
best = (0, 0, 1)
for cmdbuf, name in ((0, "profile.json"), (1, "profile_cmdbuf.json")):
    path = os.path.join(sys.argv[1], name)
    if os.path.exists(path):
        for r in json.load(open(path)):
            if r["seeds"] == 8 and r["updates_per_sec"] > best[0]:
                best = (r["updates_per_sec"], cmdbuf, r["unroll"])
left = int(sys.argv[3]) - (time.time() - float(sys.argv[2])) - 15
train_s = left - 110                                    # compile, one evaluation, copying
print(best[1], best[2], max(1000, int(train_s * 0.85 * best[0] / 10) // 1000 * 1000), int(left))
PY
)
[ "$cmdbuf" = 1 ] && export XLA_FLAGS=--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL
echo "training: command buffers $cmdbuf, scan unroll $unroll, $steps steps, ${left}s left"
timeout "$left" python3 -m sscp.cli train --agent sscp --dataset cube-single-play-singletask-task{1,2,3,4,5}-v0 \
  --data-dir data --seeds 0 1 --steps "$steps" --eval-every "$steps" --save-every "$steps" --eval-episodes $eval_eps \
  --scan-unroll "$unroll" --log-every 1000 --run-dir runs/cube-single --no-progress "${agent[@]}" 2>&1 | tee "$OUT/train.log"
cp runs/cube-single/{config.json,train.csv,eval.csv,curves.png} "$OUT/" 2>/dev/null
echo "total $(( $(date +%s) - start ))s"
