"""Dataset names, the cache folder, and loading a dataset by name or path, with single-task rewards where asked."""

import difflib
import os
import re
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import ogbench  # noqa: F401  (registers the OGBench environments with gymnasium)
from ogbench.relabel_utils import relabel_dataset

from sscp.data import d4rl, demos, locomotion, minari_data, robomimic, sim_data, zarr_replay
from sscp.data.formats import INFO_KEYS, load_ogbench_npz, save_ogbench_npz
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
    """Evaluation environment, e.g. `cube-single-singletask-task1-v0` or `cube-single-v0`, or an id with make kwargs
    (sscp.envs.env_name) for a Minari dataset recorded with non-default ones; None if unknown (or, for Robomimic
    and Push-T data, when its simulator is not installed: sscp.data.sim_data)."""
    single_task: bool
    """Whether rewards and masks are relabelled for the single task of `env_name`."""
    format: str = "ogbench"
    """File format: "ogbench" (.npz), "d4rl" (.hdf5), "robomimic" (.hdf5 holding data/demo_<i> groups), "zarr"
    (Diffusion Policy replay buffers, .zarr / .zarr.zip) or "minari"
    (train_path is the dataset's data/main_data.hdf5)."""
    ref_scores: tuple[float, float] | None = None
    """Reference (min, max) returns for normalised scores (D4RL's table, or a Minari dataset's metadata)."""
    env_note: str | None = None
    """Why env_name is None, or how closely it matches the data's environment."""


def _parse(name: str) -> tuple[str, str, bool]:
    """Returns (dataset name, evaluation env name, single-task) of an OGBench name, parsed as ogbench does.

    `cube-single-play-singletask-task1-v0` gives (`cube-single-play-v0`, `cube-single-singletask-task1-v0`, True);
    `cube-single-play-v0` gives (`cube-single-play-v0`, `cube-single-v0`, False).
    """
    parts = name.split("-")
    if "singletask" in parts:
        pos = parts.index("singletask")
        if pos < 2:
            raise ConfigError(f"dataset name {name!r} lacks the environment and data type; {_valid_names(name)}")
        return "-".join(parts[:pos] + parts[-1:]), "-".join(parts[: pos - 1] + parts[pos:]), True
    if len(parts) < 3:
        raise ConfigError(f"dataset name {name!r} is not of the form ENV-TYPE-vN; {_valid_names(name)}")
    return name, "-".join(parts[:-2] + parts[-1:]), False


def _ogbench_env(file_stem: str) -> str | None:
    """Returns the OGBench env id that a file named like an OGBench dataset (single-task ones too) evaluates in."""
    with suppress(ConfigError):
        candidate = _parse(file_stem)[1]
        return candidate if candidate in gymnasium.registry else None
    return None


def names() -> list[str]:
    """Returns every dataset name `sscp data make` takes: OGBench, locomotion and demonstration datasets."""
    return [*DATASETS, *locomotion.DATASETS, *demos.FAMILIES, *demos.DATASETS, *sim_data.DATASETS]


