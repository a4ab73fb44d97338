#!/usr/bin/env bash
# One sweep spec on one GPU machine without Ray: `sscp sweep SPEC --executor processes --parallel PARALLEL`, started
# in the background in its own process session so that it outlives the shell command that started it (a remote
# shell or a scheduler step with a time limit); a later PHASE=wait or PHASE=finish waits for it and collects.
#
#   SPEC=benchmarks/sweeps/sscp-ema-cube-single.yaml PARALLEL=6 PHASE=start OUT=out bash benchmarks/gpu/sweep.sh
#   SPEC=... PHASE=wait   OUT=out bash benchmarks/gpu/sweep.sh   # wait up to WAIT_S more, print progress
#   SPEC=... PHASE=finish OUT=out bash benchmarks/gpu/sweep.sh   # wait, end what still runs, collect into $OUT
#
# The sweep makes its missing datasets first (every core), then trains PARALLEL groups at once on the GPU. Collecting
# writes $OUT/NAME-progress.txt (each run's last step, updates/s and evaluations), the sweep's results.md and
# results.csv when it finished, NAME-scores.json/.md (benchmarks/scores_table.py on the sweep: success, or the
# eval.csv column METRIC, with 95 % intervals at the last step every group evaluated), and the sweep folder without
# checkpoints as $OUT/NAME-sweep.tar.gz. A sweep that was ended early resumes from its checkpoints when PHASE=start
# runs again with the same SWEEP folder. PHASE=finish first evaluates from checkpoints (`sscp eval`, EVAL_EPISODES
# episodes, all groups at once, for at most EVAL_S seconds; eval_<step>.json beside each run, in the archive; EVAL_S=0
# skips it) where EVAL_STEP says: `auto` (the default) evaluates, per dataset or env, every group at the largest step
# of which every group of it kept a checkpoint (benchmarks/sweep_steps.py), so agents that a time limit stopped at
# different steps are compared at an equal budget in each dataset's table, and where no such step exists the newest
# checkpoint of each unfinished group (saying so); `common` the same without that fallback; `newest` the newest
# checkpoint of each unfinished group; a number of updates every group at that step. A step needs the spec to keep
# the checkpoints (keep_checkpoints); a group evaluated there already (in training or by an earlier PHASE=finish) is
# not evaluated again; an evaluation that EVAL_S cuts off is named in the output, with no score.
# ONLY (texts, space-separated: `sscp sweep --only`) starts only the groups whose folder contains one of them.
set -uo pipefail
OUT=${OUT:?set OUT}
SPEC=${SPEC:?set SPEC, a sweep spec}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-560}
EVAL_S=${EVAL_S:-240}
EVAL_EPISODES=${EVAL_EPISODES:-50}
EVAL_STEP=${EVAL_STEP:-auto}  # auto, common, newest or a number of updates (above)
PARALLEL=${PARALLEL:-8}
METRIC=${METRIC:-eval/success}  # the scores' eval.csv column (eval/normalized_return for locomotion datasets)
NAME=$(basename "$SPEC" .yaml)
SWEEP=${SWEEP:-sweeps/$NAME}
T0=$(date +%s)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
export XLA_PYTHON_CLIENT_PREALLOCATE=false
SSCP_COMMIT=${SSCP_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}  # each run's config.json records it
export SSCP_COMMIT
mkdir -p "$OUT" "$SWEEP"

alive() { [ -f "$SWEEP/driver.pid" ] && kill -0 "$(cat "$SWEEP/driver.pid")" 2>/dev/null; }

start() {
  if alive; then echo "the sweep in $SWEEP is running already"; return 0; fi
  echo "sscp sweep $SPEC --executor processes --parallel $PARALLEL --out $SWEEP (commit $SSCP_COMMIT)"
  # shellcheck disable=SC2086
  setsid python3 -m sscp.cli sweep "$SPEC" --executor processes --parallel "$PARALLEL" --out "$SWEEP" ${ONLY:+--only $ONLY} \
    </dev/null >>"$SWEEP/driver.log" 2>&1 &
  echo $! >"$SWEEP/driver.pid"
}

progress() {
  python3 - "$SWEEP" "$METRIC" <<'PY'
import csv, json, os, sys
root, metric = sys.argv[1:3]
for d, _, files in sorted(os.walk(os.path.join(root, "runs"))):
    log = next((name for name in ("train.csv", "online.csv") if name in files), None)  # offline, online
    if log is None:
        continue
    rows = lambda name: list(csv.DictReader(open(os.path.join(d, name)))) if name in files else []
    train, ev = rows(log), rows("eval.csv")
    if not train:
        continue
    evals = {}
    for r in ev:
        evals.setdefault(int(r["step"]), []).append(float(r[metric]))
    shown = "  ".join(f"eval {s}: {sum(v) / len(v):.4g}" for s, v in sorted(evals.items()))
    for name in sorted(f for f in files if f.startswith("eval_") and f.endswith(".json")):  # checkpoint evaluations
        results = json.load(open(os.path.join(d, name)))
        values = [r[metric.removeprefix("eval/")] for r in results]  # sscp eval's keys drop the eval/ prefix
        shown += f"  checkpoint {name[5:-5]}: {sum(values) / len(values):.4g}"
    done = " finished" if "result.json" in files else ""
    ups = float(train[-1].get("time/updates_per_sec") or "nan")
    print(f"{os.path.relpath(d, root):<64} step {train[-1]['step']:>7} {ups:6.0f}/s  {shown}{done}")
PY
}

