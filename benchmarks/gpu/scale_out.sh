#!/usr/bin/env bash
# Scale-out and reproducibility measurements on the GPU machines, in commands of at most 10 minutes each (for a
# session or scheduler with such a limit); each phase writes JSON rows and logs to $OUT.
#
#   PHASE=one OUT=/tmp/out bash benchmarks/gpu/scale_out.sh  # 1 GPU: determinism (2 runs x 2 XLA settings), acting
#                                                            # latency of every agent, the 16-seed packed sweep, then
#                                                            # the same 16 runs one by one until BUDGET_S is used up
#   PHASE=two OUT=/tmp/out bash benchmarks/gpu/scale_out.sh  # 1 GPU: finish the one-by-one sweep (it resumes), then
#                                                            # training updates/s of every agent at batch 1024
#   PHASE=x2  OUT=/tmp/out bash benchmarks/gpu/scale_out.sh  # 2 GPUs: 16 and 32 seeds split over 2 GPUs vs 1
#   PHASE=ray ...                                            # 1 GPU, on Ray: the packed sweep, and the 16 runs as
#                                                            # 16 processes, 4 at a time on the GPU
#   PHASE=x2sweep ...                                        # 2 GPUs: the packed 16-seed sweep on 1 GPU, then on 2
set -uo pipefail
OUT=${OUT:?set OUT}
PHASE=${PHASE:-one}
BUDGET_S=${BUDGET_S:-570}
start=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - start) - 15 )); }
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore RAY_AUTH_MODE=disabled
mkdir -p data "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpus-$PHASE.txt"
executor=ray
python3 -c "import ray; print('ray', ray.__version__)" 2>/dev/null || executor=serial
echo "sweep executor: $executor" | tee -a "$OUT/gpus-$PHASE.txt"
sweep() {  # sweep SPEC NAME
  timeout "$(left)" python3 -m sscp.cli sweep "$1" --out "sweeps/$2" --executor $executor 2>&1 \
    | grep -v "^WARNING" | tee -a "$OUT/sweep-$2.log"
  cp "sweeps/$2/results.csv" "$OUT/sweep-$2.csv" 2>/dev/null
  cp "sweeps/$2/last_invocation.json" "$OUT/sweep-$2-last.json" 2>/dev/null
  python3 - "$2" >"$OUT/sweep-$2-groups.json" <<'PY'
import json, sys, pathlib
print(json.dumps([json.loads(p.read_text()) for p in sorted(pathlib.Path("sweeps", sys.argv[1]).rglob("result.json"))]))
PY
}
if [ "$PHASE" = one ]; then
  python3 -m sscp.cli data make cube-single-play-v0 --episodes 100 --out data --workers $(( $(nproc) - 1 )) \
    2>&1 | tail -2
  python3 benchmarks/determinism.py --out "$OUT/determinism.json" -- --dataset cube-single-play-singletask-task1-v0 \
    --data-dir data --steps 1000 --log-every 100 --eval-every 0 --eval-episodes 1 --eval-max-steps 10 \
    --eval-workers 0 2>&1 | grep -v "^WARNING" | cut -c1-400
  python3 benchmarks/latency.py --agents all --calls 300 --out "$OUT/latency-gpu.json" 2>&1 | grep -v "^WARNING" \
    | cut -c1-300 | tail -40
  sweep benchmarks/sweeps/sixteen-seeds.yaml packed
  sweep benchmarks/sweeps/sixteen-seeds-one-by-one.yaml one-by-one
elif [ "$PHASE" = two ]; then
  sweep benchmarks/sweeps/sixteen-seeds-one-by-one.yaml one-by-one
  timeout "$(left)" python3 benchmarks/throughput.py --agent all --seeds 1 --chunk 500 --repeats 2 \
    --out "$OUT/throughput-agents.json" 2>&1 | grep -v "^WARNING" | cut -c1-300
elif [ "$PHASE" = ray ]; then  # needs Ray importable (see docs/sweeps.md for how it got onto the GPU machine)
  python3 -m sscp.cli data make cube-single-play-v0 --episodes 100 --out data --workers $(( $(nproc) - 1 )) \
    2>&1 | tail -1
  sweep benchmarks/sweeps/sixteen-seeds.yaml packed-ray
  sweep benchmarks/sweeps/sixteen-seeds-four-per-gpu.yaml four-per-gpu-ray
elif [ "$PHASE" = x2sweep ]; then
  python3 -m sscp.cli data make cube-single-play-v0 --episodes 100 --out data --workers $(( $(nproc) - 1 )) \
    2>&1 | tail -1
  sweep benchmarks/sweeps/sixteen-seeds-one-gpu.yaml packed-one-gpu
  sweep benchmarks/sweeps/sixteen-seeds.yaml packed-all-gpus
elif [ "$PHASE" = x2 ]; then
  timeout "$(left)" python3 benchmarks/throughput.py --seeds 16 32 --devices 1 2 --repeats 3 \
    --out "$OUT/throughput-devices.json" 2>&1 | grep -v "^WARNING" | cut -c1-300
fi
echo "phase $PHASE: $(( $(date +%s) - start ))s"
