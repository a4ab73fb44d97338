"""The contract every agent keeps, so the training loop, evaluation and export treat them alike.

An agent is an immutable pytree (flax.struct.PyTreeNode) with

    create(key, example_batch, config) -> agent          (classmethod)
    update(batch) -> (agent, info: dict of scalars)       one gradient step
    sample_actions(observations[, goals], key) -> actions in [-1, 1]

and, from `Agent` below, defaults for what only some agents have: the actions taken while collecting online data
(explore_actions), goal conditioning, a sampler whose number of network calls can change after training
(acting_steps_field), and the one network a numpy runtime can run (numpy_export). Its config is a frozen dataclass
derived from `AgentConfig`.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import jax


@dataclass(frozen=True)
class AgentConfig:
    """The fields every agent's config has (each agent sets its own defaults and documents them)."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 256
    """Transitions per gradient step."""

    def chunking(self) -> tuple[int, int, int]:
        """Returns (H, n, m): actions predicted per call, actions executed of them, observations seen; (1, 1, 1)
        for agents without action chunks or observation histories (docs/behaviour_cloning.md)."""
        return 1, 1, 1


@dataclass(frozen=True)
class ChunkingConfig(AgentConfig):
    """The fields of the behaviour-cloning agents that predict action chunks from observation histories."""

    chunk_size: int = 1
    """H, actions predicted per call (an action chunk, flattened to H·action_dim); 1 is single-step BC."""
    execute_steps: int = 1
    """n <= H, actions of each predicted chunk executed before predicting again (Diffusion Policy: 8 of 16)."""
    obs_history: int = 1
    """m, observations the policy sees (the last m, oldest first, flattened; Diffusion Policy: 2)."""

    def chunking(self) -> tuple[int, int, int]:
        return self.chunk_size, self.execute_steps, self.obs_history


class Agent:
    """Defaults of the optional parts of the agent contract; agents derive from it and flax.struct.PyTreeNode."""

    goal_conditioned: ClassVar[bool] = False
    """True: trained on goal-relabelled trajectories, acting with sample_actions(observations, goals, key)."""
    acting_steps_field: ClassVar[str | None] = None
    """The config field holding the sampler's network calls per action, where training does not depend on it
    (`sscp eval --sample-steps K` evaluates a trained run at K); None where it cannot change."""

    def explore_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the actions taken while collecting online data: sample_actions unless the agent explores
        otherwise (SAC samples its stochastic policy; SSCP has exploration options)."""
        return self.sample_actions(observations, key)

    def numpy_export(self) -> tuple[Any, dict, tuple[str, ...], str] | None:
        """Returns (network, the parameters acting uses, the order of the first layer's input blocks, the sampler's
        schedule: "euler_then_complete", "euler" or "ddpm") for agents that act with one MLP called k times, which
        `sscp export --format numpy` folds into numpy arrays; None for the others."""
        return None
