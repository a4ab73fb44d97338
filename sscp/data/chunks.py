"""Action chunks and observation histories for behaviour cloning (Diffusion Policy's layout), sampled on the device:
per sampled row, the next H actions of its episode and its last m observations, flattened."""

import flax
import jax
import jax.numpy as jnp

from sscp.data.dataset import OfflineData
from sscp.errors import DataError


class ChunkedData(flax.struct.PyTreeNode):
    """OfflineData whose batches hold action chunks [B, H·action_dim] and observation histories [B, m·obs_dim].

    Row i's chunk is actions i … i + H − 1, each index capped at the last row of i's episode (so the last action
    repeats at an episode's end, as Diffusion Policy pads); its history is observations i − m + 1 … i, oldest first,
    each index raised to the first row of i's episode (so the first observation repeats at its start). Batches keep
    the first step's rewards and masks and drop next_observations (behaviour cloning reads neither).
    """

    data: OfflineData
    chunk_size: int = flax.struct.field(pytree_node=False)
    obs_history: int = flax.struct.field(pytree_node=False)

    @classmethod
    def wrap(cls, data: OfflineData, chunk_size: int, obs_history: int, source: str) -> "ChunkedData":
        """Returns data sampled in chunks, or a DataError if it has no episode boundaries to chunk within."""
        if data.episodes is None:
            raise DataError(
                f"{source}: has no episode ends (terminals), so action chunks (--agent.chunk-size {chunk_size}) and "
                f"observation histories (--agent.obs-history {obs_history}) cannot stay within episodes; use a "
                "dataset with terminals, or chunk size and history 1"
            )
        return cls(data, chunk_size, obs_history)

    @property
    def size(self) -> int:
        """Returns the number of transitions."""
        return self.data.size

    @property
    def smallest_task(self) -> int:
        """Returns the number of transitions of the task with the fewest."""
        return self.data.smallest_task

    @property
    def env_names(self) -> tuple[str, ...]:
        """Returns the environment of each task."""
        return self.data.env_names

    def sample(self, key: jax.Array, batch_size: int, task: jax.Array) -> dict:
        """Returns a uniformly sampled batch of chunks with task `task`'s rewards and masks."""
        return self.gather(self.data.sample_rows(key, batch_size, task), task)

    def gather(self, idx: jax.Array, task: jax.Array) -> dict:
        """Returns the chunks and histories starting (ending) at rows idx [B]."""
        first, last = self.data.episodes[idx, 0], self.data.episodes[idx, 1]
        action_rows = jnp.minimum(idx[:, None] + jnp.arange(self.chunk_size), last[:, None])
        obs_rows = jnp.maximum(idx[:, None] + jnp.arange(1 - self.obs_history, 1), first[:, None])
        return {
            "observations": self.data.observations[obs_rows].reshape(idx.shape[0], -1),
            "actions": self.data.actions[action_rows].reshape(idx.shape[0], -1),
            "rewards": self.data.rewards[task, idx],
            "masks": self.data.masks[task, idx],
        }

    def example_batch(self) -> dict:
        """Returns a one-row batch of the first task, for shaping networks."""
        return self.sample(jax.random.PRNGKey(0), 1, 0)
