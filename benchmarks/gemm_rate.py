"""How fast this device multiplies matrices of the training step's shapes, measured alone (no other work between them).

    python benchmarks/gemm_rate.py --out benchmarks/results/gemm-rate-h200.json
    python benchmarks/gemm_rate.py --dtype bfloat16 --stack 8 16 --rows 1024 3072

A 4 x 512 network's matrix products over a batch are of two kinds, each measured for `stack` matrices at once (the
seeds and ensemble members that vmap batches into one call):
- 'activation': [rows, 512] @ [512, 512] (forward passes and input gradients);
- 'weight_grad': [512, rows] @ [rows, 512] (weight gradients, summed over the rows).
Each program chains `iters` products in one jitted loop so that none can be skipped, hoisted or merged (the
'weight_grad' chain adds 1 to its operand between products: with x, -x, x, ... XLA's simplifier merged the unrolled
products into one in five); a row whose trace shows fewer GEMM launches than products is marked `simplified` and
left out of the best rate. The rate is 2·rows·512·512·stack FLOP per product over the device time of the GEMM
kernels alone (read from a profiler trace: cuBLAS, CUTLASS or an XLA GEMM fusion), and over the loop's wall time
(UNROLL products per loop iteration). For 'weight_grad' read the wall rate: the products of one unrolled iteration
are independent and may overlap on the GPU, so their summed kernel time exceeds the wall time. The weights of the
'activation' chain are orthogonal, so values stay finite; the values do not change a GEMM's speed.
"""

import argparse
import collections
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks.profile_step import kind, traced_kernels  # noqa: E402
from benchmarks.throughput import device_name, emit, provenance  # noqa: E402

UNROLL = 10
"""Products per iteration of the device loop: each iteration of a GPU while loop costs ~10-15 us on an H200 (wall
13-22 us per product against 4-9 us of GEMM kernel time with no unrolling), which would hide the small products'
rate in the wall-clock column."""


def programs(stack: int, rows: int, width: int, dtype: str, iters: int):
    """Returns {kind: (jitted loop, its arguments)} for the two product kinds."""
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (stack, rows, width)).astype(dtype)
    q, _ = jnp.linalg.qr(jax.random.normal(kw, (stack, width, width)))
    w = q.astype(dtype)

    @jax.jit
    def activation(x, w):
        return jax.lax.fori_loop(0, iters, lambda _, x: jnp.einsum("sbi,sij->sbj", x, w), x, unroll=UNROLL)

    @jax.jit
    def weight_grad(x, w):
        def body(_, carry):
            x, acc = carry
            return x + 1, acc + jnp.einsum("sbi,sbj->sij", x, x)

        return jax.lax.fori_loop(0, iters, body, (x, jnp.zeros_like(w)), unroll=UNROLL)[1]

    return {"activation": (activation, (x, w)), "weight_grad": (weight_grad, (x, w))}


def gemm_kernel_seconds(fn, args) -> tuple[float, int]:
    """Returns (device seconds in GEMM kernels, GEMM kernel launches) of one call, from a profiler trace."""
    gemms = [ns for name, ns in traced_kernels(lambda: fn(*args))[0] if kind(name, {}) == "gemm"]
    return sum(gemms) / 1e9, len(gemms)


def measure(stack: int, rows: int, width: int, dtype: str, iters: int, repeats: int) -> list[dict]:
    found = []
    flop = 2.0 * stack * rows * width * width
    on_gpu = jax.default_backend() == "gpu"
    for name, (fn, args) in programs(stack, rows, width, dtype, iters).items():
        jax.block_until_ready(fn(*args))
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            walls.append(time.perf_counter() - start)
        wall = sorted(walls)[len(walls) // 2]
        row = {
            "benchmark": "gemm_rate",
            "product": name,
            "dtype": dtype,
            "stack": stack,
            "rows": rows,
            "width": width,
            "iters": iters,
            "tflops_wall": flop * iters / wall / 1e12,
            "us_per_product_wall": 1e6 * wall / iters,
        }
        if on_gpu:  # kernel names (and so the GEMM-only time) come from the GPU trace
            seconds, launches = gemm_kernel_seconds(fn, args)
            row |= {
                "simplified": launches < iters,
                "gemm_launches_per_product": launches / iters,
                "tflops_kernels": flop * iters / seconds / 1e12 if seconds else None,
                "us_per_product_kernels": 1e6 * seconds / iters,
            }
        found.append(row)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--stack", type=int, nargs="+", default=[1, 2, 8, 16], help="matrices multiplied in one call")
    p.add_argument("--rows", type=int, nargs="+", default=[1024, 2048, 3072])
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--iters", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    rows: list[dict] = []
    common = {"device": device_name(), "jax": jax.__version__, **provenance()}
    for dtype in a.dtype:
        for stack in a.stack:
            for n in a.rows:
                for row in measure(stack, n, a.width, dtype, a.iters, a.repeats):
                    emit(row | common, rows, old, a.out)
    best = collections.defaultdict(float)
    for r in rows:
        if not r.get("simplified"):
            best[r["dtype"]] = max(best[r["dtype"]], r.get("tflops_kernels") or r["tflops_wall"])
    print("best TFLOP/s per dtype:", {k: round(v, 3) for k, v in best.items()})


if __name__ == "__main__":
    main()
