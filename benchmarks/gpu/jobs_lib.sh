# Shared by the GPU score scripts (cube_scores.sh, bc_scores.sh, speed_scores.sh, exactness.sh, ...): a queue of
# `sscp train` jobs that runs in the background in its own process session, so it outlives the shell command that
# started it (a remote shell or a scheduler step with a time limit): a later PHASE=wait or PHASE=finish of the same
# script waits for it and collects. A job that was cut off (the machine went away) resumes from its newest checkpoint
# when the script is started again; finished jobs (DONE) are skipped. Source it after setting RUNS, OUT and WAIT_S.
#
#   job_add DIR GPU COMMAND...   queue a job (skipped if DIR/DONE exists): DIR/job.sh runs COMMAND on GPU (an index,
#                                taken modulo the machine's GPUs, or modulo the list GPUS="1 2 3" when that is set:
#                                two scripts can then share one machine), its output goes to DIR/stdout.log, DIR/DONE
#                                marks success
#   job_then DIR COMMAND...      run COMMAND after the job's earlier commands, if they succeeded
#   jobs_start PARALLEL          start the queue in the background, PARALLEL jobs at a time
#   jobs_wait                    until every queued job is done, the queue is gone, or WAIT_S after the script began
#   jobs_stop STEP               stop each job once its eval.csv has rows of STEP (waits up to WAIT_S for the rest)
#   jobs_kill                    end the queue and every job still running (their logs and checkpoints stay)
#   jobs_progress                one line per run folder: last logged step, updates/s, last evaluation
#   jobs_archive NAME [FILE]     progress into $OUT/FILE (progress.txt), the logs that report errors, and every run
#                                folder without checkpoints in $OUT/NAME-runs.tar.gz
#   cores_each N                 the machine's CPU cores divided among N processes (at least 1)
#   jobs_main                    run PHASE with the script's own start (make data, job_add..., jobs_start) and collect
#                                functions: start (then wait up to WAIT_S), wait, stop (STOP_AT), collect, or all (one
#                                call: start; stop each job after its evaluation at STOP_AT, or without STOP_AT wait
#                                for all to finish; end what still runs at WAIT_S; collect), or finish (the end of
#                                a run spread over several commands: wait up to WAIT_S, end the rest, collect)
T0=$(date +%s)
# The scripts run from the repository root; its `sscp` package is importable by every python3 they start (the
# benchmark scripts under benchmarks/ import it too) without installing it.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Each run's config.json records the sscp commit; a copy of the checkout without its git folder can pass it in.
SSCP_COMMIT=${SSCP_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}
export SSCP_COMMIT
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
read -r -a GPU_LIST <<<"${GPUS:-}"
QUEUE="$RUNS/queue.txt"
mkdir -p "$RUNS" "$OUT"

cores_each() { echo $(( $(nproc) / $1 > 0 ? $(nproc) / $1 : 1 )); }

