"""Robomimic HDF5 demonstrations, read with h5py alone (no robomimic or robosuite): validation and flattening into
transitions, for behaviour cloning.

A Robomimic file holds `data/demo_<i>/` groups, each with `obs/<key>` [T, ...] (one array per observation key),
`actions` [T, act_dim], `rewards` [T], `dones` [T] and optionally `next_obs/<key>` [T, ...]. Low-dimensional keys are
concatenated in the order given (default: robomimic's low_dim keys for Lift, Can and Square); image keys are refused.
Without `next_obs`, a step's next observation is the following step's and each demo's last step is dropped (as the
D4RL reader does for timeouts). Masks are 1 − dones; `terminals` marks each demo's last transition.

`sscp train --dataset FILE.hdf5` reads such a file with the default keys (sscp.data.registry tells it from a D4RL file
with `is_robomimic`); other keys need this module's `load_robomimic_hdf5` directly.
"""

import os
import re
from pathlib import Path

import numpy as np

from sscp.data.checks import Checker

DEFAULT_OBS_KEYS = ("object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
"""robomimic's low_dim observation keys (its BC configs for Lift, Can and Square), in this order."""


def is_robomimic(path: str | os.PathLike) -> bool:
    """Returns whether path is a readable HDF5 file whose top-level `data` group holds `demo_<i>` groups."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            data = file.get("data")
            return isinstance(data, h5py.Group) and any(re.fullmatch(r"demo_\d+", name) for name in data)
    except OSError:  # missing or not HDF5: the D4RL reader says what is wrong with it
        return False


def _remedy(obs_keys: tuple[str, ...]) -> str:
    return (
        "give an intact Robomimic low-dim file (data/demo_<i>/{obs/<key>, actions, rewards, dones}) with the "
        f"observation keys {', '.join(obs_keys)}"
    )


def _demo_names(file, check: Checker) -> list[str]:
    """Returns the demo group names of file['data'] in numeric order (demo_2 before demo_10)."""
    if "data" not in file:
        raise check.error(f"is missing (the file has {sorted(file.keys())})", "data")
    names = [n for n in file["data"].keys() if re.fullmatch(r"demo_\d+", n)]
    if not names:
        raise check.error("has no demo_<i> groups", "data")
    return sorted(names, key=lambda n: int(n.split("_")[1]))


def _observations(check: Checker, demo, sub: str, where: str, obs_keys: tuple[str, ...]) -> np.ndarray:
    """Returns demo[sub]'s observation keys concatenated [T, obs_dim] as float32, after checking each is 1-D or 2-D."""
    import h5py

    prefix = f"{where}/{sub}"
    if not isinstance(demo[sub], h5py.Group):
        raise check.error("is an array; expected a group of observation arrays (one per key)", prefix)
    parts = []
    for key in obs_keys:
        values = check.read(demo[sub], key, f"{prefix}/{key}", kinds="biuf")
        if values.ndim not in (1, 2):
            raise check.error(
                f"has shape {values.shape}; expected [steps] or [steps, dim] (sscp reads low-dim keys only, not "
                "images: choose them with obs_keys)",
                f"{prefix}/{key}",
            )
        parts.append(check.floats(values.reshape(len(values), -1), f"{prefix}/{key}", 2))
    rest = {f"{prefix}/{k}": p for k, p in zip(obs_keys[1:], parts[1:], strict=True)}
    check.same_length(rest, len(parts[0]), f"{prefix}/{obs_keys[0]}")
    return np.concatenate(parts, axis=1)


def load_robomimic_hdf5(path: str | os.PathLike, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS) -> dict[str, np.ndarray]:
    """Returns the transitions of a Robomimic HDF5 file, validated; raises DataError naming file and key.

    Float32 `observations` and `next_observations` (obs_keys concatenated in order), `actions`, `rewards`, `masks`
    (1 − dones) and `terminals` (1 at each demo's last transition), demos in numeric order.
    """
    check = Checker(Path(path), _remedy(obs_keys))
    if not obs_keys:
        raise check.error("no observation keys were given (obs_keys is empty)")
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "next_observations", "rewards")}
    out |= {"masks": [], "terminals": []}
    with check.open_hdf5() as file:
        for name in _demo_names(file, check):
            demo = file["data"][name]
            where = f"data/{name}"
            if "obs" not in demo:
                raise check.error(f"is missing (the demo has {sorted(demo.keys())})", f"{where}/obs")
            obs = _observations(check, demo, "obs", where, obs_keys)
            actions = check.actions(check.read(demo, "actions", f"{where}/actions"), f"{where}/actions")
            rewards = check.floats(check.read(demo, "rewards", f"{where}/rewards", kinds="biuf"), f"{where}/rewards", 1)
            dones = check.flags(check.read(demo, "dones", f"{where}/dones", kinds="biuf"), f"{where}/dones")
            steps = len(actions)
            if steps == 0:
                raise check.error("has no steps (an empty demo)", f"{where}/actions")
            check.same_length(
                {f"{where}/obs/{obs_keys[0]}": obs, f"{where}/rewards": rewards, f"{where}/dones": dones},
                steps,
                f"{where}/actions",
            )
            if "next_obs" in demo:
                next_obs = _observations(check, demo, "next_obs", where, obs_keys)
                check.same_length({f"{where}/next_obs/{obs_keys[0]}": next_obs}, steps, f"{where}/actions")
                keep = steps
            else:
                next_obs = obs[1:]
                keep = steps - 1
                if keep == 0:
                    raise check.error("has one step and no next_obs, so no transition", f"{where}/actions")
            out["observations"].append(obs[:keep])
            out["actions"].append(actions[:keep])
            out["next_observations"].append(next_obs[:keep])
            out["rewards"].append(rewards[:keep])
            out["masks"].append(1.0 - dones[:keep].astype(np.float32))
            out["terminals"].append((np.arange(keep) == keep - 1).astype(np.float32))
    widths = {o.shape[1] for o in out["observations"]} | {-a.shape[1] for a in out["actions"]}
    if len(widths) != 2:
        raise check.error("demos differ in observation or action size", "data")
    return {k: np.concatenate(v) for k, v in out.items()}
