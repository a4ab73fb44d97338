"""Reading and writing OGBench-layout `.npz` datasets, validating every array before it is used.

A file holds one row per stored step: `observations` [N, obs_dim], `actions` [N, act_dim] in [-1, 1], `terminals` [N]
(1 at each episode's last stored step) and optionally `qpos`, `qvel`, `button_states`. Every episode is stored with
its final observation, so loading drops that row and builds `next_observations`, exactly like
`ogbench.load_dataset(compact_dataset=False)`.
"""

import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sscp import atomic
from sscp.errors import DataError

REQUIRED_KEYS = ("observations", "actions", "terminals")
INFO_KEYS = ("qpos", "qvel", "button_states")
REWARD_KEYS = (
    "rewards",
    "masks",
)  # not in OGBench's files; present in files `sscp data export` writes from D4RL/Minari
ACTION_TOLERANCE = 1e-6

# Keys that must be 2-D float arrays when present, and keys that hold integer-like values (0/1 flags, button states).
_FLOAT_KEYS = ("observations", "actions", "qpos", "qvel")
_INTEGER_LIKE_KINDS = "biuf"

# What numpy and zipfile raise on damaged or truncated archives; some only surface when a member array is read.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    ValueError,
    OSError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    MemoryError,
)


def _remedy(path: Path) -> str:
    """Returns the instruction appended to every validation error: how to get an intact file."""
    name = path.name.removesuffix(".npz").removesuffix("-val")
    return f"regenerate it with `sscp data make {name}` or replace it with an intact OGBench file"


def _error(path: Path, problem: str, key: str | None = None) -> DataError:
    """Returns the one-line error `<file>: key '<key>' <problem>; <remedy>`."""
    where = f"key '{key}' " if key is not None else ""
    return DataError(f"{path}: {where}{problem}; {_remedy(path)}")


def _describe(error: BaseException) -> str:
    """Returns the exception as one line, e.g. `BadZipFile: File is not a zip file`."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Returns the required and info arrays of the archive at `path`, read fully so truncation shows up here."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise _error(path, what)
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as error:
        raise _error(path, f"is not a readable .npz archive ({_describe(error)})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _error(path, "holds a single .npy array, not an .npz archive of named arrays")
    with archive:
        for key in REQUIRED_KEYS:
            if key not in archive.files:
                raise _error(path, f"is missing (the archive has {sorted(archive.files)})", key)
        arrays = {}
        for key in REQUIRED_KEYS + INFO_KEYS + REWARD_KEYS:
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except _READ_ERRORS as error:
                if "allow_pickle" in str(error):
                    problem = "holds pickled Python objects, which are never loaded (only numeric arrays are)"
                else:
                    problem = f"cannot be read, the file is truncated or corrupt ({_describe(error)})"
                raise _error(path, problem, key) from error
    return arrays


def _first_rows(mask: np.ndarray) -> np.ndarray:
    """Returns the indices of rows where `mask` (any shape with rows first) has at least one True."""
    return np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))


def _check_finite(path: Path, key: str, values: np.ndarray) -> None:
    for test, label in ((np.isnan, "NaN"), (np.isinf, "infinite (or too large for float32)")):
        bad = test(values)
        count = int(bad.sum())
        if count:
            raise _error(path, f"has {count} {label} values (first at row {_first_rows(bad)[0]})", key)


def _validate(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Returns the arrays with float keys cast to float32 and actions clipped, after checking everything."""
    expected_ndim = {"observations": (2,), "actions": (2,), "qpos": (2,), "qvel": (2,), "terminals": (1,)}
    expected_ndim.update(button_states=(1, 2), rewards=(1,), masks=(1,))
    for key, values in arrays.items():
        if values.ndim not in expected_ndim[key]:
            dims = " or ".join(f"{d}-D" for d in expected_ndim[key])
            raise _error(path, f"has shape {values.shape}; expected a {dims} array", key)
        if key in _FLOAT_KEYS and values.dtype.kind != "f":
            raise _error(path, f"has dtype {values.dtype}; expected float16, float32 or float64", key)
        if key not in _FLOAT_KEYS and values.dtype.kind not in _INTEGER_LIKE_KINDS:
            raise _error(path, f"has dtype {values.dtype}; expected bool, integer or float", key)

    num_steps = len(arrays["observations"])
    for key, values in arrays.items():
        if len(values) != num_steps:
            raise _error(path, f"has {len(values)} rows but 'observations' has {num_steps}", key)
    if num_steps == 0:
        raise _error(path, "has no rows (the dataset is empty)", "observations")
    for key in ("observations", "actions"):
        if arrays[key].shape[1] == 0:
            raise _error(path, f"has shape {arrays[key].shape}; expected at least one column", key)

    checked = dict(arrays)
    for key in _FLOAT_KEYS:
        if key in arrays:
            with np.errstate(over="ignore"):
                checked[key] = arrays[key].astype(np.float32, copy=False)
            _check_finite(path, key, checked[key])
    for key in ("terminals", "button_states"):
        if key in arrays and arrays[key].dtype.kind == "f":
            _check_finite(path, key, arrays[key])
    for key in REWARD_KEYS:
        if key in arrays:
            with np.errstate(over="ignore"):
                checked[key] = arrays[key].astype(np.float32)
            _check_finite(path, key, checked[key])

    actions = checked["actions"]
    outside = np.abs(actions) > 1.0 + ACTION_TOLERANCE
    if outside.any():
        row = _first_rows(outside)[0]
        value = actions[row][outside[row]][0]
        problem = f"has {int(outside.sum())} values outside [-1, 1] (first at row {row}: {value:g})"
        raise _error(path, problem, "actions")
    checked["actions"] = np.clip(actions, -1.0, 1.0)

    terminals = arrays["terminals"]
    not_binary = (terminals != 0) & (terminals != 1)
    if not_binary.any():
        row = _first_rows(not_binary)[0]
        problem = f"has {int(not_binary.sum())} values other than 0 and 1 (first at row {row}: {terminals[row]})"
        raise _error(path, problem, "terminals")
    if terminals[-1] != 1:
        raise _error(path, "does not end with 1, so the last episode is cut off", "terminals")
    if terminals.all():
        raise _error(path, "is 1 at every row, so no episode has a transition", "terminals")
    checked["terminals"] = terminals.astype(np.float32)
    return checked


