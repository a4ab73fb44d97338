#!/usr/bin/env bash
# SSCP's training throughput (benchmarks/throughput.py: batch 1024, 4 x 512, 1 and 8 seeds) under XLA GPU flag sets
# that change only how the compiled step is scheduled, not its arithmetic: one process per flag set (XLA_FLAGS is
# read once per process), every row with its flags in `xla_flags`, all into one JSON file.
#
#   OUT=/tmp/out bash benchmarks/gpu/throughput_flags.sh            # -> $OUT/throughput-flags.json
#   RESULT=path.json LIMIT_S=150 TRANSITIONS=200000 ...             # output file, per-process time limit, data size
#   EXTRA="--hidden 32 32 --batch 64 --chunk 50 --repeats 1" ...      # more throughput.py options (a CPU smoke test)
#   SETS=combos ...                                                 # CONCURRENT combined with the speed options
#
# The sets: the default; CUDA-graph command buffers scheduled CONCURRENT (independent kernels of a step may overlap
# on the GPU instead of running one after another, XLA's default LHS order); the same with the scan's while loop
# captured in the graph; Triton GEMM fusions for every matrix product; and the named speed options under CONCURRENT
# (SETS=flags, the default). SETS=combos: CONCURRENT with float32 and bf16, both diagnostics off, the loop captured,
# the scan unrolled 5x.
set -uo pipefail
OUT=${OUT:?set OUT}
RESULT=${RESULT:-$OUT/throughput-flags.json}
LIMIT_S=${LIMIT_S:-180}
read -r -a extra <<<"${EXTRA:-}"
common=(--transitions "${TRANSITIONS:-200000}" --out "$RESULT" "${extra[@]}")
concurrent="--xla_gpu_command_buffer_scheduling_mode=CONCURRENT"
graph_loop="--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL"
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
export SSCP_XLA_DEFAULTS=0  # each set is exactly its flags: sscp adds none of its own (sscp/__init__.py)
mkdir -p "$(dirname "$RESULT")"

measure() {  # FLAGS ARGS...: one throughput.py process under XLA_FLAGS=FLAGS
  local flags=$1
  shift
  echo "== XLA_FLAGS='$flags' $*"
  XLA_FLAGS="$flags" timeout "$LIMIT_S" python3 -m benchmarks.throughput "${common[@]}" "$@" >"$RESULT.log" 2>&1 \
    || { echo "  (this set failed or ran past ${LIMIT_S}s)"; grep -v "^WARNING" "$RESULT.log" | tail -n 3; }
}

fast=(--grad-norm 0 --one-step-mse 0)  # both diagnostics off
case "${SETS:-flags}" in
  flags)  # the flag sets alone (measured 2026-11-27)
    measure "" --seeds 1 8 --grad-norm 1 0
    measure "$concurrent" --seeds 1 8
    measure "$concurrent $graph_loop" --seeds 1 8
    measure "--xla_gpu_triton_gemm_any=true" --seeds 1
    measure "$concurrent" --seeds 1 8 --compute-dtype bfloat16 "${fast[@]}" ;;
  combos)  # CONCURRENT with the other speed options: float32 and bf16, the loop in the graph, unrolling
    measure "" --seeds 1 8
    measure "$concurrent" --seeds 1 8 "${fast[@]}"
    measure "$concurrent $graph_loop" --seeds 1 8 --compute-dtype float32 bfloat16 "${fast[@]}"
    measure "$concurrent $graph_loop" --seeds 1 8 --compute-dtype bfloat16 "${fast[@]}" --unroll 5 ;;
  *) echo "unknown SETS=${SETS} (flags, combos)"; exit 2 ;;
esac

python3 - "$RESULT" <<'EOF'
import json, sys
for r in json.load(open(sys.argv[1])):
    print(f"{r['xla_flags'] or 'default':<100} seeds {r['seeds']} {r['compute_dtype']:<8} grad_norm {r['grad_norm']} "
          f"one_step_mse {r['one_step_mse']}: {r['updates_per_sec']:8,.0f} updates/s")
EOF
