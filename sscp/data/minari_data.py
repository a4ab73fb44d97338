"""Minari datasets in a local Minari data folder: `<root>/<dataset_id>/data/main_data.hdf5` beside
`data/metadata.json` (the layout of the `minari` package's HDF5 storage; root is $MINARI_DATASETS_PATH or
~/.minari/datasets, as in `minari`).

Reading uses h5py on that layout, so that every problem is reported per file and key and training from a Minari
folder needs no extra package; writing goes through `minari`'s own storage (the `minari` extra), so the files are
exactly what `minari.load_dataset` expects. Each episode group `episode_<i>` holds `observations` [T + 1, obs_dim]
(the final observation included), `actions` [T, act_dim], `rewards`, `terminations` and `truncations` [T].
"""

import dataclasses
import functools
import json
import os
import re
from pathlib import Path

import numpy as np

from sscp import atomic, envs
from sscp.data.checks import Checker
from sscp.data.formats import episodes
from sscp.errors import ConfigError, DataError

DATA_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"


def minari_root() -> Path:
    """Returns the local Minari folder: $MINARI_DATASETS_PATH, else ~/.minari/datasets (minari's own default)."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or "~/.minari/datasets").expanduser()


def data_folder(path_or_id: str | os.PathLike) -> Path | None:
    """Returns the `data/` folder of a Minari dataset given as a folder, a `main_data.hdf5` path or a dataset id under
    `minari_root()`, or None when there is no such dataset."""
    text = os.fspath(path_or_id)
    for candidate in (Path(text).expanduser(), minari_root() / text):
        if candidate.name == DATA_FILE:
            candidate = candidate.parent
        for folder in (candidate / "data", candidate):
            if (folder / DATA_FILE).is_file() or (folder / METADATA_FILE).is_file():
                return folder
    return None


def _remedy() -> str:
    return "replace the dataset with an intact Minari dataset (or re-export it with `sscp data export`)"


def read_metadata(folder: Path) -> dict:
    """Returns the parsed metadata.json of a Minari `data/` folder, or a DataError naming it."""
    path = folder / METADATA_FILE
    check = Checker(path, _remedy())
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError:
        raise check.error("does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise check.error(f"is not readable JSON ({type(e).__name__}: {e})") from None
    if not isinstance(metadata, dict):
        raise check.error("does not hold a JSON object")
    return metadata


def env_spec(metadata: dict) -> tuple[str, dict] | None:
    """Returns (key, spec) of the env spec that evaluates a Minari dataset: `eval_env_spec` if it holds one, else
    `env_spec` (each a JSON-serialised gymnasium EnvSpec), or None when neither holds a spec with an id."""
    for key in ("eval_env_spec", "env_spec"):
        spec = metadata.get(key)
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError:
                continue
        if isinstance(spec, dict) and isinstance(spec.get("id"), str):
            return key, spec
    return None


def eval_env_name(folder: Path, key: str, spec: dict) -> str:
    """Returns the env name (sscp.envs.env_name) of the env that `spec`, under `key` in the metadata of the Minari
    `data/` folder `folder`, describes; its id must be registered here.

    The name carries the spec's kwargs and max_episode_steps where they differ from the id's registration (the
    dataset was recorded in that env, so it is evaluated there too), but not render_mode, which does not change the
    env. Such an env is made once here, so that kwargs it does not take stop with a DataError naming metadata.json
    and the key, before any training.
    """
    import gymnasium

    check = Checker(folder / METADATA_FILE, "correct the spec there (a JSON-serialised gymnasium EnvSpec)")
    registered = gymnasium.spec(spec["id"])
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise check.error(f"holds kwargs {kwargs!r}, not a JSON object of keyword arguments", key)
    make_kwargs = {
        k: v
        for k, v in kwargs.items()
        if k != "render_mode" and not (k in registered.kwargs and _same_json(v, registered.kwargs[k]))
    }
    steps = spec.get("max_episode_steps")
    if steps is not None and steps != registered.max_episode_steps:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise check.error(f"holds max_episode_steps {steps!r}, not a positive integer", key)
        make_kwargs["max_episode_steps"] = steps
    name = envs.env_name(spec["id"], make_kwargs)
    if make_kwargs:
        try:
            _makes(name)
        except ConfigError as e:
            raise check.error(f"has kwargs that the environment rejects: {e}", key) from None
    return name


def _same_json(a, b) -> bool:
    """Returns whether a and b write the same JSON (a tuple and a list alike; what JSON cannot hold differs)."""
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True, default=repr)


@functools.cache
def _makes(name: str) -> None:
    """Makes and closes env `name` once per process (resolving a dataset happens more than once)."""
    envs.make_env(name).close()


def _episode_names(file, check: Checker) -> list[str]:
    names = [k for k in file.keys() if re.fullmatch(r"episode_\d+", k)]
    if not names:
        raise check.error(f"holds no episode_<i> groups (it has {sorted(file.keys())[:10]})")
    return sorted(names, key=lambda k: int(k.removeprefix("episode_")))


def load_minari(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Returns the transitions of a Minari dataset's `data/` folder, validated; raises DataError naming file and key.

    Float32 `observations`, `actions`, `next_observations`, `rewards`, `masks` (1 - terminations) and `terminals`
    (1 at each episode's last transition), episodes in id order.
    """
    folder = Path(folder)
    read_metadata(folder)
    check = Checker(folder / DATA_FILE, _remedy())
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "actions", "rewards", "terminations", "truncations")}
    with check.open_hdf5() as file:
        for name in _episode_names(file, check):
            group = file[name]
            if "observations" in group and not hasattr(group["observations"], "dtype"):
                keys = sorted(group["observations"].keys())
                raise check.error(
                    f"is a dictionary observation {keys}; sscp trains on flat (Box) observations",
                    f"{name}/observations",
                )
            raw = {k: check.read(group, k, f"{name}/{k}") for k in ("observations", "actions")}
            raw |= {
                k: check.read(group, k, f"{name}/{k}", kinds="biuf") for k in ("rewards", "terminations", "truncations")
            }
            steps = len(raw["actions"])
            if steps == 0:
                raise check.error("has no steps (an empty episode)", f"{name}/actions")
            if len(raw["observations"]) != steps + 1:
                problem = f"has {len(raw['observations'])} rows; expected {steps + 1} (one more than '{name}/actions')"
                raise check.error(problem, f"{name}/observations")
            check.same_length(
                {f"{name}/{k}": raw[k] for k in ("rewards", "terminations", "truncations")}, steps, f"{name}/actions"
            )
            parts["obs"].append(check.floats(raw["observations"], f"{name}/observations", 2))
            parts["actions"].append(check.actions(raw["actions"], f"{name}/actions"))
            parts["rewards"].append(check.floats(raw["rewards"], f"{name}/rewards", 1))
            parts["terminations"].append(check.flags(raw["terminations"], f"{name}/terminations"))
            parts["truncations"].append(check.flags(raw["truncations"], f"{name}/truncations"))
    widths = {o.shape[1] for o in parts["obs"]} | {-a.shape[1] for a in parts["actions"]}
    if len(widths) != 2:
        raise check.error("episodes differ in observation or action size", "observations")
    ends = [np.arange(len(a)) == len(a) - 1 for a in parts["actions"]]
    return {
        "observations": np.concatenate([o[:-1] for o in parts["obs"]]),
        "actions": np.concatenate(parts["actions"]),
        "next_observations": np.concatenate([o[1:] for o in parts["obs"]]),
        "rewards": np.concatenate(parts["rewards"]),
        "masks": 1.0 - np.concatenate(parts["terminations"]).astype(np.float32),
        "terminals": np.concatenate(ends).astype(np.float32),
    }


