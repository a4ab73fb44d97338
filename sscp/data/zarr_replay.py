"""Diffusion Policy replay buffers (zarr), such as Push-T's `pusht_cchi_v7_replay.zarr`: validation and flattening
into transitions, for behaviour cloning. Needs the `zarr` extra (`pip install sscp[zarr]`).

A store holds `data/<key>` arrays [N, ...] of every step of every episode back to back, and `meta/episode_ends` [E]:
the cumulative step count at the end of each episode (the last equals N). Push-T's keys: `state` [N, 5] (agent x, y,
block x, y, angle), `keypoint` [N, 9, 2], `action` [N, 2] (the agent's target position in pixels, 0-512), `img`
[N, 96, 96, 3], `n_contacts`. Observation keys are flattened per step and concatenated in the order given (default:
`state`); image-sized keys are refused. A step's next observation is the following step's, so each episode's last
step is dropped (as the Robomimic reader does without `next_obs`); `terminals` marks each episode's last transition.
Rewards are 0 and masks 1: the data is for imitation.

Actions outside [−1, 1] (Push-T's pixels) are rescaled per dimension to [−1, 1] from the file's own minimum and
maximum, as Diffusion Policy's normaliser does; `action_bounds` returns those bounds, to map the policy's actions
back (a = low + (â + 1) / 2 · (high − low)). Observations outside [−1, 1] (Push-T's positions in pixels) are
rescaled the same way, as Diffusion Policy also does, and `observation_bounds` returns their bounds, with which an
environment rescales what it observes (`sscp.sims.pusht_env`).

`sscp train --dataset FILE.zarr` (a folder, or a `.zarr.zip` file) reads a store with the default keys; other keys
need `load_zarr_replay` directly.
"""

import os
from pathlib import Path

import numpy as np

from sscp.data.checks import ACTION_TOLERANCE, Checker, describe
from sscp.errors import DataError

DEFAULT_OBS_KEYS = ("state",)
"""Push-T's low-dimensional state: agent x, y and block x, y, angle."""
MAX_OBS_WIDTH = 1024
"""Observation keys wider than this per step are taken for images and refused."""


def is_zarr_path(path: str | os.PathLike) -> bool:
    """Returns whether path names a zarr store by its suffix (`.zarr` folder or `.zarr.zip` file)."""
    return os.fspath(path).rstrip("/").endswith((".zarr", ".zarr.zip"))


def _remedy(obs_keys: tuple[str, ...]) -> str:
    return (
        "give an intact Diffusion Policy replay buffer (data/<key> arrays and meta/episode_ends) with the keys "
        f"{', '.join(obs_keys)} and action"
    )


def _open(path: Path, check: Checker):
    """Returns the store's root group, opened read-only; a DataError for missing or unreadable stores."""
    try:
        import zarr
    except ImportError as e:
        raise DataError(f"{path}: reading zarr stores needs the zarr package; pip install 'sscp[zarr]'") from e
    if not path.exists():
        raise check.error("does not exist")
    try:
        if path.is_file():
            store = zarr.storage.ZipStore(path, mode="r")
            return zarr.open_group(store, mode="r")
        return zarr.open_group(str(path), mode="r")
    except Exception as e:  # zarr raises many types (FileNotFoundError, GroupNotFoundError, BadZipFile, JSON errors)
        raise check.error(f"is not a readable zarr group ({describe(e)})") from e


def _read(check: Checker, root, key: str, kinds: str = "biuf") -> np.ndarray:
    """Returns the whole array at `key` after checking it exists, is an array and has a numeric dtype."""
    import zarr

    group, _, name = key.rpartition("/")
    try:
        parent = root[group] if group else root
        names = sorted(parent.keys())
    except Exception as e:
        raise check.error(f"is missing or unreadable ({describe(e)})", group or key) from e
    if name not in names:
        raise check.error(f"is missing (the store has {[f'{group}/{n}' for n in names]})", key)
    node = parent[name]
    if not isinstance(node, zarr.Array):
        raise check.error(f"is a {type(node).__name__}, expected an array", key)
    if np.dtype(node.dtype).kind not in kinds:
        raise check.error(f"has dtype {node.dtype}; expected numbers", key)
    try:
        return np.asarray(node[...])
    except Exception as e:
        raise check.error(f"cannot be read, the store is damaged ({describe(e)})", key) from e


def _episode_ends(check: Checker, root, steps: int) -> np.ndarray:
    ends = _read(check, root, "meta/episode_ends", kinds="iu")
    if ends.ndim != 1 or len(ends) == 0:
        raise check.error(f"has shape {ends.shape}; expected a non-empty 1-D array", "meta/episode_ends")
    lengths = np.diff(ends, prepend=0)
    if (lengths <= 0).any():
        row = int(np.flatnonzero(lengths <= 0)[0])
        raise check.error(f"is not strictly increasing from 1 (entry {row}: {ends[row]})", "meta/episode_ends")
    if ends[-1] != steps:
        raise check.error(f"ends at step {ends[-1]} but 'data/action' has {steps} rows", "meta/episode_ends")
    return ends


