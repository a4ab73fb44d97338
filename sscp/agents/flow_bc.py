"""Flow-matching behaviour cloning (FQL's BC flow): learn the velocity of the straight noise-to-action path and act
by integrating it with k Euler steps (k network calls per action)."""

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import optax

from sscp import flow
from sscp.agents.base import Agent, ChunkingConfig
from sscp.agents.common import adam, apply_gradients, check_chunking, require_positive
from sscp.nets import FlowField


@dataclass(frozen=True)
class FlowBCConfig(ChunkingConfig):
    """Hyperparameters of flow BC (FQL defaults)."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Velocity MLP widths (GELU), input concat(s, x, t)."""
    layer_norm: bool = False
    """LayerNorm after each hidden activation."""
    flow_steps: int = 10
    """Euler steps (network calls) per action."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "flow_steps")
        check_chunking(self)


class FlowBCAgent(Agent, flax.struct.PyTreeNode):
    """Immutable flow BC agent."""

    acting_steps_field: ClassVar[str | None] = "flow_steps"

    params: dict
    opt_state: Any
    rng: jax.Array
    config: FlowBCConfig = flax.struct.field(pytree_node=False)
    field_def: FlowField = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def field(self, params: dict):
        """Returns the velocity as h(obs, x, t, d) (d is ignored), the signature the samplers take."""
        return lambda obs, x, t, d: self.field_def.apply(params, obs, x, t)

    def flow_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns mean((v(s, x_t, t) − (a − z))²) with t ~ U[0, 1] (FQL's time sampling)."""
        actions = batch["actions"]
        z_key, t_key = jax.random.split(key)
        z = jax.random.normal(z_key, actions.shape)
        t = jax.random.uniform(t_key, actions.shape[:-1])
        x_t = (1.0 - t[..., None]) * z + t[..., None] * actions
        loss = flow.flow_loss(self.field_def.apply(params, batch["observations"], x_t, t), actions, z)
        return loss, {"flow_loss": loss}

    def update(self, batch: dict) -> tuple["FlowBCAgent", dict]:
        """Returns the agent after one gradient step on batch, and diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.flow_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        return self.replace(params=params, opt_state=opt_state, rng=rng), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1] after flow_steps Euler steps from fresh noise."""
        z = jax.random.normal(key, (*observations.shape[:-1], self.field_def.action_dim))
        return flow.euler_sample(self.field(self.params), observations, z, self.config.flow_steps)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: FlowBCConfig) -> "FlowBCAgent":
        """Returns a freshly initialised agent."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        field_def = FlowField(actions.shape[-1], config.hidden_dims, layer_norm=config.layer_norm)
        rng, init_key = jax.random.split(key)
        params = field_def.init(init_key, obs, actions, jax.numpy.zeros((1,)))
        optimizer = adam(config.lr)
        return cls(params, optimizer.init(params), rng, config, field_def, optimizer)

    def numpy_export(self):
        """Returns the acting network, its parameters, its first layer's input order and the sampler's schedule."""
        return self.field_def, self.params, ("obs", "x", "time"), "euler"
