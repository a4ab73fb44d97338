"""OGBench-format datasets generated locally with the scripted oracles that ship in the `ogbench` package.

The recipe is OGBench's published one (its repository's `data_gen_scripts`): manipulation `play` data comes from the
non-Markovian plan oracles with smoothed action noise, `noisy` data from the closed-loop Markov oracles with a
per-episode noise level and random actions, and point-maze data from the maze's waypoint oracle with Gaussian action
noise. The files have OGBench's layout and sizes but are not byte-identical to the official downloads: the random
streams differ (each episode here has its own seed, so the result does not depend on the number of workers).
"""

import multiprocessing
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench environments with gymnasium)
from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
from ogbench.manipspace.oracles.plan.button_plan import ButtonPlanOracle
from ogbench.manipspace.oracles.plan.cube_plan import CubePlanOracle
from ogbench.manipspace.oracles.plan.drawer_plan import DrawerPlanOracle
from ogbench.manipspace.oracles.plan.window_plan import WindowPlanOracle
from tqdm import tqdm

from sscp.data.formats import save_npz_atomic
from sscp.errors import ConfigError, DataError

PLAY_NOISE = 0.1  # Plan oracle: noise level of the perturbed plan.
PLAY_NOISE_SMOOTHING = 0.5  # Plan oracle: temporal smoothing of that noise.
MARKOV_MIN_NORM = 0.4  # Markov oracle: minimum norm of the commanded relative motion.
NOISY_MAX_NOISE = 0.1  # Noisy data: per-episode noise level xi ~ U(0, NOISY_MAX_NOISE).
NOISY_NOISE_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])  # Per action dimension (x, y, z, yaw, gripper), times xi.
MAZE_ACTION_NOISE = 0.5  # Point maze: std of the Gaussian noise added to the waypoint direction.
STITCH_GOAL_DISTANCE = 4  # Point maze stitch: the goal is this many maze cells away from the start.
SCENE_MAX_ATTEMPTS = 100  # Scene episodes whose block leaves the visible area are redone, at most this often.
VAL_FRACTION = 0.1  # The `-val.npz` split has this fraction of the training episodes (at least one).

# Cube stacking probability per episode, drawn uniformly from this range; scene and puzzle use 0.5.
_P_STACK_RANGES = {
    "cube-single": (0.0, 0.0),
    "cube-double": (0.0, 0.25),
    "cube-triple": (0.05, 0.35),
    "cube-quadruple": (0.1, 0.5),
}
_TRAIN, _VAL = 0, 1  # Split ids mixed into every episode's seed.


@dataclass(frozen=True)
class Recipe:
    """How one dataset is made."""

    env_name: str
    """Environment the data is collected in, e.g. `cube-single-v0`."""
    kind: str
    """`play` or `noisy` (manipulation), `navigate` or `stitch` (point maze)."""
    episodes: int
    """Training episodes of the official dataset; the val split adds 10 % more."""
    episode_steps: int
    """Stored steps per episode, the final observation included (1001 stored steps give 1000 transitions)."""
    p_random_action: float = 0.0
    """Probability that a step takes a uniformly random action instead of the oracle's (noisy data only)."""


def bar_interval() -> float:
    """Seconds between progress-bar updates: tqdm's 0.1 on a terminal, 30 when stderr goes to a log file (each
    update would otherwise add a line to the log)."""
    return 0.1 if sys.stderr.isatty() else 30.0


def _official_recipes() -> dict[str, Recipe]:
    """Returns the recipe of every dataset that can be made without trained experts, by dataset name."""
    recipes = {}
    manipulation_sizes = {
        "cube-single": 1000,
        "cube-double": 1000,
        "cube-triple": 3000,
        "cube-quadruple": 5000,
        "scene": 1000,
        "puzzle-3x3": 1000,
        "puzzle-4x4": 1000,
        "puzzle-4x5": 3000,
        "puzzle-4x6": 5000,
    }
    for env, episodes in manipulation_sizes.items():
        p_random_action = 0.2 if env.startswith("puzzle") else 0.1
        recipes[f"{env}-play-v0"] = Recipe(f"{env}-v0", "play", episodes, 1001)
        recipes[f"{env}-noisy-v0"] = Recipe(f"{env}-v0", "noisy", episodes, 1001, p_random_action)
    for maze in ("medium", "large", "giant", "teleport"):
        navigate = (500, 2001) if maze == "giant" else (1000, 1001)
        recipes[f"pointmaze-{maze}-navigate-v0"] = Recipe(f"pointmaze-{maze}-v0", "navigate", *navigate)
        recipes[f"pointmaze-{maze}-stitch-v0"] = Recipe(f"pointmaze-{maze}-v0", "stitch", 5000, 201)
    return recipes