def rescale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (values in [−1, 1], low, high): values [N, D] with any entry outside [−1, 1] rescaled per dimension
    from their minimum and maximum over the store (Diffusion Policy's "limits" normaliser; a constant dimension maps
    to −1), else as they are (clipped) with bounds −1 and 1."""
    low, high = values.min(axis=0), values.max(axis=0)
    if (np.abs(values) <= 1.0 + ACTION_TOLERANCE).all():
        ones = np.ones(values.shape[1], np.float32)
        return np.clip(values, -1.0, 1.0), -ones, ones
    span = np.where(high > low, high - low, 1.0)
    return np.clip(2.0 * (values - low) / span - 1.0, -1.0, 1.0).astype(np.float32), low, high


def _actions(check: Checker, root) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns the actions in [−1, 1] and the per-dimension bounds they were rescaled from (−1 and 1 if unscaled)."""
    return rescale(check.floats(_read(check, root, "data/action"), "data/action", 2))


def action_bounds(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Returns the per-dimension (low, high) that load_zarr_replay rescaled the store's actions from."""
    check = Checker(Path(path), _remedy(DEFAULT_OBS_KEYS))
    _, low, high = _actions(check, _open(Path(path), check))
    return low, high


def observation_bounds(
    path: str | os.PathLike, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the per-dimension (low, high) that load_zarr_replay rescaled the store's observations from (−1 and 1
    where it left them as they are), to rescale an environment's observations the same way."""
    return bounds(path, obs_keys)[1]


def bounds(path: str | os.PathLike, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS) -> tuple[tuple, tuple]:
    """Returns ((action low, high), (observation low, high)) as action_bounds and observation_bounds do, from one
    reading of the store."""
    check = Checker(Path(path), _remedy(obs_keys))
    root = _open(Path(path), check)
    actions, action_low, action_high = _actions(check, root)
    _, obs_low, obs_high = rescale(_observations(check, root, obs_keys, len(actions)))
    return (action_low, action_high), (obs_low, obs_high)


def _observations(check: Checker, root, obs_keys: tuple[str, ...], steps: int) -> np.ndarray:
    """Returns the obs_keys flattened per step and concatenated [steps, obs_dim], as stored; image-sized keys and
    lengths other than steps are refused."""
    parts = []
    for key in obs_keys:
        values = _read(check, root, f"data/{key}")
        flat = values.reshape(len(values), -1) if values.ndim > 1 else values.reshape(-1, 1)
        if flat.shape[1] > MAX_OBS_WIDTH:
            raise check.error(
                f"has shape {values.shape}: {flat.shape[1]} numbers per step, an image? sscp reads low-dim keys only "
                "(choose them with obs_keys)",
                f"data/{key}",
            )
        parts.append(check.floats(flat, f"data/{key}", 2))
    check.same_length({f"data/{k}": p for k, p in zip(obs_keys, parts, strict=True)}, steps, "data/action")
    return np.concatenate(parts, axis=1)


def shapes(path: str | os.PathLike) -> dict[str, int]:
    """Returns {key: numbers per step} of the store's `data/state` and `data/action` arrays that exist (what tells a
    Push-T store); a DataError when the store cannot be opened."""
    check = Checker(Path(path), _remedy(DEFAULT_OBS_KEYS))
    data = _open(Path(path), check).get("data")
    found = {}
    for key in ("state", "action"):
        array = data.get(key) if data is not None and hasattr(data, "get") else None
        if array is not None and hasattr(array, "shape"):
            found[key] = int(np.prod(array.shape[1:], dtype=int))
    return found


def load_zarr_replay(
    path: str | os.PathLike, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS, rescale_observations: bool = True
) -> dict[str, np.ndarray]:
    """Returns the transitions of a Diffusion Policy zarr replay buffer, validated; raises DataError naming the store
    and the key.

    Float32 `observations` and `next_observations` (obs_keys flattened per step and concatenated; rescaled to
    [−1, 1] per dimension when any lies outside, see `rescale`, unless rescale_observations is False), `actions`
    (in [−1, 1], rescaled if the store's are not), `rewards` (0), `masks` (1) and `terminals` (1 at each episode's
    last transition), episodes in store order.
    """
    check = Checker(Path(path), _remedy(obs_keys))
    if not obs_keys:
        raise check.error("no observation keys were given (obs_keys is empty)")
    root = _open(Path(path), check)
    actions, _, _ = _actions(check, root)
    steps = len(actions)
    ends = _episode_ends(check, root, steps)
    obs = _observations(check, root, obs_keys, steps)
    if rescale_observations:
        obs = rescale(obs)[0]
    last = np.zeros(steps, bool)
    last[ends - 1] = True  # a step whose successor is another episode's first: no transition
    keep = ~last
    if not keep.any():
        raise check.error("has only one-step episodes, so no transition", "meta/episode_ends")
    terminals = np.zeros(steps, np.float32)
    terminals[np.maximum(ends - 2, 0)] = 1.0  # each episode's last kept step (an episode of 1 step keeps none)
    n = int(keep.sum())
    return {
        "observations": obs[keep],
        "actions": actions[keep],
        "next_observations": np.concatenate([obs[1:], obs[-1:]])[keep],
        "rewards": np.zeros(n, np.float32),
        "masks": np.ones(n, np.float32),
        "terminals": terminals[keep],
    }
