"""Goal-conditioned SSCP (GC-SSCP, docs/method.md, "Goal-conditioned SSCP"): HIQL's value and subgoal representation,
and ONE actor network that maps noise to (action, subgoal representation) in a single jump at every level of the
hierarchy.

The actor h(s, ρ, z, level, jump) sees the state s, a goal representation ρ = φ([s; ·]), noise z of the size of its
output (action + 10-d representation) and the embedded (level, jump), and outputs x̂ = z + h. Level 0 maps a goal
to (a_t, φ([s; s_{t+k}])); level 1 maps a subgoal to (a_t, φ([s; s_{t+1}])); both are advantage-weighted
regressions on the same noise draw, each weighted per row by its advantage weight times (mean squared error over the
action dimensions + mean squared error over the representation dimensions). A bootstrapped cross-level consistency
term trains level 0 with jump 2 to land where the EMA actor's two-level route (level 0, then level 1 with fresh noise
at its predicted subgoal) lands, so acting is ONE actor call at level 0, jump 2, from (s, φ([s; g])). Every detail
follows the authors' GC-SSCP code (docs/goal_conditioned.md, "Exactness").

Method and defaults: docs/method.md, "Goal-conditioned SSCP" (Koirala & Fleming, arXiv 2506.21427); value as
OGBench's HIQL.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent
from sscp.agents.common import adam, apply_gradients, global_norm, require_positive, soft_update
from sscp.agents.goal_common import MAZES, GoalConfig, awr_weights, ivl_value_loss
from sscp.errors import ConfigError
from sscp.nets import Ensemble, GoalRepresentation, VectorField, length_normalize


def gc_sscp_presets() -> dict[str, dict]:
    """Returns the authors' per-dataset settings (their GC-SSCP README): subgoal steps / γ of pointmaze-medium
    25 / 0.99, large-navigate 100 / 0.995, large-stitch, giant and teleport 50 / 0.995. Unlike OGBench's HIQL
    settings, point-maze stitch datasets keep every actor goal in the trajectory (the authors use a random-goal
    fraction of 0.5 on ant-maze stitch only)."""
    settings = {"medium": (25, 0.99), "large": (50, 0.995), "giant": (50, 0.995), "teleport": (50, 0.995)}
    presets = {}
    for maze in MAZES:
        for kind in ("navigate", "stitch"):
            steps, discount = (100, 0.995) if (maze, kind) == ("large", "navigate") else settings[maze]
            presets[f"pointmaze-{maze}-{kind}"] = {"subgoal_steps": steps, "discount": discount}
    return presets


@dataclass(frozen=True)
class GCSSCPConfig(GoalConfig):
    """Hyperparameters of GC-SSCP; defaults as docs/method.md, "Goal-conditioned SSCP", the per-dataset presets the
    authors'."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on value + low + high + consistency loss."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Widths of the one actor MLP (mish, LayerNorm), on concat(s, ρ, z, e(level) + e(jump))."""
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)
    """Widths of φ and of each of the two value networks (GELU), as HIQL."""
    layer_norm: bool = True
    """LayerNorm in the actor, φ and the value networks."""
    rep_dim: int = 10
    """Size of the subgoal representation φ([s; g]), length-normalised to √rep_dim."""
    time_embed_dim: int = 128
    """Width of the shared Fourier features and of the level / jump embedding MLPs (the scheme of docs/method.md, "One
    network, two heads")."""
    fourier_scale: float = 0.2
    """Std of the learnable Fourier frequencies."""
    expectile: float = 0.7
    """IVL expectile of the value."""
    value_tau: float = 0.005
    """Soft-update rate of the target value networks."""
    actor_ema: float = 0.001
    """EMA rate of the acting ("target") actor, which also gives the consistency targets."""
    high_alpha: float = 5.0
    """α_h: advantage temperature of the high-level (level 0) regression."""
    low_alpha: float = 5.0
    """α_l: advantage temperature of the low-level (level 1) regression."""
    max_weight: float = 100.0
    """Advantage weights are clipped at this value."""
    consistency_weight: float = 1.0
    """Weight of the cross-level consistency loss."""

    PRESETS: ClassVar[dict[str, dict]] = gc_sscp_presets()

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "lr", "batch_size", "rep_dim", "time_embed_dim", "max_weight")
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"--agent.expectile must be in (0, 1), got {self.expectile}")
        for name in ("value_tau", "actor_ema"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"--agent.{name.replace('_', '-')} must be in (0, 1], got {getattr(self, name)}")