RECIPES: dict[str, Recipe] = _official_recipes()


def recipe_for(name: str) -> Recipe:
    """Returns the recipe of dataset `name`; raises ConfigError listing the valid names."""
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; datasets that can be generated: {', '.join(RECIPES)}")
    return RECIPES[name]


def _maze_cells(maze_map: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Returns all free cells, and the free cells that are not the middle of a straight corridor (goal candidates)."""
    free, vertices = [], []
    for i, j in zip(*np.nonzero(maze_map == 0), strict=True):
        cell = (int(i), int(j))
        free.append(cell)
        up, down, left, right = maze_map[i - 1, j], maze_map[i + 1, j], maze_map[i, j - 1], maze_map[i, j + 1]
        vertical_corridor = up == down == 0 and left == right == 1
        horizontal_corridor = left == right == 0 and up == down == 1
        if not (vertical_corridor or horizontal_corridor):
            vertices.append(cell)
    return free, vertices


def _cells_at_distance(maze_map: np.ndarray, start: tuple[int, int], distance: int) -> list[tuple[int, int]]:
    """Returns the free cells exactly `distance` moves from `start`, by breadth-first search, in discovery order."""
    steps = {start: 0}
    queue = deque([start])
    found = []
    while queue:
        i, j = queue.popleft()
        for ni, nj in ((i - 1, j), (i, j - 1), (i + 1, j), (i, j + 1)):
            inside = 0 <= ni < maze_map.shape[0] and 0 <= nj < maze_map.shape[1]
            if inside and maze_map[ni, nj] == 0 and (ni, nj) not in steps:
                steps[(ni, nj)] = steps[(i, j)] + 1
                queue.append((ni, nj))
                if steps[(ni, nj)] == distance:
                    found.append((ni, nj))
    return found


def maze_oracle_action(maze, target_xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Returns the point-maze oracle's action toward `target_xy`: the unit direction to the centre of the next maze
    cell on a shortest path (ogbench's `get_oracle_subgoal`), plus Gaussian noise of std MAZE_ACTION_NOISE, clipped to
    [-1, 1]. `maze` is the unwrapped maze env."""
    xy = maze.get_xy()
    waypoint, _ = maze.get_oracle_subgoal(xy, target_xy)
    direction = (waypoint - xy) / (np.linalg.norm(waypoint - xy) + 1e-6)
    return np.clip(direction + rng.normal(0.0, MAZE_ACTION_NOISE, size=direction.shape), -1.0, 1.0)


def _scene_block_stays_visible(qpos: np.ndarray) -> bool:
    """Returns whether the scene's block stays in view: not too far right, and too far left only inside the drawer."""
    x_y_z = qpos[:, 14:17]
    too_far_right = x_y_z[:, 1] >= 0.29
    left_outside_drawer = (x_y_z[:, 1] <= -0.3) & ((x_y_z[:, 2] < 0.06) | (x_y_z[:, 2] > 0.08))
    return not (too_far_right | left_outside_drawer).any()


def _manipulation_oracles(env: gymnasium.Env, recipe: Recipe) -> dict:
    """Returns the oracle for each sub-task kind the env can ask for through `info['privileged/target_task']`."""
    if recipe.kind == "play":
        options = dict(env=env, noise=PLAY_NOISE, noise_smoothing=PLAY_NOISE_SMOOTHING)
        cube, button, drawer, window = CubePlanOracle, ButtonPlanOracle, DrawerPlanOracle, WindowPlanOracle
        scene_cube_options = {}
    else:
        options = dict(env=env, min_norm=MARKOV_MIN_NORM)
        cube, button, drawer, window = CubeMarkovOracle, ButtonMarkovOracle, DrawerMarkovOracle, WindowMarkovOracle
        scene_cube_options = dict(max_step=100)
    if recipe.env_name.startswith("cube"):
        return {"cube": cube(**options)}
    if recipe.env_name.startswith("puzzle"):
        return {"button": button(gripper_always_closed=True, **options)}
    return {
        "cube": cube(**scene_cube_options, **options),
        "button": button(**options),
        "drawer": drawer(**options),
        "window": window(**options),
    }


class EpisodeCollector:
    """Collects whole episodes of one dataset; each worker process builds one and reuses its environment."""

    def __init__(self, recipe: Recipe, episode_steps: int):
        self.recipe = recipe
        self.is_maze = recipe.kind in ("navigate", "stitch")
        options = dict(terminate_at_goal=False, max_episode_steps=episode_steps, disable_env_checker=True)
        if not self.is_maze:
            options["mode"] = "data_collection"
        self.env = gymnasium.make(recipe.env_name, **options)
        if self.is_maze:
            self.free_cells, self.goal_cells = _maze_cells(self.env.unwrapped.maze_map)
        else:
            self.oracles = _manipulation_oracles(self.env, recipe)
            self.has_buttons = hasattr(self.env.unwrapped, "_cur_button_states")

    def episode(self, seed: int, split: int, index: int) -> dict[str, np.ndarray]:
        """Returns one episode's stored steps; the same (seed, split, index) always gives the same episode.

        The oracles and environments draw from numpy's global generator and the env's own, so both are seeded here,
        next to the generator this module uses for its own choices.
        """
        global_seq, env_seq, own_seq = np.random.SeedSequence([seed, split, index]).spawn(3)
        np.random.seed(global_seq.generate_state(4))
        env_seed = int(env_seq.generate_state(1)[0])
        rng = np.random.default_rng(own_seq)
        if self.is_maze:
            return self._maze_episode(env_seed, rng)
        return self._manipulation_episode(env_seed, rng)

    def _manipulation_episode(self, env_seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        ob, info = self.env.reset(seed=env_seed)
        for _ in range(SCENE_MAX_ATTEMPTS):
            steps = self._manipulation_attempt(ob, info, rng)
            if not self.recipe.env_name.startswith("scene") or _scene_block_stays_visible(steps["qpos"]):
                return steps
            ob, info = self.env.reset()
        raise DataError(
            f"{self.recipe.env_name}: no episode kept the block in view in {SCENE_MAX_ATTEMPTS} attempts; "
            "run `sscp data make` again with another --seed"
        )

    def _manipulation_attempt(self, ob: np.ndarray, info: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
        env, recipe = self.env, self.recipe
        low, high = _P_STACK_RANGES.get(recipe.env_name.removesuffix("-v0"), (0.5, 0.5))
        p_stack = rng.uniform(low, high) if high > low else low
        noise_scale = rng.uniform(0.0, NOISY_MAX_NOISE) * NOISY_NOISE_SCALE if recipe.kind == "noisy" else None
        action_dim = env.action_space.shape[0]

        oracle = self.oracles[info["privileged/target_task"]]
        oracle.reset(ob, info)
        record = {key: [] for key in ("observations", "actions", "terminals", "qpos", "qvel")}
        if self.has_buttons:
            record["button_states"] = []
        done = False
        while not done:
            if recipe.p_random_action > 0 and rng.uniform() < recipe.p_random_action:
                action = rng.uniform(-1.0, 1.0, size=action_dim)
            else:
                action = np.asarray(oracle.select_action(ob, info), dtype=np.float64)
                if noise_scale is not None:
                    action = action + rng.normal(0.0, noise_scale)
            action = np.clip(action, -1.0, 1.0)
            next_ob, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated

            if oracle.done:  # The sub-task is finished: the env picks the next target and the oracle to reach it.
                target_ob, target_info = env.unwrapped.set_new_target(p_stack=p_stack)
                oracle = self.oracles[target_info["privileged/target_task"]]
                oracle.reset(target_ob, target_info)

            record["observations"].append(ob)
            record["actions"].append(action)
            record["terminals"].append(done)
            record["qpos"].append(info["prev_qpos"])  # The state that produced `ob`, as the relabelling expects.
            record["qvel"].append(info["prev_qvel"])
            if self.has_buttons:
                record["button_states"].append(info["prev_button_states"])
            ob = next_ob
        return _as_arrays(record)

    def _maze_episode(self, env_seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        env, maze = self.env, self.env.unwrapped
        start = self.free_cells[rng.integers(len(self.free_cells))]
        if self.recipe.kind == "navigate":
            goal = self.goal_cells[rng.integers(len(self.goal_cells))]
        else:
            nearby = _cells_at_distance(maze.maze_map, start, STITCH_GOAL_DISTANCE)
            goal = nearby[rng.integers(len(nearby))] if nearby else start
        # The reset takes a few random actions before placing the agent; seeding them keeps episodes reproducible.
        env.action_space.seed(env_seed)
        ob, _ = env.reset(seed=env_seed, options=dict(task_info=dict(init_ij=start, goal_ij=goal)))

        record = {key: [] for key in ("observations", "actions", "terminals", "qpos", "qvel")}
        done = False
        while not done:
            action = maze_oracle_action(maze, maze.cur_goal_xy, rng)
            next_ob, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if info["success"] and self.recipe.kind == "navigate":  # Reached: head for a new random goal.
                maze.set_goal(goal_xy=maze.ij_to_xy(self.goal_cells[rng.integers(len(self.goal_cells))]))

            record["observations"].append(ob)
            record["actions"].append(action)
            record["terminals"].append(done)
            record["qpos"].append(info["prev_qpos"])
            record["qvel"].append(info["prev_qvel"])
            ob = next_ob
        return _as_arrays(record)


def _as_arrays(record: dict[str, list]) -> dict[str, np.ndarray]:
    """Returns one episode's lists as arrays with OGBench's dtypes."""
    dtypes = {"terminals": bool, "button_states": np.int64}
    return {key: np.asarray(values, dtype=dtypes.get(key, np.float32)) for key, values in record.items()}


_worker_recipe: tuple[Recipe, int] | None = None
_worker_collector: EpisodeCollector | None = None


def _init_worker(recipe: Recipe, episode_steps: int) -> None:
    # Ctrl-C reaches every process of the terminal; only the parent reacts to it (and terminates the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker_recipe
    _worker_recipe = (recipe, episode_steps)


def _worker_episode(task: tuple[int, int, int]) -> dict[str, np.ndarray]:
    # Built on the first task rather than in the initializer: a pool silently respawns workers whose initializer
    # fails, while an error here reaches the parent.
    global _worker_collector
    if _worker_collector is None:
        _worker_collector = EpisodeCollector(*_worker_recipe)
    return _worker_collector.episode(*task)


def _collect(recipe: Recipe, episode_steps: int, tasks: list, workers: int, bar: tqdm) -> list[dict[str, np.ndarray]]:
    """Returns the episodes of `tasks` in order, collected in this process or in a pool of `workers` processes."""
    episodes = []
    if workers == 1:
        state = np.random.get_state()  # Episodes reseed numpy's global generator; the caller's stream is restored.
        try:
            collector = EpisodeCollector(recipe, episode_steps)
            for task in tasks:
                episodes.append(collector.episode(*task))
                bar.update()
        finally:
            np.random.set_state(state)
        return episodes
    # 'spawn': forking a process that already holds MuJoCo or GL state is unsafe.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(recipe, episode_steps)) as pool:
        for episode in pool.imap(_worker_episode, tasks, chunksize=1):
            episodes.append(episode)
            bar.update()
    return episodes


def _concatenate(episodes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([episode[key] for episode in episodes]) for key in episodes[0]}


def generate(
    name: str,
    out_dir: str | os.PathLike,
    *,
    episodes: int | None = None,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = True,
    max_episode_steps: int | None = None,
) -> tuple[Path, Path]:
    """Returns the paths of `out_dir/NAME.npz` and `out_dir/NAME-val.npz`, after generating both.

    Args:
        name: dataset name, e.g. `cube-single-play-v0` (see RECIPES).
        out_dir: folder for the two files; created if missing.
        episodes: training episodes (default: the official number); the val split has 10 % of that, at least one.
        workers: processes collecting episodes (default: every core). The data does not depend on it.
        seed: base seed; episode i of a split is seeded from (seed, split, i).
        progress: show a progress bar over episodes.
        max_episode_steps: stored steps per episode instead of the official length (e.g. tiny episodes for tests).
    """
    recipe = recipe_for(name)
    train_episodes = recipe.episodes if episodes is None else episodes
    episode_steps = recipe.episode_steps if max_episode_steps is None else max_episode_steps
    if train_episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {train_episodes}")
    if episode_steps < 2:
        raise ConfigError(f"max_episode_steps must be at least 2 (one transition), got {episode_steps}")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    val_episodes = max(1, round(VAL_FRACTION * train_episodes))
    tasks = [(seed, _TRAIN, i) for i in range(train_episodes)] + [(seed, _VAL, i) for i in range(val_episodes)]
    workers = min(workers or os.cpu_count() or 1, len(tasks))

    with tqdm(total=len(tasks), desc=name, unit="episode", disable=not progress, mininterval=bar_interval()) as bar:
        collected = _collect(recipe, episode_steps, tasks, workers, bar)

    out_dir = Path(out_dir)
    train_path, val_path = out_dir / f"{name}.npz", out_dir / f"{name}-val.npz"
    # The val split is written first, so a training file on disk always comes with its finished val split.
    save_npz_atomic(val_path, _concatenate(collected[train_episodes:]))
    save_npz_atomic(train_path, _concatenate(collected[:train_episodes]))
    return train_path, val_path
