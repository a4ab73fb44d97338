"""Implicit Q-Learning (Kostrikov, Nair & Levine, ICLR 2022): V(s) is an expectile of Q(s, a) over dataset actions,
Q(s, a) regresses onto r + γ·V(s'), so no action outside the dataset is ever evaluated; the policy is extracted by
advantage-weighted regression. Acting takes one call of the policy."""

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent, AgentConfig
from sscp.agents.common import adam, apply_gradients, require_positive, soft_update
from sscp.errors import ConfigError
from sscp.nets import MLP, Actor, Ensemble


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Returns |expectile − 1(diff < 0)|·diff²: positive residuals (Q above V) weigh expectile, negative ones
    1 − expectile, so the minimiser over V is the expectile of Q (the mean at 0.5, the max as it nears 1)."""
    weight = jnp.where(diff >= 0, expectile, 1.0 - expectile)
    return weight * diff**2


@dataclass(frozen=True)
class IQLConfig(AgentConfig):
    """Hyperparameters of IQL; defaults are the FQL paper's OGBench IQL settings (FQL's agents/iql.py). The IQL
    paper uses expectile 0.7 and temperature 3 on MuJoCo locomotion, and 0.9 and 10 on AntMaze (these defaults)."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on value + critic + actor loss."""
    batch_size: int = 256
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Policy-mean MLP widths (GELU, no LayerNorm)."""
    value_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Widths of V and of each of the twin critics (GELU)."""
    layer_norm: bool = True
    """LayerNorm in V and the critics (OGBench's IQL; the IQL paper has none)."""
    discount: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Soft-update rate of the target critics, which V is fitted to."""
    expectile: float = 0.9
    """Expectile of Q that V estimates (IQL paper: 0.7 locomotion, 0.9 AntMaze)."""
    temperature: float = 10.0
    """AWR inverse temperature β in exp(β·(Q − V)); FQL's IQL calls it alpha and tunes it per task (1 to 10)."""
    max_weight: float = 100.0
    """AWR weights are clipped at this value (IQL and OGBench: 100)."""
    deterministic: bool = True
    """Act with the policy mean (OGBench's evaluation); False samples from N(mean, I), the fixed-std policy."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "max_weight")
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"--agent.expectile must be in (0, 1), got {self.expectile}")


class IQLAgent(Agent, flax.struct.PyTreeNode):
    """Immutable IQL agent: value, twin critics and policy (online), target critics, optimiser state."""

    params: dict
    target_critic: dict
    opt_state: Any
    rng: jax.Array
    config: IQLConfig = flax.struct.field(pytree_node=False)
    value_def: MLP = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    actor_def: Actor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def value(self, value_params: dict, obs: jax.Array) -> jax.Array:
        """Returns V(s) [B]."""
        return self.value_def.apply(value_params, obs)[..., 0]

    def value_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns the expectile loss of V(s) against min of the target critics at dataset actions, and diagnostics."""
        q = self.critic_def.apply(self.target_critic, batch["observations"], batch["actions"]).min(axis=0)
        v = self.value(params["value"], batch["observations"])
        loss = expectile_loss(q - v, self.config.expectile).mean()
        return loss, {"value_loss": loss, "v_mean": v.mean(), "v_max": v.max(), "v_min": v.min()}

    def critic_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns the summed TD loss of the twin critics against r + γ·mask·V(s') (V held fixed), and diagnostics."""
        next_v = self.value(jax.lax.stop_gradient(params["value"]), batch["next_observations"])
        target = jax.lax.stop_gradient(batch["rewards"] + self.config.discount * batch["masks"] * next_v)
        q = self.critic_def.apply(params["critic"], batch["observations"], batch["actions"])
        loss = jnp.mean(jnp.sum((q - target[None]) ** 2, axis=0))
        return loss, {"critic_loss": loss, "q_mean": q.mean()}

    def actor_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns −mean(min(exp(β·(Q − V)), max_weight) · log π(a|s)) with π = N(μ(s), I), and diagnostics.

        The advantage uses the online critics and V (as OGBench's IQL does), both held fixed."""
        obs, actions = batch["observations"], batch["actions"]
        fixed = jax.lax.stop_gradient(params)
        adv = self.critic_def.apply(fixed["critic"], obs, actions).min(axis=0) - self.value(fixed["value"], obs)
        weights = jnp.minimum(jnp.exp(self.config.temperature * adv), self.config.max_weight)
        mean = self.actor_def.apply(params["actor"], obs)
        log_prob = -0.5 * jnp.sum((actions - mean) ** 2 + jnp.log(2.0 * jnp.pi), axis=-1)
        loss = -(weights * log_prob).mean()
        info = {
            "actor_loss": loss,
            "adv": adv.mean(),
            "awr_weight": weights.mean(),
            "bc_log_prob": log_prob.mean(),
            "mse": jnp.mean((mean - actions) ** 2),
        }
        return loss, info

    def total_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns value + critic + actor loss and their diagnostics; each term reaches only its own network."""
        value_loss, value_info = self.value_loss(batch, params)
        critic_loss, critic_info = self.critic_loss(batch, params)
        actor_loss, actor_info = self.actor_loss(batch, params)
        return value_loss + critic_loss + actor_loss, {**value_info, **critic_info, **actor_info}

    def update(self, batch: dict) -> tuple["IQLAgent", dict]:
        """Returns the agent after one gradient step on batch and the target-critic update (toward the critics from
        before the step, as FQL's and OGBench's IQL do), and diagnostics."""
        grads, info = jax.grad(lambda p: self.total_loss(batch, p), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        target = soft_update(self.params["critic"], self.target_critic, self.config.tau)  # θ before the step
        return self.replace(params=params, target_critic=target, opt_state=opt_state), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the policy mean (or a sample of N(mean, I)) clipped to [−1, 1]: one network call."""
        mean = self.actor_def.apply(self.params["actor"], observations)
        if self.config.deterministic:
            return jnp.clip(mean, -1.0, 1.0)
        return jnp.clip(mean + jax.random.normal(key, mean.shape), -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: IQLConfig) -> "IQLAgent":
        """Returns a freshly initialised agent; the target critics start as copies of the critics."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        value_def = MLP((*config.value_hidden_dims, 1), "gelu", layer_norm=config.layer_norm)
        critic_def = Ensemble(config.value_hidden_dims, 2, layer_norm=config.layer_norm)
        # OGBench's IQL policy: a Gaussian with fixed unit std, its mean unsquashed (clipped when acting).
        actor_def = Actor(actions.shape[-1], config.actor_hidden_dims, squash=False)
        rng, k1, k2, k3 = jax.random.split(key, 4)
        params = {
            "value": value_def.init(k1, obs),
            "critic": critic_def.init(k2, obs, actions),
            "actor": actor_def.init(k3, obs),
        }
        optimizer = adam(config.lr)
        target = jax.tree.map(jnp.copy, params["critic"])
        return cls(params, target, optimizer.init(params), rng, config, value_def, critic_def, actor_def, optimizer)
