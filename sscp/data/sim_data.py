"""Datasets of the imitation benchmarks whose simulators are optional extras (sscp.sims): the demonstrations made here
by scripted demonstrators, and which simulator evaluates a Robomimic file or a Push-T zarr store.

- `lift-demos-v0`, `can-demos-v0`, `square-demos-v0`: Robomimic HDF5 files made by `sscp.data.robosuite_demos`,
  evaluated in `sscp/Lift-v0`, `sscp/PickPlaceCan-v0`, `sscp/NutAssemblySquare-v0` (extra `robomimic`).
- `pusht-demos-v0`: a Diffusion Policy zarr store made by `sscp.data.pusht_demos`, evaluated in `sscp/PushT-v0`
  with the store's action bounds (extra `pusht`).

Any Robomimic file whose `data` attributes name a robosuite task in `env_args` (Robomimic's own datasets do) and
any zarr store with Push-T's shapes (5-number state, 2-number action) evaluate in the same simulators. Without the
extra, such data trains without evaluation and the run says which extra to install. The demonstrator modules import
their simulator only when they make data, so names and specs work without it.
"""

import importlib
import json
import os
from pathlib import Path

from sscp import sims
from sscp.envs import env_name as env_name_with_kwargs
from sscp.errors import ConfigError

DATASETS: dict[str, tuple[str, str, str]] = {
    "lift-demos-v0": ("sscp/Lift-v0", ".hdf5", "robosuite_demos"),
    "can-demos-v0": ("sscp/PickPlaceCan-v0", ".hdf5", "robosuite_demos"),
    "square-demos-v0": ("sscp/NutAssemblySquare-v0", ".hdf5", "robosuite_demos"),
    "pusht-demos-v0": (sims.PUSHT_ID, ".zarr", "pusht_demos"),
}
"""Every simulator dataset `sscp data make` makes -> (the env that evaluates it, its file suffix, the module of
sscp.data that makes it)."""


def path_of(name: str, folder: Path) -> Path:
    """Returns the file (or zarr folder) that dataset `name` (a key of DATASETS) is kept in under `folder`."""
    return folder / f"{name}{DATASETS[name][1]}"


def make(name: str, folder: Path, episodes: int | None = None, seed: int = 0, workers: int | None = None) -> list[Path]:
    """Returns the paths written after making dataset `name` with its demonstrator (which prints its success rate and
    the share of each mode); a ConfigError names the extra to install when the simulator is missing. `workers` plays
    the robosuite demonstrators' episodes in that many processes (default: every core; the same file for any
    number); Push-T's planner runs in one."""
    env_id, suffix, module_name = DATASETS[name]
    sims.require_for(env_id, name)
    if suffix == ".zarr":  # checked before any episode is played: the store is written at the end
        sims.require("zarr", name)
    module = importlib.import_module(f"sscp.data.{module_name}")
    if module_name == "robosuite_demos":
        cores = os.cpu_count() or 1  # like the OGBench datasets: every core unless told (the same file either way)
        return module.make(name, folder, episodes=episodes, seed=seed, workers=cores if workers is None else workers)
    if workers not in (None, 0, 1):
        raise ConfigError(f"--workers applies to the robosuite demonstrations, not to {name} (one process)")
    return module.make(name, folder, episodes=episodes, seed=seed)


def robomimic_env(path: Path) -> tuple[str | None, str | None]:
    """Returns (env name, note) for a Robomimic file: its robosuite task's id from `data.attrs["env_args"]` when
    robosuite is installed, else None and why."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            env_args = json.loads(file["data"].attrs.get("env_args", "{}"))
    except (OSError, KeyError, ValueError, TypeError):
        env_args = {}
    task = env_args.get("env_name") if isinstance(env_args, dict) else None
    env_id = sims.ROBOSUITE_TASKS.get(task)
    if env_id is None:
        named = f"its env_args name {task!r}" if task else "its data group has no env_args naming a robosuite task"
        return None, f"{named}, and sscp evaluates only {', '.join(sims.ROBOSUITE_TASKS)}"
    if not sims.available("robosuite"):
        return None, f"no robosuite to evaluate {task} in: pip install 'sscp[robomimic]'"
    return env_id, None


def pusht_env(path: Path) -> tuple[str | None, str | None]:
    """Returns (env name, note) for a zarr store: `sscp/PushT-v0` with the store's action and observation bounds (so
    the policy's rescaled actions map back to pixels and the env's observations are rescaled as its data was) when
    the store has Push-T's shapes and gym-pusht is installed, else None and why."""
    from sscp.data import zarr_replay

    shapes = zarr_replay.shapes(path)
    if shapes != {"state": 5, "action": 2}:
        return None, f"its shapes {shapes} are not Push-T's (state 5, action 2), the one zarr environment sscp has"
    if not sims.available("gym_pusht"):
        return None, "no gym-pusht to evaluate Push-T in: pip install 'sscp[pusht]'"
    (low, high), (obs_low, obs_high) = zarr_replay.bounds(path)
    kwargs = {"action_low": [float(x) for x in low], "action_high": [float(x) for x in high]}
    if (obs_low != -1).any() or (obs_high != 1).any():  # the reader rescaled the observations: so does the env
        kwargs |= {"obs_low": [float(x) for x in obs_low], "obs_high": [float(x) for x in obs_high]}
    return env_name_with_kwargs(sims.PUSHT_ID, kwargs), None


def episode_count(path: Path) -> tuple[int, int]:
    """Returns (episodes, env steps) that a simulator dataset's file holds, read from its episode index (a zarr
    store's `meta/episode_ends`, a Robomimic file's per-demo `actions`) without loading the data."""
    if os.fspath(path).endswith(".zarr"):
        import zarr

        ends = zarr.open_group(str(path), mode="r")["meta/episode_ends"][...]
        return len(ends), int(ends[-1])
    import h5py

    with h5py.File(path, "r") as file:
        lengths = [len(demo["actions"]) for demo in file["data"].values()]
    return len(lengths), sum(lengths)
