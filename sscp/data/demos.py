"""Task demonstrations from OGBench's scripted oracles, for behaviour cloning: for each evaluation task of an OGBench
env, successful episodes of a closed-loop oracle driven toward that task's goal, in the task's own single-task env
(so rewards, masks and the success that ends an episode are the env's), stored in OGBench's layout. Unlike the
`-play` datasets (the oracles' undirected play), every episode solves the task.

`ENV-task{1..5}-demos-v0` evaluate in `ENV-singletask-task{1..5}-v0`; `sscp data make ENV-demos-v0` makes all five.
- cube-single: the cube oracle moves the cube to the task's goal. Multi-cube tasks would need the sub-goals
  sequenced, so cube-double/triple are not offered.
- scene: the cube, button, drawer and window oracles, one subtask after another (`_SceneActor`): locks released
  before a slide and restored at the end, the cube put into the drawer through the opened drawer, whatever the
  task's goal needs.
- puzzle-3x3, puzzle-4x4 ("lights out": a press toggles a button and its neighbours): the presses that turn the
  board into the goal are solved over GF(2) (the fewest, where several sets do it), and the button oracle presses
  them one after another in a random order drawn per episode, re-solved after every press. The order is what makes
  these demonstrations multimodal: the same board is continued toward different buttons in different episodes.
- pointmaze-medium, pointmaze-large: OGBench's maze oracle follows a route drawn per episode among those at most
  6 cells longer than the shortest (`sscp.data.maze_demos`), so episodes go round different sides of the maze's loops.
"""

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench environments with gymnasium)
from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
from tqdm import tqdm

from sscp.data import maze_demos
from sscp.data.formats import save_ogbench_npz
from sscp.data.generate import bar_interval
from sscp.errors import ConfigError, DataError

TASKS = 5
DEFAULT_EPISODES = 100  # per task
MAX_ATTEMPTS = 3  # per kept episode: failed oracle episodes are dropped, at most this many tries per demo
MIN_NORM = 0.4  # the Markov oracles' minimum step toward a target, as in OGBench's data generation

Actor = Callable[[np.ndarray, dict], np.ndarray]
"""An episode's oracle: maps the current observation and step info to an action."""


def _block_target(info: dict, position: np.ndarray, yaw: np.ndarray) -> dict:
    """Returns info with the target the cube oracle reads (OGBench's data-collection mode adds it; task mode does
    not): cube 0 to position with yaw."""
    return {**info, "privileged/target_block": 0, "privileged/target_block_pos": position,
            "privileged/target_block_yaw": yaw}  # fmt: skip


def _button_target(env, info: dict, button: int, state: int) -> dict:
    """Returns info with the target the button oracle reads (as _block_target): `button` pressed into `state`."""
    top = env._data.site_xpos[env._button_site_ids[button]].copy()
    return {**info, "privileged/target_button": button, "privileged/target_button_state": state,
            "privileged/target_button_top_pos": top}  # fmt: skip


def _cube_target(env: gymnasium.Env, info: dict) -> dict:
    """Returns info with cube 0's target: the task's goal position, keeping its current yaw (success checks
    positions only)."""
    return _block_target(info, env.unwrapped.cur_task_info["goal_xyzs"][0], info["privileged/block_0_yaw"])


def _cube_actor(env: gymnasium.Env, ob: np.ndarray, info: dict, rng: np.random.Generator) -> Actor:
    """Returns the cube oracle, reset for the episode that starts at (ob, info), moving cube 0 to the task's goal."""
    oracle = CubeMarkovOracle(env=env, min_norm=MIN_NORM)
    oracle.reset(ob, _cube_target(env, info))
    return lambda ob, info: oracle.select_action(ob, _cube_target(env, info))


def toggle_matrix(rows: int, cols: int) -> np.ndarray:
    """Returns the lights-out matrix over GF(2) [buttons, buttons]: column i is the set of buttons a press of button
    i toggles (itself and its row and column neighbours), buttons numbered row by row as in OGBench's puzzle env."""
    matrix = np.zeros((rows * cols, rows * cols), np.uint8)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        for dr, dc in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                matrix[(r + dr) * cols + c + dc, i] = 1
    return matrix


