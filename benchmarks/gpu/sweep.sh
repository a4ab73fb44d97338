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
# results.csv when it finished, and the sweep folder without checkpoints as $OUT/NAME-sweep.tar.gz. A sweep that was
# ended early resumes from its checkpoints when PHASE=start runs again with the same SWEEP folder.
set -uo pipefail
OUT=${OUT:?set OUT}
SPEC=${SPEC:?set SPEC, a sweep spec}
PHASE=${PHASE:-start}
WAIT_S=${WAIT_S:-560}
PARALLEL=${PARALLEL:-8}
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
  setsid python3 -m sscp.cli sweep "$SPEC" --executor processes --parallel "$PARALLEL" --out "$SWEEP" \
    </dev/null >>"$SWEEP/driver.log" 2>&1 &
  echo $! >"$SWEEP/driver.pid"
}

progress() {
  python3 - "$SWEEP" <<'PY'
import csv, os, sys
root = sys.argv[1]
for d, _, files in sorted(os.walk(os.path.join(root, "runs"))):
    if "train.csv" not in files:
        continue
    rows = lambda name: list(csv.DictReader(open(os.path.join(d, name)))) if name in files else []
    train, ev = rows("train.csv"), rows("eval.csv")
    evals = {}
    for r in ev:
        evals.setdefault(int(r["step"]), []).append(float(r["eval/success"]))
    shown = "  ".join(f"eval {s}: {sum(v) / len(v):.2f}" for s, v in sorted(evals.items()))
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

collect() {
  progress | tee "$OUT/$NAME-progress.txt"
  for f in results.md results.csv driver.log; do [ -f "$SWEEP/$f" ] && cp "$SWEEP/$f" "$OUT/$NAME-$f"; done
  tar -czf "$OUT/$NAME-sweep.tar.gz" --exclude=checkpoints -C "$(dirname "$SWEEP")" "$(basename "$SWEEP")"
}

case "$PHASE" in
  start) start; sleep 5; wait_for ;;
  wait) wait_for ;;
  finish) wait_for; stop; collect ;;
  collect) collect ;;
  *) echo "unknown PHASE=$PHASE (start, wait, finish, collect)"; exit 2 ;;
esac
