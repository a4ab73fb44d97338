"""Scripted, multimodal demonstrations of robosuite's Lift, PickPlaceCan and NutAssemblySquare, written as Robomimic
HDF5 files (`sscp data make lift-demos-v0` and so on; extra `robomimic`).

Each episode resets its env (sscp.sims.robosuite_env) with a seed drawn from (seed, attempt), draws one of the
task's two strategies and its timing (sscp.data.robosuite_scripts), and plays the script until the env reports
success (the episode ends there, as Robomimic's rollouts do) or the horizon. Failed episodes are dropped and counted;
attempts go on until `episodes` successes, up to MAX_ATTEMPTS times as many attempts. With `workers` > 1, attempts
run in that many processes, each with its own env; the first `episodes` successes in attempt order are kept, so the
file is the same whatever the number of workers.

The file has Robomimic's layout: `data/demo_<i>/{obs/<key>, next_obs/<key>, actions, rewards, dones, states}` with
`num_samples` per demo, and `data` attributes `total` and `env_args` (the env's name, robosuite's type and the
keyword arguments that rebuild it), so `sscp.data.robomimic.load_robomimic_hdf5` and Robomimic's own tools read it.
Rewards are robosuite's sparse reward (1 at the success that ends each demo) and dones are 1 at each demo's last
step. Each demo's strategy is its attribute `sscp_mode`.
"""

import contextlib
import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
from tqdm import tqdm

from sscp.atomic import replacing
from sscp.data import sim_data
from sscp.data.generate import bar_interval
from sscp.data.robomimic import DEFAULT_OBS_KEYS
from sscp.errors import ConfigError, DataError

DATASETS = {name: env_id for name, (env_id, _, module) in sim_data.DATASETS.items() if module == "robosuite_demos"}
"""Each dataset made here -> the env whose demonstrator makes it (sim_data.DATASETS holds the names)."""
DEFAULT_EPISODES = 200
MAX_ATTEMPTS = 3
"""Attempts allowed per requested episode before the demonstrator is judged broken."""
SPEED = (0.6, 1.0)
"""Range of an episode's speed: the largest position action of a step (1 asks for 5 cm)."""
SETTLE_STEPS = 20
"""Steps the gripper is held still after a script ends, for a success that needs the object to come to rest."""


@dataclass
class Demo:
    """One scripted episode: per step its `obs`, `next_obs` (dicts of DEFAULT_OBS_KEYS), `actions`, `rewards` and
    simulator `states`; the mode it took, its reset seed and whether it succeeded."""

    steps: dict[str, list]
    mode: str
    seed: int
    success: bool


def _play(env: gymnasium.Env, rng: np.random.Generator, seed: int) -> Demo:
    """Returns one scripted episode of `env` (a made RobosuiteEnv) from reset `seed`, its mode and timing from rng."""
    from sscp.data import robosuite_scripts as scripts

    sim = env.unwrapped
    env.reset(seed=seed)
    mode = str(rng.choice(scripts.MODES[sim.task]))
    motion = scripts.Motion(sim, rng, float(rng.uniform(*SPEED)))
    steps: dict[str, list] = {"obs": [], "next_obs": [], "actions": [], "rewards": [], "states": []}
    success = False
    for action in scripts.play(motion, sim.task, mode, SETTLE_STEPS):
        steps["obs"].append(sim.observation_parts())
        steps["states"].append(sim.robosuite_env.sim.get_state().flatten())
        _, reward, terminated, truncated, info = env.step(action)
        steps["actions"].append(np.asarray(action, np.float64))
        steps["rewards"].append(float(reward))
        steps["next_obs"].append(sim.observation_parts())
        success = info["success"] > 0
        if terminated or truncated:
            break
    return Demo(steps, motion.mode, seed, success)


def _write_demo(group, demo: Demo) -> None:
    """Writes one episode into an empty HDF5 group in Robomimic's layout, its mode and seed as attributes."""
    steps = demo.steps
    count = len(steps["actions"])
    for sub in ("obs", "next_obs"):
        for key in DEFAULT_OBS_KEYS:
            group.create_dataset(f"{sub}/{key}", data=np.stack([step[key] for step in steps[sub]]))
    group.create_dataset("actions", data=np.stack(steps["actions"]))
    group.create_dataset("rewards", data=np.asarray(steps["rewards"], np.float64))
    group.create_dataset("dones", data=(np.arange(count) == count - 1).astype(np.int64))
    group.create_dataset("states", data=np.stack(steps["states"]))
    group.attrs["num_samples"] = count
    group.attrs["sscp_mode"] = demo.mode
    group.attrs["sscp_seed"] = demo.seed  # env.reset(seed=...) and the actions replay the demo