def solve_gf2(matrix: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """Returns the 0/1 vector x with the fewest ones such that matrix @ x = target (mod 2), or None if there is none.

    Gauss-Jordan elimination gives one solution and a basis of the null space; every solution is that one plus a
    combination of the basis, and all 2^nullity of them are compared (nullity 0 for 3x3 lights out, 4 for 4x4).
    """
    augmented = np.concatenate([matrix, target[:, None]], axis=1).astype(np.uint8) % 2
    num_rows, num_vars = matrix.shape
    pivots: list[int] = []
    for col in range(num_vars):
        row = len(pivots)
        if row == num_rows:
            break
        candidates = row + np.flatnonzero(augmented[row:, col])
        if candidates.size == 0:
            continue
        augmented[[row, candidates[0]]] = augmented[[candidates[0], row]]
        others = np.flatnonzero(augmented[:, col])
        augmented[others[others != row]] ^= augmented[row]
        pivots.append(col)
    if augmented[len(pivots) :, -1].any():
        return None
    particular = np.zeros(num_vars, np.uint8)
    particular[pivots] = augmented[: len(pivots), -1]
    basis = []
    for free in (col for col in range(num_vars) if col not in pivots):
        vector = np.zeros(num_vars, np.uint8)
        vector[free] = 1
        vector[pivots] = augmented[: len(pivots), free]
        basis.append(vector)
    if not basis:
        return particular
    combinations = np.array(list(itertools.product((0, 1), repeat=len(basis))), np.uint8)
    solutions = (particular + combinations.astype(np.int64) @ np.array(basis, np.int64)) % 2
    return solutions[np.argmin(solutions.sum(axis=1))].astype(np.uint8)


class _PuzzleActor:
    """The button oracle pressing, in a random order, buttons that turn the board into the task's goal: after each
    finished press (the oracle's `done`) the presses still needed are solved again from the board as it is, so a
    button toggled by accident is accounted for, and the next one is drawn at random among them."""

    def __init__(self, env: gymnasium.Env, ob: np.ndarray, info: dict, rng: np.random.Generator):
        puzzle = env.unwrapped
        self.puzzle, self.rng = puzzle, rng
        self.toggles = toggle_matrix(puzzle._num_rows, puzzle._num_cols)
        self.goal = np.asarray(puzzle.cur_task_info["goal_button_states"], np.uint8)
        self.oracle = ButtonMarkovOracle(env=env, min_norm=MIN_NORM, gripper_always_closed=True)
        self.button = self.button_state = None
        self._next_press(ob, info)

    def _next_press(self, ob: np.ndarray, info: dict) -> None:
        board = np.asarray(info["button_states"], np.uint8)
        presses = solve_gf2(self.toggles, board ^ self.goal)
        if presses is None:
            raise DataError(f"{self.puzzle.spec.id}: the task's goal cannot be reached from board {board.tolist()}")
        if not presses.any():  # solved: the env ends the episode at the next step, whatever the oracle does
            return
        self.button = int(self.rng.choice(np.flatnonzero(presses)))
        self.button_state = 1 - int(board[self.button])
        self.oracle.reset(ob, self._target(info))

    def _target(self, info: dict) -> dict:
        """Returns info with the target the button oracle reads (OGBench's data-collection mode adds it)."""
        return _button_target(self.puzzle, info, self.button, self.button_state)

    def __call__(self, ob: np.ndarray, info: dict) -> np.ndarray:
        if self.oracle.done:
            self._next_press(ob, info)
        return self.oracle.select_action(ob, self._target(info))


class _SceneActor:
    """OGBench's four scene oracles (cube, button, drawer, window) driven through the subtasks that turn the scene
    into the task's goal, the next one chosen from the scene as it is whenever the current one ends:

    1. the cube: to its goal, or, when the goal lies in the drawer, into the opened drawer at the goal's place there
       (the drawer unlocked, opened fully and locked again first, so that neither the cube nor the arm can push it
       while the cube goes in), then the drawer unlocked and closed;
    2. the drawer, then the window, to their goal positions, each unlocked first (button 0 locks the drawer, button
       1 the window: state 0 is locked);
    3. each button whose state differs from the goal pressed.

    A subtask ends when the oracle says so (its own end, or its step limit: a failed subtask is chosen again), or,
    for button, drawer and window, once its target is met and the gripper has risen to the oracle's own clearance
    height (the oracles' final wander to a random arm pose is skipped, so six subtasks fit the 750-step episodes)."""

    DRAWER_Y = -0.3  # a cube goal with y below this lies in the (closed) drawer
    OPEN, TOLERANCE = -0.16, 0.03  # the drawer fully open; slide and cube tolerance (the env's success: 0.04)
    RISEN = {"button": 0.16, "drawer": 0.18, "window": 0.28}  # each oracle's own "above" height once done

    def __init__(self, env: gymnasium.Env, ob: np.ndarray, info: dict, rng: np.random.Generator):
        self.scene = env.unwrapped
        goal = self.scene.cur_task_info["goal"]
        self.goal_cube = np.asarray(goal["block_xyzs"][0], np.float64)
        self.goal_in_drawer = bool(self.goal_cube[1] < self.DRAWER_Y)
        self.goal_buttons = np.asarray(goal["button_states"])
        self.goal_drawer, self.goal_window = float(goal["drawer_pos"]), float(goal["window_pos"])
        self.oracles = {
            "cube": CubeMarkovOracle(env=env, min_norm=MIN_NORM),
            "button": ButtonMarkovOracle(env=env, min_norm=MIN_NORM),
            "drawer": DrawerMarkovOracle(env=env, min_norm=MIN_NORM),
            "window": WindowMarkovOracle(env=env, min_norm=MIN_NORM),
        }
        self.subtask: tuple[str, float] | None = None
        self._next(ob, info)

    def plan(self, info: dict) -> tuple[str, float] | None:
        """Returns the next subtask, (kind, target), from the scene in info: ("cube", 0) (the target position comes
        from _target), ("button", i) to toggle button i, ("drawer", pos), ("window", pos); None when solved."""
        buttons = np.asarray(info["button_states"])
        drawer, window = info["privileged/drawer_pos"][0], info["privileged/window_pos"][0]

        def slide(kind: str, lock: int, target: float) -> tuple[str, float]:
            return ("button", lock) if buttons[lock] == 0 else (kind, target)

        cube = info["privileged/block_0_pos"]
        if np.linalg.norm(cube - self.goal_cube) > self.TOLERANCE:
            if not self.goal_in_drawer:
                return "cube", 0
            in_place = np.linalg.norm(cube - self._cube_goal_now(drawer)) <= self.TOLERANCE
            if in_place:  # in the open drawer where the goal will be once it is closed
                return slide("drawer", 0, self.goal_drawer)
            if drawer > self.OPEN + self.TOLERANCE:
                return slide("drawer", 0, self.OPEN)
            if buttons[0] == 1:  # locked while the cube goes in: a bump would otherwise slide the drawer
                return "button", 0
            return "cube", 0
        if abs(drawer - self.goal_drawer) > self.TOLERANCE:
            return slide("drawer", 0, self.goal_drawer)
        if abs(window - self.goal_window) > self.TOLERANCE:
            return slide("window", 1, self.goal_window)
        for i in np.flatnonzero(buttons != self.goal_buttons):
            return "button", int(i)
        return None

    def _cube_goal_now(self, drawer: float) -> np.ndarray:
        """Returns where the cube must be now for its goal: a goal in the drawer moves with the drawer's slide (the
        drawer opens toward the arm: +y by −drawer)."""
        return self.goal_cube + np.array([0.0, -drawer, 0.0]) if self.goal_in_drawer else self.goal_cube

    def _target(self, info: dict) -> dict:
        """Returns info with the current subtask's target in the keys its oracle reads (OGBench's data-collection
        mode adds them; task mode does not)."""
        kind, target = self.subtask
        if kind == "cube":
            # into the drawer square to its walls (yaw 0: 7 and 7 of 10 episodes of tasks 4 and 5 succeeded, against
            # 4 and 3 at 45°); elsewhere the cube keeps its yaw (success checks positions only)
            yaw = np.zeros(1) if self.goal_in_drawer else info["privileged/block_0_yaw"]
            return _block_target(info, self._cube_goal_now(info["privileged/drawer_pos"][0]), yaw)
        if kind == "button":
            return _button_target(self.scene, info, int(target), 1 - self.button_before)
        now = info[f"privileged/{kind}_pos"][0]
        # the handle moves with the slide: the drawer along −y, the window along +x
        shift = np.array([0.0, -(target - now), 0.0]) if kind == "drawer" else np.array([target - now, 0.0, 0.0])
        return {**info, f"privileged/target_{kind}_pos": np.array([target]),
                f"privileged/target_{kind}_handle_pos": info[f"privileged/{kind}_handle_pos"] + shift}  # fmt: skip

    def _ended(self, info: dict) -> bool:
        kind, target = self.subtask
        if self.oracles[kind].done:
            return True
        if kind == "cube" or info["proprio/effector_pos"][2] <= self.RISEN[kind]:
            return False
        if kind == "button":
            return bool(info["button_states"][int(target)] != self.button_before)
        return abs(info[f"privileged/{kind}_pos"][0] - target) <= self.TOLERANCE

    def _next(self, ob: np.ndarray, info: dict) -> None:
        self.subtask = self.plan(info)
        if self.subtask is None:  # solved: the env ends the episode at this step
            return
        kind, target = self.subtask
        if kind == "button":
            self.button_before = int(info["button_states"][int(target)])
        self.oracles[kind].reset(ob, self._target(info))

    def __call__(self, ob: np.ndarray, info: dict) -> np.ndarray:
        if self.subtask is None or self._ended(info):
            self._next(ob, info)
        if self.subtask is None:
            return np.zeros(self.scene.action_space.shape, np.float32)
        return self.oracles[self.subtask[0]].select_action(ob, self._target(info))


@dataclass(frozen=True)
class Family:
    """A suite of task demonstrations: the OGBench env whose five tasks it solves, and the oracle that solves one."""

    env: str
    """OGBench env name without version, e.g. `cube-single`; tasks evaluate in `{env}-singletask-task{N}-v0`."""
    actor: Callable[[gymnasium.Env, np.ndarray, dict, np.random.Generator], Actor]
    """Returns an episode's oracle given the env, the reset's (observation, info) and the episode's generator."""


FAMILIES: dict[str, Family] = {
    "cube-single-demos-v0": Family("cube-single", _cube_actor),
    "scene-demos-v0": Family("scene", _SceneActor),
    "puzzle-3x3-demos-v0": Family("puzzle-3x3", _PuzzleActor),
    "puzzle-4x4-demos-v0": Family("puzzle-4x4", _PuzzleActor),
    "pointmaze-medium-demos-v0": Family("pointmaze-medium", maze_demos.actor),
    "pointmaze-large-demos-v0": Family("pointmaze-large", maze_demos.actor),
}
DATASETS: dict[str, str] = {
    f"{family.env}-task{t}-demos-v0": f"{family.env}-singletask-task{t}-v0"
    for family in FAMILIES.values()
    for t in range(1, TASKS + 1)
}
"""Demonstration dataset name → the single-task env that gives its goal, rewards and evaluation."""


def _episode(env: gymnasium.Env, family: Family, seed: np.random.SeedSequence) -> tuple[dict, bool]:
    """Returns (one oracle episode as transitions, whether it succeeded); seeded by `seed` alone."""
    global_seq, env_seq, own_seq = seed.spawn(3)
    np.random.seed(global_seq.generate_state(4))  # the oracles draw their final arm pose from numpy's global generator
    ob, info = env.reset(seed=int(env_seq.generate_state(1)[0]))
    actor = family.actor(env, ob, info, np.random.default_rng(own_seq))
    rows: dict[str, list] = {k: [] for k in ("observations", "actions", "next_observations", "rewards", "masks")}
    done = False
    while not done:
        action = np.clip(np.asarray(actor(ob, info), np.float32), -1.0, 1.0)
        next_ob, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        for key, value in zip(rows, (ob, action, next_ob, reward, 0.0 if terminated else 1.0), strict=True):
            rows[key].append(value)
        ob = next_ob
    return {k: np.asarray(v, np.float32) for k, v in rows.items()}, bool(info["success"])


def task_names(name: str) -> list[str]:
    """Returns the demonstration datasets that `name` (a family or one task) stands for, or a ConfigError."""
    names = [n for n in DATASETS if n.startswith(FAMILIES[name].env + "-task")] if name in FAMILIES else [name]
    if names[0] not in DATASETS:
        raise ConfigError(f"unknown demonstration dataset {name!r}; valid: {', '.join([*FAMILIES, *DATASETS])}")
    return names


def make(name: str, out_dir: str | os.PathLike, episodes: int | None = None, seed: int = 0) -> list[Path]:
    """Returns the paths of the demonstration files of `name` (a family or one task) after writing them to out_dir:
    `episodes` successful episodes per task (default 100), each task's seeds from (seed, task, attempt)."""
    names = task_names(name)
    count = DEFAULT_EPISODES if episodes is None else episodes
    if count < 1:
        raise ConfigError(f"--episodes must be at least 1, got {count}")
    paths = []
    state = np.random.get_state()  # episodes reseed numpy's global generator; the caller's stream is restored
    try:
        for task_name in names:
            family = next(f for f in FAMILIES.values() if task_name.startswith(f.env + "-task"))
            env = gymnasium.make(DATASETS[task_name])
            task = int(DATASETS[task_name].split("task")[-1].split("-")[0])
            kept, attempts = [], 0
            with tqdm(total=count, desc=task_name, unit="episode", mininterval=bar_interval()) as bar:
                while len(kept) < count:
                    if attempts >= MAX_ATTEMPTS * count:
                        raise DataError(
                            f"{task_name}: the oracle succeeded in only {len(kept)} of {attempts} episodes; "
                            "run `sscp data make` again with another --seed"
                        )
                    episode, success = _episode(env, family, np.random.SeedSequence([seed, task, attempts]))
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
