"""Transition data on the device, with per-task rewards, sampled inside jit."""

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sscp.data.formats import episodes as episode_spans
from sscp.errors import DataError


class OfflineData(flax.struct.PyTreeNode):
    """Shared transitions [N, ...] plus rewards and masks per task [T, N]; lives on the device."""

    observations: jax.Array
    actions: jax.Array
    next_observations: jax.Array
    rewards: jax.Array
    masks: jax.Array
    env_names: tuple[str | None, ...] = flax.struct.field(pytree_node=False)
    """Per task, the environment that evaluates it; None where none can (Robomimic data)."""
    episodes: jax.Array | None = None
    """[N, 2] int32: the first and last row of each row's episode (None where the data has no episode ends); read by
    the action-chunk sampler (sscp/data/chunks.py)."""

    @property
    def size(self) -> int:
        """Returns the number of transitions."""
        return int(self.observations.shape[0])

    def sample(self, key: jax.Array, batch_size: int, task: jax.Array) -> dict:
        """Returns a uniformly sampled batch of transitions with task `task`'s rewards and masks."""
        return self.gather(jax.random.randint(key, (batch_size,), 0, self.observations.shape[0]), task)

    def gather(self, idx: jax.Array, task: jax.Array) -> dict:
        """Returns the transitions at indices idx with task `task`'s rewards and masks."""
        return {
            "observations": self.observations[idx],
            "actions": self.actions[idx],
            "next_observations": self.next_observations[idx],
            "rewards": self.rewards[task, idx],
            "masks": self.masks[task, idx],
        }

    def example_batch(self) -> dict:
        """Returns a one-transition batch of the first task, for shaping networks."""
        return self.sample(jax.random.PRNGKey(0), 1, 0)


def stack_tasks(datasets: list[dict], env_names: list[str | None], sources: list[str]) -> OfflineData:
    """Returns OfflineData from single-task datasets that share their transitions (only rewards/masks differ)."""
    first = datasets[0]
    for d, src in zip(datasets[1:], sources[1:], strict=True):
        for k in ("observations", "actions"):
            if d[k].shape != first[k].shape or not np.array_equal(d[k], first[k]):
                raise DataError(
                    f"{src}: its {k} differ from those of {sources[0]}; datasets trained together must be "
                    "single-task variants of one dataset"
                )
    for d, src in zip(datasets, sources, strict=True):
        if "rewards" not in d:
            raise DataError(f"{src}: no rewards; offline RL needs a single-task dataset (e.g. ...-singletask-task1-v0)")
    return OfflineData(
        observations=jnp.asarray(first["observations"], jnp.float32),
        actions=jnp.asarray(first["actions"], jnp.float32),
        next_observations=jnp.asarray(first["next_observations"], jnp.float32),
        rewards=jnp.asarray(np.stack([d["rewards"] for d in datasets]), jnp.float32),
        masks=jnp.asarray(np.stack([d["masks"] for d in datasets]), jnp.float32),
        env_names=tuple(env_names),
        episodes=episode_rows(first) if "terminals" in first else None,
    )


def episode_rows(dataset: dict) -> jax.Array:
    """Returns [N, 2] int32: for each transition, the first and last row of its episode (formats.episodes' split)."""
    rows = np.zeros((len(dataset["observations"]), 2), np.int32)
    for span in episode_spans(dataset):
        rows[span] = (span.start, span.stop - 1)
    return jnp.asarray(rows)


def load_offline_data(
    names: tuple[str, ...], data_dir: str | None = None, make_if_missing: bool = False, episodes: int | None = None
) -> OfflineData:
    """Returns the named single-task datasets (same transitions, different rewards) stacked on the device.

    A dataset without an evaluation environment is refused (its file name may be wrong), except Robomimic data:
    no Robomimic environment exists here, so it trains without evaluation (env name None)."""
    from sscp.data import registry

    specs = [registry.resolve(n, data_dir) for n in names]
    datasets, env_names = [], []
    for spec in specs:
        if spec.env_name is None and spec.format != "robomimic":
            why = spec.env_note or "name the file like OGBench (or D4RL: hopper-medium-v2.hdf5)"
            raise DataError(f"{spec.train_path}: cannot tell which environment evaluates it; {why}")
        train, _ = registry.load(spec, make_if_missing=make_if_missing, episodes=episodes)
        datasets.append(train)
        env_names.append(spec.env_name)
    return stack_tasks(datasets, env_names, [str(s.train_path) for s in specs])
