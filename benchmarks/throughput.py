"""Training throughput (updates/s after compilation) and acting latency of agents, as JSON rows.

Synthetic data with cube-double shapes (obs 40, action 5, 1M transitions), the protocol of docs/performance.md:
the real training step (on-device sampling + update, K steps per lax.scan call, seeds vmapped).

    python benchmarks/throughput.py --seeds 1 8 --out benchmarks/results/throughput-h100.json
    python benchmarks/throughput.py --agent all --seeds 1 --out ...          # every agent, its own defaults
    python benchmarks/throughput.py --seeds 16 --devices 1 2 --out ...       # runs split over 2 GPUs vs 1

The speed options (--compute-dtype ... --matmul-norm-grads) apply to sscp; other agents train with their own default
networks at --batch. Goal-conditioned agents get synthetic trajectories (100 steps each) and no latency column
(benchmarks/latency.py measures acting for every agent).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from sscp.agents import AGENTS, get_agent, is_goal_conditioned
from sscp.data.dataset import OfflineData
from sscp.data.goals import GoalData
from sscp.steps import (
    init_agents,
    make_act_fn,
    make_step_fn,
    make_update_scan,
    place_data,
    place_runs,
    run_sharding,
)


def device_name() -> str:
    """Returns e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (2 cores)'."""
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    return d.device_kind


def peak_memory_bytes() -> int:
    """Returns the device's peak allocated bytes (GPU) or this process's peak RSS (CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def commit() -> str:
    """Returns $SSCP_COMMIT if set (machines without git), else the checkout's short commit hash."""
    if os.environ.get("SSCP_COMMIT"):
        return os.environ["SSCP_COMMIT"]
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict:
    """Returns the commit, date and command line that a results row records."""
    return {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "command": "python " + " ".join(sys.argv)}


def emit(row: dict, rows: list[dict], old: list[dict], out: Path | None) -> None:
    """Prints row, appends it to rows and rewrites out (old rows + rows) after every row, so a run cut short keeps
    what it measured."""
    rows.append(row)
    print(json.dumps(row), flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(old + rows, indent=2) + "\n")


def synthetic_data(n: int, obs_dim: int, act_dim: int, tasks: int = 1) -> OfflineData:
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, obs_dim), dtype=np.float32)
    return OfflineData(
        observations=jnp.asarray(obs),
        actions=jnp.asarray(np.tanh(rng.standard_normal((n, act_dim), dtype=np.float32))),
        next_observations=jnp.asarray(obs + 0.01),
        rewards=jnp.asarray(-(rng.random((tasks, n)) < 0.9).astype(np.float32)),
        masks=jnp.ones((tasks, n), jnp.float32),
        env_names=("synthetic",) * tasks,
    )


def synthetic_goal_data(agent_name: str, n: int, obs_dim: int, act_dim: int) -> GoalData:
    """Returns n synthetic transitions in trajectories of 100 steps, with the agent's goal sampling."""
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((n, obs_dim), dtype=np.float32)
    arrays = {
        "observations": obs,
        "actions": np.tanh(rng.standard_normal((n, act_dim), dtype=np.float32)),
        "next_observations": obs + 0.01,
        "terminals": (np.arange(n) % 100 == 99).astype(np.float32),
    }
    return GoalData.from_arrays(arrays, get_agent(agent_name)[1]().sampling(), "synthetic")


def setup(agent_name: str, seeds: int, data, overrides: dict, unroll: int = 1, devices: int = 1):
    """Returns (agents for seeds 0..seeds-1, their task indices, data, the jitted training chunk), built and placed
    on `devices` devices as in training."""
    agent_cls, config_cls = get_agent(agent_name)
    cfg = config_cls(**overrides)
    agents = init_agents(agent_cls, cfg, data.example_batch(), list(range(seeds)))
    tasks = jnp.zeros(seeds, jnp.int32)
    sharding = run_sharding(seeds, devices)
    agents, tasks, data = place_runs(agents, sharding), place_runs(tasks, sharding), place_data(data, sharding)
    return agents, tasks, data, make_update_scan(make_step_fn(cfg.batch_size, False), unroll)


