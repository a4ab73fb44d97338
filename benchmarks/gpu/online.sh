#!/usr/bin/env bash
# Online RL from scratch on a GPU machine: SSCP vs SAC on HalfCheetah-v5, Walker2d-v5 and Hopper-v5, 2 seeds each.
# One background process per (agent, env group) through jobs_lib.sh, spread over the machine's GPUs (or GPUS="..."),
# so training goes on between the script's phases (commands with a time limit); the seeds (and the envs of one
# group) are vmapped in one process.
#
#   PHASE=start  OUT=/tmp/out bash benchmarks/gpu/online.sh     # start the processes, wait up to WAIT_S
#   PHASE=wait   OUT=/tmp/out bash benchmarks/gpu/online.sh     # wait up to WAIT_S more, print progress
#   PHASE=collect OUT=/tmp/out bash benchmarks/gpu/online.sh    # evaluation table, curves and CSV logs into $OUT
#   PHASE=all WAIT_S=520 ...                                    # one call: start, wait, end what still runs, collect
#   SMALL=1 ...                                                 # a smoke test on a CPU machine
#   ENV_GROUPS="HalfCheetah-v5 Walker2d-v5 Hopper-v5"           # one process per env (default: HalfCheetah and
#                                                               # Walker2d together, Hopper alone; + joins envs)
#   AGENTS=sscp SSCP_EXTRA="--agent.exploration-noise 0.1" TAG=-noise0.1 ...   # SSCP alone, with extra options, in
#                                                               # runs named ...-noise0.1
#   TRAIN_EXTRA="--env-steps-per-call 50" ...                         # options for every agent
#   EVAL_EPS=50                                                 # evaluation episodes (the protocol's 50; the
#                                                               # runs of 2026-11-26/27 used 10)
#
# A process stopped at WAIT_S resumes from its last checkpoint (SAVE_EVERY) when started again on the same machine.
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-540}
RUNS=${RUNS:-runs/online}
STEPS=${STEPS:-300000}
SAVE_EVERY=${SAVE_EVERY:-10000}
EVAL_EVERY=${EVAL_EVERY:-50000}
ENV_GROUPS=${ENV_GROUPS:-"HalfCheetah-v5+Walker2d-v5 Hopper-v5"}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several JAX processes share a GPU; each would take 75 % of it
if [ "${SMALL:-0}" = 1 ]; then
  eval_eps=1; tiny=(--eval-max-steps 50)
  sscp=(--agent.actor-hidden-dims 16 16 --agent.critic-hidden-dims 16 16 --agent.batch-size 32 --agent.time-embed-dim 16)
  sac=(--agent.actor-hidden-dims 16 16 --agent.critic-hidden-dims 16 16 --agent.batch-size 32)
else
  eval_eps=${EVAL_EPS:-50}; tiny=(); sscp=(); sac=()
fi
source "$(dirname "$0")/jobs_lib.sh"

start() {
  read -r -a extra <<<"${SSCP_EXTRA:-}"
  read -r -a both <<<"${TRAIN_EXTRA:-}"
  local i=0
  for agent in ${AGENTS:-sscp sac}; do
    for group in $ENV_GROUPS; do
      envs=${group//+/ }
      name="$agent-$(echo "$envs" | tr -d ' ' | tr 'A-Z' 'a-z' | sed 's/-v5//g')${TAG:-}"
      opts=("${sscp[@]}" "${extra[@]}"); [ "$agent" = sac ] && opts=("${sac[@]}")
      opts+=("${both[@]}")
      # shellcheck disable=SC2086
      job_add "$RUNS/$name" "$i" python3 -m sscp.cli train --agent "$agent" --env $envs --seeds 0 1 \
        --online-steps "$STEPS" --eval-every "$EVAL_EVERY" --save-every "$SAVE_EVERY" --eval-episodes "$eval_eps" \
        --eval-workers 2 --log-every 1000 --run-dir "$RUNS/$name" --no-progress "${tiny[@]}" "${opts[@]}"
      i=$(( i + 1 ))
    done
  done
  jobs_start "$i"
  sleep 5
}

progress() {  # one line per run folder: env steps, env steps/s, the last evaluation's returns
  python3 - "$RUNS" <<'EOF'
import csv, os, sys
for d, _, files in sorted(os.walk(sys.argv[1])):
    if "job.sh" not in files:
        continue
    def rows(name):
        path = os.path.join(d, name)
        return list(csv.DictReader(open(path))) if os.path.exists(path) else []
    online, ev = rows("online.csv"), rows("eval.csv")
    line = f"{os.path.basename(d):<36}"
    if online:
        last = online[-1]
        line += f" env step {last['env_steps']:>7} {float(last['time/env_steps_per_sec']):6.0f} steps/s"
    if ev:
        at = [r for r in ev if r["step"] == ev[-1]["step"]]
        line += f"  eval {at[0]['step']}: " + " ".join(f"{r['env']}/{r['seed']} {float(r['eval/return']):.0f}" for r in at)
    print(line + (" DONE" if os.path.exists(os.path.join(d, "DONE")) else ""))
EOF
}

collect() {
  progress | tee "$OUT/online-progress.txt"
  for f in "$RUNS"/*/stdout.log; do grep -l -i "error\|Traceback" "$f"; done 2>/dev/null | head
  for f in "$RUNS"/*/stdout.log; do echo "== $f"; grep -v "^WARNING" "$f" | tail -n 3; done
  tar -czf "$OUT/online-runs${TAG:-}.tar.gz" --exclude=checkpoints -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
}

jobs_progress() { progress; }  # jobs_wait reports with it
jobs_main