def _write(path: Path, task: str, kept: list[Demo], summary: dict) -> None:
    """Writes the kept episodes of robosuite task `task` to `path` atomically (a temporary file renamed over it)."""
    import h5py

    from sscp.sims import robosuite_env

    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, h5py.File(tmp, "w") as file:
        data = file.create_group("data")
        for index, demo in enumerate(kept):
            _write_demo(data.create_group(f"demo_{index}"), demo)
        data.attrs["total"] = sum(len(demo.steps["actions"]) for demo in kept)
        data.attrs["env_args"] = json.dumps(robosuite_env.env_args(task), indent=4)
        data.attrs["sscp_demonstrator"] = json.dumps(summary)


_worker_env: dict = {}
"""A worker process's env and seed, set once by _start_worker."""


def _start_worker(name: str, seed: int) -> None:
    import sscp.sims  # noqa: F401  (registers the ids)

    _worker_env.update(env=gymnasium.make(DATASETS[name]), seed=seed)


def _attempt(index: int) -> Demo:
    """Returns attempt `index` of the worker's dataset: its mode, timing and reset seed drawn from (seed, index)."""
    rng = np.random.default_rng([_worker_env["seed"], index])
    return _play(_worker_env["env"], rng, int(rng.integers(2**31)))


def _attempts(name: str, seed: int, limit: int, workers: int) -> Iterator[Demo]:
    """Yields attempts 0, 1, ... (at most `limit`) in order, played here or in `workers` processes (spawned: the
    caller may hold a JAX runtime, which forking would copy)."""
    if workers <= 1:
        _start_worker(name, seed)
        try:
            yield from map(_attempt, range(limit))
        finally:
            _worker_env.pop("env").close()
        return
    with mp.get_context("spawn").Pool(workers, _start_worker, (name, seed)) as pool:
        yield from pool.imap(_attempt, range(limit))


def make(
    name: str, folder: str | os.PathLike, episodes: int | None = None, seed: int = 0, workers: int = 0
) -> list[Path]:
    """Returns [the file written] after writing `folder / f"{name}.hdf5"`: `episodes` (default DEFAULT_EPISODES)
    successful scripted episodes of dataset `name`'s task; prints the demonstrator's success rate, each mode's share
    and success, the mean length and the time per episode. Raises DataError when too few attempts succeed. `workers`
    > 1 plays attempts in that many processes (the same file)."""
    if name not in DATASETS:
        raise ConfigError(f"unknown robosuite demonstration dataset {name!r}; valid: {', '.join(DATASETS)}")
    count = DEFAULT_EPISODES if episodes is None else episodes
    if count < 1:
        raise ConfigError(f"{name}: --episodes must be at least 1, got {count}")
    from sscp import sims

    task = {env_id: task for task, env_id in sims.ROBOSUITE_TASKS.items()}[DATASETS[name]]
    kept: list[Demo] = []
    tries: dict[str, list[bool]] = {}
    start = time.perf_counter()
    attempts = contextlib.closing(_attempts(name, seed, MAX_ATTEMPTS * count, workers))  # closing ends the workers
    with attempts as played, tqdm(total=count, desc=name, unit="episode", mininterval=bar_interval()) as bar:
        for demo in played:
            tries.setdefault(demo.mode, []).append(demo.success)
            if demo.success:
                kept.append(demo)
                bar.update()
                if len(kept) == count:
                    break
    if len(kept) < count:
        raise DataError(
            f"{name}: the demonstrator succeeded in only {len(kept)} of {MAX_ATTEMPTS * count} episodes; "
            "run `sscp data make` again with another --seed"
        )
    summary = _summary(tries, kept, time.perf_counter() - start)
    path = Path(folder) / f"{name}.hdf5"
    _write(path, task, kept, summary)
    print(f"{path}: {_describe(summary)}")
    return [path]


def _summary(tries: dict[str, list[bool]], kept: list[Demo], seconds: float) -> dict:
    """Returns the demonstrator's record: attempts, success rate, per mode its share of the kept episodes and its
    success rate, mean kept length, seconds per attempted episode."""
    attempts = sum(len(t) for t in tries.values())
    return {
        "attempts": attempts,
        "success_rate": len(kept) / attempts,
        "modes": {
            mode: {"share": sum(d.mode == mode for d in kept) / len(kept), "success_rate": float(np.mean(t))}
            for mode, t in sorted(tries.items())
        },
        "mean_length": float(np.mean([len(demo.steps["actions"]) for demo in kept])),
        "seconds_per_episode": seconds / attempts,
    }


def _describe(summary: dict) -> str:
    modes = ", ".join(
        f"{mode} {m['share']:.0%} of demos (success {m['success_rate']:.0%})" for mode, m in summary["modes"].items()
    )
    return (
        f"{round(summary['success_rate'] * summary['attempts'])} demos of {summary['attempts']} attempts "
        f"(demonstrator success {summary['success_rate']:.0%}); modes: {modes}; mean length "
        f"{summary['mean_length']:.0f} steps; {summary['seconds_per_episode']:.2f} s per episode"
    )
