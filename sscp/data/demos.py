"""Task demonstrations from OGBench's scripted oracles, for behaviour cloning: for each evaluation task of a
manipulation env, successful episodes of the closed-loop (Markov) cube oracle driven toward that task's goal, in the
task's own single-task env (so rewards, masks and the success that ends an episode are the env's), stored in
OGBench's layout. Unlike the `-play` datasets (the oracles' undirected play), every episode solves the task.

`cube-single-task{1..5}-demos-v0` evaluate in `cube-single-singletask-task{1..5}-v0`; `sscp data make
cube-single-demos-v0` makes all five. Only cube-single is offered: its tasks move one cube to one goal, which is
exactly what the oracle does; multi-cube tasks would need the sub-goals sequenced.
"""

import os
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench environments with gymnasium)
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
from tqdm import tqdm

from sscp.data.formats import save_ogbench_npz
from sscp.errors import ConfigError, DataError

TASKS = 5
DEFAULT_EPISODES = 100  # per task
MAX_ATTEMPTS = 3  # per kept episode: failed oracle episodes are dropped, at most this many tries per demo
FAMILIES = {"cube-single-demos-v0": "cube-single"}
DATASETS: dict[str, str] = {
    f"{env}-task{t}-demos-v0": f"{env}-singletask-task{t}-v0" for env in FAMILIES.values() for t in range(1, TASKS + 1)
}
"""Demonstration dataset name → the single-task env that gives its goal, rewards and evaluation."""


def _oracle_info(env: gymnasium.Env, info: dict) -> dict:
    """Returns info with the target the oracle reads (OGBench's data-collection mode adds it; task mode does not):
    cube 0 to the task's goal position, keeping its current yaw (success checks positions only)."""
    goal = env.unwrapped.cur_task_info["goal_xyzs"][0]
    return {
        **info,
        "privileged/target_block": 0,
        "privileged/target_block_pos": goal,
        "privileged/target_block_yaw": info["privileged/block_0_yaw"],
    }


def _episode(env: gymnasium.Env, seed: np.random.SeedSequence) -> tuple[dict, bool]:
    """Returns (one oracle episode as transitions, whether it succeeded); seeded by `seed` alone."""
    global_seq, env_seq = seed.spawn(2)
    np.random.seed(global_seq.generate_state(4))  # the oracle draws its final arm pose from numpy's global generator
    ob, info = env.reset(seed=int(env_seq.generate_state(1)[0]))
    oracle = CubeMarkovOracle(env=env, min_norm=0.4)
    oracle.reset(ob, _oracle_info(env, info))
    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "next_observations", "rewards", "masks")}
    done = False
    while not done:
        action = np.clip(np.asarray(oracle.select_action(ob, _oracle_info(env, info)), np.float32), -1.0, 1.0)
        next_ob, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        for key, value in zip(rows, (ob, action, next_ob, reward, 0.0 if terminated else 1.0), strict=True):
            rows[key].append(value)
        ob = next_ob
    return {k: np.asarray(v, np.float32) for k, v in rows.items()}, bool(info["success"])


def make(name: str, out_dir: str | os.PathLike, episodes: int | None = None, seed: int = 0) -> list[Path]:
    """Returns the paths of the demonstration files of `name` (a family or one task) after writing them to out_dir:
    `episodes` successful episodes per task (default 100), each task's seeds from (seed, task, attempt)."""
    names = [n for n in DATASETS if n.startswith(FAMILIES[name] + "-task")] if name in FAMILIES else [name]
    if names[0] not in DATASETS:
        raise ConfigError(f"unknown demonstration dataset {name!r}; valid: {', '.join([*FAMILIES, *DATASETS])}")
    count = DEFAULT_EPISODES if episodes is None else episodes
    if count < 1:
        raise ConfigError(f"--episodes must be at least 1, got {count}")
    paths = []
    state = np.random.get_state()  # episodes reseed numpy's global generator; the caller's stream is restored
    try:
        for task_name in names:
            env = gymnasium.make(DATASETS[task_name])
            task = int(DATASETS[task_name].split("task")[-1].split("-")[0])
            kept, attempts = [], 0
            with tqdm(total=count, desc=task_name, unit="episode") as bar:
                while len(kept) < count:
                    if attempts >= MAX_ATTEMPTS * count:
                        raise DataError(
                            f"{task_name}: the oracle succeeded in only {len(kept)} of {attempts} episodes; "
                            "run `sscp data make` again with another --seed"
                        )
                    episode, success = _episode(env, np.random.SeedSequence([seed, task, attempts]))
                    attempts += 1
                    if success:
                        kept.append(episode)
                        bar.update()
            env.close()
            data = {k: np.concatenate([e[k] for e in kept]) for k in kept[0]}
            data["terminals"] = np.concatenate([np.arange(len(e["actions"])) == len(e["actions"]) - 1 for e in kept])
            path = Path(out_dir) / f"{task_name}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_ogbench_npz(path, {**data, "terminals": data["terminals"].astype(np.float32)})
            print(f"{path}: {count} successful oracle episodes of {attempts}")
            paths.append(path)
    finally:
        np.random.set_state(state)
    return paths
