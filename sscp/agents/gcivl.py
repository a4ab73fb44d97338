"""Goal-conditioned implicit V-learning (GCIVL; OGBench's impls/agents/gcivl.py, the value learning of HIQL without
the hierarchy): an ensemble of two V(s, g) fitted by IVL expectile regression on goal-relabelled transitions (reward
0 at the goal, −1 elsewhere), and a Gaussian policy π(a | s, g) extracted by advantage-weighted regression with
advantage V(s', g) − V(s, g). Acting takes the policy mean, one network call."""

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent
from sscp.agents.common import adam, apply_gradients, require_positive, soft_update
from sscp.agents.goal_common import GoalConfig, awr_weights, ivl_value_loss, ogbench_presets, unit_gaussian_log_prob
from sscp.errors import ConfigError
from sscp.nets import Actor, Ensemble


@dataclass(frozen=True)
class GCIVLConfig(GoalConfig):
    """Hyperparameters of GCIVL; defaults are OGBench's (impls/agents/gcivl.py and its pointmaze commands: AWR
    temperature 10, γ 0.995 on giant mazes, actor random-goal fraction 0.5 on stitch datasets)."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on value + actor loss."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Policy MLP widths (GELU, no LayerNorm), on concat(s, g)."""
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Widths of each of the two value networks (GELU), on concat(s, g)."""
    layer_norm: bool = True
    """LayerNorm in the value networks."""
    tau: float = 0.005
    """Soft-update rate of the target value networks."""
    expectile: float = 0.9
    """IVL expectile (OGBench's GCIVL; HIQL uses 0.7)."""
    alpha: float = 10.0
    """AWR inverse temperature in exp(alpha · (V(s', g) − V(s, g))) (OGBench's pointmaze setting)."""

    PRESETS: ClassVar[dict[str, dict]] = ogbench_presets(random_goals_on_stitch=True)

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "lr", "batch_size", "tau")
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"--agent.expectile must be in (0, 1), got {self.expectile}")


class GCIVLAgent(Agent, flax.struct.PyTreeNode):
    """Immutable GCIVL agent: value ensemble and policy (online), target value ensemble, optimiser state."""

    goal_conditioned: ClassVar[bool] = True

    params: dict
    target_value: dict
    opt_state: Any
    rng: jax.Array
    config: GCIVLConfig = flax.struct.field(pytree_node=False)
    value_def: Ensemble = flax.struct.field(pytree_node=False)
    actor_def: Actor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def value(self, value_params: dict, obs: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns V_j(s, g) of both ensemble members [2, B]."""
        return self.value_def.apply(value_params, obs, goals)

    def value_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns the IVL value loss (goal_common.ivl_value_loss) and diagnostics."""
        return ivl_value_loss(
            lambda s, g: self.value(params["value"], s, g),
            lambda s, g: self.value(self.target_value, s, g),
            batch,
            self.config.discount,
            self.config.expectile,
        )

    def actor_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns −mean(w · log N(a; μ(s, g), I)), w = min(exp(α·(V(s', g) − V(s, g))), 100) with the online values
        held fixed (g = actor goals), and diagnostics."""
        obs, goals = batch["observations"], batch["actor_goals"]
        fixed = jax.lax.stop_gradient(params["value"])
        adv = self.value(fixed, batch["next_observations"], goals).mean(0) - self.value(fixed, obs, goals).mean(0)
        weights = awr_weights(adv, self.config.alpha)
        mean = self.actor_def.apply(params["actor"], jnp.concatenate([obs, goals], axis=-1))
        log_prob = unit_gaussian_log_prob(mean, batch["actions"])
        loss = -(weights * log_prob).mean()
        return loss, {
            "actor_loss": loss,
            "adv": adv.mean(),
            "awr_weight": weights.mean(),
            "bc_log_prob": log_prob.mean(),
            "mse": jnp.mean((mean - batch["actions"]) ** 2),
        }

    def total_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns value + actor loss and their diagnostics; each term reaches only its own network."""
        value_loss, value_info = self.value_loss(batch, params)
        actor_loss, actor_info = self.actor_loss(batch, params)
        return value_loss + actor_loss, {**value_info, **actor_info}

    def update(self, batch: dict) -> tuple["GCIVLAgent", dict]:
        """Returns the agent after one gradient step and the target-value update, and diagnostics."""
        grads, info = jax.grad(lambda p: self.total_loss(batch, p), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        target = soft_update(self.params["value"], self.target_value, self.config.tau)  # θ before, as OGBench
        return self.replace(params=params, target_value=target, opt_state=opt_state), info

    def sample_actions(self, observations: jax.Array, goals: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the policy mean clipped to [−1, 1] (OGBench evaluates at temperature 0): one network call."""
        del key  # deterministic
        mean = self.actor_def.apply(self.params["actor"], jnp.concatenate([observations, goals], axis=-1))
        return jnp.clip(mean, -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: GCIVLConfig) -> "GCIVLAgent":
        """Returns a freshly initialised agent; the target values start as copies of the values."""
        obs, goals = example_batch["observations"][:1], example_batch["value_goals"][:1]
        value_def = Ensemble(config.value_hidden_dims, 2, layer_norm=config.layer_norm)
        actor_def = Actor(example_batch["actions"].shape[-1], config.actor_hidden_dims, squash=False)
        rng, value_key, actor_key = jax.random.split(key, 3)
        params = {
            "value": value_def.init(value_key, obs, goals),
            "actor": actor_def.init(actor_key, jnp.concatenate([obs, goals], axis=-1)),
        }
        optimizer = adam(config.lr)
        target = jax.tree.map(jnp.copy, params["value"])
        return cls(params, target, optimizer.init(params), rng, config, value_def, actor_def, optimizer)