def measure(
    agent_name: str,
    seeds: int,
    data,
    overrides: dict,
    chunk: int,
    repeats: int,
    unroll: int = 1,
    devices: int = 1,
) -> dict:
    """Returns updates/s (aggregate and per seed) of the real training step, after one compile-and-warm-up call."""
    start = time.perf_counter()
    agents, tasks, data, update_scan = setup(agent_name, seeds, data, overrides, unroll, devices)
    agents, info = update_scan(agents, tasks, data, chunk)
    jax.block_until_ready(info)
    first_call = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agents, info = update_scan(agents, tasks, data, chunk)
        jax.block_until_ready(info)
        times.append(time.perf_counter() - start)
    loss = float(np.mean(jax.device_get(next(iter(info.values())))))
    med = float(np.median(times))
    speed = {
        "updates_per_sec": seeds * chunk / med,
        "updates_per_sec_per_seed": chunk / med,
        "first_call_s": first_call,
        "finite": bool(np.isfinite(loss)),
    }
    if is_goal_conditioned(agent_name):
        return speed
    act = make_act_fn()
    obs = data.observations[:1]
    runs = jnp.zeros(1, jnp.int32)
    key = jax.random.PRNGKey(1)
    np.asarray(act(agents, runs, obs, key))
    lat = []
    for i in range(300):
        o = np.asarray(data.observations[i : i + 1])  # a host observation, as a controller would send it
        start = time.perf_counter()
        np.asarray(act(agents, runs, o, key))
        lat.append(time.perf_counter() - start)
    return {**speed, "latency_ms": 1000 * float(np.median(lat))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", nargs="+", default=["sscp"], help="agent names, or all")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=1000, help="updates per jitted lax.scan call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compute-dtype", nargs="+", default=["float32"], help="agent compute dtypes to compare")
    p.add_argument("--one-step-mse", nargs="+", type=int, default=[1], help="1/0: log the one_step_mse diagnostic")
    p.add_argument("--grad-norm", nargs="+", type=int, default=[1], help="1/0: log the grad_norm diagnostic")
    p.add_argument(
        "--matmul-norm-grads", nargs="+", type=int, default=[0], help="1/0: critics' LayerNorm grads as matmuls"
    )
    p.add_argument("--unroll", type=int, nargs="+", default=[1], help="updates per loop iteration of the scan")
    p.add_argument("--devices", type=int, nargs="+", default=[1], help="devices the seeds are split over")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (rows are appended to a list)")
    a = p.parse_args()
    agents = sorted(AGENTS) if a.agent == ["all"] else a.agent
    for name in agents:
        get_agent(name)  # unknown names fail before any measurement
    offline = synthetic_data(a.transitions, 40, 5)
    hidden = tuple(a.hidden)
    rows: list[dict] = []
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    for agent in agents:
        if agent == "sscp":
            variants = [
                (dt, m, g, s, d, u, mm)
                for mm in a.matmul_norm_grads
                for u in a.unroll
                for dt in a.compute_dtype
                for m in a.one_step_mse
                for g in a.grad_norm
                for s in a.seeds
                for d in a.devices
            ]
        else:  # the speed options are sscp's; other agents keep their own defaults
            variants = [(None, None, None, s, d, a.unroll[0], None) for s in a.seeds for d in a.devices]
        data = synthetic_goal_data(agent, a.transitions, 40, 5) if is_goal_conditioned(agent) else offline
        for variant in variants:
            measure_variant(a, agent, hidden, data, variant, rows, old)


def measure_variant(a, agent: str, hidden: tuple, data, variant: tuple, rows: list, old: list) -> None:
    """Measures one (agent, options, seeds, devices) variant and emits its row."""
    dtype, mse, grad_norm, seeds, devices, unroll, matmul_norm = variant
    if agent == "sscp":
        options = {
            "batch_size": a.batch,
            "actor_hidden_dims": hidden,
            "critic_hidden_dims": hidden,
            "compute_dtype": dtype,
            "log_one_step_mse": bool(mse),
            "log_grad_norm": bool(grad_norm),
            "matmul_norm_grads": bool(matmul_norm),
        }
    else:
        options = {"batch_size": a.batch}
    res = measure(agent, seeds, data, options, a.chunk, a.repeats, unroll, devices)
    row = {
        "agent": agent,
        "device": device_name(),
        "batch": a.batch,
        "hidden": list(hidden) if agent == "sscp" else "agent default",
        "seeds": seeds,
        "devices": devices,
        "matmul_precision": "default",  # rows of earlier versions compared other precisions and per-array Adam
        "flat_optimizer": True,
        "compute_dtype": dtype,
        "one_step_mse": mse if mse is None else bool(mse),
        "fuse_network_calls": False,
        "grad_norm": grad_norm if grad_norm is None else bool(grad_norm),
        "scan_unroll": unroll,
        "matmul_norm_grads": matmul_norm if matmul_norm is None else bool(matmul_norm),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        **res,
        "latency_batch": 1,
        "peak_memory_bytes": peak_memory_bytes(),
        "jax": jax.__version__,
        **provenance(),
    }
    emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
