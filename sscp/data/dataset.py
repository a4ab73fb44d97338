"""Transition data on the device, with per-task rewards, sampled inside jit."""

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sscp.data import registry
from sscp.data.formats import episodes as episode_spans
from sscp.errors import DataError


class OfflineData(flax.struct.PyTreeNode):
    """Transitions [N, ...] plus rewards and masks per task [T, N]; lives on the device. Single-task variants of one
    dataset share all N rows; other datasets of equal sizes are concatenated, each task sampling its own rows."""

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

    task_rows: jax.Array | None = None
    """[T, 2] int32: task t's transitions are rows task_rows[t, 0] ... + task_rows[t, 1] - 1 (datasets concatenated),
    or None: every task samples all rows (single-task variants of one dataset)."""

    @property
    def size(self) -> int:
        """Returns the number of transitions."""
        return int(self.observations.shape[0])

    @property
    def smallest_task(self) -> int:
        """Returns the number of transitions of the task with the fewest."""
        return self.size if self.task_rows is None else int(np.min(np.asarray(self.task_rows)[:, 1]))

    def sample_rows(self, key: jax.Array, batch_size: int, task: jax.Array) -> jax.Array:
        """Returns batch_size row indices drawn uniformly from task `task`'s rows."""
        if self.task_rows is None:
            return jax.random.randint(key, (batch_size,), 0, self.observations.shape[0])
        return self.task_rows[task, 0] + jax.random.randint(key, (batch_size,), 0, self.task_rows[task, 1])

    def sample(self, key: jax.Array, batch_size: int, task: jax.Array) -> dict:
        """Returns a uniformly sampled batch of task `task`'s transitions with its rewards and masks."""
        return self.gather(self.sample_rows(key, batch_size, task), task)

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
    """Returns OfflineData of several single-task datasets: shared transitions when they are single-task variants of
    one dataset (only rewards and masks differ), else the datasets concatenated, each task sampling its own rows
    (their observation and action sizes must agree)."""
    first = datasets[0]
    for d, src in zip(datasets, sources, strict=True):
        if "rewards" not in d:
            raise DataError(f"{src}: no rewards; offline RL needs a single-task dataset (e.g. ...-singletask-task1-v0)")
    shared = all(
        d[k].shape == first[k].shape and np.array_equal(d[k], first[k])
        for d in datasets[1:]
        for k in ("observations", "actions")
    )
    if shared:
        return OfflineData(
            observations=jnp.asarray(first["observations"], jnp.float32),
            actions=jnp.asarray(first["actions"], jnp.float32),
            next_observations=jnp.asarray(first["next_observations"], jnp.float32),
            rewards=jnp.asarray(np.stack([d["rewards"] for d in datasets]), jnp.float32),
            masks=jnp.asarray(np.stack([d["masks"] for d in datasets]), jnp.float32),
            env_names=tuple(env_names),
            episodes=episode_rows(first) if "terminals" in first else None,
        )
    for d, src in zip(datasets[1:], sources[1:], strict=True):
        for k in ("observations", "actions"):
            if d[k].shape[1:] != first[k].shape[1:]:
                raise DataError(
                    f"{src}: its {k} have shape {d[k].shape[1:]} per row, those of {sources[0]} "
                    f"{first[k].shape[1:]}; datasets trained together need equal observation and action sizes"
                )
    with_ends = ["terminals" in d for d in datasets]
    if any(with_ends) and not all(with_ends):
        missing = sources[with_ends.index(False)]
        raise DataError(f"{missing}: has no episode ends (terminals) while {sources[0]} has; train them apart")
    sizes = [len(d["observations"]) for d in datasets]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rewards = np.zeros((len(datasets), sum(sizes)), np.float32)
    masks = np.zeros((len(datasets), sum(sizes)), np.float32)
    for t, (d, start, size) in enumerate(zip(datasets, starts, sizes, strict=True)):
        rewards[t, start : start + size] = d["rewards"]
        masks[t, start : start + size] = d["masks"]
    episodes = None
    if all(with_ends):
        episodes = jnp.concatenate([episode_rows(d) + int(start) for d, start in zip(datasets, starts, strict=True)])
    return OfflineData(
        observations=jnp.asarray(np.concatenate([d["observations"] for d in datasets]), jnp.float32),
        actions=jnp.asarray(np.concatenate([d["actions"] for d in datasets]), jnp.float32),
        next_observations=jnp.asarray(np.concatenate([d["next_observations"] for d in datasets]), jnp.float32),
        rewards=jnp.asarray(rewards),
        masks=jnp.asarray(masks),
        env_names=tuple(env_names),
        episodes=episodes,
        task_rows=jnp.asarray(np.stack([starts, sizes], axis=1).astype(np.int32)),
    )


def episode_rows(dataset: dict) -> jax.Array:
    """Returns [N, 2] int32: for each transition, the first and last row of its episode (formats.episodes' split)."""
    rows = np.zeros((len(dataset["observations"]), 2), np.int32)
    for span in episode_spans(dataset):
        rows[span] = (span.start, span.stop - 1)
    return jnp.asarray(rows)


def load_offline_data(
    names: tuple[str, ...],
    data_dir: str | None = None,
    make_if_missing: bool = False,
    episodes: int | None = None,
    need_env: bool = True,
) -> OfflineData:
    """Returns the named single-task datasets stacked on the device (stack_tasks: shared or concatenated rows).

    With need_env, a dataset without an evaluation environment is refused (its file name may be wrong), except
    Robomimic data and zarr replay buffers (Push-T): where their simulator is not installed (or the file names none
    sscp has, sscp.data.sim_data), they train without evaluation (env name None). Without it (training without
    evaluation) any dataset loads."""
    specs = [registry.resolve(n, data_dir) for n in names]
    datasets, env_names = [], []
    for spec in specs:
        if spec.env_name is None and not spec.train_path.exists():  # a missing file first: no name fixes that
            raise registry.missing_file_error(spec)
        if need_env and spec.env_name is None and spec.format not in ("robomimic", "zarr"):
            why = spec.env_note or "name the file like OGBench (or D4RL: hopper-medium-v2.hdf5)"
            raise DataError(
                f"{spec.train_path}: cannot tell which environment evaluates it; {why}; or train without evaluation: "
                "--eval-episodes 0"
            )
        train, _ = registry.load(spec, make_if_missing=make_if_missing, episodes=episodes)
        datasets.append(train)
        env_names.append(spec.env_name)
    return stack_tasks(datasets, env_names, [str(s.train_path) for s in specs])