def load_ogbench_npz(path: str | os.PathLike, *, add_info: bool = False) -> dict[str, np.ndarray]:
    """Returns the transitions of an OGBench-layout `.npz` file, validated; raises DataError naming file and key.

    The result has `observations`, `actions`, `next_observations` (float32) and `terminals` (float32, 1 at each
    episode's last transition), and `rewards` and `masks` where the file has them; with `add_info`, also `qpos`, `qvel`
    (float32) and `button_states` where the file has them, aligned with `observations`.
    """
    path = Path(path)
    arrays = _validate(path, _read_arrays(path))

    terminals = arrays["terminals"]
    has_transition = terminals == 0  # The final stored step of an episode has no next observation.
    is_next = np.concatenate([[False], has_transition[:-1]])
    dataset = {
        "observations": arrays["observations"][has_transition],
        "actions": arrays["actions"][has_transition],
        "next_observations": arrays["observations"][is_next],
        "terminals": np.concatenate([terminals[1:], [1.0]]).astype(np.float32)[has_transition],
    }
    for key in REWARD_KEYS + (INFO_KEYS if add_info else ()):
        if key in arrays:
            dataset[key] = arrays[key][has_transition]
    return dataset


def episodes(dataset: dict[str, np.ndarray]) -> list[slice]:
    """Returns the row ranges of a transition dataset's episodes: split after each terminal (episode end), and
    wherever a next observation is not the following row's observation, so each range is one contiguous trajectory
    that an episodic layout (OGBench, Minari) can store."""
    obs, next_obs = dataset["observations"], dataset["next_observations"]
    breaks = (dataset["terminals"][:-1] == 1) | np.any(next_obs[:-1] != obs[1:], axis=1)
    ends = np.concatenate([np.flatnonzero(breaks) + 1, [len(obs)]])
    starts = np.concatenate([[0], ends[:-1]])
    return [slice(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def save_ogbench_npz(path: str | os.PathLike, dataset: dict[str, np.ndarray]) -> None:
    """Writes transitions (as the loaders return them) in OGBench's stored-step layout, atomically: each episode's
    rows, then its final observation with a zero action and terminal 1; `rewards` and `masks` (0 on final rows) are
    kept when present, so `load_ogbench_npz` gives the same arrays back."""
    stored: dict[str, list[np.ndarray]] = {"observations": [], "actions": [], "terminals": []}
    stored.update({k: [] for k in REWARD_KEYS if k in dataset})
    for rows in episodes(dataset):
        steps = rows.stop - rows.start
        stored["observations"] += [dataset["observations"][rows], dataset["next_observations"][rows][-1:]]
        stored["actions"] += [dataset["actions"][rows], np.zeros_like(dataset["actions"][:1])]
        stored["terminals"].append(np.arange(steps + 1) == steps)
        for key in REWARD_KEYS:
            if key in dataset:
                stored[key] += [dataset[key][rows], np.zeros(1, np.float32)]
    save_npz_atomic(path, {k: np.concatenate(v) for k, v in stored.items()})


def save_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes `arrays` as a compressed `.npz` at `path` so that the final name only ever holds a complete file.

    The data goes to `path.tmp-<pid>` in the same folder, is flushed to disk and then renamed over `path`; any failure
    (including Ctrl-C) removes the temporary file and leaves an existing file at `path` untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(path) as tmp, open(tmp, "wb") as file:
            # An open file object, because np.savez_compressed appends '.npz' to names that lack it.
            np.savez_compressed(file, **arrays)
    except OSError as error:
        reason = error.strerror or _describe(error)
        raise DataError(
            f"{path}: could not write the file ({reason}); free disk space, fix the folder permissions "
            "or write to another folder (e.g. `--out DIR` or $SSCP_DATA_DIR)"
        ) from error
