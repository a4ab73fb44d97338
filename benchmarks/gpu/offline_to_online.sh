#!/usr/bin/env bash
# The offline-to-online measurement with its control: SSCP (and the other AGENTS, e.g. AGENTS="sscp fql") trained
# offline, then fine-tuned online in the dataset's env (docs/online.md), on locally made locomotion datasets and an
# OGBench task, SEEDS seeds each, on a GPU machine;
# beside each (CONTROL=1, the default) the same agent, seeds and data trained offline only for the same number of
# updates in all (OFFLINE_STEPS + ONLINE_STEPS x UTD), so that a gain of fine-tuning is told from a gain of more
# offline training. One background process per (run, dataset) (jobs_lib.sh): it makes the dataset if missing (a
# locomotion dataset: its env's SAC run and rollouts, `sscp data make`, under a lock), then trains. The score at the
# end of the offline phase is the evaluation at OFFLINE_STEPS; the fine-tuned and the control's scores the last ones.
#
#   PHASE=start  OUT=/tmp/out bash benchmarks/gpu/offline_to_online.sh    # start, wait up to WAIT_S
#   PHASE=wait / finish / collect / all ...                                # as the other GPU scripts (jobs_lib.sh)
#   SMALL=1 ...                                                            # a smoke test on a CPU machine
#
# AGENTS (default sscp; fql takes its published α per OGBench domain, --agent.preset auto, and its default
# elsewhere), DATASETS, OFFLINE_STEPS, ONLINE_STEPS, EVAL_EVERY, BUFFERS ("append", "separate" or both: one process each),
# EVAL_EPS (evaluation episodes, default the protocol's 50), ONLINE_CHUNK (the SAC data run's and the fine-tuning's
# --env-steps-per-call), SAC_STEPS, SAC_EVAL (env steps between the
# SAC run's kept policies, the candidates for "medium"; default 10,000) and TRANSITIONS (the locomotion
# data), GPUS. α₂ (--agent.alpha-completion) follows method.md's D4RL values for the locomotion datasets of the same
# kind (these are Gymnasium v5 datasets made here, not D4RL's); 1.0 (the default) elsewhere. DATA_WORKERS: processes
# generating an OGBench dataset (default: every core). EXTRA: options for every run, the control's included, given last
# so that they win (e.g. network sizes: "--agent.actor-hidden-dims 256 256"). TRAIN_EXTRA: more options for the
# fine-tuned runs, which the control does not take (e.g. "--online-overlap"). ONLINE_AGENT: SSCP's agent options that
# change after the offline phase (e.g. "normalize_q_loss=False explore_actor=online exploration_noise=0.1
# policy_noise=0.2", the online preset's losses and noise): the fine-tuned runs take them as --online-agent, the control
# from the same update on (--online-agent-at OFFLINE_STEPS), so it tells the gain of the online data from that of the
# option change; RUNS=runs/o2o-td3 keeps those runs apart.
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-540}
RUNS=${RUNS:-runs/o2o}
DATA=${DATA:-data}
DATASETS=${DATASETS:-"hopper-medium-v5 halfcheetah-medium-v5 cube-single-play-singletask-task2-v0"}
BUFFERS=${BUFFERS:-append}
AGENTS=${AGENTS:-sscp}
SEEDS=${SEEDS:-"0 1 2 3"}
CONTROL=${CONTROL:-1}
UTD=${UTD:-1}
ONLINE_CHUNK=${ONLINE_CHUNK:-50}
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
if [ "${SMALL:-0}" = 1 ]; then
  OFFLINE_STEPS=${OFFLINE_STEPS:-200}; ONLINE_STEPS=${ONLINE_STEPS:-200}; EVAL_EVERY=${EVAL_EVERY:-100}
  SAC_STEPS=${SAC_STEPS:-400}; TRANSITIONS=${TRANSITIONS:-400}; SAC_EVAL=200; EVAL_EPS=1; EPISODES=(--episodes 20); SAC_EPS=1
  small=(--eval-max-steps 30 --log-every 100 --agent.batch-size 32 --agent.actor-hidden-dims 16 16
         --agent.critic-hidden-dims 16 16)
else
  OFFLINE_STEPS=${OFFLINE_STEPS:-100000}; ONLINE_STEPS=${ONLINE_STEPS:-100000}; EVAL_EVERY=${EVAL_EVERY:-25000}
  SAC_STEPS=${SAC_STEPS:-300000}; TRANSITIONS=${TRANSITIONS:-1000000}; SAC_EVAL=${SAC_EVAL:-10000}; SAC_EPS=10; EVAL_EPS=${EVAL_EPS:-50}
  EPISODES=(); small=(--log-every 1000)
fi
declare -A alpha=([halfcheetah-medium-v5]=0.20 [halfcheetah-medium-replay-v5]=0.05 [halfcheetah-medium-expert-v5]=0.10
  [hopper-medium-v5]=0.05 [hopper-medium-replay-v5]=0.10 [hopper-medium-expert-v5]=0.75
  [walker2d-medium-v5]=0.50 [walker2d-medium-replay-v5]=0.10 [walker2d-medium-expert-v5]=0.10)
read -r -a extra <<<"${EXTRA:-}"
source "$(dirname "$0")/jobs_lib.sh"
mkdir -p "$DATA"

