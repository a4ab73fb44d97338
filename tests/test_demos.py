"""Task demonstrations from the OGBench oracles (cube, lights-out puzzle): successful episodes only, one file per
evaluation task, loaded by name with the single-task env's rewards, and trainable by the BC agents."""

import functools
import itertools

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscp.data import registry
from sscp.data.demos import _PuzzleActor, _SceneActor, make, solve_gf2, toggle_matrix
from sscp.errors import ConfigError, DataError
from sscp.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demos")
    make("cube-single-task1-demos-v0", folder, episodes=2, seed=0)
    return folder


@pytest.fixture(scope="module")
def puzzle_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("puzzle_demos")
    make("puzzle-3x3-task1-demos-v0", folder, episodes=2, seed=0)
    return folder


def test_demos_are_successful_task_episodes(demo_dir):
    spec = registry.resolve("cube-single-task1-demos-v0", demo_dir)
    assert spec.env_name == "cube-single-singletask-task1-v0" and not spec.single_task
    train, val = registry.load(spec)
    assert val is None and int(train["terminals"].sum()) == 2
    ends = np.flatnonzero(train["terminals"])
    # every episode ends in success: the env's reward 0 and mask 0 at its last step only, -1 and 1 before
    assert np.all(train["rewards"][ends] == 0) and np.all(train["masks"][ends] == 0)
    assert np.all(train["rewards"][train["terminals"] == 0] == -1) and np.all(train["masks"][train["terminals"] == 0])
    assert np.abs(train["actions"]).max() <= 1.0


def test_same_seed_same_demos(demo_dir, tmp_path):
    make("cube-single-task1-demos-v0", tmp_path, episodes=2, seed=0)
    with (
        np.load(demo_dir / "cube-single-task1-demos-v0.npz") as a,
        np.load(tmp_path / "cube-single-task1-demos-v0.npz") as b,
    ):
        np.testing.assert_array_equal(a["observations"], b["observations"])


def test_puzzle_demos_are_successful_task_episodes(puzzle_dir, tmp_path):
    spec = registry.resolve("puzzle-3x3-task1-demos-v0", puzzle_dir)
    assert spec.env_name == "puzzle-3x3-singletask-task1-v0"
    train, _ = registry.load(spec)
    ends = np.flatnonzero(train["terminals"])
    assert len(ends) == 2 and np.all(train["rewards"][ends] == 0) and np.all(train["masks"][ends] == 0)
    assert np.all(train["rewards"][train["terminals"] == 0] < 0)
    make("puzzle-3x3-task1-demos-v0", tmp_path, episodes=2, seed=0)
    with np.load(puzzle_dir / spec.train_path.name) as a, np.load(tmp_path / spec.train_path.name) as b:
        np.testing.assert_array_equal(a["observations"], b["observations"])


def test_scene_demos_solve_the_drawer_task(tmp_path):
    make("scene-task4-demos-v0", tmp_path, episodes=2, seed=0)  # unlock, open, lock, cube in, unlock, close
    spec = registry.resolve("scene-task4-demos-v0", tmp_path)
    assert spec.env_name == "scene-singletask-task4-v0"
    train, _ = registry.load(spec)
    ends = np.flatnonzero(train["terminals"])
    assert len(ends) == 2 and np.all(train["rewards"][ends] == 0) and np.all(train["masks"][ends] == 0)
    assert np.all(train["masks"][train["terminals"] == 0] == 1)


