"""Acting latency and throughput of every registered agent, as JSON rows (one per agent × device × batch).

Each agent is created with its default config, except that every *hidden_dims field is set to --hidden (4 × 512 by
default: the paper size of SSCP, FQL and the OGBench baselines; Diffusion-QL's own is 3 × 256; the goal-conditioned
agents' is 3 × 512), on synthetic cube-double shapes (observation 40, action 5; --obs-dim and --action-dim change
them). Goal-conditioned agents also get a goal, of the observation's size, with every call. Weights do not change the
cost, so agents are untrained.
`sample_actions` is jitted two ways (--weights): with the agent as an argument, as training and evaluation call it
(every call flattens the whole agent, optimiser state included), and with the agent closed over, as a frozen
deployed policy (the weights are constants of the compiled program), or (--weights exported) as the file `sscp
export` writes, loaded back with sscp.runtime (jax.export, weights baked in, cpu and cuda lowerings, symbolic batch;
each call also draws its noise key as an input), or (--weights numpy: sscp, sscp_bc, flow_bc and dql) as the file
`sscp export --format numpy` writes, run by sscp.runtime_numpy (numpy only: the time embedding folded into the first
layer, all the noise drawn with numpy's generator inside each call), or (--weights numpy-2-cores) the same loaded
with cores=2 (a helper process spinning on the second core computes half of every layer of batch-1 calls; larger
batches run on the calling core while it spins). Each timed call hands over a host NumPy observation batch and ends
with np.asarray(actions): the transfers are included. Rows record the 1-minute load average and OPENBLAS_NUM_THREADS
(which sets numpy's BLAS threads). Reported: median and p90 over --calls timed calls after --warmup untimed ones, and
actions per second (batch / median).

    python -m benchmarks.latency --agents all --out benchmarks/results/latency-cpu.json
    python -m benchmarks.latency --agents gc_sscp hiql --hidden 512 512 512 --obs-dim 2 --action-dim 2
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from benchmarks.throughput import commit, device_name, emit, peak_memory_bytes, synthetic_data
from sscp import runtime, runtime_numpy
from sscp.agents import AGENTS, get_agent, is_goal_conditioned
from sscp.data.goals import example_goal_batch
from sscp.export import export_policy, numpy_exportable, numpy_policy

# Network calls per action of each agent's sample_actions, from its config. GC-SSCP: φ([s; g]), then its one actor
# call; HIQL: the high-level actor, then the low-level one.
NETWORK_CALLS: dict[str, Callable] = {
    "sscp": lambda c: c.sample_steps,
    "sscp_bc": lambda c: c.sample_steps,
    "bc": lambda c: 1,
    "flow_bc": lambda c: c.flow_steps,
    "fql": lambda c: 1,
    "rebrac": lambda c: 1,
    "iql": lambda c: 1,
    "dql": lambda c: c.diffusion_steps,
    "diffusion_bc": lambda c: c.sample_steps,
    "gc_sscp": lambda c: 2,
    "gcbc": lambda c: 1,
    "gcivl": lambda c: 1,
    "hiql": lambda c: 2,
}


def make_agent(name: str, hidden: tuple[int, ...], example_batch: dict):
    """Returns (agent, config, names of the hidden-size fields set to hidden) for the agent's default config."""
    agent_cls, config_cls = get_agent(name)
    fields = [f.name for f in dataclasses.fields(config_cls) if f.name.endswith("hidden_dims")]
    config = config_cls(**dict.fromkeys(fields, hidden))
    return agent_cls.create(jax.random.PRNGKey(0), example_batch, config), config, fields


def make_act(
    agent, weights: str, obs_dim: int = 40, action_dim: int = 5, goal_dim: int | None = None, name: str = "sscp"
) -> Callable:
    """Returns act(key, obs[, goals]) -> actions: jitted sample_actions with the agent as an argument or as a
    constant, or ("exported") the policy file `sscp export` writes, serialised, loaded back and called through
    sscp.runtime, or ("numpy", "numpy-2-cores") the file `sscp export --format numpy` writes, run by
    sscp.runtime_numpy on one or two cores with its own noise (the key is unused). Goal-conditioned agents (goal_dim
    set) take goals too."""
    if weights in ("numpy", "numpy-2-cores"):
        arrays, header = numpy_policy(agent, name, obs_dim)
        cores = 2 if weights == "numpy-2-cores" else 1
        policy = runtime_numpy.Policy(*runtime_numpy.unpack(runtime_numpy.pack(header, arrays)), cores=cores)
        return lambda key, *inputs: policy(*inputs)
    if weights == "argument":
        jitted = jax.jit(lambda agent, key, *inputs: agent.sample_actions(*inputs, key))
        return lambda key, *inputs: jitted(agent, key, *inputs)
    if weights == "exported":
        program, header = export_policy(agent, obs_dim, action_dim, goal_dim)
        header, body = runtime.unpack(runtime.pack(header, program.serialize()))
        policy = runtime.Policy(header, jax.export.deserialize(bytearray(body)))
        return lambda key, *inputs: policy(*inputs, key=key)
    return jax.jit(lambda key, *inputs: agent.sample_actions(*inputs, key))