def save_minari(
    folder: str | os.PathLike,
    dataset_id: str,
    dataset: dict[str, np.ndarray],
    env_name: str | None = None,
    ref_scores: tuple[float, float] | None = None,
) -> Path:
    """Returns the dataset folder `folder` after writing `dataset` (transitions) there as the Minari dataset
    `dataset_id`, through minari's storage; env `env_name` (sscp.envs.env_name: an id, maybe with make kwargs) becomes
    its env spec when Gymnasium knows the id. The folder is built beside its final name and renamed into place; an
    existing dataset is never overwritten."""
    try:
        import gymnasium
        from minari import __version__ as minari_version
        from minari.data_collector import EpisodeBuffer
        from minari.dataset.minari_storage import MinariStorage
    except ImportError:
        raise ConfigError('writing Minari datasets needs the minari package: pip install "sscp[minari]"') from None

    folder = Path(folder)
    if folder.exists():
        raise ConfigError(f"{folder} already exists; remove it or choose another --out folder")
    obs_dim = dataset["observations"].shape[1]
    buffers = _episode_buffers(dataset, EpisodeBuffer)
    spec = _env_spec(env_name, gymnasium)
    box = gymnasium.spaces.Box
    try:
        with atomic.replacing_folder(folder) as tmp:
            (tmp / "data").mkdir(parents=True)
            storage = MinariStorage.new(
                tmp / "data",
                observation_space=box(-np.inf, np.inf, (obs_dim,), np.float32),
                action_space=box(-1.0, 1.0, (dataset["actions"].shape[1],), np.float32),
                env_spec=spec,
                data_format="hdf5",
            )
            metadata = {"dataset_id": dataset_id, "minari_version": minari_version}
            metadata["algorithm_name"] = "sscp data export"
            if ref_scores is not None:
                metadata |= {"ref_min_score": ref_scores[0], "ref_max_score": ref_scores[1]}
            storage.update_metadata(metadata)
            storage.update_episodes(buffers)
    except OSError as error:
        raise DataError(f"{folder}: could not write the dataset ({error.strerror or error})") from None
    return folder


def _episode_buffers(dataset: dict[str, np.ndarray], episode_buffer: type) -> list:
    """Returns one minari EpisodeBuffer per episode of the transitions (a terminal step ends it as terminated, the
    last step of any other as truncated)."""
    n = len(dataset["observations"])
    rewards = dataset.get("rewards", np.zeros(n, np.float32))
    masks = dataset.get("masks", np.ones(n, np.float32))
    buffers = []
    for i, rows in enumerate(episodes(dataset)):
        obs = np.concatenate([dataset["observations"][rows], dataset["next_observations"][rows][-1:]])
        terminated = masks[rows] == 0
        truncated = np.zeros_like(terminated)
        truncated[-1] = not terminated[-1]
        buffers.append(
            episode_buffer(
                id=i,
                observations=obs,
                actions=dataset["actions"][rows],
                rewards=rewards[rows],
                terminations=terminated,
                truncations=truncated,
                infos={},
            )
        )
    return buffers


def _env_spec(env_name: str | None, gymnasium):
    """Returns the Gymnasium env spec of an sscp env name (id and make kwargs), or None for ids Gymnasium lacks."""
    spec = None
    env_id, make_kwargs = envs.split_env_name(env_name) if env_name is not None else (None, {})
    if env_id in gymnasium.registry:
        spec = gymnasium.spec(env_id)
        steps = make_kwargs.pop("max_episode_steps", spec.max_episode_steps)
        spec = dataclasses.replace(spec, kwargs={**spec.kwargs, **make_kwargs}, max_episode_steps=steps)
    return spec