wait_for() {
  while alive && [ $(( $(date +%s) - T0 )) -lt "$WAIT_S" ]; do sleep 15; done
  alive && echo "$(( $(date +%s) - T0 ))s: still running" || echo "the sweep has ended"
  tail -n 4 "$SWEEP/driver.log"
  progress
}

stop() {
  # setsid made the driver a process-group leader: the group holds every child process of the sweep
  if alive; then kill -- -"$(cat "$SWEEP/driver.pid")" 2>/dev/null; sleep 5; echo "ended the sweep early"; fi
  return 0
}

evaluate_groups() {  # `sscp eval` of group folders, all at once, at most EVAL_S each; $1: env-stepping workers per
  # group, then the groups, each DIR (its newest checkpoint) or DIR@STEP (sscp eval --step STEP); logs: DIR/eval_checkpoint.log
  local workers=$1 item d step pids=() i=0 rc; shift
  for item in "$@"; do
    d=${item%@*}; step=${item#"$d"}; step=${step#@}
    timeout "$EVAL_S" python3 -m sscp.cli eval "$d" ${step:+--step "$step"} --episodes "$EVAL_EPISODES" \
      --workers "$workers" >"$d/eval_checkpoint.log" 2>&1 &
    pids+=($!)
  done
  for item in "$@"; do
    wait "${pids[i]}"; rc=$?; i=$((i + 1))
    if [ "$rc" -eq 124 ]; then echo "the evaluation of ${item##*/runs/} was stopped after EVAL_S=$EVAL_S s: no score (raise EVAL_S)"
    else tail -n 2 "${item%@*}/eval_checkpoint.log"
    fi
  done
}

evaluate_unfinished() {  # the newest checkpoint of every group without result.json
  [ "$EVAL_S" -gt 0 ] || return 0
  local d groups=()
  for d in "$SWEEP"/runs/*/*/*/; do
    [ -f "$d/result.json" ] || [ ! -d "$d/checkpoints" ] || groups+=("$d")
  done
  echo "evaluating the newest checkpoints of ${#groups[@]} unfinished group(s)"
  evaluate_groups 2 "${groups[@]}"
  return 0
}

evaluate_at() {  # every group at update EVAL_STEP from its checkpoint (sscp eval --step); EVAL_STEP=common or auto:
  # each group at the largest step that every group of its dataset kept (benchmarks/sweep_steps.py); auto falls back
  # to the newest checkpoint of each unfinished group of a dataset without one
  [ "$EVAL_S" -gt 0 ] || return 0
  local d step dataset groups=() said=" " workers
  while IFS=$'\t' read -r d step; do
    case "$EVAL_STEP" in common | auto) ;; *) step=$EVAL_STEP ;; esac
    dataset=$(basename "$(dirname "$d")")
    if [ -z "$step" ]; then
      case "$said" in *" $dataset "*) ;; *)
        said+="$dataset "
        echo "EVAL_STEP=$EVAL_STEP: no step has a checkpoint in every group of $dataset"
        [ "$EVAL_STEP" = auto ] && echo "  its unfinished groups are evaluated at their newest checkpoints (unequal budgets)" ;;
      esac
      [ "$EVAL_STEP" = auto ] && [ ! -f "$d/result.json" ] && groups+=("$d")
    elif ! grep -q "^$step," "$d/eval.csv" 2>/dev/null && [ ! -f "$d/eval_$step.json" ]; then
      groups+=("$d@$step")  # not evaluated there, in training or by an earlier PHASE=finish
    fi
  done < <(python3 benchmarks/sweep_steps.py "$SWEEP")
  workers=$(( $(nproc) / (${#groups[@]} > 0 ? ${#groups[@]} : 1) )); [ "$workers" -ge 1 ] || workers=1
  echo "evaluating ${#groups[@]} group(s) from their checkpoints: ${groups[*]##*/runs/}"
  evaluate_groups "$workers" "${groups[@]}"
  return 0
}

collect() {
  progress | tee "$OUT/$NAME-progress.txt"
  for f in results.md results.csv driver.log; do [ -f "$SWEEP/$f" ] && cp "$SWEEP/$f" "$OUT/$NAME-$f"; done
  # the success tables with intervals, a table per dataset and a row per group (the JSON docs/results.md renders)
  python3 benchmarks/scores_table.py "$SWEEP" --ci --metric "$METRIC" --json "$OUT/$NAME-scores.json" \
    >"$OUT/$NAME-scores.md" 2>&1
  tar -czf "$OUT/$NAME-sweep.tar.gz" --exclude=checkpoints -C "$(dirname "$SWEEP")" "$(basename "$SWEEP")"
}

case "$PHASE" in
  start) start; sleep 5; wait_for ;;
  wait) wait_for ;;
  finish) wait_for; stop; if [ "$EVAL_STEP" = newest ]; then evaluate_unfinished; else evaluate_at; fi; collect ;;
  collect) collect ;;
  *) echo "unknown PHASE=$PHASE (start, wait, finish, collect)"; exit 2 ;;
esac
