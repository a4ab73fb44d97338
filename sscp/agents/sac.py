"""Soft Actor-Critic with a learned temperature: a tanh-Gaussian actor, twin critics with a min target that includes
the entropy term, and soft target updates. The online baseline of the SSCP paper's online experiments.

Sources: Haarnoja et al., "Soft Actor-Critic Algorithms and Applications", arXiv 1812.05905 (learned temperature,
target entropy −|A|; hyperparameters of its Table 1: Adam 3e-4, batch 256, 2 × 256 ReLU layers, τ 0.005, γ 0.99,
one gradient step per env step) and CleanRL's sac_continuous_action.py (tanh squashing with the log-det correction,
log-std squashed into [−5, 2], temperature loss −α·(log π + target entropy)). Unlike CleanRL, the actor and the
temperature update every step (CleanRL delays them to every 2nd step, TD3 style) and every network uses one lr,
3e-4 (CleanRL's critic uses 1e-3), as in the SAC paper.
"""

from dataclasses import dataclass

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent, AgentConfig
from sscp.agents.common import adam, apply_gradients, require_positive, soft_update
from sscp.errors import ConfigError
from sscp.nets import MLP, Ensemble

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass(frozen=True)
class SACConfig(AgentConfig):
    """Hyperparameters of SAC; defaults are the SAC paper's (arXiv 1812.05905, Table 1)."""

    lr: float = 3e-4
    """Adam learning rate of the critics, the actor and the temperature."""
    batch_size: int = 256
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (256, 256)
    """Actor MLP widths (ReLU)."""
    critic_hidden_dims: tuple[int, ...] = (256, 256)
    """Critic MLP widths (ReLU, no LayerNorm)."""
    discount: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Soft-update rate of the target critics, every step."""
    init_temperature: float = 1.0
    """Initial entropy temperature α (CleanRL starts at log α = 0)."""
    target_entropy: float | None = None
    """Entropy the temperature steers towards; None means −|A|, the SAC paper's choice."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "init_temperature")
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"--agent.discount must be in [0, 1], got {self.discount}")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"--agent.tau must be in (0, 1], got {self.tau}")


class TanhGaussianActor(nn.Module):
    """Returns (mean, log_std) of the pre-tanh Gaussian; log_std is squashed into [LOG_STD_MIN, LOG_STD_MAX]."""

    action_dim: int
    hidden_dims: tuple[int, ...] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(self.hidden_dims, "relu", activate_final=True, name="trunk")(obs)
        mean = nn.Dense(self.action_dim, name="mean")(h)
        log_std = jnp.tanh(nn.Dense(self.action_dim, name="log_std")(h))
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1.0)