job_add() {
  local dir=$1 gpu=$2
  shift 2
  mkdir -p "$dir"
  [ -f "$dir/DONE" ] && return 0
  printf '%q ' "$@" >"$dir/job.sh"
  if [ ${#GPU_LIST[@]} -gt 0 ]; then gpu=${GPU_LIST[$(( gpu % ${#GPU_LIST[@]} ))]}
  else gpu=$(( NGPU > 0 ? gpu % NGPU : 0 )); fi
  echo "$dir $gpu" >>"$QUEUE.new"
}

job_then() {
  local dir=$1
  shift
  [ -f "$dir/DONE" ] && return 0
  { printf '&& '; printf '%q ' "$@"; } >>"$dir/job.sh"
}

jobs_start() {
  local parallel=$1
  touch "$QUEUE.new"
  mv "$QUEUE.new" "$QUEUE"
  echo "$(wc -l <"$QUEUE") jobs queued, $parallel at a time, on $NGPU GPU(s)"
  # shellcheck disable=SC2016
  setsid bash -c 'xargs -P "$1" -n 2 sh -c "CUDA_VISIBLE_DEVICES=\$1 bash \$0/job.sh >\$0/stdout.log 2>&1 && touch \$0/DONE" <"$0"' \
    "$QUEUE" "$parallel" </dev/null >/dev/null 2>&1 &
  echo $! >"$RUNS/queue.pid"
}

_queue_alive() { [ -f "$RUNS/queue.pid" ] && kill -0 "$(cat "$RUNS/queue.pid")" 2>/dev/null; }

jobs_wait() {
  while [ $(( $(date +%s) - T0 )) -lt "$WAIT_S" ]; do
    local left=0 dir _
    while read -r dir _; do [ -f "$dir/DONE" ] || left=$(( left + 1 )); done <"$QUEUE"
    if [ "$left" = 0 ]; then echo "all queued jobs done"; break; fi
    if ! _queue_alive; then echo "the queue has ended; $left job(s) without DONE (see their stdout.log)"; break; fi
    sleep 20
  done
  jobs_progress
}

jobs_stop() {
  local step=$1
  while [ $(( $(date +%s) - T0 )) -lt "$WAIT_S" ]; do
    local left=0 dir _
    while read -r dir _; do
      pgrep -f "run-dir $dir " >/dev/null || continue
      if grep -q "^$step," "$dir/eval.csv" 2>/dev/null; then
        sleep 5  # an evaluation's rows are written together; let the last of them land
        pkill -f "run-dir $dir "
        echo "$(( $(date +%s) - T0 ))s: stopped $dir after its evaluation at $step"
      else
        left=$(( left + 1 ))
      fi
    done <"$QUEUE"
    [ "$left" = 0 ] && break
    sleep 10
  done
  jobs_progress
}

jobs_kill() {
  # setsid made the queue's shell a process-group leader: the group holds xargs and every job it started
  [ -f "$RUNS/queue.pid" ] && kill -- -"$(cat "$RUNS/queue.pid")" 2>/dev/null
  local dir _
  while read -r dir _; do pkill -f "run-dir $dir " 2>/dev/null; done <"$QUEUE"
  sleep 2
  return 0
}

jobs_progress() {
  python3 - "$RUNS" <<'EOF'
import csv, os, sys
runs = sys.argv[1]
for d, _, files in sorted(os.walk(runs)):
    if "job.sh" not in files:
        continue
    def rows(name):
        path = os.path.join(d, name)
        return list(csv.DictReader(open(path))) if os.path.exists(path) else []
    train, ev = rows("train.csv"), rows("eval.csv")
    step = train[-1]["step"] if train else "-"
    ups = f"{float(train[-1]['time/updates_per_sec']):.0f}/s" if train else ""
    last = [r for r in ev if r["step"] == ev[-1]["step"]] if ev else []
    succ = f"eval {last[0]['step']}: {sum(float(r['eval/success']) for r in last) / len(last):.2f}" if last else ""
    done = " DONE" if os.path.exists(os.path.join(d, "DONE")) else ""
    print(f"{os.path.relpath(d, runs):<36} step {step:>7} {ups:>7}  {succ}{done}")
EOF
}

jobs_archive() {  # NAME [PROGRESS_FILE]: progress into $OUT, the logs that report errors, $OUT/NAME-runs.tar.gz
  jobs_progress | tee "$OUT/${2:-progress.txt}"
  for f in "$RUNS"/*/*/stdout.log; do grep -l -i "error\|Traceback" "$f"; done 2>/dev/null | head
  tar -czf "$OUT/$1-runs.tar.gz" --exclude=checkpoints -C "$(dirname "$RUNS")" "$(basename "$RUNS")"
}

jobs_main() {
  case "$PHASE" in
    start) start; jobs_wait ;;
    wait) jobs_wait ;;
    stop) jobs_stop "${STOP_AT:?set STOP_AT, the step every process should have evaluated before it is stopped}" ;;
    collect) collect ;;
    finish) jobs_wait; jobs_kill; collect ;;
    all)
      start
      if [ -n "${STOP_AT:-}" ]; then jobs_stop "$STOP_AT"; else jobs_wait; fi
      jobs_kill
      collect ;;
    *) echo "unknown PHASE=$PHASE (start, wait, stop, collect, all)"; exit 2 ;;
  esac
}
