"""D4RL-format HDF5 files, read with h5py alone (no d4rl or mujoco-py): validation, the usual preprocessing into
transitions, D4RL's reference scores and the Gymnasium environment that evaluates each dataset.

A D4RL file holds one row per step: `observations` [N, obs_dim], `actions` [N, act_dim], `rewards` [N], `terminals`
[N] (the episode ended in a terminal state) and `timeouts` [N] (the episode was cut by the time limit), and optionally
`next_observations` [N, obs_dim]. Loading follows `d4rl.qlearning_dataset`, as the SSCP authors', IQL's and FQL's code
use it: the next observation is the following row's observation (a `next_observations` key in the file is not read,
as qlearning_dataset does not read it), every row whose `timeouts` is set is dropped (terminal or not) and so is the
file's last row, and masks are 1 - terminals. The one exception is a file that sscp itself wrote
(`sscp data export --format d4rl`, marked by the attribute `next_observations_per_row`): there every row is kept with
its own next observation, so an export loads back unchanged.
"""

import os
import re
from pathlib import Path

import numpy as np

from sscp import atomic
from sscp.data.checks import HDF5_ERRORS, Checker, describe
from sscp.errors import DataError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
PER_ROW_ATTR = "next_observations_per_row"
"""File attribute sscp writes: `next_observations` holds each row's own next observation and every row is a transition
(D4RL's qlearning convention, which drops timeout rows, is not applied)."""

# D4RL's reference returns for normalised scores, 100 * (return - min) / (max - min): REF_MIN_SCORE and REF_MAX_SCORE
# of d4rl/infos.py in the D4RL repository (Farama-Foundation/D4RL). Locomotion v0/v1/v2 datasets share one pair per
# environment (random and expert SAC returns); adroit v1 shares the v0 pair per task; kitchen has v0 only.
_LOCOMOTION = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}
_ADROIT = {
    "pen": (96.262799, 3076.8331017826877),
    "hammer": (-274.856578, 12794.134825156867),
    "door": (-56.512833, 2880.5693087298737),
    "relocate": (-6.425911, 4233.877797728884),
}
REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    **{
        f"{env}-{data}-{v}": scores
        for env, scores in _LOCOMOTION.items()
        for data in ("random", "medium", "expert", "medium-replay", "full-replay", "medium-expert")
        for v in ("v0", "v1", "v2")
        if not (v == "v0" and data == "full-replay")
    },
    **{
        f"antmaze-{maze}-{v}": (0.0, 1.0)
        for maze in ("umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse")
        for v in ("v0", "v2")
    },
    **{
        f"{task}-{data}-{v}": s
        for task, s in _ADROIT.items()
        for data in ("human", "cloned", "expert")
        for v in ("v0", "v1")
    },
    **{f"kitchen-{data}-v0": (0.0, 4.0) for data in ("complete", "partial", "mixed")},
}
"""D4RL dataset name → (reference min score, reference max score)."""

# Gymnasium v5 MuJoCo ids for D4RL's gym-mujoco datasets (v2 datasets were collected in the v2/v3 envs of mujoco-py;
# v5 has the same observation layout but newer MuJoCo and bug fixes, so scores are comparable only approximately).
# Ant is left out: D4RL's ant observations have 111 numbers (with contact forces), Ant-v5 has 27 or 105.
ENV_IDS = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}


# The files D4RL itself downloads: `hopper_medium-v2.hdf5` (underscores before the version) and, for antmaze,
# `Ant_maze_<maze>_noisy_multistart_<bool>_multigoal_<bool>_sparse[_fixed].hdf5` (d4rl/locomotion/__init__.py:
# `_fixed` marks the v2 files, multigoal the diverse data, u-maze without multistart the plain umaze data).
_ANTMAZE_FILE = re.compile(
    r"Ant_maze_(u-maze|big-maze|hardest-maze)_noisy_multistart_(True|False)_multigoal_(True|False)_sparse(_fixed)?"
)
_ANTMAZE_SIZES = {"u-maze": "umaze", "big-maze": "medium", "hardest-maze": "large"}


def _base(name: str) -> str:
    """Returns the D4RL name of a file name or path, e.g. `hopper-medium-v2` of `/x/hopper-medium-v2.hdf5`; D4RL's
    own file names map to theirs (`hopper_medium-v2.hdf5`, `Ant_maze_u-maze_..._sparse_fixed.hdf5`: antmaze-umaze-v2),
    so that a file from D4RL's cache gets its environment, reference scores and reward shift."""
    stem = Path(name).name.removesuffix(".hdf5").removesuffix(".h5")
    antmaze = _ANTMAZE_FILE.fullmatch(stem)
    if antmaze:
        maze, multistart, multigoal, fixed = antmaze.groups()
        data = ("-diverse" if multigoal == "True" else "-play") if multistart == "True" else ""
        return f"antmaze-{_ANTMAZE_SIZES[maze]}{data}-{'v2' if fixed else 'v0'}"
    hyphens = stem.replace("_", "-")
    return hyphens if hyphens in REFERENCE_SCORES else stem


def reference_scores(name: str) -> tuple[float, float] | None:
    """Returns D4RL's (min, max) reference scores of a dataset name or file name, or None for other names."""
    return REFERENCE_SCORES.get(_base(name))


