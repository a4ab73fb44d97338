"""How well does each policy class cover a multimodal action distribution, at 1 step and at k steps?

A state-conditioned toy: the state s ∈ [−1, 1] rotates 4 modes on a circle of radius 0.6 by the angle π·s/4;
data actions are a uniformly chosen mode plus N(0, 0.05²) noise. Each agent is trained by imitation on the same
data, then samples 64 actions for each of 64 test states. Metrics per (agent, steps):
- near-mode fraction: samples within 0.15 of some mode of their state;
- modes covered: mean over states of the number of modes that got ≥ 5 % of the samples (4 is perfect);
- energy distance between samples and fresh data samples, averaged over states (0 is perfect).

    python -m benchmarks.expressiveness --steps 5000 --out benchmarks/results/expressiveness-cpu.json \
        --png docs/expressiveness.png
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.throughput import commit, device_name
from sscp.agents import get_agent

MODES, RADIUS, NOISE = 4, 0.6, 0.05


def modes(s: np.ndarray) -> np.ndarray:
    """Returns the [len(s), MODES, 2] mode centres for states s [len(s)]."""
    angles = np.pi * s[:, None] / 4 + 2 * np.pi * np.arange(MODES)[None] / MODES
    return RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def sample_data(rng: np.random.Generator, s: np.ndarray) -> np.ndarray:
    """Returns one data action per state: a random mode plus Gaussian noise."""
    centre = modes(s)[np.arange(len(s)), rng.integers(0, MODES, len(s))]
    return (centre + NOISE * rng.standard_normal(centre.shape)).astype(np.float32)


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Returns the energy distance 2E|x−y| − E|x−x'| − E|y−y'| between two sample sets."""

    def mean_dist(a, b):
        return float(np.linalg.norm(a[:, None] - b[None], axis=-1).mean())

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def metrics(samples: np.ndarray, states: np.ndarray, rng: np.random.Generator) -> dict:
    """Returns near-mode fraction, modes covered and energy distance for samples [states, n, 2]."""
    centres = modes(states)
    dist = np.linalg.norm(samples[:, :, None] - centres[:, None], axis=-1)  # [S, n, MODES]
    nearest = dist.argmin(-1)
    near = dist.min(-1) < 0.15
    covered = [
        (np.bincount(nearest[i][near[i]], minlength=MODES) >= 0.05 * samples.shape[1]).sum() for i in range(len(states))
    ]
    energy = [
        energy_distance(samples[i], np.stack([sample_data(rng, np.full(1, s))[0] for _ in range(samples.shape[1])]))
        for i, s in enumerate(states)
    ]
    return {
        "near_mode_fraction": float(near.mean()),
        "modes_covered": float(np.mean(covered)),
        "energy_distance": float(np.mean(energy)),
    }


def train(name: str, overrides: dict, obs: np.ndarray, actions: np.ndarray, steps: int, batch: int, seed: int):
    """Returns the agent after `steps` imitation updates on (obs, actions)."""
    agent_cls, config_cls = get_agent(name)
    data = {"observations": jnp.asarray(obs), "actions": jnp.asarray(actions)}
    agent = agent_cls.create(jax.random.PRNGKey(seed), data, config_cls(**overrides))

    @jax.jit
    def run(agent, key):
        def body(agent, k):
            idx = jax.random.randint(k, (batch,), 0, obs.shape[0])
            return agent.update({k_: v[idx] for k_, v in data.items()})

        return jax.lax.scan(body, agent, jax.random.split(key, 500))

    for i in range(steps // 500):
        agent, info = run(agent, jax.random.PRNGKey(1000 + i))
    return agent, {k: float(v[-1]) for k, v in info.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000, help="imitation updates per agent (multiple of 500)")
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 256])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--k", type=int, default=10, help="the multi-step sampler's steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--png", type=Path, default=None)
    p.add_argument(
        "--agents", nargs="+", default=None, help="only these agents; their rows replace theirs in an existing --out"
    )
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    obs = rng.uniform(-1, 1, 50_000).astype(np.float32)
    actions = sample_data(rng, obs)
    states = np.linspace(-1, 1, 64).astype(np.float32)
    h = tuple(a.hidden)
    # (label, agent, training options, sampling options, steps shown)
    cases = [
        (
            "sscp_bc",
            "sscp_bc",
            {"hidden_dims": h, "batch_size": a.batch, "time_embed_dim": 64},
            "sample_steps",
            [1, a.k],
        ),
        ("flow_bc", "flow_bc", {"hidden_dims": h, "batch_size": a.batch}, "flow_steps", [1, a.k]),
        ("bc (Gaussian, sampled)", "bc", {"hidden_dims": h, "batch_size": a.batch, "deterministic": False}, None, [1]),
        ("diffusion_bc", "diffusion_bc", {"hidden_dims": h, "batch_size": a.batch}, "sample_steps", [1, 5, 50]),
    ]
    if a.agents:
        cases = [c for c in cases if c[1] in a.agents]
    rows, scatter = [], []
    for label, name, opts, step_field, step_list in cases:
        start = time.perf_counter()
        agent, info = train(name, opts, obs[:, None], actions, a.steps, a.batch, a.seed)
        seconds = time.perf_counter() - start
        config_cls = get_agent(name)[1]
        for k in step_list:
            sampler = agent if step_field is None else agent.replace(config=config_cls(**opts, **{step_field: k}))
            o = jnp.asarray(np.repeat(states, 64)[:, None])
            samples = np.asarray(sampler.sample_actions(o, jax.random.PRNGKey(7))).reshape(len(states), 64, 2)
            row = {
                "agent": label,
                "sampling_steps": k,
                **metrics(samples, states, np.random.default_rng(1)),
                "train_steps": a.steps,
                "train_seconds": seconds,
                "final_train_info": info,
                "hidden": list(h),
                "device": device_name(),
                "commit": commit(),
                "date": time.strftime("%Y-%m-%d"),
                "command": "python -m benchmarks.expressiveness " + " ".join(sys.argv[1:]),
            }
            rows.append(row)
            scatter.append((f"{label}, {k} step{'s' if k > 1 else ''}", samples))
            print(json.dumps({k_: v for k_, v in row.items() if k_ not in ("final_train_info",)}), flush=True)
    if a.out:
        if a.agents and a.out.exists():  # keep the other agents' rows, in their order, ahead of the new ones
            kept = [r for r in json.loads(a.out.read_text()) if r["agent"] not in {c[0] for c in cases}]
            rows = kept + rows
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=2) + "\n")
    if a.png:
        plot(scatter, states, actions, obs, a.png)


def plot(scatter, states, actions, obs, path: Path) -> None:
    """Writes one panel per (agent, steps): samples at three states, coloured by state, with the data beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [0, len(states) // 4, len(states) // 2]  # s = −1, −0.5, 0: modes rotated by −45°, −22.5°, 0°
    colours = ["tab:blue", "tab:orange", "tab:green"]
    fig, axes = plt.subplots(1, len(scatter) + 1, figsize=(3 * (len(scatter) + 1), 3.2))
    for i, c in zip(picks, colours, strict=True):
        near = np.abs(obs - states[i]) < 0.02
        axes[0].scatter(*actions[near][:200].T, s=3, c=c, label=f"s = {states[i]:.1f}")
    axes[0].set_title("data")
    axes[0].legend(fontsize=6)
    for ax, (title, samples) in zip(axes[1:], scatter, strict=True):
        for i, c in zip(picks, colours, strict=True):
            ax.scatter(*samples[i].T, s=3, c=c)
        ax.set_title(title, fontsize=8)
    for ax in axes:
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_aspect("equal")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
