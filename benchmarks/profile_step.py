"""Where the time of one training step goes on a GPU: kernel count and device time per step, top kernels.

python benchmarks/profile_step.py --seeds 1 8 --unroll 1 8 --out profile.json
python benchmarks/profile_step.py --seeds 1 --compute-dtype bfloat16 --grad-norm 0 --one-step-mse 0 --hlo-dir hlo/

Each top kernel that is an XLA fusion is named with what it computes: its output shape, the JAX operation it came
from (HLO metadata op_name) and the source line, read from the compiled program's text (--hlo-dir also keeps it).
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jax  # noqa: E402
from jax.profiler import ProfileData  # noqa: E402

from benchmarks.throughput import device_name, provenance, setup, synthetic_data  # noqa: E402

_LIBRARY_GEMM = re.compile(r"gemm|cutlass|cublas|xmma|nvjet")  # cuBLAS's kernels (nvjet_* since CUDA 12.8), CUTLASS
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\(.*?\)|\S+)\s+([\w\-]+)\(")


def hlo_instructions(text: str) -> dict[str, dict]:
    """Returns {instruction name: {shape, op, op_name, source}} for every instruction of an HLO module's text, each
    also under its kernel name (GPU traces name a fusion's kernel with '_' where HLO has '.')."""
    found = {}
    for line in text.splitlines():
        m = _INSTRUCTION.match(line)
        if not m:
            continue
        op_name = re.search(r'op_name="([^"]*)"', line)
        source = re.search(r'source_file="([^"]*)"\s+source_line=(\d+)', line)
        found[m.group(1)] = found[m.group(1).replace(".", "_")] = {
            "shape": m.group(2),
            "op": m.group(3),
            "op_name": op_name.group(1) if op_name else "",
            "source": f"{os.path.basename(source.group(1))}:{source.group(2)}" if source else "",
        }
    return found


def where(kernel: str, instructions: dict[str, dict]) -> str:
    """Returns the part of the model a kernel belongs to: its fusion's JAX op path without the jit/loop prefix and
    the final primitive (e.g. 'transpose(jvp(Ensemble))/vmap(members)/LayerNorm_3'), or '(library GEMM)' for
    cuBLAS/CUTLASS kernels, which the HLO text does not name."""
    found = instructions.get(kernel)
    if found is None:
        return "(library GEMM)" if _LIBRARY_GEMM.search(kernel) else "(unnamed)"
    path = re.sub(r"^(jit\(chunk\)/)?(while/body/)?(closed_call/)?(eval_jaxpr/)?", "", found["op_name"])
    return path.rsplit("/", 1)[0] if "/" in path else path or "(no op name)"


def kind(kernel: str, instructions: dict[str, dict]) -> str:
    """Returns what a kernel does: 'gemm' (cuBLAS/CUTLASS, or an XLA fusion around a dot), 'reduction', 'copy'
    (concatenations, copies, transposes and slices that only move data), 'elementwise' (XLA loop fusions) or 'other'."""
    if _LIBRARY_GEMM.search(kernel):
        return "gemm"
    if "reduce" in kernel:
        return "reduction"
    if re.search(r"concatenate|copy|transpose|slice", kernel):
        return "copy"
    if kernel.startswith(("loop_", "wrapped_")) or instructions.get(kernel, {}).get("op") == "fusion":
        return "elementwise"
    return "other"


def traced_kernels(call) -> tuple[list[tuple[str, int]], collections.Counter]:
    """Runs call() (waiting for its outputs) under the JAX profiler; returns its GPU kernels as (name, device ns) from
    the streams' trace lines, and the number of events on every GPU trace line. Empty on a CPU."""
    trace_dir = tempfile.mkdtemp()
    with jax.profiler.trace(trace_dir):
        jax.block_until_ready(call())
    events, lines = [], collections.Counter()
    for plane in ProfileData.from_file(glob.glob(trace_dir + "/**/*.xplane.pb", recursive=True)[0]).planes:
        if not plane.name.startswith("/device:GPU"):
            continue
        for line in plane.lines:
            found = list(line.events)
            lines[line.name] += len(found)
            if "stream" in line.name.lower():
                events += [(ev.name, ev.duration_ns) for ev in found]
    return events, lines


def profile(seeds: int, unroll: int, steps: int, data, overrides: dict, hlo_dir: str | None = None) -> dict:
    agents, tasks, data, chunk = setup("sscp", seeds, data, overrides, unroll)
    text = chunk.lower(agents, tasks, data, steps).compile().as_text()
    if hlo_dir:
        os.makedirs(hlo_dir, exist_ok=True)
        tag = "-".join(str(overrides.get(k, "")) for k in ("compute_dtype", "log_grad_norm", "log_one_step_mse"))
        with open(os.path.join(hlo_dir, f"seeds{seeds}-unroll{unroll}-{tag}.hlo.txt"), "w") as f:
            f.write(text)
    instructions = hlo_instructions(text)
    agents, info = chunk(agents, tasks, data, steps)
    jax.block_until_ready(info)
    start = time.perf_counter()
    agents, info = chunk(agents, tasks, data, steps)
    jax.block_until_ready(info)
    wall = time.perf_counter() - start
    kernels: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    events, lines = traced_kernels(lambda: chunk(agents, tasks, data, steps))
    for name, ns in events:
        kernels[name] += ns
        counts[name] += 1
    busy = sum(kernels.values()) / 1e9
    parts: collections.Counter = collections.Counter()
    parts_count: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    kinds_count: collections.Counter = collections.Counter()
    for name, ns in kernels.items():
        part = where(name, instructions)
        parts[part] += ns
        parts_count[part] += counts[name]
        what = kind(name, instructions)
        kinds[what] += ns
        kinds_count[what] += counts[name]
    return {
        "seeds": seeds,
        "unroll": unroll,
        "options": {k: v for k, v in overrides.items() if k not in ("actor_hidden_dims", "critic_hidden_dims")},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "updates_per_sec": seeds * steps / wall,
        "ms_per_step_wall": 1000 * wall / steps,
        "ms_per_step_kernels": 1000 * busy / steps,
        "kernels_per_step": sum(counts.values()) / steps,
        "trace_lines": dict(lines),
        "top": [(k, round(v / 1e6 / steps, 4), counts[k] // steps) for k, v in kernels.most_common(25)],
        "top_hlo": {k: instructions[k] for k, _ in kernels.most_common(40) if k in instructions},
        "by_part": [(k, round(v / 1e6 / steps, 4), parts_count[k] // steps) for k, v in parts.most_common(40)],
        "by_kind": {k: (round(v / 1e6 / steps, 4), kinds_count[k] // steps) for k, v in kinds.most_common()},
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--unroll", type=int, nargs="+", default=[1])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--compute-dtype", default="float32")
    p.add_argument("--grad-norm", type=int, default=1, help="1/0: log the grad_norm diagnostic")
    p.add_argument("--one-step-mse", type=int, default=1, help="1/0: log the one_step_mse diagnostic")
    p.add_argument("--matmul-norm-grads", type=int, default=0, help="1/0: critics' LayerNorm grads as matmuls")
    p.add_argument("--hlo-dir", default=None, help="also write each compiled program's HLO text here")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    data = synthetic_data(1_000_000, 40, 5)
    h = tuple(a.hidden)
    overrides = {
        "batch_size": a.batch,
        "actor_hidden_dims": h,
        "critic_hidden_dims": h,
        "compute_dtype": a.compute_dtype,
        "log_grad_norm": bool(a.grad_norm),
        "log_one_step_mse": bool(a.one_step_mse),
        "matmul_norm_grads": bool(a.matmul_norm_grads),
    }
    rows = []
    for s in a.seeds:
        for u in a.unroll:
            r = {**profile(s, u, a.steps, data, overrides, a.hlo_dir), "device": device_name(), "jax": jax.__version__}
            r.update(provenance())
            print(json.dumps({k: v for k, v in r.items() if k not in ("top", "top_hlo", "by_part", "trace_lines")}))
            print("   by kind (ms/step, kernels/step):", r["by_kind"])
            for part, ms, n in r["by_part"][:25]:
                print(f"   {ms:8.4f} ms/step  x{n:<4} {part[:150]}")
            for name, ms, n in r["top"][:15]:
                what = r["top_hlo"].get(name, {})
                print(
                    f"   {ms:8.4f} ms/step  x{n:<4} {name[:60]:<60} {what.get('shape', '')[:40]} "
                    f"{what.get('op_name', '')[-90:]} {what.get('source', '')}"
                )
            rows.append(r)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