def time_calls(act: Callable, inputs: list[tuple[np.ndarray, ...]], warmup: int) -> np.ndarray:
    """Returns the wall seconds of act on each of inputs[warmup:] (an observation batch, and a goal batch for
    goal-conditioned agents), after untimed calls on the first warmup."""
    key = jax.random.PRNGKey(1)
    times = []
    for i, arrays in enumerate(inputs):
        start = time.perf_counter()
        np.asarray(act(key, *arrays))  # host arrays in, a host array out, as a controller would use them
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return np.asarray(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", nargs="+", default=["all"], help="agent names, or all (every registered agent)")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 1024])
    p.add_argument(
        "--weights",
        nargs="+",
        default=["argument", "constant"],
        choices=["argument", "constant", "exported", "numpy", "numpy-2-cores"],
    )
    p.add_argument("--calls", type=int, default=500, help="timed calls at batch 1 (larger batches: --big-calls)")
    p.add_argument("--big-calls", type=int, default=50, help="timed calls at batches above 1")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls first (the first one compiles)")
    p.add_argument("--obs-dim", type=int, default=40, help="observation (and goal) size")
    p.add_argument("--action-dim", type=int, default=5, help="action size")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (rows are appended to a list)")
    a = p.parse_args()
    names = list(AGENTS) if a.agents == ["all"] else a.agents
    hidden = tuple(a.hidden)
    example = synthetic_data(1024, a.obs_dim, a.action_dim).example_batch()
    goal_example = example_goal_batch(a.obs_dim, a.action_dim)
    rng = np.random.default_rng(0)
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    rows: list[dict] = []
    for name in names:
        goal_dim = a.obs_dim if is_goal_conditioned(name) else None  # OGBench goals are observations
        agent, config, fields = make_agent(name, hidden, goal_example if goal_dim else example)
        for weights, batch in [(w, b) for w in a.weights for b in a.batches]:
            if weights.startswith("numpy") and name not in numpy_exportable():
                continue  # the numpy runtime runs one MLP called k times: sscp, sscp_bc, flow_bc, dql
            calls = a.calls if batch == 1 else a.big_calls
            shape = (a.warmup + calls, batch, a.obs_dim)
            streams = [rng.standard_normal(shape, dtype=np.float32) for _ in range(2 if goal_dim else 1)]
            act = make_act(agent, weights, a.obs_dim, a.action_dim, goal_dim, name)
            times = time_calls(act, list(zip(*streams, strict=True)), a.warmup)
            del act  # a numpy-2-cores policy's helper process stops here, before the next row
            median = float(np.median(times))
            row = {
                "agent": name,
                "device": device_name(),
                "batch": batch,
                "weights": weights,
                "exported": weights == "exported",
                "hidden": list(hidden),
                "hidden_fields": fields,
                "obs_dim": a.obs_dim,
                "action_dim": a.action_dim,
                "goal_conditioned": goal_dim is not None,
                "network_calls_per_action": NETWORK_CALLS[name](config) if name in NETWORK_CALLS else None,
                "latency_ms": 1000 * median,
                "latency_p90_ms": 1000 * float(np.percentile(times, 90)),
                "latency_per_action_ms": 1000 * median / batch,
                "actions_per_sec": batch / median,
                "timed_calls": calls,
                "peak_memory_bytes": peak_memory_bytes(),
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
                "load_average_1min": os.getloadavg()[0],
                "jax": jax.__version__,
                "commit": commit(),
                "date": time.strftime("%Y-%m-%d"),
                "command": "python -m benchmarks.latency " + " ".join(sys.argv[1:]),
            }
            emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
