"""Where the online loop's time goes, piece by piece, as JSON rows (docs/online.md, "Where the time goes").

Builds the real online phase (sscp.train.Trainer + sscp.online_phase.OnlinePhase) for one env id and R runs, fills
every run's replay buffer with FILL random transitions, then times each piece of a chunk of K env steps, per env step:
  env          stepping every run's env (OnlineEnvs.step)
  host_act     the host's action for every run from its CPU copy of the agents (--env-steps-per-call K > 1)
  chunk_call   the device call that adds K transitions and makes their K x utd updates, dispatch to finish
  updates_only the same K x utd vmapped updates without the adds, each run sampling its own buffer
  offline      the same updates sampling one shared dataset (the offline phase's make_update_scan; the
               throughput benchmark's step)
  refresh      refreshing the host's copy of the agents after a chunk (HostCopy.refresh)
  step_call    the paper's loop (--env-steps-per-call 1): one call per env step with the actions fetched back

    python benchmarks/online_loop.py --env HalfCheetah-v5 --runs 1 2 4 --chunk 50 --out benchmarks/results/X.json
    python benchmarks/online_loop.py --small ...         # tiny networks, a CPU smoke test
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.throughput import device_name, emit, peak_memory_bytes, provenance  # noqa: E402
from sscp.data.dataset import OfflineData  # noqa: E402
from sscp.data.replay import OnlineSource  # noqa: E402
from sscp.online_phase import OnlinePhase  # noqa: E402
from sscp.steps import make_update_scan  # noqa: E402
from sscp.train import TrainConfig, Trainer  # noqa: E402

SMALL = {"batch_size": 32, "actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "time_embed_dim": 16}


def _median_ms(fn, repeats: int, per: int) -> float:
    """Returns the median over repeats of fn()'s wall time in ms, divided by per."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / per


def build(env: str, runs: int, chunk: int, fill: int, capacity: int, agent: str, overrides: dict, run_dir: str):
    """Returns (trainer, phase) for `runs` seeds of env, every buffer holding `fill` random transitions."""
    cfg = TrainConfig(
        agent=agent, env=(env,), online_steps=capacity, random_steps=0, seeds=tuple(range(runs)), run_dir=run_dir,
        env_steps_per_call=chunk, progress=False, eval_workers=0,
    )  # fmt: skip
    trainer = Trainer(cfg, overrides)
    phase = OnlinePhase(trainer)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((runs, fill, trainer.obs_dim), dtype=np.float32)
    saved = {
        "observations": obs,
        "actions": rng.uniform(-1, 1, (runs, fill, trainer.action_dim)).astype(np.float32),
        "rewards": rng.standard_normal((runs, fill), dtype=np.float32),
        "masks": np.ones((runs, fill), np.float32),
        "next_observations": obs + 0.01,
        "size": np.full(runs, fill, np.int32),
        "pointer": np.full(runs, fill % capacity, np.int32),
    }
    phase.buffers = phase.buffers.from_host(saved)
    return trainer, phase


