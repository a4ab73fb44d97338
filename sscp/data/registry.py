"""Dataset names, the cache folder, and loading a dataset by name or path, with single-task rewards where asked."""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench environments with gymnasium)
from ogbench.relabel_utils import relabel_dataset

from sscp.data.formats import INFO_KEYS, load_ogbench_npz
from sscp.data.generate import RECIPES, generate
from sscp.errors import ConfigError, DataError

DATASETS: dict[str, str] = {name: recipe.env_name for name, recipe in RECIPES.items()}
"""Every dataset `sscp data make` can generate, mapped to the environment its data is collected in."""

DEFAULT_DATA_DIR = "~/.cache/sscp/data"


def data_dir() -> Path:
    """Returns the dataset folder: `$SSCP_DATA_DIR` if set, else `~/.cache/sscp/data`."""
    return Path(os.environ.get("SSCP_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def _folder(explicit: str | os.PathLike | None) -> Path:
    """Returns `explicit` as a path, or the default dataset folder when it is None."""
    return Path(explicit).expanduser() if explicit is not None else data_dir()


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's files are and which environment evaluates agents trained on it."""

    name: str
    """The name or path as the user gave it."""
    dataset_name: str
    """The base dataset, which names the files, e.g. `cube-single-play-v0`."""
    train_path: Path
    """The training file, `.../<dataset_name>.npz`."""
    val_path: Path
    """The validation split next to it, `...-val.npz`; it may not exist."""
    env_name: str | None
    """Evaluation environment, e.g. `cube-single-singletask-task1-v0` or `cube-single-v0`; None if unknown."""
    single_task: bool
    """Whether rewards and masks are relabelled for the single task of `env_name`."""


def _parse(name: str) -> tuple[str, str, bool]:
    """Returns (dataset name, evaluation env name, single-task) of an OGBench name, parsed as ogbench does.

    `cube-single-play-singletask-task1-v0` gives (`cube-single-play-v0`, `cube-single-singletask-task1-v0`, True);
    `cube-single-play-v0` gives (`cube-single-play-v0`, `cube-single-v0`, False).
    """
    parts = name.split("-")
    if "singletask" in parts:
        pos = parts.index("singletask")
        if pos < 2:
            raise ConfigError(f"dataset name {name!r} lacks the environment and data type; valid: {_valid_names()}")
        return "-".join(parts[:pos] + parts[-1:]), "-".join(parts[: pos - 1] + parts[pos:]), True
    if len(parts) < 3:
        raise ConfigError(f"dataset name {name!r} is not of the form ENV-TYPE-vN; valid: {_valid_names()}")
    return name, "-".join(parts[:-2] + parts[-1:]), False


def _valid_names() -> str:
    return (
        f"{', '.join(DATASETS)}; single-task variants insert `singletask` or `singletask-taskN` (N = 1..5) "
        "before the version, e.g. cube-single-play-singletask-task1-v0; or give a path to an .npz file"
    )


def resolve(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """Returns the spec of a dataset given by name (base or single-task variant) or by path to an `.npz` file.

    A name's files live in `data_dir` (default: `data_dir()`). A path ending in `.npz` (or containing a folder) is used
    as is, with its `-val.npz` sibling as the optional val split; its file name, if an OGBench name, gives the
    evaluation environment. Raises ConfigError for names that are neither generated here nor present on disk.
    """
    text = os.fspath(name_or_path)
    if text.endswith(".npz") or os.sep in text:
        train_path = Path(text).expanduser()
        dataset_name = train_path.name.removesuffix(".npz")
        env_name = None
        if len(dataset_name.split("-")) >= 3 and "singletask" not in dataset_name:
            candidate = _parse(dataset_name)[1]
            env_name = candidate if candidate in gymnasium.registry else None
        val_path = train_path.with_name(f"{dataset_name}-val.npz")
        return DatasetSpec(text, dataset_name, train_path, val_path, env_name, single_task=False)

    dataset_name, env_name, single_task = _parse(text)
    if env_name not in gymnasium.registry:
        raise ConfigError(f"unknown dataset {text!r}: OGBench has no environment {env_name!r}; valid: {_valid_names()}")
    folder = _folder(data_dir)
    train_path = folder / f"{dataset_name}.npz"
    if dataset_name not in DATASETS and not train_path.is_file():
        raise ConfigError(
            f"dataset {dataset_name!r} cannot be generated here (it needs trained experts or is unknown) and "
            f"{train_path} does not exist; place the official OGBench file there, or use one of: {_valid_names()}"
        )
    return DatasetSpec(text, dataset_name, train_path, folder / f"{dataset_name}-val.npz", env_name, single_task)


def _can_generate(spec: DatasetSpec) -> bool:
    return spec.dataset_name in DATASETS and spec.train_path.name == f"{spec.dataset_name}.npz"


def _missing_file_error(spec: DatasetSpec) -> DataError:
    if _can_generate(spec):
        folder = spec.train_path.parent
        out = "" if folder == data_dir() else f" --out {folder}"
        how = f"make it with `sscp data make {spec.dataset_name}{out}`, or place the official OGBench file there"
    else:
        how = f"{spec.dataset_name!r} cannot be generated here; place an OGBench-format file there"
    return DataError(f"{spec.train_path}: dataset file not found; {how}")


def _relabel(spec: DatasetSpec, env: gymnasium.Env, path: Path, dataset: dict[str, np.ndarray]) -> None:
    """Adds ogbench's single-task `rewards` and `masks` to `dataset` and removes the info arrays it needed."""
    if spec.env_name.startswith("puzzle"):
        needed = ["button_states"]
    elif spec.env_name.startswith("scene"):
        needed = ["qpos", "button_states"]
    else:
        needed = ["qpos"]
    remedy = f"regenerate it with `sscp data make {spec.dataset_name}`"
    for key in needed:
        if key not in dataset:
            raise DataError(f"{path}: key '{key}' is missing, and the rewards of {spec.env_name} need it; {remedy}")
    obs_dim, env_obs_dim = dataset["observations"].shape[1], env.observation_space.shape[0]
    if obs_dim != env_obs_dim:
        raise DataError(
            f"{path}: key 'observations' has {obs_dim} columns but {spec.env_name} observes {env_obs_dim}; "
            f"the file belongs to another environment, {remedy}"
        )
    try:
        relabel_dataset(spec.env_name, env, dataset)
    except (IndexError, ValueError) as error:
        raise DataError(
            f"{path}: keys {needed} do not match {spec.env_name} ({error}); the file belongs to another environment, "
            f"{remedy}"
        ) from error
    for key in INFO_KEYS:
        dataset.pop(key, None)


def load(
    spec: DatasetSpec, *, make_if_missing: bool = False, episodes: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Returns the (train, val) transitions of `spec`, validated; val is None when the file has no `-val` sibling.

    Arrays are float32: `observations`, `actions`, `next_observations`, `terminals` [N] and, for single-task names,
    `rewards` and `masks` [N] from ogbench's relabelling (rewards <= 0; masks 0 where the task is solved).
    Goal-conditioned data gets no rewards. A missing training file is generated when `make_if_missing` is set (with
    `episodes` training episodes, default: the official number), else a DataError says which command makes it.
    """
    if not spec.train_path.is_file():
        if not (make_if_missing and _can_generate(spec)):
            raise _missing_file_error(spec)
        generate(spec.dataset_name, spec.train_path.parent, episodes=episodes)

    train = load_ogbench_npz(spec.train_path, add_info=spec.single_task)
    val = load_ogbench_npz(spec.val_path, add_info=spec.single_task) if spec.val_path.is_file() else None
    if spec.single_task:
        env = gymnasium.make(spec.env_name)
        try:
            _relabel(spec, env, spec.train_path, train)
            if val is not None:
                _relabel(spec, env, spec.val_path, val)
        finally:
            env.close()
    return train, val


def make_command(
    name: str,
    episodes: int | None = None,
    out: str | os.PathLike | None = None,
    workers: int | None = None,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Returns the (train, val) paths after generating dataset `name` and printing where the files went.

    Backs `sscp data make NAME [--episodes N] [--out DIR] [--workers W] [--seed S]`; a single-task name makes its base
    dataset, and `out` defaults to `data_dir()`.
    """
    dataset_name = _parse(name)[0] if "singletask" in name.split("-") else name
    folder = _folder(out)
    start = time.perf_counter()
    paths = generate(dataset_name, folder, episodes=episodes, workers=workers, seed=seed)
    seconds = time.perf_counter() - start

    total_steps = 0
    for path in paths:
        with np.load(path) as archive:
            terminals = archive["terminals"]
        num_episodes = int(np.count_nonzero(terminals))
        total_steps += len(terminals)
        print(
            f"{path}: {num_episodes} episodes, {len(terminals) - num_episodes} transitions, "
            f"{path.stat().st_size / 1e6:.1f} MB"
        )
    print(f"generated {total_steps} env steps in {seconds:.0f} s ({total_steps / seconds:.0f} steps/s)")
    return paths
