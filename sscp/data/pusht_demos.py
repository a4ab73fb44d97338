"""Push-T demonstrations planned in the simulator, written as a Diffusion Policy zarr store (`pusht-demos-v0`).
Needs the `pusht` extra.

Each episode starts from a seeded reset of `sscp/PushT-v0` and is a chain of pushes chosen by
`sscp.data.pusht_planner.plan` (candidate pushes tried on a copy of the simulator, the best kept) until 95 % of the
goal area is covered or 300 steps pass. The demonstrations are multimodal by design: each episode draws a side of the
T (crossbar face, stem end, left or right flank: its mode) and makes its first push from that side, so the agent
goes round the T to different sides from similar starts; the pushes after it may use any side. Timing varies too:
each episode draws its speeds and pauses (`Pace`), and every target gets a little Gaussian noise.

Episodes that reach 95 % coverage are kept, the others are dropped and counted; the store holds `data/state`
[N, 5] (the observation before each step), `data/action` [N, 2] (the agent's target in pixels), `meta/episode_ends`
[E] (Diffusion Policy's layout, zarr format 2 as its own stores) and `meta/episode_mode` [E] (an index into the
group attribute `modes`).
"""

from pathlib import Path

import numpy as np
from tqdm import tqdm

from sscp.atomic import replacing_folder
from sscp.data import pusht_planner, sim_data
from sscp.data.generate import bar_interval
from sscp.data.pusht_planner import SIDES, Pace, PushSim
from sscp.errors import ConfigError, DataError
from sscp.sims.pusht_env import ARENA, MAX_EPISODE_STEPS

DATASETS = {name: env_id for name, (env_id, _, module) in sim_data.DATASETS.items() if module == "pusht_demos"}
"""Demonstration dataset name -> the env that evaluates it (sim_data.DATASETS holds the names)."""
DEFAULT_EPISODES = 200
"""Diffusion Policy's Push-T set has 206 human demonstrations."""
MAX_ATTEMPTS = 2
"""Episodes tried per episode asked for before giving up (the demonstrator succeeds in well over half)."""
MODES = tuple(SIDES)
"""The side of the T an episode's first push comes from, by index in `meta/episode_mode`."""
TARGET_NOISE = 1.5
"""Standard deviation (pixels) of the Gaussian noise on every target the demonstrator sends."""


def draw_pace(rng: np.random.Generator) -> Pace:
    """Returns an episode's speeds (pixels per step) and pauses (steps), drawn uniformly about the defaults."""
    return Pace(
        approach_speed=float(rng.uniform(18.0, 32.0)),
        push_speed=float(rng.uniform(7.0, 13.0)),
        wait=int(rng.integers(1, 4)),
        rest=int(rng.integers(1, 4)),
    )


def episode(env, sim: PushSim, mode: int, rng: np.random.Generator, seed: int) -> tuple[dict, bool]:
    """Returns ({"state": [T, 5], "action": [T, 2]} in pixels, whether it reached 95 % coverage) of one episode of
    `env` (an sscp PushTEnv with the default bounds) reset with `seed`, its first push from side MODES[mode]."""
    obs, info = env.reset(seed=seed)
    pace = draw_pace(rng)
    states, actions = [], []
    sides = (MODES[mode],)
    done = False
    while not done:
        plan = pusht_planner.plan(sim, pusht_planner.state_of(env.sim.agent, env.sim.block), sides, pace, rng)
        sides = MODES
        for target in plan.targets:
            action = np.clip(target + rng.normal(0.0, TARGET_NOISE, 2), 0.0, ARENA)
            states.append(obs)
            actions.append(action)
            obs, _, terminated, truncated, info = env.step(action / (ARENA / 2) - 1.0)
            done = terminated or truncated
            if done:
                break
    data = {"state": np.asarray(states, np.float32), "action": np.asarray(actions, np.float32)}
    return data, bool(info["success"])


def write_store(path: Path, episodes: list[dict], modes: list[int]) -> Path:
    """Returns `path` after writing the episodes there as a Diffusion Policy zarr store (format 2), through a
    temporary folder beside it that replaces any store already there only once complete."""
    import zarr

    if not episodes:
        raise DataError(f"{path}: no episodes to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing_folder(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        root.attrs["modes"] = list(MODES)
        for key in ("state", "action"):
            values = np.concatenate([e[key] for e in episodes])
            root.create_array(f"data/{key}", data=values, chunks=(min(len(values), 10_000), values.shape[1]))
        ends = np.cumsum([len(e["action"]) for e in episodes]).astype(np.int64)
        root.create_array("meta/episode_ends", data=ends, chunks=(len(ends),))
        root.create_array("meta/episode_mode", data=np.asarray(modes, np.int8), chunks=(len(ends),))
    return path


def _summary(path: Path, kept: list[dict], modes: list[int], attempts: int, tried: list[int]) -> str:
    """Returns the line `make` prints: success rate overall and per mode, the share of each mode, episode lengths."""
    lengths = np.array([len(e["action"]) for e in kept])
    shares = ", ".join(
        f"{name} {modes.count(i) / len(modes):.0%} (success {modes.count(i)}/{tried.count(i)})"
        for i, name in enumerate(MODES)
    )
    return (
        f"{path}: {len(kept)} episodes kept of {attempts} tried (success rate {len(kept) / attempts:.1%}); first push "
        f"from {shares}; steps per episode mean {lengths.mean():.0f}, min {lengths.min()}, max {lengths.max()}"
    )


def make(name: str, folder: Path, episodes: int | None = None, seed: int = 0) -> list[Path]:
    """Returns [folder / f"{name}.zarr"] after writing there `episodes` (default 200) successful planned episodes,
    each seeded by (seed, attempt); prints the demonstrator's success rate and the share of each mode. A DataError
    when fewer than that succeed in MAX_ATTEMPTS times as many tries."""
    from sscp.sims.pusht_env import PushTEnv

    if name not in DATASETS:
        raise ConfigError(f"unknown Push-T dataset {name!r}; valid: {', '.join(DATASETS)}")
    count = DEFAULT_EPISODES if episodes is None else episodes
    if count < 1:
        raise ConfigError(f"--episodes must be at least 1, got {count}")
    env, sim = PushTEnv(max_episode_steps=MAX_EPISODE_STEPS), PushSim()
    kept, modes, tried, attempts = [], [], [], 0
    with tqdm(total=count, desc=name, unit="episode", mininterval=bar_interval()) as bar:
        while len(kept) < count:
            if attempts >= MAX_ATTEMPTS * count:
                raise DataError(
                    f"{name}: the demonstrator reached 95 % coverage in only {len(kept)} of {attempts} episodes "
                    f"(needs {count}); run `sscp data make` again with another --seed"
                )
            rng = np.random.default_rng([seed, attempts])
            mode = int(rng.integers(len(MODES)))
            data, success = episode(env, sim, mode, rng, seed=int(rng.integers(2**31)))
            attempts += 1
            tried.append(mode)
            if success:
                kept.append(data)
                modes.append(mode)
                bar.update()
    env.close()
    path = write_store(Path(folder) / f"{name}.zarr", kept, modes)
    print(_summary(path, kept, modes, attempts, tried))
    return [path]
