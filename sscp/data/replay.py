"""The online replay buffer on the device (preallocated ring arrays, jittable add and sample) and the batch source of
the online phase: the buffer alone, or the buffer together with the offline data."""

from typing import Literal

import flax
import jax
import jax.numpy as jnp
import numpy as np

from sscp.data.dataset import OfflineData

FIELDS = ("observations", "actions", "rewards", "masks", "next_observations")


class ReplayBuffer(flax.struct.PyTreeNode):
    """One run's online transitions in preallocated arrays [capacity, ...]; a ring once full (the oldest go first).

    Stacked along a leading run axis like the agents, one buffer per run, and used under jax.vmap.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    masks: jax.Array
    next_observations: jax.Array
    size: jax.Array
    """Valid transitions, min(added, capacity)."""
    pointer: jax.Array
    """Where the next transition goes: added % capacity."""

    @classmethod
    def create(cls, capacity: int, obs_dim: int, action_dim: int, runs: int | None = None) -> "ReplayBuffer":
        """Returns an empty buffer, or `runs` empty buffers stacked along a leading axis."""
        lead = () if runs is None else (runs,)
        return cls(
            observations=jnp.zeros((*lead, capacity, obs_dim), jnp.float32),
            actions=jnp.zeros((*lead, capacity, action_dim), jnp.float32),
            rewards=jnp.zeros((*lead, capacity), jnp.float32),
            masks=jnp.zeros((*lead, capacity), jnp.float32),
            next_observations=jnp.zeros((*lead, capacity, obs_dim), jnp.float32),
            size=jnp.zeros(lead, jnp.int32),
            pointer=jnp.zeros(lead, jnp.int32),
        )

    @property
    def capacity(self) -> int:
        """Returns the number of slots (the last axis before the feature axes)."""
        return int(self.rewards.shape[-1])

    def add(self, transition: dict) -> "ReplayBuffer":
        """Returns the buffer with one transition (a dict of FIELDS, unbatched) written at the pointer."""
        capacity = self.rewards.shape[0]
        i = self.pointer
        written = {k: getattr(self, k).at[i].set(jnp.asarray(transition[k], jnp.float32)) for k in FIELDS}
        return self.replace(**written, size=jnp.minimum(self.size + 1, capacity), pointer=(i + 1) % capacity)

    def gather(self, idx: jax.Array) -> dict:
        """Returns the transitions at indices idx as a batch dict."""
        return {k: getattr(self, k)[idx] for k in FIELDS}

    def sample(self, key: jax.Array, batch_size: int) -> dict:
        """Returns batch_size transitions drawn uniformly, with replacement, from the valid ones."""
        return self.gather(jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1)))

    # ---- host side: checkpoints ----------------------------------------------------------------------------------
    def to_host(self) -> dict:
        """Returns the stacked buffers as numpy arrays cut to the filled part (all runs fill in lockstep)."""
        host = jax.device_get(self)
        n = int(np.max(host.size)) if host.size.size else 0
        out = {k: np.asarray(getattr(host, k))[:, :n] for k in FIELDS}
        return {**out, "size": np.asarray(host.size), "pointer": np.asarray(host.pointer)}

    def from_host(self, saved: dict) -> "ReplayBuffer":
        """Returns this (empty, stacked) buffer filled with what to_host saved."""
        arrays = {}
        for k in FIELDS:
            value = np.asarray(saved[k])
            n = value.shape[1]
            arrays[k] = getattr(self, k).at[:, :n].set(jnp.asarray(value, jnp.float32))
        size = jnp.asarray(np.asarray(saved["size"]), jnp.int32).reshape(self.size.shape)
        pointer = jnp.asarray(np.asarray(saved["pointer"]), jnp.int32).reshape(self.pointer.shape)
        return self.replace(**arrays, size=size, pointer=pointer)


class OnlineSource(flax.struct.PyTreeNode):
    """Batches of the online phase for one run: its replay buffer, with or without the offline data.

    policy "append" draws uniformly from the offline data followed by the online transitions: the same
    distribution as appending online transitions to the dataset (docs/method.md, "Online and offline-to-online"),
    without copying the dataset into every run's buffer. "separate" draws half of each batch from each source.
    """

    buffer: ReplayBuffer
    offline: OfflineData | None = None
    policy: Literal["append", "separate"] = flax.struct.field(pytree_node=False, default="append")

    def sample(self, key: jax.Array, batch_size: int, task: jax.Array) -> dict:
        """Returns a batch of batch_size transitions (the offline ones with task `task`'s rewards and masks)."""
        if self.offline is None:
            return self.buffer.sample(key, batch_size)
        if self.policy == "separate":
            offline_key, online_key = jax.random.split(key)
            half = batch_size // 2
            a = self.offline.sample(offline_key, half, task)
            b = self.buffer.sample(online_key, batch_size - half)
            return {k: jnp.concatenate([a[k], b[k]]) for k in FIELDS}
        n = self.offline.observations.shape[0]
        idx = jax.random.randint(key, (batch_size,), 0, n + self.buffer.size)
        from_offline = idx < n
        a = self.offline.gather(jnp.minimum(idx, n - 1), task)
        b = self.buffer.gather(jnp.clip(idx - n, 0, self.buffer.rewards.shape[0] - 1))
        return {k: jnp.where(_rows(from_offline, a[k]), a[k], b[k]) for k in FIELDS}


def _rows(mask: jax.Array, like: jax.Array) -> jax.Array:
    """Returns mask [B] broadcastable against like [B, ...]."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))