def _valid_names(name: str) -> str:
    """Returns the names closest to `name` and how to list them all (the full list is too long for one line)."""
    close = difflib.get_close_matches(name, names(), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (
        f"{hint}`sscp data list` prints every name; single-task variants insert `singletask-taskN` (N = 1..5) before "
        "the version, e.g. cube-single-play-singletask-task1-v0; or give a path to an .npz file"
    )


def list_command() -> None:
    """Prints every dataset name `sscp data make` takes, grouped by kind, each with its evaluation environment."""
    groups = (
        ("OGBench datasets (scripted oracles; single-task variants: singletask-taskN before the version)", DATASETS),
        ("locomotion datasets (a SAC run trained here; one name makes all five of its env)", locomotion.DATASETS),
        ("task demonstrations (a family name makes its tasks)", {**dict.fromkeys(demos.FAMILIES), **demos.DATASETS}),
        (
            "simulator demonstrations (robosuite: extra robomimic; Push-T: extra pusht)",
            {name: env for name, (env, _, _) in sim_data.DATASETS.items()},
        ),
    )
    for title, group in groups:
        print(f"{title}:")
        for name, env in group.items():
            print(f"  {name:<44} {env or ''}".rstrip())


def resolve(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> DatasetSpec:
    """Returns the spec of a dataset given by name (base or single-task variant) or by path to an `.npz` file.

    A name's files live in `data_dir` (default: `data_dir()`). A path ending in `.npz` (or containing a folder) is used
    as is, with its `-val.npz` sibling as the optional val split; its file name, if an OGBench name, gives the
    evaluation environment. An `.hdf5` file is Robomimic data if it holds `data/demo_<i>` groups (no evaluation
    environment), else D4RL data. Raises ConfigError for names that are neither generated here nor present on disk.
    """
    text = os.fspath(name_or_path)
    if text in sim_data.DATASETS:
        return _sim_spec(text, _folder(data_dir))
    if zarr_replay.is_zarr_path(text):
        path = Path(text.rstrip("/")).expanduser()
        env_name, note = sim_data.pusht_env(path) if path.exists() else (None, "the store does not exist")
        val_path = path.with_name(f"{path.name}-val")  # never present: the store has no val split
        return DatasetSpec(text, path.name, path, val_path, env_name, False, "zarr", env_note=note)
    minari_folder = minari_data.data_folder(text)
    if minari_folder is not None:
        return _minari_spec(text, minari_folder)
    if text.endswith((".hdf5", ".h5")) or text in d4rl.REFERENCE_SCORES:
        path = Path(text).expanduser() if text.endswith((".hdf5", ".h5")) else _folder(data_dir) / f"{text}.hdf5"
        val_path = path.with_name(f"{path.stem}-val{path.suffix}")
        if robomimic.is_robomimic(path):
            env_name, note = sim_data.robomimic_env(path)
            return DatasetSpec(text, path.stem, path, val_path, env_name, False, "robomimic", env_note=note)
        env_name, note = d4rl.env_id(path.name)
        if env_name is None and _ogbench_env(path.stem) is not None:  # e.g. an OGBench dataset exported as D4RL
            env_name, note = _ogbench_env(path.stem), None
        ref = d4rl.reference_scores(path.name)
        return DatasetSpec(text, path.stem, path, val_path, env_name, False, "d4rl", ref, note)
    if "/" in text and not text.endswith(".npz") and not Path(text).expanduser().exists():
        raise ConfigError(
            f"no dataset {text!r}: not a file or folder, and no Minari dataset {text} in {minari_data.minari_root()} "
            "(set $MINARI_DATASETS_PATH to the Minari data folder that holds it)"
        )
    if text.endswith(".npz") or os.sep in text or text in locomotion.DATASETS or text in demos.DATASETS:
        is_path = text not in locomotion.DATASETS and text not in demos.DATASETS
        train_path = Path(text).expanduser() if is_path else _folder(data_dir) / f"{text}.npz"
        dataset_name = train_path.name.removesuffix(".npz")
        env_name = _ogbench_env(dataset_name) or {**locomotion.DATASETS, **demos.DATASETS}.get(dataset_name)
        val_path = train_path.with_name(f"{dataset_name}-val.npz")
        ref = None
        meta = locomotion.read_sidecar(train_path)  # NAME.json beside the file: reference returns, its env
        if meta is not None:
            ref = (float(meta["ref_min_score"]), float(meta["ref_max_score"]))
            env_name = env_name or _known_env(meta.get("env_id"))
        return DatasetSpec(text, dataset_name, train_path, val_path, env_name, False, ref_scores=ref)

    dataset_name, env_name, single_task = _parse(text)
    if env_name not in gymnasium.registry:
        raise ConfigError(f"unknown dataset {text!r}: OGBench has no environment {env_name!r}; {_valid_names(text)}")
    folder = _folder(data_dir)
    train_path = folder / f"{dataset_name}.npz"
    if dataset_name not in DATASETS and not train_path.is_file():
        raise ConfigError(
            f"dataset {dataset_name!r} cannot be generated here (it needs trained experts or is unknown) and "
            f"{train_path} does not exist; place the official OGBench file there; {_valid_names(dataset_name)}"
        )
    return DatasetSpec(text, dataset_name, train_path, folder / f"{dataset_name}-val.npz", env_name, single_task)


def _sim_spec(name: str, folder: Path) -> DatasetSpec:
    """Returns the spec of simulator dataset `name` (sim_data.DATASETS) kept in `folder`: once made, its file's own
    task or action bounds name the env, as for any file of its format."""
    path = sim_data.path_of(name, folder)
    fmt = "zarr" if path.suffix == ".zarr" else "robomimic"
    env_name, note = sim_data.DATASETS[name][0], None
    if path.exists():
        env_name, note = (sim_data.pusht_env if fmt == "zarr" else sim_data.robomimic_env)(path)
    val_path = path.with_name(f"{name}-val{path.suffix}")  # never present
    return DatasetSpec(name, name, path, val_path, env_name, False, fmt, env_note=note)


def _known_env(env_id) -> str | None:
    """Returns env_id if Gymnasium knows it here, else None."""
    return env_id if isinstance(env_id, str) and env_id in gymnasium.registry else None


def _minari_spec(text: str, folder: Path) -> DatasetSpec:
    """Returns the spec of the Minari dataset whose data/ folder is `folder`: its env spec (id, kwargs and
    max_episode_steps) evaluates it."""
    metadata = minari_data.read_metadata(folder)
    found, env_name, note = minari_data.env_spec(metadata), None, None
    if found is None:
        note = f"the Minari dataset {text} stores no environment spec"
    elif found[1]["id"] not in gymnasium.registry:
        note = f"the Minari dataset {text} was collected in {found[1]['id']}, which Gymnasium does not know here"
    else:
        env_name = minari_data.eval_env_name(folder, *found)
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    ref = (float(low), float(high)) if isinstance(low, int | float) and isinstance(high, int | float) else None
    name = str(metadata.get("dataset_id") or folder.parent.name)
    path = folder / minari_data.DATA_FILE
    return DatasetSpec(text, name, path, folder / "none-val", env_name, False, "minari", ref, note)


def _can_generate(spec: DatasetSpec) -> bool:
    return spec.dataset_name in DATASETS and spec.train_path.name == f"{spec.dataset_name}.npz"


def missing_file_error(spec: DatasetSpec) -> DataError:
    """Returns the error for a dataset whose training file does not exist, with the command that makes it, if any."""
    if spec.format == "d4rl":
        return DataError(f"{spec.train_path}: dataset file not found; place the D4RL .hdf5 file there")
    if spec.dataset_name in demos.DATASETS or spec.dataset_name in sim_data.DATASETS:
        folder = spec.train_path.parent
        out = "" if folder == data_dir() else f" --out {folder}"
        return DataError(
            f"{spec.train_path}: dataset file not found; make it with `sscp data make {spec.dataset_name}{out}`"
        )
    if spec.dataset_name in locomotion.DATASETS:
        folder = spec.train_path.parent
        out = "" if folder == data_dir() else f" --out {folder}"
        how = f"make it with `sscp data make {spec.dataset_name}{out}` (trains SAC first: see docs/data.md)"
        return DataError(f"{spec.train_path}: dataset file not found; {how}")
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
    """Returns the (train, val) transitions of `spec`, validated; val is None when the file has no `-val` sibling
    (and for D4RL, Robomimic and Minari data, which carry their own `rewards` and `masks`).

    Arrays are float32: `observations`, `actions`, `next_observations`, `terminals` [N] and, for single-task names,
    `rewards` and `masks` [N] from ogbench's relabelling (rewards <= 0; masks 0 where the task is solved).
    Goal-conditioned data gets no rewards. A missing training file is generated when `make_if_missing` is set (with
    `episodes` training episodes, default: the official number), else a DataError says which command makes it.
    """
    if spec.format == "minari":
        return minari_data.load_minari(spec.train_path.parent), None
    if spec.format == "d4rl":
        if not spec.train_path.is_file():
            raise missing_file_error(spec)
        return d4rl.load_d4rl_hdf5(spec.train_path), None
    if spec.format in ("robomimic", "zarr") and spec.dataset_name in sim_data.DATASETS:
        if not spec.train_path.exists():
            raise missing_file_error(spec)
    if spec.format == "robomimic":
        return robomimic.load_robomimic_hdf5(spec.train_path), None
    if spec.format == "zarr":
        return zarr_replay.load_zarr_replay(spec.train_path), None
    if not spec.train_path.is_file():
        if not (make_if_missing and _can_generate(spec)):
            raise missing_file_error(spec)
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
    locomotion_options: dict | None = None,
    overwrite: bool = False,
    make_locomotion: Callable[..., list[Path]] | None = None,
) -> tuple[Path, ...]:
    """Returns the paths written after generating dataset `name` and printing where the files went.

    Backs `sscp data make NAME [--episodes N] [--out DIR] [--workers W] [--seed S] [--overwrite]`; a single-task name
    makes its base dataset, and `out` defaults to `data_dir()`. A locomotion name (`hopper-medium-v5`, ...) makes all
    five datasets of its env with `make_locomotion` (options: train_steps, transitions, eval_every, eval_episodes,
    env_steps_per_call): `sscp.recipes.locomotion.make`, which trains SAC, a layer above the data, so the commands
    pass it in; --episodes does not apply to it, nor do those options to other names. Existing files are
    replaced only with `overwrite`, else a ConfigError names them before anything is generated.
    """
    folder = _folder(out)
    options = {k: v for k, v in (locomotion_options or {}).items() if v is not None}
    start = time.perf_counter()
    if name in locomotion.DATASETS:
        if episodes is not None:
            raise ConfigError(f"--episodes does not apply to {name}; its size is --transitions (default 1,000,000)")
        env = name.split("-")[0]
        _refuse_overwrite([folder / f"{n}.npz" for n in locomotion.DATASETS if n.split("-")[0] == env], overwrite)
        if make_locomotion is None:
            raise ConfigError(f"{name} is made by training SAC: pass make_locomotion=sscp.recipes.locomotion.make")
        paths = tuple(make_locomotion(name, folder, seed=seed, workers=workers or 0, **options))
    else:
        if options:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in options)
            raise ConfigError(f"{flags} apply only to the locomotion datasets ({', '.join(locomotion.DATASETS)})")
        if name in sim_data.DATASETS:
            _refuse_overwrite([sim_data.path_of(name, folder)], overwrite)
            paths = tuple(sim_data.make(name, folder, episodes=episodes, seed=seed, workers=workers))
        elif name in demos.FAMILIES or name in demos.DATASETS:
            _refuse_overwrite([folder / f"{n}.npz" for n in demos.task_names(name)], overwrite)
            paths = tuple(demos.make(name, folder, episodes=episodes, seed=seed))
        else:
            dataset_name = _parse(name)[0] if "singletask" in name.split("-") else name
            if dataset_name not in DATASETS:
                raise ConfigError(f"unknown dataset {name!r}; {_valid_names(dataset_name)}")
            _refuse_overwrite([folder / f"{dataset_name}.npz", folder / f"{dataset_name}-val.npz"], overwrite)
            paths = generate(dataset_name, folder, episodes=episodes, workers=workers, seed=seed)
    _print_made(name, paths, time.perf_counter() - start)
    return paths


