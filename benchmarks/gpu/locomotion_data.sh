#!/usr/bin/env bash
# Locomotion datasets made here (docs/data.md): {halfcheetah,hopper,walker2d}-{random,medium,medium-replay,expert,
# medium-expert}-v5, each env from its own SAC run, on one GPU machine, in commands of at most 10 minutes (the device
# tool's limit) that resume one another while the machine stays warm. One `sscp data make` process per env, all
# sharing the GPU (XLA_PYTHON_CLIENT_PREALLOCATE=false: JAX would take 75 % of the GPU per process otherwise).
#
#   OUT=/tmp/out bash benchmarks/gpu/locomotion_data.sh            # start or resume; stops when BUDGET_S is used up
#   SMALL=1 OUT=/tmp/out bash benchmarks/gpu/locomotion_data.sh    # a smoke test on a CPU machine
#
# Each process is killed by `timeout` when the budget ends; the next call resumes its SAC run from the newest
# checkpoint (every EVAL_EVERY env steps) and redoes the rollouts (deterministic), whose files are written atomically.
# An env whose medium-expert file exists (the last one written) is done and skipped. Each call leaves, in $OUT, one
# log per env, every dataset's metadata (NAME.json: reference returns, medium step, evaluation returns of the kept
# policies), the SAC runs' config.json and CSV logs (locomotion-runs.tar.gz) and a table (locomotion-data.md). The
# datasets themselves stay in data/ on the machine (about 0.1-0.3 GB each at 1M transitions).
set -uo pipefail
OUT=${OUT:?set OUT}
BUDGET_S=${BUDGET_S:-575}
ENVS=${ENVS:-"halfcheetah hopper walker2d"}
ENV_STEPS_PER_CALL=${ENV_STEPS_PER_CALL:-1}  # the SAC run's --env-steps-per-call (50: ~2x faster on a GPU)
start=$(date +%s)
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
export XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  TRAIN_STEPS=${TRAIN_STEPS:-2000}; TRANSITIONS=${TRANSITIONS:-2000}; EVAL_EVERY=${EVAL_EVERY:-500}; eval_eps=1
else
  # D4RL's sizes: 1M SAC env steps, 1M transitions per dataset; a kept policy every 20k env steps
  TRAIN_STEPS=${TRAIN_STEPS:-1000000}; TRANSITIONS=${TRANSITIONS:-1000000}; EVAL_EVERY=${EVAL_EVERY:-20000}; eval_eps=10
fi
mkdir -p data "$OUT"
left=$(( BUDGET_S - ($(date +%s) - start) - 30 ))
pids=()
for env in $ENVS; do
  if [ -f "data/$env-medium-expert-v5.npz" ]; then echo "$env: done"; continue; fi
  echo "$env: making for at most ${left}s"
  timeout "$left" python3 -m sscp.cli data make "$env-medium-v5" --out data --train-steps "$TRAIN_STEPS" \
    --transitions "$TRANSITIONS" --eval-every "$EVAL_EVERY" --eval-episodes "$eval_eps" \
    --env-steps-per-call "$ENV_STEPS_PER_CALL" \
    >>"$OUT/locomotion-$env.log" 2>&1 &
  pids+=($!)
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
for env in $ENVS; do echo "== $env"; grep -v "^WARNING" "$OUT/locomotion-$env.log" 2>/dev/null | tail -3; done
cp data/*-v5.json "$OUT/" 2>/dev/null
[ -d data/locomotion-runs ] && tar -czf "$OUT/locomotion-runs.tar.gz" --exclude=checkpoints --exclude=policies \
  -C data locomotion-runs
python3 - "$OUT" <<'EOF'
import glob, json, os, sys
rows = ["| dataset | transitions | episodes | mean return | normalised | medium step | ref min | ref max |",
        "|---|---|---|---|---|---|---|---|"]
for path in sorted(glob.glob("data/*-v5.json")):
    m = json.load(open(path))
    mean = m["mean_episode_return"]
    norm = "" if mean is None else f"{100 * (mean - m['ref_min_score']) / (m['ref_max_score'] - m['ref_min_score']):.1f}"
    rows.append(f"| {m['dataset']} | {m['transitions']} | {m['episodes_finished']} | "
                f"{'' if mean is None else f'{mean:.1f}'} | {norm} | {m['medium_env_step']} | "
                f"{m['ref_min_score']:.1f} | {m['ref_max_score']:.1f} |")
open(os.path.join(sys.argv[1], "locomotion-data.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
echo "total $(( $(date +%s) - start ))s"
