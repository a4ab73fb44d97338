"""Training throughput (updates/s after compilation) and acting latency of an agent, as JSON rows.

Synthetic data with cube-double shapes (obs 40, action 5, 1M transitions), the protocol of docs/benchmarks.md:
the real training step (on-device sampling + update, K steps per lax.scan call, seeds vmapped).

    python benchmarks/throughput.py --seeds 1 8 --out benchmarks/results/throughput-h100.json
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

from sscp.agents import get_agent
from sscp.data.dataset import OfflineData
from sscp.train import init_agents, make_act_fn, make_step_fn, make_train_chunk


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


def setup(agent_name: str, seeds: int, data: OfflineData, overrides: dict, unroll: int = 1):
    """Returns (agents for seeds 0..seeds-1, their task indices, the jitted training chunk), built as in training."""
    agent_cls, config_cls = get_agent(agent_name)
    cfg = config_cls(**overrides)
    agents = init_agents(agent_cls, cfg, data.example_batch(), list(range(seeds)))
    tasks = jnp.zeros(seeds, jnp.int32)
    return agents, tasks, make_train_chunk(make_step_fn(cfg.batch_size, False), unroll)


def measure(
    agent_name: str, seeds: int, data: OfflineData, overrides: dict, chunk: int, repeats: int, unroll: int = 1
) -> dict:
    """Returns updates/s (aggregate and per seed) of the real training step, after one compile-and-warm-up call."""
    agents, tasks, train_chunk = setup(agent_name, seeds, data, overrides, unroll)
    agents, info = train_chunk(agents, tasks, data, chunk)
    jax.block_until_ready(info)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        agents, info = train_chunk(agents, tasks, data, chunk)
        jax.block_until_ready(info)
        times.append(time.perf_counter() - start)
    loss = float(np.mean(jax.device_get(info["critic_loss"])))
    med = float(np.median(times))
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
    return {
        "updates_per_sec": seeds * chunk / med,
        "updates_per_sec_per_seed": chunk / med,
        "latency_ms": 1000 * float(np.median(lat)),
        "finite": bool(np.isfinite(loss)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", default="sscp")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=1000, help="updates per jitted lax.scan call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", nargs="+", default=["default"], help="matmul precisions to compare")
    p.add_argument("--flat-optimizer", nargs="+", type=int, default=[1], help="1/0: Adam on one flat vector or not")
    p.add_argument("--compute-dtype", nargs="+", default=["float32"], help="agent compute dtypes to compare")
    p.add_argument("--one-step-mse", nargs="+", type=int, default=[1], help="1/0: log the one_step_mse diagnostic")
    p.add_argument("--fuse-network-calls", nargs="+", type=int, default=[0], help="1/0: batched network queries")
    p.add_argument("--unroll", type=int, default=1, help="updates per loop iteration of the scan")
    p.add_argument("--out", type=Path, default=None, help="JSON file to write (rows are appended to a list)")
    a = p.parse_args()
    data = synthetic_data(a.transitions, 40, 5)
    hidden = tuple(a.hidden)
    overrides = {"batch_size": a.batch, "actor_hidden_dims": hidden, "critic_hidden_dims": hidden}
    rows: list[dict] = []
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    variants = [
        (p, f, dt, m, fu, s)
        for p in a.precision
        for f in a.flat_optimizer
        for dt in a.compute_dtype
        for m in a.one_step_mse
        for fu in a.fuse_network_calls
        for s in a.seeds
    ]
    for precision, flat, dtype, mse, fuse, seeds in variants:
        jax.config.update("jax_default_matmul_precision", None if precision == "default" else precision)
        options = {
            **overrides,
            "flat_optimizer": bool(flat),
            "compute_dtype": dtype,
            "log_one_step_mse": bool(mse),
            "fuse_network_calls": bool(fuse),
        }
        res = measure(a.agent, seeds, data, options, a.chunk, a.repeats, a.unroll)
        row = {
            "agent": a.agent,
            "device": device_name(),
            "batch": a.batch,
            "hidden": list(hidden),
            "seeds": seeds,
            "matmul_precision": precision,
            "flat_optimizer": bool(flat),
            "compute_dtype": dtype,
            "one_step_mse": bool(mse),
            "fuse_network_calls": bool(fuse),
            "scan_unroll": a.unroll,
            **res,
            "latency_batch": 1,
            "peak_memory_bytes": peak_memory_bytes(),
            "jax": jax.__version__,
            "commit": commit(),
            "date": time.strftime("%Y-%m-%d"),
            "command": "python " + " ".join(sys.argv),
        }
        emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
