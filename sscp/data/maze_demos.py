"""Goal-reaching demonstrations in OGBench's point mazes: the routes from a task's start to its goal, the oracle that
follows one of them, and the route each stored episode took.

Each episode draws one route uniformly from the simple routes (sequences of maze cells, none visited twice) between
the task's start cell and goal cell that are at most ROUTE_SLACK cells longer than the shortest; OGBench's point-maze
oracle (`generate.maze_oracle_action`: the direction to the centre of the next cell, Gaussian noise of std 0.5) drives
the point along it, one cell after the other. Where the maze has a loop between start and goal, different episodes
go round different sides of it, so the demonstrations are multimodal in the route and not only in the action noise.

Routes that differ only inside an open 2x2 area of free cells (a room, not a loop round a wall) count as one route:
a route is named by its cells outside such areas (`route_name`). `episode_routes` reads the route each stored
episode took from its observations alone (the point's x, y), loop-erased so that a brief excursion into a side
cell does not make a new route.
"""

from collections.abc import Callable, Sequence

import gymnasium
import numpy as np

from sscp.data.formats import episodes
from sscp.data.generate import maze_oracle_action

ROUTE_SLACK = 6  # maze cells: routes up to this much longer than the shortest are drawn (6 takes in medium task 1's
# way round the loop, 16 cells against 10)

Cell = tuple[int, int]
Route = tuple[Cell, ...]


def _open_area_cells(maze_map: np.ndarray) -> frozenset[Cell]:
    """Returns the free cells that lie in some 2x2 block of free cells."""
    cells = set()
    for i in range(maze_map.shape[0] - 1):
        for j in range(maze_map.shape[1] - 1):
            if not maze_map[i : i + 2, j : j + 2].any():
                cells |= {(i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)}
    return frozenset(cells)


def route_name(cells: Sequence[Cell], maze_map: np.ndarray) -> Route:
    """Returns the name of the route a walk through `cells` took: the walk loop-erased (each return to a cell drops
    the cells visited since), without the cells of open 2x2 areas."""
    erased: list[Cell] = []
    for cell in cells:
        if cell in erased:
            del erased[erased.index(cell) + 1 :]
        else:
            erased.append(cell)
    open_cells = _open_area_cells(maze_map)
    return tuple(cell for cell in erased if cell not in open_cells)


def routes(maze, start: Cell, goal: Cell, slack: int = ROUTE_SLACK) -> list[Route]:
    """Returns the simple routes from `start` to `goal` (cells, both included) at most `slack` cells longer than the
    shortest, shortest first, one per route name (the shortest of those sharing it). `maze` is the unwrapped env."""
    maze_map = maze.maze_map
    _, to_goal = maze.get_oracle_subgoal(np.array(maze.ij_to_xy(start)), np.array(maze.ij_to_xy(goal)))
    longest = to_goal[start] + slack  # in moves
    found: list[Route] = []

    def extend(path: list[Cell]) -> None:
        i, j = path[-1]
        if (i, j) == goal:
            found.append(tuple(path))
            return
        for cell in ((i - 1, j), (i, j - 1), (i + 1, j), (i, j + 1)):
            if maze_map[cell] == 0 and cell not in path and len(path) + to_goal[cell] <= longest:
                extend([*path, cell])

    extend([start])
    named: dict[Route, Route] = {}
    for route in sorted(found, key=lambda r: (len(r), r)):
        named.setdefault(route_name(route, maze_map), route)
    return list(named.values())


def actor(
    env: gymnasium.Env, ob: np.ndarray, info: dict, rng: np.random.Generator
) -> Callable[[np.ndarray, dict], np.ndarray]:
    """Returns the oracle of one episode of the task the env was reset to: it draws a route from `routes` uniformly
    with `rng`, then heads for the route's cell after the furthest one the point has entered (the task's goal cell
    at the end); off the route, the oracle's shortest path leads back to that cell."""
    maze = env.unwrapped
    task = maze.cur_task_info
    options = routes(maze, tuple(task["init_ij"]), tuple(task["goal_ij"]))
    route = options[rng.integers(len(options))]
    reached = 0

    def act(ob: np.ndarray, info: dict) -> np.ndarray:
        nonlocal reached
        cell = maze.xy_to_ij(maze.get_xy())
        if cell in route[reached:]:
            reached = route.index(cell, reached)
        target = route[min(reached + 1, len(route) - 1)]
        return maze_oracle_action(maze, np.array(maze.ij_to_xy(target)), rng)

    return act


def episode_routes(dataset: dict[str, np.ndarray], maze) -> list[Route]:
    """Returns the name of the route each episode of `dataset` took (point-maze transitions as the loaders return
    them), read from the point's x, y; `maze` is the unwrapped env."""
    names = []
    for rows in episodes(dataset):
        xys = np.concatenate([dataset["observations"][rows, :2], dataset["next_observations"][rows][-1:, :2]])
        names.append(route_name([maze.xy_to_ij(xy) for xy in xys], maze.maze_map))
    return names
