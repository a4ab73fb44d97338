#!/usr/bin/env bash
# Acting latency per policy call (one chunk where Diffusion Policy's chunks are predicted) of the behaviour-cloning
# agents on the shapes of the imitation simulators (docs/behaviour_cloning.md, "Acting latency per chunk"): batch 1,
# weights compiled in as constants, 4 x 512 networks, untrained (weights do not change the cost). The same commands
# as the CPU rows, run RUNS times; rows are appended to $OUT/bc-sims-latency.json.
#
#   OUT=out bash benchmarks/gpu/bc_latency.sh
#   CPUS=0,1 OUT=out bash benchmarks/gpu/bc_latency.sh   # pinned to two cores (taskset) while other work uses the rest
set -uo pipefail
OUT=${OUT:?set OUT}
RUNS=${RUNS:-1}
CPUS=${CPUS:-}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
pin=(); [ -n "$CPUS" ] && pin=(taskset -c "$CPUS")
mkdir -p "$OUT"
# observation-action sizes: Lift without chunks; Lift, Can/Square and Push-T with 2 observations and 16 actions
for run in $(seq 1 "$RUNS"); do
  for shape in "19 7" "38 112" "46 112" "10 32"; do
    set -- $shape
    "${pin[@]}" python3 -m benchmarks.latency --weights constant --batches 1 --agents sscp_bc flow_bc diffusion_bc bc \
      --obs-dim "$1" --action-dim "$2" --out "$OUT/bc-sims-latency.json" 2>&1 | grep -v "^WARNING" | tail -n 6
  done
done