def test_scene_plan_orders_locks_slides_and_the_cube():
    env = gymnasium.make("scene-singletask-task5-v0")  # goal: cube in the closed drawer, window open, both locked
    ob, info = env.reset(seed=0)
    actor = _SceneActor(env, ob, info, np.random.default_rng(0))
    goal = actor.goal_cube

    def plan(buttons, drawer, window, cube):
        scene = {"button_states": np.array(buttons), "privileged/drawer_pos": np.array([drawer]),
                 "privileged/window_pos": np.array([window]), "privileged/block_0_pos": np.asarray(cube)}  # fmt: skip
        return actor.plan({**info, **scene})

    table = (0.35, 0.15, 0.02)
    in_open_drawer = goal + np.array([0.0, 0.16, 0.0])  # the drawer opens toward the arm, +y
    assert plan([0, 0], 0.0, 0.0, table) == ("button", 0)  # the drawer is locked: unlock it first
    assert plan([1, 0], 0.0, 0.0, table) == ("drawer", -0.16)
    assert plan([1, 0], -0.16, 0.0, table) == ("button", 0)  # locked again before the cube goes in
    assert plan([0, 0], -0.16, 0.0, table) == ("cube", 0)
    assert plan([0, 0], -0.16, 0.0, in_open_drawer) == ("button", 0)  # in place: unlock to close
    assert plan([1, 0], -0.16, 0.0, in_open_drawer) == ("drawer", 0.0)
    assert plan([1, 0], 0.0, 0.0, goal) == ("button", 1)  # then the window's lock
    assert plan([1, 1], 0.0, 0.0, goal) == ("window", 0.2)
    assert plan([1, 1], 0.0, 0.2, goal) == ("button", 0)  # both locks back to the goal's state
    assert plan([0, 1], 0.0, 0.2, goal) == ("button", 1)
    assert plan([0, 0], 0.0, 0.2, goal) is None


def test_puzzle_press_order_is_random_per_episode():
    env = gymnasium.make("puzzle-3x3-singletask-task3-v0")
    ob, info = env.reset(seed=0)
    needed = solve_gf2(toggle_matrix(3, 3), info["button_states"] ^ env.unwrapped.cur_task_info["goal_button_states"])
    firsts = {_PuzzleActor(env, ob, info, np.random.default_rng(seed)).button for seed in range(20)}
    env.close()
    assert len(firsts) > 1 and all(needed[b] for b in firsts)


@functools.cache
def _all_press_sets(rows, cols):
    """Returns every press vector of a rows × cols board [2^n, n] and the board change each makes [2^n, n]."""
    presses = np.array(list(itertools.product((0, 1), repeat=rows * cols)), np.int64)
    return presses, presses @ toggle_matrix(rows, cols).T.astype(np.int64) % 2


@settings(max_examples=40, deadline=None)
@given(size=st.sampled_from([(3, 3), (4, 4), (2, 3)]), data=st.data())
def test_gf2_solution_turns_the_start_into_the_goal_with_fewest_presses(size, data):
    n = size[0] * size[1]
    start, goal = (np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.uint8) for _ in "ab")
    presses = solve_gf2(toggle_matrix(*size), start ^ goal)
    all_presses, changes = _all_press_sets(*size)
    solving = all_presses[np.all(changes == start ^ goal, axis=1)]
    if presses is None:
        assert len(solving) == 0
        return
    board = start.copy()
    for button in np.flatnonzero(presses):  # press one button at a time, as the env does
        board ^= toggle_matrix(*size)[:, button]
    np.testing.assert_array_equal(board, goal)
    assert presses.sum() == solving.sum(axis=1).min()


def test_unknown_and_missing_demos_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown demonstration dataset 'cube-double-demos-v0'"):
        make("cube-double-demos-v0", tmp_path)
    with pytest.raises(DataError, match="make it with `sscp data make cube-single-task2-demos-v0 --out"):
        registry.load(registry.resolve("cube-single-task2-demos-v0", tmp_path))


@pytest.mark.slow
def test_chunked_bc_trains_on_demos_and_evaluates_in_the_task_env(demo_dir, tmp_path):
    cfg = TrainConfig(
        agent="bc", dataset=("cube-single-task1-demos-v0",), steps=20, data_dir=str(demo_dir), log_every=10,
        eval_episodes=1, eval_workers=0, eval_max_steps=10, progress=False, run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    trainer = Trainer(cfg, {"hidden_dims": (16,), "batch_size": 16, "chunk_size": 4, "execute_steps": 2})
    results = trainer.train()
    assert trainer.runs[0].env_name == "cube-single-singletask-task1-v0" and results[0]["length"] == 10
