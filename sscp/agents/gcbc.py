"""Goal-conditioned behaviour cloning (GCBC; OGBench's impls/agents/gcbc.py): maximise the likelihood of the dataset
action under π(a | s, g) = N(μ(s, g), I) for goals g drawn from later states of the same trajectory; acting takes
the mean, one network call."""

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent
from sscp.agents.common import adam, apply_gradients, require_positive
from sscp.agents.goal_common import GoalConfig, unit_gaussian_log_prob
from sscp.nets import Actor


@dataclass(frozen=True)
class GCBCConfig(GoalConfig):
    """Hyperparameters of GCBC; defaults are OGBench's (impls/agents/gcbc.py), whose pointmaze commands change
    nothing per dataset (its stitch commands keep trajectory-only actor goals)."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Policy MLP widths (GELU, no LayerNorm), on concat(s, g)."""

    PRESETS: ClassVar[dict[str, dict]] = {}

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "lr", "batch_size")


class GCBCAgent(Agent, flax.struct.PyTreeNode):
    """Immutable GCBC agent: the policy-mean network and its optimiser state."""

    goal_conditioned: ClassVar[bool] = True

    params: dict
    opt_state: Any
    rng: jax.Array
    config: GCBCConfig = flax.struct.field(pytree_node=False)
    actor_def: Actor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def actor_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns −mean log N(a; μ(s, g), I) over the batch (g = actor goals), and diagnostics."""
        inputs = jnp.concatenate([batch["observations"], batch["actor_goals"]], axis=-1)
        mean = self.actor_def.apply(params, inputs)
        log_prob = unit_gaussian_log_prob(mean, batch["actions"])
        loss = -log_prob.mean()
        mse = jnp.mean((mean - batch["actions"]) ** 2)
        return loss, {"actor_loss": loss, "bc_log_prob": log_prob.mean(), "mse": mse}

    def update(self, batch: dict) -> tuple["GCBCAgent", dict]:
        """Returns the agent after one gradient step on batch, and diagnostics."""
        grads, info = jax.grad(lambda p: self.actor_loss(batch, p), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        return self.replace(params=params, opt_state=opt_state), info

    def sample_actions(self, observations: jax.Array, goals: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the policy mean clipped to [−1, 1] (OGBench evaluates at temperature 0): one network call."""
        del key  # deterministic
        mean = self.actor_def.apply(self.params, jnp.concatenate([observations, goals], axis=-1))
        return jnp.clip(mean, -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: GCBCConfig) -> "GCBCAgent":
        """Returns a freshly initialised agent."""
        obs, goals = example_batch["observations"][:1], example_batch["actor_goals"][:1]
        actor_def = Actor(example_batch["actions"].shape[-1], config.actor_hidden_dims, squash=False)
        rng, init_key = jax.random.split(key)
        params = actor_def.init(init_key, jnp.concatenate([obs, goals], axis=-1))
        optimizer = adam(config.lr)
        return cls(params, optimizer.init(params), rng, config, actor_def, optimizer)