def _print_made(name: str, paths: tuple[Path, ...], seconds: float) -> None:
    """Prints each file that `sscp data make NAME` wrote (episodes, transitions, size) and the time it took."""
    total_steps = 0
    for path in paths:
        if name in sim_data.DATASETS:
            num_episodes, steps = sim_data.episode_count(path)
            print(f"{path}: {num_episodes} episodes, {steps} steps")
            total_steps += steps
            continue
        with np.load(path) as archive:
            terminals = archive["terminals"]
        num_episodes = int(np.count_nonzero(terminals))
        total_steps += len(terminals)
        print(
            f"{path}: {num_episodes} episodes, {len(terminals) - num_episodes} transitions, "
            f"{path.stat().st_size / 1e6:.1f} MB"
        )
    if name in locomotion.DATASETS:
        print(f"made {len(paths)} datasets in {seconds:.0f} s (metadata with reference returns beside each: NAME.json)")
    else:
        print(f"generated {total_steps} env steps in {seconds:.0f} s ({total_steps / seconds:.0f} steps/s)")


def _refuse_overwrite(paths: list[Path], overwrite: bool) -> None:
    """Raises ConfigError naming the first of `paths` that exists, unless `overwrite` allows replacing it."""
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more of its files)" if len(existing) > 1 else ""
        raise ConfigError(
            f"{existing[0]} already exists{more}; pass --overwrite to replace it, or --out DIR to write elsewhere"
        )


