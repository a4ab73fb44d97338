"""Gaussian behaviour cloning: maximise the likelihood of dataset actions under a diagonal Gaussian MLP policy
(the BC baseline of OGBench and FQL); acting takes the mean by default."""

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent, ChunkingConfig
from sscp.agents.common import adam, apply_gradients, check_chunking, require_positive
from sscp.nets import GaussianActor


@dataclass(frozen=True)
class BCConfig(ChunkingConfig):
    """Hyperparameters of Gaussian BC (FQL/OGBench defaults)."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Policy MLP widths (GELU)."""
    layer_norm: bool = False
    """LayerNorm after each hidden activation."""
    deterministic: bool = True
    """Act with the mean (the OGBench/FQL evaluation convention); False samples from the Gaussian."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size")
        check_chunking(self)


class BCAgent(Agent, flax.struct.PyTreeNode):
    """Immutable Gaussian BC agent."""

    params: dict
    opt_state: Any
    rng: jax.Array
    config: BCConfig = flax.struct.field(pytree_node=False)
    actor_def: GaussianActor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def bc_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns the mean negative log-likelihood of the dataset actions."""
        mean, log_std = self.actor_def.apply(params, batch["observations"])
        actions = batch["actions"]
        nll = 0.5 * ((actions - mean) / jnp.exp(log_std)) ** 2 + log_std + 0.5 * jnp.log(2.0 * jnp.pi)
        loss = nll.sum(axis=-1).mean()
        return loss, {"bc_loss": loss, "mse": jnp.mean((mean - actions) ** 2), "std": jnp.exp(log_std).mean()}

    def update(self, batch: dict) -> tuple["BCAgent", dict]:
        """Returns the agent after one gradient step on batch, and diagnostics."""
        grads, info = jax.grad(lambda p: self.bc_loss(batch, p), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        return self.replace(params=params, opt_state=opt_state), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the policy mean (or a Gaussian sample), clipped to [−1, 1]."""
        mean, log_std = self.actor_def.apply(self.params, observations)
        if self.config.deterministic:
            return jnp.clip(mean, -1.0, 1.0)
        return jnp.clip(mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape), -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: BCConfig) -> "BCAgent":
        """Returns a freshly initialised agent."""
        actor_def = GaussianActor(example_batch["actions"].shape[-1], config.hidden_dims, layer_norm=config.layer_norm)
        rng, init_key = jax.random.split(key)
        params = actor_def.init(init_key, example_batch["observations"][:1])
        optimizer = adam(config.lr)
        return cls(params, optimizer.init(params), rng, config, actor_def, optimizer)
