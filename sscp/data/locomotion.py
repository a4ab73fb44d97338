"""The D4RL-style locomotion datasets made here (docs/data.md): their names, the env each is collected and evaluated in,
and the metadata file beside each (`NAME.json`, with the random and expert reference returns that `registry.resolve`
turns into the spec's reference scores, so evaluations log normalised returns).

They are made from a SAC run trained here, a layer above the data: `sscp.recipes.locomotion` holds the recipe.
"""

import json
import os
from pathlib import Path

from sscp.errors import DataError

ENVS = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5", "ant": "Ant-v5"}
KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")
VERSION = "v5"  # the Gymnasium env version the data is collected in (D4RL's own names end in v0-v2)
DATASETS: dict[str, str] = {f"{env}-{kind}-{VERSION}": env_id for env, env_id in ENVS.items() for kind in KINDS}
"""Every locomotion dataset `sscp data make` can produce, mapped to the env it is collected and evaluated in."""


def parse(name: str) -> tuple[str, str] | None:
    """Returns (env key, kind) of a locomotion dataset name such as `hopper-medium-replay-v5`, or None."""
    if name not in DATASETS:
        return None
    env, _, rest = name.partition("-")
    return env, rest.removesuffix(f"-{VERSION}")


def sidecar_path(npz_path: str | os.PathLike) -> Path:
    """Returns the metadata file beside a dataset file: `NAME.json` for `NAME.npz`."""
    path = Path(npz_path)
    return path.with_name(f"{path.name.removesuffix('.npz')}.json")


def read_sidecar(npz_path: str | os.PathLike) -> dict | None:
    """Returns the metadata beside a dataset file (None when there is none), or a DataError if it is unreadable."""
    path = sidecar_path(npz_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        low, high = float(meta["ref_min_score"]), float(meta["ref_max_score"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"{path}: unreadable dataset metadata ({type(error).__name__}: {error}); regenerate the dataset with "
            "`sscp data make NAME` or delete the file (the data then loads without reference scores)"
        ) from None
    if not low < high:
        raise DataError(f"{path}: ref_min_score {low} is not below ref_max_score {high}; regenerate the dataset")
    return meta
