"""Point-maze task demonstrations: every episode starts where its task starts and ends at the task's goal, episodes
depend on (seed, task, attempt) alone, and different episodes of one task take different routes."""

import gymnasium
import numpy as np
import pytest

from sscp.data import registry
from sscp.data.demos import make
from sscp.data.maze_demos import episode_routes, route_name, routes


@pytest.fixture(scope="module")
def every_task(tmp_path_factory):
    """One demonstration of each of pointmaze-medium's five tasks."""
    folder = tmp_path_factory.mktemp("maze_demos")
    make("pointmaze-medium-demos-v0", folder, episodes=1, seed=0)
    return folder


@pytest.fixture(scope="module")
def task3(tmp_path_factory):
    """Four demonstrations of task 3, whose two routes (round either side of the loop) are equally short."""
    folder = tmp_path_factory.mktemp("maze_demos_task3")
    make("pointmaze-medium-task3-demos-v0", folder, episodes=4, seed=0)
    return folder


def _load(name, folder):
    spec = registry.resolve(name, folder)
    train, _ = registry.load(spec)
    env = gymnasium.make(spec.env_name)
    env.reset(seed=0)
    return spec, train, env.unwrapped


@pytest.mark.parametrize("task", [1, 2, 3, 4, 5])
def test_each_task_starts_at_its_start_and_ends_at_its_goal(every_task, task):
    spec, train, maze = _load(f"pointmaze-medium-task{task}-demos-v0", every_task)
    assert spec.env_name == f"pointmaze-medium-singletask-task{task}-v0" and not spec.single_task
    info = maze.cur_task_info
    assert int(train["terminals"].sum()) == 1 and train["terminals"][-1] == 1
    assert maze.xy_to_ij(train["observations"][0]) == tuple(info["init_ij"])
    # the env ends the episode at the step that starts within its goal tolerance (1.0) of the goal: reward 0, mask 0
    assert np.linalg.norm(train["observations"][-1] - np.asarray(info["goal_xy"])) <= 1.0
    assert train["rewards"][-1] == 0 and train["masks"][-1] == 0 and np.all(train["rewards"][:-1] == -1)
    assert np.abs(train["actions"]).max() <= 1.0


def test_same_seed_same_demos(every_task, task3):
    # task 3's first episode has the seed (0, 3, attempt 0) in both files
    one = np.load(every_task / "pointmaze-medium-task3-demos-v0.npz")
    four = np.load(task3 / "pointmaze-medium-task3-demos-v0.npz")
    rows = len(one["observations"])
    for key in one:
        np.testing.assert_array_equal(one[key], four[key][:rows])


def test_episodes_of_one_task_take_different_routes(task3):
    _, train, maze = _load("pointmaze-medium-task3-demos-v0", task3)
    taken = episode_routes(train, maze)
    planned = {route_name(r, maze.maze_map) for r in routes(maze, (5, 3), (4, 2))}
    assert len(taken) == 4 and set(taken) == planned and len(planned) == 2


def test_routes_are_the_simple_paths_within_the_slack():
    maze = gymnasium.make("pointmaze-medium-singletask-task2-v0").unwrapped
    two = routes(maze, (6, 1), (1, 6))  # up the left side or along the bottom, 10 moves each
    assert [len(r) - 1 for r in two] == [10, 10] and two[0][1] != two[1][1]
    assert len(routes(maze, (6, 1), (1, 6), slack=0)) == 2
    assert len(routes(maze, (2, 6), (1, 1))) == 1  # task 5: one corridor, variants inside the rooms count once
    # a walk's excursion into a side cell and back is erased, and cells of open 2x2 areas are left out of names
    assert route_name([(3, 4), (4, 4), (4, 5), (4, 4), (5, 4)], maze.maze_map) == ((3, 4), (4, 4), (5, 4))
    assert route_name([(1, 1), (1, 2), (2, 2), (3, 2)], maze.maze_map) == ((3, 2),)
