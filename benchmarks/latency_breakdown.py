"""Where one SSCP action's time goes at batch 1 on this machine, as JSON rows (one per measured piece).

The agent is benchmarks/latency.py's untrained 4 × 512 SSCP on observation 40 / action 5. Every piece is timed as
the latency benchmark times a call (a host array in, np.asarray out; median and p90 of --calls after --warmup):
the JAX pieces peel the jitted frozen policy apart (dispatch of an empty program, the threefry noise, the network
with the noise as an input, the network with the time/step embedding folded into the first layer, one 512 × 512
layer), the numpy pieces do the same for sscp.runtime_numpy (one layer with its weights in cache, every layer's
matrix product in sequence as one action streams them, one mish), and the last row is the numpy policy on two cores
(cores=2). Rows give the bytes one action reads, and the matrix products' row its read bandwidth.

    python -m benchmarks.latency_breakdown --out benchmarks/results/acting-breakdown-cpu.json
"""

import argparse
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.latency import make_agent
from benchmarks.throughput import commit, device_name, emit, synthetic_data
from sscp import flow, runtime_numpy
from sscp.export import numpy_policy


def time_call(fn, calls: int, warmup: int) -> np.ndarray:
    """Returns the wall seconds of np.asarray(fn(obs)) on each of `calls` fresh [1, 40] observations, after
    `warmup` untimed calls."""
    inputs = np.random.default_rng(0).standard_normal((warmup + calls, 1, 40), dtype=np.float32)
    times = []
    for i, obs in enumerate(inputs):
        start = time.perf_counter()
        np.asarray(fn(obs))
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return np.asarray(times)


def pieces(agent, policy: runtime_numpy.Policy) -> list[tuple[str, str, object]]:
    """Returns (runtime, piece, fn(obs)) for every measured piece."""
    key = jax.random.PRNGKey(1)
    z = np.zeros((1, 5), np.float32)
    field = agent.field(agent.target_params["actor"])
    w = jnp.asarray(policy.layers[0][0])  # a 512 × 512 hidden layer
    h = np.zeros((1, 512), np.float32)
    w_host = policy.layers[0][0]
    kernels = [policy.input_kernel] + [k for k, _ in policy.layers]
    activations = [np.zeros((1, k.shape[0]), np.float32) for k in kernels]

    def folded(obs, z):  # the numpy policy's arithmetic in jax: embedding folded, noise an input
        out = jnp.concatenate([obs, z], axis=1) @ policy.input_kernel + policy.input_bias[0]
        for kernel, bias in policy.layers:
            out = jax.nn.mish(out) @ kernel + bias
        return jnp.clip(z + out, -1.0, 1.0)

    def each_layer(_):  # every matrix product of one action, on activations of the right sizes
        return [act @ kernel for act, kernel in zip(activations, kernels, strict=True)][-1]

    sample = jax.jit(lambda obs: agent.sample_actions(obs, key))
    noise = jax.jit(lambda: jax.random.normal(key, (1, 5)))
    network = jax.jit(lambda obs, z: flow.one_step_sample(field, obs, z))
    layer = jax.jit(lambda h: h @ w)  # h an input: a constant h would be folded away
    return [
        ("jax", "jitted no-op (dispatch and transfers)", jax.jit(lambda obs: obs + 1.0)),
        ("jax", "threefry noise [1, 5] alone", lambda obs: noise()),
        ("jax", "frozen policy (sample_actions, weights constant)", sample),
        ("jax", "network with the noise as an input", lambda obs: network(obs, z)),
        ("jax", "network, embedding folded, noise an input", jax.jit(lambda obs: folded(obs, z))),
        ("jax", "one 512 x 512 layer (matrix product)", lambda obs: layer(h)),
        ("numpy", "sscp.runtime_numpy policy (noise drawn inside)", policy),
        ("numpy", "one 512 x 512 layer, weights in cache", lambda obs: h @ w_host),
        ("numpy", "every layer's matrix product in sequence", each_layer),
        ("numpy", "mish on 512 numbers", lambda obs: runtime_numpy.mish(np.ones((1, 512), np.float32))),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (rows are appended to a list)")
    a = p.parse_args()
    example = synthetic_data(1024, 40, 5).example_batch()
    agent, _, _ = make_agent("sscp", (512, 512, 512, 512), example)
    arrays, header = numpy_policy(agent, "sscp", 40)
    policy = runtime_numpy.Policy(*runtime_numpy.unpack(runtime_numpy.pack(header, arrays)))
    # what one action reads: every kernel and bias, one row of the folded first-layer biases
    weight_bytes = sum(k.nbytes + b.nbytes for k, b in policy.layers) + policy.input_kernel.nbytes
    weight_bytes += policy.input_bias[0].nbytes
    rows: list[dict] = []
    base = {
        "device": device_name(),
        "network": "4 × 512",
        "weight_bytes": weight_bytes,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.latency_breakdown " + " ".join(sys.argv[1:]),
    }
    two_cores = ("numpy", "sscp.runtime_numpy policy, cores=2", None)  # started last: its helper spins meanwhile
    for runtime_name, piece, fn in [*pieces(agent, policy), two_cores]:
        if fn is None:
            fn = runtime_numpy.Policy(header, arrays, cores=2)
        times = time_call(fn, a.calls, a.warmup)
        row = {
            **base,
            "runtime": runtime_name,
            "piece": piece,
            "median_us": 1e6 * float(np.median(times)),
            "p90_us": 1e6 * float(np.percentile(times, 90)),
            "load_average_1min": os.getloadavg()[0],
        }
        if piece.startswith("every layer"):
            row["read_gb_per_s"] = weight_bytes / float(np.median(times)) / 1e9
        emit(row, rows, [], a.out)
    fn.close()  # the two-core policy, timed last: its helper stops


if __name__ == "__main__":
    main()