class GCSSCPAgent(Agent, flax.struct.PyTreeNode):
    """Immutable GC-SSCP agent: φ, value ensemble and actor (online), target value heads and EMA actor, optimiser.

    As in OGBench's HIQL, the target value shares the online φ: only the value heads have target copies."""

    goal_conditioned: ClassVar[bool] = True

    params: dict
    target_params: dict
    opt_state: Any
    rng: jax.Array
    config: GCSSCPConfig = flax.struct.field(pytree_node=False)
    phi_def: GoalRepresentation = flax.struct.field(pytree_node=False)
    value_def: Ensemble = flax.struct.field(pytree_node=False)
    actor_def: VectorField = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    # ---- networks -------------------------------------------------------------------------------------------------
    def phi(self, phi_params: dict, obs: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns φ([s; g]) [B, rep_dim]."""
        return self.phi_def.apply(phi_params, obs, goals)

    def value(self, phi_params: dict, value_params: dict, obs: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns V_j(s, φ([s; g])) of both members [2, B]."""
        return self.value_def.apply(value_params, obs, self.phi(phi_params, obs, goals))

    def jump(self, actor_params: dict, obs: jax.Array, rep: jax.Array, z: jax.Array, level: float, jump: float):
        """Returns x̂ = z + h(s, ρ, z, level, jump) [B, action_dim + rep_dim]: one actor call, noise to target."""
        t = jnp.full(z.shape[:-1], level, z.dtype)
        d = jnp.full(z.shape[:-1], jump, z.dtype)
        return z + self.actor_def.apply(actor_params, jnp.concatenate([obs, rep], axis=-1), z, t, d)

    def _noise(self, key: jax.Array, obs: jax.Array) -> jax.Array:
        return jax.random.normal(key, (*obs.shape[:-1], self.actor_def.action_dim))

    def _advantage(self, params: dict, obs: jax.Array, later: jax.Array, goals: jax.Array) -> jax.Array:
        """Returns mean_j V_j(later, g) − mean_j V_j(s, g) with the online networks held fixed."""
        fixed = jax.lax.stop_gradient(params)
        v_later = self.value(fixed["phi"], fixed["value"], later, goals).mean(0)
        return v_later - self.value(fixed["phi"], fixed["value"], obs, goals).mean(0)

    # ---- losses ---------------------------------------------------------------------------------------------------
    def value_loss(self, batch: dict, params: dict) -> tuple[jax.Array, dict]:
        """Returns HIQL's IVL value loss, which trains φ and the value heads, and diagnostics."""
        fixed_phi = jax.lax.stop_gradient(params["phi"])
        return ivl_value_loss(
            lambda s, g: self.value(params["phi"], params["value"], s, g),
            lambda s, g: self.value(fixed_phi, self.target_params["value"], s, g),
            batch,
            self.config.discount,
            self.config.expectile,
        )

    def _split(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns (the action part, the representation part) of an actor output [..., action_dim + rep_dim]."""
        a = self.actor_def.action_dim - self.config.rep_dim
        return x[..., :a], x[..., a:]

    def _squared_error(self, x_hat: jax.Array, target: jax.Array) -> jax.Array:
        """Returns per row the mean squared error over the action dimensions plus the mean over the representation
        dimensions [B]: the two parts weigh the same whatever their sizes (the authors' regression)."""
        (x_a, x_r), (t_a, t_r) = self._split(x_hat), self._split(target)
        return jnp.mean((x_a - t_a) ** 2, axis=-1) + jnp.mean((x_r - t_r) ** 2, axis=-1)

    def _finish(self, x_hat: jax.Array) -> jax.Array:
        """Returns the actor output as an (action, representation) pair would be used: the action clipped to [−1, 1],
        the representation length-normalised like φ's."""
        action, rep = self._split(x_hat)
        return jnp.concatenate([jnp.clip(action, -1.0, 1.0), length_normalize(rep)], axis=-1)

    def high_loss(self, batch: dict, params: dict, z: jax.Array) -> tuple[jax.Array, dict]:
        """Returns the level-0 (jump 1) regression from (s, φ([s; g])) — gradient into φ — onto (a_t, φ([s; s_{t+k}]))
        held fixed, weighted by min(exp(α_h·(V(s_{t+k}, g) − V(s, g))), 100); and diagnostics."""
        obs, goals, targets = batch["observations"], batch["actor_goals"], batch["high_actor_targets"]
        adv = self._advantage(params, obs, targets, goals)
        weights = awr_weights(adv, self.config.high_alpha, self.config.max_weight)
        target_rep = jax.lax.stop_gradient(self.phi(params["phi"], obs, targets))
        target = jnp.concatenate([batch["actions"], target_rep], axis=-1)
        x_hat = self.jump(params["actor"], obs, self.phi(params["phi"], obs, goals), z, 0.0, 1.0)
        loss = jnp.mean(weights * self._squared_error(x_hat, target))
        action, rep = self._split(x_hat)
        return loss, {
            "high_loss": loss,
            "high_adv": adv.mean(),
            "high_weight": weights.mean(),
            "high_action_mse": jnp.mean((action - batch["actions"]) ** 2),
            "high_rep_mse": jnp.mean((rep - target_rep) ** 2),
        }

    def low_loss(self, batch: dict, params: dict, z: jax.Array) -> tuple[jax.Array, dict]:
        """Returns the level-1 (jump 1) regression from (s, stopgrad φ([s; w])), w = s_{t+k}, onto (a_t,
        φ([s; s_{t+1}])) held fixed, weighted by min(exp(α_l·(V(s', w) − V(s, w))), 100); and diagnostics."""
        obs, subgoals, next_obs = batch["observations"], batch["low_actor_goals"], batch["next_observations"]
        adv = self._advantage(params, obs, next_obs, subgoals)
        weights = awr_weights(adv, self.config.low_alpha, self.config.max_weight)
        rep = jax.lax.stop_gradient(self.phi(params["phi"], obs, subgoals))
        target = jnp.concatenate([batch["actions"], jax.lax.stop_gradient(self.phi(params["phi"], obs, next_obs))], -1)
        x_hat = self.jump(params["actor"], obs, rep, z, 1.0, 1.0)
        loss = jnp.mean(weights * self._squared_error(x_hat, target))
        return loss, {
            "low_loss": loss,
            "low_adv": adv.mean(),
            "low_weight": weights.mean(),
            "low_action_mse": jnp.mean((self._split(x_hat)[0] - batch["actions"]) ** 2),
        }

    def consistency_target(self, batch: dict, params: dict, z: jax.Array, z_second: jax.Array) -> jax.Array:
        """Returns the EMA actor's two-level route from (s, g), held fixed: level 0 (jump 1) at φ([s; g]) with noise
        z, then level 1 (jump 1) with fresh noise z_second at its predicted subgoal representation (length-normalised
        like φ's); the result's action clipped to [−1, 1] and its representation length-normalised."""
        obs, goals = batch["observations"], batch["actor_goals"]
        actor = self.target_params["actor"]
        rep = self.phi(params["phi"], obs, goals)
        subgoal_rep = length_normalize(self._split(self.jump(actor, obs, rep, z, 0.0, 1.0))[1])
        return jax.lax.stop_gradient(self._finish(self.jump(actor, obs, subgoal_rep, z_second, 1.0, 1.0)))

    def consistency_loss(self, batch: dict, params: dict, z: jax.Array, z_second: jax.Array) -> tuple[jax.Array, dict]:
        """Returns the squared error (action and representation parts, each averaged over its dimensions) between the
        online actor's one call at level 0, jump 2, from (s, φ([s; g])) with noise z — gradient into φ, the output
        clipped and normalised like the target — and consistency_target."""
        obs, goals = batch["observations"], batch["actor_goals"]
        x_hat = self._finish(self.jump(params["actor"], obs, self.phi(params["phi"], obs, goals), z, 0.0, 2.0))
        target = self.consistency_target(batch, params, z, z_second)
        loss = jnp.mean(self._squared_error(x_hat, target))
        return loss, {
            "consistency_loss": loss,
            "one_call_action_mse": jnp.mean((jax.lax.stop_gradient(self._split(x_hat)[0]) - batch["actions"]) ** 2),
        }

    def total_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns value + low + high + consistency_weight · consistency loss (one optimiser) and diagnostics. The
        high and low regressions share one noise draw, as in the authors' code."""
        regression_key, first_key, second_key = jax.random.split(key, 3)
        obs = batch["observations"]
        z = self._noise(regression_key, obs)
        value_loss, value_info = self.value_loss(batch, params)
        high_loss, high_info = self.high_loss(batch, params, z)
        low_loss, low_info = self.low_loss(batch, params, z)
        cons_loss, cons_info = self.consistency_loss(
            batch, params, self._noise(first_key, obs), self._noise(second_key, obs)
        )
        loss = value_loss + low_loss + high_loss + self.config.consistency_weight * cons_loss
        return loss, {**value_info, **high_info, **low_info, **cons_info}

    def target_update(self) -> dict:
        """Returns the soft-updated targets: value heads at value_tau, the acting actor at actor_ema, each moved toward
        the online parameters from before this step's gradient update (as the authors' code does)."""
        return {
            "value": soft_update(self.params["value"], self.target_params["value"], self.config.value_tau),
            "actor": soft_update(self.params["actor"], self.target_params["actor"], self.config.actor_ema),
        }

    def update(self, batch: dict) -> tuple["GCSSCPAgent", dict]:
        """Returns the agent after one gradient step on batch and the target updates, and diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.total_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        info["grad_norm"] = global_norm(grads)
        agent = self.replace(params=params, target_params=self.target_update(), opt_state=opt_state, rng=rng)
        return agent, info

    def sample_actions(self, observations: jax.Array, goals: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1]: ONE call of the EMA actor at level 0, jump 2, from (s, φ([s; g])) with fresh
        noise; the predicted subgoal representation is ignored. φ (the online one, as HIQL's actors use it) is the
        only other network evaluated."""
        rep = self.phi(self.params["phi"], observations, goals)
        x_hat = self.jump(self.target_params["actor"], observations, rep, self._noise(key, observations), 0.0, 2.0)
        return jnp.clip(x_hat[..., : self.actor_def.action_dim - self.config.rep_dim], -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: GCSSCPConfig) -> "GCSSCPAgent":
        """Returns a freshly initialised agent; the target value heads and the EMA actor start as copies."""
        obs, goals = example_batch["observations"][:1], example_batch["value_goals"][:1]
        action_dim = example_batch["actions"].shape[-1]
        rep = jnp.zeros((1, config.rep_dim))
        phi_def = GoalRepresentation(config.value_hidden_dims, config.rep_dim, config.layer_norm)
        value_def = Ensemble(config.value_hidden_dims, 2, layer_norm=config.layer_norm)
        actor_def = VectorField(
            action_dim=action_dim + config.rep_dim,
            hidden_dims=config.actor_hidden_dims,
            layer_norm=config.layer_norm,
            embed_dim=config.time_embed_dim,
            fourier_scale=config.fourier_scale,
        )
        rng, phi_key, value_key, actor_key = jax.random.split(key, 4)
        t, z = jnp.zeros((1,)), jnp.zeros((1, actor_def.action_dim))
        params = {
            "phi": phi_def.init(phi_key, obs, goals),
            "value": value_def.init(value_key, obs, rep),
            "actor": actor_def.init(actor_key, jnp.concatenate([obs, rep], -1), z, t, t),
        }
        optimizer = adam(config.lr)
        targets = {"value": jax.tree.map(jnp.copy, params["value"]), "actor": jax.tree.map(jnp.copy, params["actor"])}
        return cls(params, targets, optimizer.init(params), rng, config, phi_def, value_def, actor_def, optimizer)