def env_id(name: str) -> tuple[str | None, str]:
    """Returns (Gymnasium env id that evaluates the D4RL dataset `name`, or None; a note saying why or how close)."""
    base = _base(name)
    env = base.split("-")[0]
    if env in ENV_IDS and re.fullmatch(rf"{env}-[a-z-]+-v\d", base):
        return ENV_IDS[env], f"{base} evaluates in {ENV_IDS[env]} (D4RL's v2 env mapped to Gymnasium v5: approximate)"
    if env == "ant":
        why = "D4RL's ant observations (111 numbers) do not match Gymnasium's Ant-v5"
    elif env in ("antmaze", "kitchen", *_ADROIT):
        why = f"{env} environments need gymnasium-robotics, which sscp does not install"
    else:
        why = "it is not a D4RL gym-mujoco name (halfcheetah-, hopper-, walker2d-...)"
    return None, f"no Gymnasium environment evaluates {base}: {why}"


def default_reward_shift(name: str) -> float:
    """Returns the reward shift IQL and FQL apply to a D4RL dataset: -1 for antmaze (sparse 0/1 rewards become -1/0),
    0 otherwise."""
    return -1.0 if "antmaze" in _base(name) else 0.0


def _remedy(path: Path) -> str:
    return (
        "replace it with an intact D4RL file (keys observations, actions, rewards, terminals, timeouts) or a Robomimic "
        "file (data/demo_<i> groups)"
    )


def load_d4rl_hdf5(path: str | os.PathLike, *, reward_shift: float | None = None) -> dict[str, np.ndarray]:
    """Returns the transitions of a D4RL-format HDF5 file, validated; raises DataError naming file and key.

    The result has float32 `observations`, `actions`, `next_observations`, `rewards` (+ reward_shift; default
    `default_reward_shift` of the file name), `masks` (1 - terminals) and `terminals` (1 at each episode's last
    transition). Which rows are kept: see the module docstring.
    """
    path = Path(path)
    check = Checker(path, _remedy(path))
    shift = default_reward_shift(path.name) if reward_shift is None else reward_shift
    with check.open_hdf5() as file:
        raw = {
            key: check.read(file, key, kinds="f" if key in ("observations", "actions") else "biuf")
            for key in REQUIRED_KEYS
        }
        per_row = bool(file.attrs.get(PER_ROW_ATTR, False))
        if per_row:
            raw["next_observations"] = check.read(file, "next_observations")
    observations = check.floats(raw["observations"], "observations", 2)
    n = len(observations)
    check.same_length({k: v for k, v in raw.items() if k != "observations"}, n, "observations")
    if n == 0:
        raise check.error("has no rows (the dataset is empty)", "observations")
    actions = check.actions(raw["actions"], "actions")
    rewards = raw["rewards"]
    rewards = check.floats(rewards[:, 0] if rewards.ndim == 2 and rewards.shape[1] == 1 else rewards, "rewards", 1)
    terminals = check.flags(raw["terminals"], "terminals")
    timeouts = check.flags(raw["timeouts"], "timeouts")

    if per_row:
        episode_end = terminals | timeouts
        next_observations = check.floats(raw["next_observations"], "next_observations", 2)
        if next_observations.shape != observations.shape:
            shapes = f"{next_observations.shape} but 'observations' has {observations.shape}"
            raise check.error(f"has shape {shapes}", "next_observations")
        keep = np.ones(n, bool)
    else:
        # d4rl.qlearning_dataset: a row's next observation is the following row's (after a terminal it is never
        # used, mask 0); rows marked as timeouts and the file's last row (no following row) are dropped.
        next_observations = np.concatenate([observations[1:], observations[-1:]])
        keep = ~timeouts
        keep[-1] = False
        episode_end = terminals | np.concatenate([timeouts[1:], [True]])
    if not keep.any():
        raise check.error(
            "leaves no transition: every row is a timeout or the last row (D4RL's qlearning convention drops those)",
            "timeouts",
        )
    ends = episode_end[keep].astype(np.float32)
    ends[-1] = 1.0
    return {
        "observations": observations[keep],
        "actions": actions[keep],
        "next_observations": next_observations[keep],
        "rewards": rewards[keep] + np.float32(shift),
        "masks": 1.0 - terminals[keep].astype(np.float32),
        "terminals": ends,
    }


def save_d4rl_hdf5(path: str | os.PathLike, dataset: dict[str, np.ndarray]) -> None:
    """Writes transitions (as `load_d4rl_hdf5` returns them) as a D4RL file with `next_observations`, atomically:
    a temporary file in the same folder, fsync, rename. Without rewards/masks, rewards are 0 and nothing terminates."""
    import h5py

    path = Path(path)
    missing = [k for k in ("observations", "next_observations", "actions", "terminals") if k not in dataset]
    if missing:  # before any file is touched: a missing key is not a disk problem
        raise DataError(f"{path}: cannot write a D4RL file without {', '.join(missing)} in the transitions")
    n = len(dataset["observations"])
    masks = dataset.get("masks", np.ones(n, np.float32))
    terminals = masks == 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(path) as tmp, h5py.File(tmp, "w") as file:
            file.attrs[PER_ROW_ATTR] = True
            file.create_dataset("observations", data=dataset["observations"], compression="gzip")
            file.create_dataset("next_observations", data=dataset["next_observations"], compression="gzip")
            file.create_dataset("actions", data=dataset["actions"], compression="gzip")
            file.create_dataset("rewards", data=dataset.get("rewards", np.zeros(n, np.float32)))
            file.create_dataset("terminals", data=terminals)
            file.create_dataset("timeouts", data=(dataset["terminals"] == 1) & ~terminals)
    except HDF5_ERRORS as error:
        raise DataError(
            f"{path}: could not write the file ({describe(error)}); free disk space or write elsewhere"
        ) from None