start() {
  local i=0
  for d in $DATASETS; do
    # make the dataset unless it is there (a locomotion name: its env's SAC run and rollouts)
    make=(python3 -m sscp.cli data make "$d" --out "$DATA" "${EPISODES[@]}" ${DATA_WORKERS:+--workers "$DATA_WORKERS"})
    [[ $d == *-v5 ]] && make=(python3 -m sscp.cli data make "$d" --out "$DATA" --train-steps "$SAC_STEPS" \
      --transitions "$TRANSITIONS" --eval-every "$SAC_EVAL" --eval-episodes "$SAC_EPS" --env-steps-per-call "$ONLINE_CHUNK" --workers 2)
    file="$DATA/$d.npz"; [[ $d == *-singletask-* ]] && file="$DATA/${d%-singletask-*}-v0.npz"
    for agent in $AGENTS; do
      # per agent: SSCP's α₂ for the locomotion kinds and ONLINE_AGENT; FQL's published α per OGBench domain
      base=(); changed=()
      if [ "$agent" = sscp ]; then
        [ -n "${alpha[$d]:-}" ] && base+=(--agent.alpha-completion "${alpha[$d]}")
        [ "${SMALL:-0}" = 1 ] && base+=(--agent.time-embed-dim 16)
        read -r -a changed <<<"${ONLINE_AGENT:-}"
      elif [ "$agent" = fql ]; then
        base+=(--agent.preset auto)
      fi
      # shellcheck disable=SC2206
      train=(python3 -m sscp.cli train --agent "$agent" --dataset "$d" --data-dir "$DATA" --seeds $SEEDS
        --eval-every "$EVAL_EVERY" --save-every "$EVAL_EVERY" --eval-episodes "$EVAL_EPS" --eval-workers 2 --no-progress
        "${small[@]}" "${base[@]}" "${extra[@]}")
      for buffer in $BUFFERS; do
        dir="$RUNS/$agent-$buffer/$d"
        # under a lock: several processes need the same dataset; one makes it
        job_add "$dir" "$i" flock "$file.lock" bash -c '[ -f "$0" ] || "$@"' "$file" "${make[@]}"
        read -r -a opts <<<"${TRAIN_EXTRA:-}"
        [ ${#changed[@]} -gt 0 ] && opts+=(--online-agent "${changed[@]}")
        job_then "$dir" "${train[@]}" --steps "$OFFLINE_STEPS" --online-steps "$ONLINE_STEPS" --utd "$UTD" \
          --online-buffer "$buffer" --env-steps-per-call "$ONLINE_CHUNK" --run-dir "$dir" "${opts[@]}"
        i=$(( i + 1 ))
      done
      if [ "$CONTROL" = 1 ]; then  # offline only, as many updates as the fine-tuned run makes in all; no TRAIN_EXTRA
        dir="$RUNS/$agent-control/$d"
        job_add "$dir" "$i" flock "$file.lock" bash -c '[ -f "$0" ] || "$@"' "$file" "${make[@]}"
        copts=(); [ ${#changed[@]} -gt 0 ] && copts+=(--online-agent "${changed[@]}" --online-agent-at "$OFFLINE_STEPS")
        job_then "$dir" "${train[@]}" --steps $(( OFFLINE_STEPS + ONLINE_STEPS * UTD )) --run-dir "$dir" "${copts[@]}"
        i=$(( i + 1 ))
      fi
    done
  done
  jobs_start "$i"
  sleep 5
}

progress() {  # per run: evaluation at the end of the offline phase and the latest one (mean over tasks and seeds)
  python3 - "$RUNS" "$OFFLINE_STEPS" <<'EOF'
import csv, os, sys
runs, offline = sys.argv[1], int(sys.argv[2])
print("| run | offline steps | score after offline | online env steps | score now | metric |")
print("|---|---|---|---|---|---|")
for d, _, files in sorted(os.walk(runs)):
    if "job.sh" not in files:
        continue
    name = os.path.relpath(d, runs)
    path = os.path.join(d, "eval.csv")
    rows = list(csv.DictReader(open(path))) if os.path.exists(path) else []
    if not rows:
        print(f"| {name} | | (no evaluation yet) | | | |")
        continue
    key = next(k for k in ("eval/normalized_return", "eval/success", "eval/return") if rows[0].get(k, "") != "")
    def mean_at(step):
        values = [float(r[key]) for r in rows if int(r["step"]) == step]
        return f"{sum(values) / len(values):.3f}" if values else ""
    last = max(int(r["step"]) for r in rows)
    online = "(control: offline only)" if "-control/" in name else max(0, last - offline)
    print(f"| {name} | {offline} | {mean_at(offline)} | {online} | {mean_at(last)} | {key} |")
EOF
}

collect() {
  progress | tee "$OUT/o2o-scores.md"
  for f in "$RUNS"/*/*/stdout.log; do grep -l -i "error\|Traceback" "$f"; done 2>/dev/null | head
  cp "$DATA"/*-v5.json "$OUT/" 2>/dev/null
  tar -czf "$OUT/o2o-runs.tar.gz" --exclude=checkpoints -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
  [ -d "$DATA/locomotion-runs" ] && tar -czf "$OUT/locomotion-runs.tar.gz" --exclude=checkpoints \
    --exclude=policies -C "$DATA" locomotion-runs
  return 0
}

jobs_progress() { progress; }
jobs_main