class SACAgent(Agent, flax.struct.PyTreeNode):
    """Immutable SAC agent: actor, twin critics and log α (online), target critics, one Adam state per part."""

    params: dict
    target_critic: dict
    opt_state: dict
    rng: jax.Array
    config: SACConfig = flax.struct.field(pytree_node=False)
    actor_def: TanhGaussianActor = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)
    target_entropy: float = flax.struct.field(pytree_node=False)

    def policy(self, actor_params: dict, obs: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns (tanh-squashed reparameterised sample, its log-probability with the tanh correction)."""
        mean, log_std = self.actor_def.apply(actor_params, obs)
        pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        action = jnp.tanh(pre_tanh)
        gaussian = -0.5 * ((pre_tanh - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
        log_prob = (gaussian - jnp.log(1.0 - action**2 + 1e-6)).sum(axis=-1)
        return action, log_prob

    def critic_loss(self, batch: dict, critic_params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns Σ_j mean (Q_j(s, a) − y)², y = r + γ·mask·(min_j Q̄_j(s', a') − α·log π(a'|s')), a' ~ π(s')."""
        alpha = jnp.exp(self.params["log_alpha"])
        next_actions, next_log_prob = self.policy(self.params["actor"], batch["next_observations"], key)
        next_q = self.critic_def.apply(self.target_critic, batch["next_observations"], next_actions).min(axis=0)
        target = batch["rewards"] + self.config.discount * batch["masks"] * (next_q - alpha * next_log_prob)
        q = self.critic_def.apply(critic_params, batch["observations"], batch["actions"])
        loss = ((q - jax.lax.stop_gradient(target)[None]) ** 2).mean(axis=1).sum()
        return loss, {"critic_loss": loss, "q_mean": q.mean(), "q_max": q.max()}

    def actor_loss(self, batch: dict, actor_params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns mean(α·log π(a|s) − min_j Q_j(s, a)), a ~ π(s) reparameterised; α and the critics held fixed."""
        alpha = jax.lax.stop_gradient(jnp.exp(self.params["log_alpha"]))
        actions, log_prob = self.policy(actor_params, batch["observations"], key)
        q = self.critic_def.apply(self.params["critic"], batch["observations"], actions).min(axis=0)
        loss = (alpha * log_prob - q).mean()
        return loss, {"actor_loss": loss, "entropy": -log_prob.mean(), "log_prob": log_prob}

    def temperature_loss(self, log_alpha: jax.Array, log_prob: jax.Array) -> tuple[jax.Array, dict]:
        """Returns mean(−α·(log π + target entropy)) with log π held fixed."""
        alpha = jnp.exp(log_alpha)
        loss = (-alpha * jax.lax.stop_gradient(log_prob + self.target_entropy)).mean()
        return loss, {"temperature_loss": loss, "alpha": alpha}

    def update(self, batch: dict) -> tuple["SACAgent", dict]:
        """Returns the agent after one critic, one actor and one temperature step on batch, then the target update."""
        rng, critic_key, actor_key = jax.random.split(self.rng, 3)
        params, opt_state = dict(self.params), dict(self.opt_state)

        def step(name, grads):
            params[name], opt_state[name] = apply_gradients(self.optimizer, params[name], opt_state[name], grads)

        grads, info = jax.grad(lambda p: self.critic_loss(batch, p, critic_key), has_aux=True)(params["critic"])
        step("critic", grads)
        with_critic = self.replace(params=params)
        grads, actor_info = jax.grad(lambda p: with_critic.actor_loss(batch, p, actor_key), has_aux=True)(
            params["actor"]
        )
        step("actor", grads)
        log_prob = actor_info.pop("log_prob")
        grads, temp_info = jax.grad(lambda a: self.temperature_loss(a, log_prob), has_aux=True)(params["log_alpha"])
        step("log_alpha", grads)
        # Toward the critics from after this step's critic update, as CleanRL and the SAC authors' code do (SAC here
        # steps critic, actor and temperature one after the other, as they do, not jointly as FQL's code does).
        target = soft_update(params["critic"], self.target_critic, self.config.tau)
        agent = self.replace(params=params, target_critic=target, opt_state=opt_state, rng=rng)
        return agent, {**info, **actor_info, **temp_info}

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the deterministic action tanh(mean), SAC's evaluation policy (key unused)."""
        mean, _ = self.actor_def.apply(self.params["actor"], observations)
        return jnp.tanh(mean)

    def q_values(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        """Returns min_j Q_j(s, a) of the online critics, the aggregate the TD target takes."""
        return self.critic_def.apply(self.params["critic"], observations, actions).min(axis=0)

    def explore_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns a sample of the stochastic policy: what SAC acts with while collecting data."""
        return self.policy(self.params["actor"], observations, key)[0]

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: SACConfig) -> "SACAgent":
        """Returns a freshly initialised agent; the target critics start as copies of the critics."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        actor_def = TanhGaussianActor(actions.shape[-1], config.actor_hidden_dims)
        critic_def = Ensemble(config.critic_hidden_dims, 2, activation="relu", layer_norm=False)
        rng, actor_key, critic_key = jax.random.split(key, 3)
        params = {
            "actor": actor_def.init(actor_key, obs),
            "critic": critic_def.init(critic_key, obs, actions),
            "log_alpha": jnp.asarray(jnp.log(config.init_temperature), jnp.float32),
        }
        optimizer = adam(config.lr)
        opt_state = {k: optimizer.init(v) for k, v in params.items()}
        target_entropy = -float(actions.shape[-1]) if config.target_entropy is None else config.target_entropy
        return cls(
            params=params,
            target_critic=jax.tree.map(jnp.copy, params["critic"]),
            opt_state=opt_state,
            rng=rng,
            config=config,
            actor_def=actor_def,
            critic_def=critic_def,
            optimizer=optimizer,
            target_entropy=target_entropy,
        )
