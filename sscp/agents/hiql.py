"""Hierarchical implicit Q-learning (HIQL; Park et al., NeurIPS 2023; OGBench's impls/agents/hiql.py).

One goal-conditioned value V(s, g) = V(s, φ([s; g])) learned by IVL (as GCIVL) also learns the subgoal
representation φ (10 numbers, length √10). Two Gaussian actors are extracted from it by advantage-weighted regression:
the high-level actor predicts, from (s, g), the representation φ([s; s_{t+k}]) of the state k steps ahead, weighted
by V(s_{t+k}, g) − V(s, g); the low-level actor predicts the action from (s, φ([s; w])), w = s_{t+k}, weighted by
V(s', w) − V(s, w), with φ held fixed. Acting takes two calls: the high-level mean (length-normalised), then the
low-level mean."""

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
from sscp.nets import Actor, Ensemble, GoalRepresentation, length_normalize


@dataclass(frozen=True)
class HIQLConfig(GoalConfig):
    """Hyperparameters of HIQL; defaults are OGBench's (impls/agents/hiql.py and its pointmaze commands: AWR
    temperatures 3, subgoal steps 25, γ 0.995 on giant mazes, actor random-goal fraction 0.5 on stitch datasets)."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on value + low + high actor loss."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Widths of each actor MLP (GELU, no LayerNorm)."""
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Widths of φ and of each of the two value networks (GELU)."""
    layer_norm: bool = True
    """LayerNorm in φ and the value networks."""
    rep_dim: int = 10
    """Size of the subgoal representation φ([s; g])."""
    tau: float = 0.005
    """Soft-update rate of the target value networks."""
    expectile: float = 0.7
    """IVL expectile."""
    low_alpha: float = 3.0
    """AWR inverse temperature of the low-level actor."""
    high_alpha: float = 3.0
    """AWR inverse temperature of the high-level actor."""
    low_actor_rep_grad: bool = False
    """Let the low-level actor's loss train φ (OGBench: only for pixels)."""

    PRESETS: ClassVar[dict[str, dict]] = ogbench_presets(random_goals_on_stitch=True)

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "lr", "batch_size", "tau", "rep_dim")
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"--agent.expectile must be in (0, 1), got {self.expectile}")