def measure(a, runs: int) -> dict:
    """Returns ms per env step of every piece for `runs` runs (after one warm-up call of each)."""
    overrides = dict(SMALL) if a.small else {}
    with tempfile.TemporaryDirectory() as tmp:
        t, phase = build(a.env, runs, a.chunk, a.fill, a.capacity, a.agent, overrides, tmp)
        k, reps = a.chunk, a.repeats
        out: dict = {}
        phase.host.refresh(t.agents)
        out["env_ms"] = _median_ms(lambda: phase.envs.step(phase.actions), reps, 1)
        out["host_act_ms"] = _median_ms(phase._host_actions, max(reps, 20), 1)
        transitions = {key: np.stack([v] * k) for key, v in phase.envs.step(phase.actions).items()}
        call = phase._chunk_call(True)

        def chunk_call():
            t.agents, phase.buffers, info = call(t.agents, phase.buffers, t.tasks, t.data, transitions)
            jax.block_until_ready((t.agents, info))

        chunk_call()
        out["chunk_call_ms"] = _median_ms(chunk_call, reps, k)
        updates = _updates_fn(t)

        def updates_only():
            t.agents, info = updates(t.agents, t.tasks, phase.buffers, k)
            jax.block_until_ready((t.agents, info))

        updates_only()
        out["updates_only_ms"] = _median_ms(updates_only, reps, k)
        shared = _shared_data(phase.buffers, a.fill)
        offline = make_update_scan(t.step_fn)

        def offline_updates():
            t.agents, info = offline(t.agents, t.tasks, shared, k)
            jax.block_until_ready((t.agents, info))

        offline_updates()
        out["offline_ms"] = _median_ms(offline_updates, reps, k)
        out["refresh_ms"] = _median_ms(lambda: phase.host.refresh(t.agents), reps, k)
        step = phase._call(True)
        obs = phase.envs.obs
        one = {key: v[0] for key, v in transitions.items()}

        def step_call():
            t.agents, phase.buffers, actions, info = step(
                t.agents, phase.buffers, t.tasks, t.data, one, obs, phase.act_keys, t.env_steps
            )
            jax.device_get((actions, info))

        step_call()
        out["step_call_ms"] = _median_ms(lambda: [step_call() for _ in range(k)], reps, k)
        phase.close()
    out["chunk_total_ms"] = out["env_ms"] + out["host_act_ms"] + out["chunk_call_ms"] + out["refresh_ms"]
    out["env_steps_per_sec_chunked"] = 1e3 / out["chunk_total_ms"]
    out["env_steps_per_sec_overlap_bound"] = 1e3 / max(out["env_ms"] + out["host_act_ms"], out["chunk_call_ms"])
    out["env_steps_per_sec_unchunked"] = 1e3 / (out["env_ms"] + out["step_call_ms"])
    return out


def _shared_data(buffers, n: int) -> OfflineData:
    """Returns run 0's first n buffered transitions as one dataset that every run samples."""
    return OfflineData(
        observations=buffers.observations[0, :n],
        actions=buffers.actions[0, :n],
        next_observations=buffers.next_observations[0, :n],
        rewards=buffers.rewards[0, None, :n],
        masks=buffers.masks[0, None, :n],
        env_names=("random",),
    )


def _updates_fn(t):
    """Returns updates(agents, tasks, buffers, n): n vmapped updates of every run on its own buffer, no adds."""

    def run(agents, tasks, buffers, n):
        def body(carry, _):
            one = lambda ag, ta, bu: t.step_fn(ag, ta, OnlineSource(bu, t.data, t.cfg.online_buffer))  # noqa: E731
            return jax.vmap(one)(carry, tasks, buffers)

        return jax.lax.scan(body, agents, None, length=n)

    return jax.jit(run, static_argnums=3, donate_argnums=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--agent", default="sscp")
    p.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--chunk", type=int, default=50, help="env steps per device call (--env-steps-per-call)")
    p.add_argument("--fill", type=int, default=100_000, help="random transitions in every run's buffer")
    p.add_argument("--capacity", type=int, default=300_000, help="buffer capacity (--online-steps)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--small", action="store_true", help="tiny networks (a smoke test)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    rows: list[dict] = []
    for runs in a.runs:
        res = measure(a, runs)
        row = {
            "benchmark": "online_loop",
            "agent": a.agent,
            "env": a.env,
            "runs": runs,
            "chunk": a.chunk,
            "buffer_fill": a.fill,
            "buffer_capacity": a.capacity,
            "network": "2 x 16, batch 32" if a.small else "agent default",
            "device": device_name(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            **{key: round(v, 4) for key, v in res.items()},
            "peak_memory_bytes": peak_memory_bytes(),
            "jax": jax.__version__,
            **provenance(),
        }
        emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
