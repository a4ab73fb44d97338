"""SSCP-BC: the SSCP vector field trained by imitation alone (α₁·L_flow + α₂·L_completion, no critic), acting with
the one-step completion sampler (docs/method.md, "Behaviour cloning")."""

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import optax

from sscp import flow
from sscp.agents.base import Agent, ChunkingConfig
from sscp.agents.common import adam, apply_gradients, check_chunking, require_positive
from sscp.nets import VectorField


@dataclass(frozen=True)
class SSCPBCConfig(ChunkingConfig):
    """Hyperparameters of SSCP-BC; network and loss defaults as in the SSCP actor."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Vector-field MLP widths (mish, no LayerNorm)."""
    time_embed_dim: int = 128
    """Width of the shared Fourier features and of the τ / d embedding MLPs."""
    alpha_flow: float = 1.0
    """α₁: weight of the flow-matching loss."""
    alpha_completion: float = 1.0
    """α₂: weight of the completion loss."""
    action_clip_eps: float = 1e-5
    """Dataset actions are clipped to ±(1 − eps) before the losses."""
    sample_steps: int = 1
    """Network calls per action: sample_steps − 1 Euler steps, then a completion jump (1: one-step SSCP)."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "sample_steps", "time_embed_dim")
        check_chunking(self)


class SSCPBCAgent(Agent, flax.struct.PyTreeNode):
    """Immutable SSCP-BC agent (no critic, no target network: it acts with the online field)."""

    acting_steps_field: ClassVar[str | None] = "sample_steps"

    params: dict
    opt_state: Any
    rng: jax.Array
    config: SSCPBCConfig = flax.struct.field(pytree_node=False)
    actor_def: VectorField = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def field(self, params: dict):
        """Returns h(obs, x, t, d) bound to params."""
        return lambda obs, x, t, d: self.actor_def.apply(params, obs, x, t, d)

    def bc_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns α₁·L_flow + α₂·L_completion at τ = u²."""
        cfg = self.config
        actions = jnp.clip(batch["actions"], -1.0 + cfg.action_clip_eps, 1.0 - cfg.action_clip_eps)
        z, tau, x_tau = flow.sample_path(key, actions)
        velocity, completion = flow.flow_and_completion(self.field(params), batch["observations"], x_tau, tau)
        flow_loss = flow.flow_loss(velocity, actions, z)
        completion_loss = flow.completion_loss(flow.complete(x_tau, tau, completion), actions)
        loss = cfg.alpha_flow * flow_loss + cfg.alpha_completion * completion_loss
        return loss, {"bc_loss": loss, "flow_loss": flow_loss, "completion_loss": completion_loss}

    def update(self, batch: dict) -> tuple["SSCPBCAgent", dict]:
        """Returns the agent after one gradient step on batch, and diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.bc_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        return self.replace(params=params, opt_state=opt_state, rng=rng), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1]: one completion jump from fresh noise (or the k-step sampler)."""
        z = jax.random.normal(key, (*observations.shape[:-1], self.actor_def.action_dim))
        return flow.euler_then_complete(self.field(self.params), observations, z, self.config.sample_steps)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: SSCPBCConfig) -> "SSCPBCAgent":
        """Returns a freshly initialised agent."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        actor_def = VectorField(actions.shape[-1], config.hidden_dims, embed_dim=config.time_embed_dim)
        rng, init_key = jax.random.split(key)
        t = jnp.zeros((1,))
        params = actor_def.init(init_key, obs, actions, t, t)
        optimizer = adam(config.lr)
        return cls(params, optimizer.init(params), rng, config, actor_def, optimizer)

    def numpy_export(self):
        """Returns the acting network, its parameters, its first layer's input order and the sampler's schedule."""
        return self.actor_def, self.params, ("obs", "x", "time"), "euler_then_complete"