EXPORT_FORMATS = ("minari", "d4rl", "ogbench")


def export_command(
    name: str, fmt: str, out: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None
) -> Path:
    """Returns where dataset `name` (anything `resolve` accepts) went after writing its training transitions in `fmt`.

    Backs `sscp data export NAME --format minari|d4rl|ogbench [--out DIR]`: `out` defaults to the current folder
    (d4rl: `<name>.hdf5`, ogbench: `<name>.npz`) or, for minari, to the Minari folder (`minari_root()`) as the
    dataset `sscp/<name>`, so that `sscp train --dataset sscp/<name>` finds it. Info arrays (qpos, ...) are not
    exported; loading the export gives the same observations, actions, next observations, rewards and masks.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    spec = resolve(name, data_dir)
    dataset, _ = load(spec)
    stem = Path(os.fspath(name)).name.removesuffix(".npz").removesuffix(".hdf5").removesuffix(".h5")
    if spec.format == "minari":
        stem = spec.dataset_name.split("/")[-1]
    if fmt == "minari":
        dataset_id = f"sscp/{stem}" if re.search(r"-v\d+$", stem) else f"sscp/{stem}-v0"
        root = Path(out).expanduser() if out is not None else minari_data.minari_root()
        target = minari_data.save_minari(root / dataset_id, dataset_id, dataset, spec.env_name, spec.ref_scores)
        print(f"{target}: Minari dataset {dataset_id}, {len(dataset['observations'])} transitions")
        return target
    suffix = ".hdf5" if fmt == "d4rl" else ".npz"
    target = Path(out).expanduser() / f"{stem}{suffix}" if out is not None else Path(f"{stem}{suffix}")
    if target.resolve() == spec.train_path.resolve():
        raise ConfigError(f"{target} is the dataset being exported; pass another --out folder")
    (d4rl.save_d4rl_hdf5 if fmt == "d4rl" else save_ogbench_npz)(target, dataset)
    print(f"{target}: {fmt} file, {len(dataset['observations'])} transitions, {target.stat().st_size / 1e6:.1f} MB")
    return target