class HIQLAgent(Agent, flax.struct.PyTreeNode):
    """Immutable HIQL agent: φ, value ensemble and both actors (online), target value heads, optimiser state.

    As in OGBench's code, the target value shares the online φ (its parameters exist once): only the value heads
    have target copies."""

    goal_conditioned: ClassVar[bool] = True

    params: dict
    target_value: dict
    opt_state: Any
    rng: jax.Array
    config: HIQLConfig = flax.struct.field(pytree_node=False)
    phi_def: GoalRepresentation = flax.struct.field(pytree_node=False)
    value_def: Ensemble = flax.struct.field(pytree_node=False)
    low_actor_def: Actor = flax.struct.field(pytree_node=False)
    high_actor_def: Actor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def phi(self, phi_params: dict, obs: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns φ([s; g]) [B, rep_dim]."""
        return self.phi_def.apply(phi_params, obs, goals)

    def value(self, params: dict, value_params: dict, obs: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns V_j(s, φ([s; g])) of both members [2, B] with value heads value_params and φ from params."""
        return self.value_def.apply(value_params, obs, self.phi(params["phi"], obs, goals))

    def value_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns the IVL value loss, which trains φ and the value heads, and diagnostics."""
        fixed = jax.lax.stop_gradient(params)
        return ivl_value_loss(
            lambda s, g: self.value(params, params["value"], s, g),
            lambda s, g: self.value(fixed, self.target_value, s, g),
            batch,
            self.config.discount,
            self.config.expectile,
        )

    def _advantage(self, params: dict, obs: jax.Array, later: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns mean_j V_j(later, g) − mean_j V_j(s, g) with the online networks held fixed."""
        fixed = jax.lax.stop_gradient(params)
        v_later = self.value(fixed, fixed["value"], later, goals).mean(0)
        return v_later - self.value(fixed, fixed["value"], obs, goals).mean(0)

    def low_actor_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns −mean(w · log N(a; μ_low(s, φ([s; w])), I)), w = low_actor_goals, weights from V(s', w) − V(s, w),
        φ held fixed unless low_actor_rep_grad; and diagnostics."""
        obs, subgoals = batch["observations"], batch["low_actor_goals"]
        adv = self._advantage(params, obs, batch["next_observations"], subgoals)
        weights = awr_weights(adv, self.config.low_alpha)
        reps = self.phi(params["phi"], obs, subgoals)
        if not self.config.low_actor_rep_grad:
            reps = jax.lax.stop_gradient(reps)
        mean = self.low_actor_def.apply(params["low_actor"], jnp.concatenate([obs, reps], axis=-1))
        log_prob = unit_gaussian_log_prob(mean, batch["actions"])
        loss = -(weights * log_prob).mean()
        return loss, {
            "low_actor_loss": loss,
            "low_adv": adv.mean(),
            "low_bc_log_prob": log_prob.mean(),
            "low_mse": jnp.mean((mean - batch["actions"]) ** 2),
        }

    def high_actor_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns −mean(w · log N(φ([s; s_{t+k}]); μ_high(s, g), I)), weights from V(s_{t+k}, g) − V(s, g), the
        target representation held fixed; and diagnostics."""
        obs, goals, targets = batch["observations"], batch["actor_goals"], batch["high_actor_targets"]
        adv = self._advantage(params, obs, targets, goals)
        weights = awr_weights(adv, self.config.high_alpha)
        target_reps = jax.lax.stop_gradient(self.phi(params["phi"], obs, targets))
        mean = self.high_actor_def.apply(params["high_actor"], jnp.concatenate([obs, goals], axis=-1))
        log_prob = unit_gaussian_log_prob(mean, target_reps)
        loss = -(weights * log_prob).mean()
        return loss, {
            "high_actor_loss": loss,
            "high_adv": adv.mean(),
            "high_bc_log_prob": log_prob.mean(),
            "high_mse": jnp.mean((mean - target_reps) ** 2),
        }

    def total_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns value + low + high actor loss (one optimiser) and their diagnostics."""
        value_loss, value_info = self.value_loss(batch, params)
        low_loss, low_info = self.low_actor_loss(batch, params)
        high_loss, high_info = self.high_actor_loss(batch, params)
        return value_loss + low_loss + high_loss, {**value_info, **low_info, **high_info}

    def update(self, batch: dict) -> tuple["HIQLAgent", dict]:
        """Returns the agent after one gradient step and the target-value update, and diagnostics."""
        grads, info = jax.grad(lambda p: self.total_loss(batch, p), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        target = soft_update(self.params["value"], self.target_value, self.config.tau)  # θ before, as OGBench
        return self.replace(params=params, target_value=target, opt_state=opt_state), info

    def sample_actions(self, observations: jax.Array, goals: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the low-level mean at the high-level mean subgoal representation (length-normalised), clipped to
        [−1, 1] (OGBench evaluates at temperature 0): two network calls, one after the other."""
        del key  # deterministic
        reps = self.high_actor_def.apply(self.params["high_actor"], jnp.concatenate([observations, goals], axis=-1))
        reps = length_normalize(reps)
        mean = self.low_actor_def.apply(self.params["low_actor"], jnp.concatenate([observations, reps], axis=-1))
        return jnp.clip(mean, -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: HIQLConfig) -> "HIQLAgent":
        """Returns a freshly initialised agent; the target value heads start as copies of the value heads."""
        obs, goals = example_batch["observations"][:1], example_batch["value_goals"][:1]
        rep = jnp.zeros((1, config.rep_dim))
        phi_def = GoalRepresentation(config.value_hidden_dims, config.rep_dim, config.layer_norm)
        value_def = Ensemble(config.value_hidden_dims, 2, layer_norm=config.layer_norm)
        low_actor_def = Actor(example_batch["actions"].shape[-1], config.actor_hidden_dims, squash=False)
        high_actor_def = Actor(config.rep_dim, config.actor_hidden_dims, squash=False)
        rng, *keys = jax.random.split(key, 5)
        params = {
            "phi": phi_def.init(keys[0], obs, goals),
            "value": value_def.init(keys[1], obs, rep),
            "low_actor": low_actor_def.init(keys[2], jnp.concatenate([obs, rep], axis=-1)),
            "high_actor": high_actor_def.init(keys[3], jnp.concatenate([obs, goals], axis=-1)),
        }
        optimizer = adam(config.lr)
        target = jax.tree.map(jnp.copy, params["value"])
        return cls(
            params, target, optimizer.init(params), rng, config, phi_def, value_def, low_actor_def, high_actor_def,
            optimizer,
        )  # fmt: skip
