"""ReBRAC (Tarasov et al., "Revisiting the Minimalist Approach to Offline RL", NeurIPS 2023): TD3+BC with LayerNorm
critics, a BC penalty in the actor loss and one in the TD target, and a delayed deterministic actor. Acting takes
one call of the actor."""

from dataclasses import dataclass
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from sscp.agents.base import Agent, AgentConfig
from sscp.agents.common import adam, apply_gradients, require_positive, smoothed, soft_update
from sscp.errors import ConfigError
from sscp.nets import Actor, Ensemble


@dataclass(frozen=True)
class ReBRACConfig(AgentConfig):
    """Hyperparameters of ReBRAC. Network sizes, lr and batch are the FQL paper's OGBench ReBRAC settings (FQL's
    agents/rebrac.py); ReBRAC's own D4RL settings are lr 1e-3, batch 1024 and 3 × 256 ReLU networks. Both tune
    the two BC coefficients per task."""

    lr: float = 3e-4
    """Adam learning rate of the actor and of the critics (ReBRAC on D4RL: 1e-3)."""
    batch_size: int = 256
    """Transitions per gradient step (ReBRAC on D4RL: 1024)."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Actor widths (GELU); the output is tanh(Dense(·)) with a 0.01-scaled initial head (ReBRAC on D4RL: 3 × 256)."""
    critic_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Twin critic widths (GELU, LayerNorm) (ReBRAC on D4RL: 3 × 256)."""
    actor_layer_norm: bool = False
    """LayerNorm in the actor (off in both ReBRAC's and FQL's code; the critics always have it)."""
    discount: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Soft-update rate of the target actor and target critics, applied on actor steps only."""
    alpha_actor: float = 1.0
    """β_actor, weight of ‖π(s) − a‖² in the actor loss; tuned per task (ReBRAC's default 1.0; FQL uses e.g. 0.01 on
    humanoidmaze and 1 on visual-cube-single)."""
    alpha_critic: float = 0.0
    """β_critic, weight of ‖a' − a'_data‖² subtracted from the target Q. It needs the dataset's next action, which
    this package's batches do not carry, so it must stay 0 (FQL uses 0 on cube; ReBRAC's default is 1.0)."""
    policy_freq: int = 2
    """The actor and the targets are updated once every policy_freq critic updates (TD3's delay)."""
    policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target actor's next action (target-policy smoothing)."""
    noise_clip: float = 0.5
    """That noise is clipped to [−noise_clip, noise_clip]."""
    normalize_q: bool = True
    """Scale the actor's Q term by λ = stopgrad(1 / mean|Q|), as ReBRAC and FQL's ReBRAC do."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "policy_freq")


class ReBRACAgent(Agent, flax.struct.PyTreeNode):
    """Immutable ReBRAC agent: actor and critics (online and target), one Adam state each, and a step counter."""

    params: dict
    target_params: dict
    actor_opt_state: Any
    critic_opt_state: Any
    step: jax.Array
    rng: jax.Array
    config: ReBRACConfig = flax.struct.field(pytree_node=False)
    actor_def: Actor = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def critic_loss(self, batch: dict, critic_params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns the TD loss of both critics against r + γ·mask·(min target Q(s', ã') − β_critic‖ã' − a'‖²), where
        ã' is the target actor's action plus clipped noise, and diagnostics."""
        cfg = self.config
        next_obs = batch["next_observations"]
        next_actions = self.actor_def.apply(self.target_params["actor"], next_obs)
        next_actions = smoothed(next_actions, key, cfg.policy_noise, cfg.noise_clip)
        next_q = self.critic_def.apply(self.target_params["critic"], next_obs, next_actions).min(axis=0)
        if cfg.alpha_critic > 0:  # checked in create: the batch then carries next_actions
            next_q = next_q - cfg.alpha_critic * jnp.sum((next_actions - batch["next_actions"]) ** 2, axis=-1)
        target = jax.lax.stop_gradient(batch["rewards"] + cfg.discount * batch["masks"] * next_q)
        q = self.critic_def.apply(critic_params, batch["observations"], batch["actions"])
        loss = jnp.mean((q - target[None]) ** 2)
        return loss, {"critic_loss": loss, "q_mean": q.mean(), "q_max": q.max(), "q_min": q.min()}

    def actor_loss(self, batch: dict, actor_params: dict, critic_params: dict) -> tuple[jax.Array, dict]:
        """Returns mean(−λ·min Q(s, π(s)) + β_actor‖π(s) − a‖²) and diagnostics; the critics are held fixed."""
        cfg = self.config
        actions = self.actor_def.apply(actor_params, batch["observations"])
        q = self.critic_def.apply(jax.lax.stop_gradient(critic_params), batch["observations"], actions).min(axis=0)
        lam = jax.lax.stop_gradient(1.0 / jnp.abs(q).mean()) if cfg.normalize_q else 1.0
        q_loss = -(lam * q).mean()
        mse = jnp.sum((actions - batch["actions"]) ** 2, axis=-1).mean()
        bc_loss = cfg.alpha_actor * mse
        loss = q_loss + bc_loss
        return loss, {"actor_loss": loss, "q_loss": q_loss, "bc_loss": bc_loss, "mse": mse}

    def update(self, batch: dict) -> tuple["ReBRACAgent", dict]:
        """Returns the agent after one critic step and, on every policy_freq-th call, one actor step and the
        target updates; and diagnostics (the actor's are computed on every call, its gradient only on actor steps)."""
        cfg = self.config
        rng, key = jax.random.split(self.rng)
        critic_grads, info = jax.grad(lambda p: self.critic_loss(batch, p, key), has_aux=True)(self.params["critic"])
        critic, critic_opt_state = apply_gradients(
            self.optimizer, self.params["critic"], self.critic_opt_state, critic_grads
        )

        def actor_step(_):
            grads, actor_info = jax.grad(lambda p: self.actor_loss(batch, p, critic), has_aux=True)(
                self.params["actor"]
            )
            actor, actor_opt_state = apply_gradients(self.optimizer, self.params["actor"], self.actor_opt_state, grads)
            # Toward the actor and critics from before this step, as FQL's ReBRAC does on its full updates.
            target = soft_update(self.params, self.target_params, cfg.tau)
            return actor, actor_opt_state, target, actor_info

        def skip(_):
            _, actor_info = self.actor_loss(batch, self.params["actor"], critic)
            return self.params["actor"], self.actor_opt_state, self.target_params, actor_info

        # A cond, not Python control flow: the step counter is traced (and batched when runs are vmapped, where the
        # cond becomes a select of both branches).
        actor, actor_opt_state, target, actor_info = jax.lax.cond(
            self.step % cfg.policy_freq == 0, actor_step, skip, None
        )
        agent = self.replace(
            params={"actor": actor, "critic": critic},
            target_params=target,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
            step=self.step + 1,
            rng=rng,
        )
        return agent, {**info, **actor_info}

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the deterministic action π(s) in [−1, 1] (no exploration noise): one network call."""
        return self.actor_def.apply(self.params["actor"], observations)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: ReBRACConfig) -> "ReBRACAgent":
        """Returns a freshly initialised agent; the targets start as copies of the online networks."""
        if config.alpha_critic > 0 and "next_actions" not in example_batch:
            raise ConfigError(
                f"--agent.alpha-critic {config.alpha_critic} needs the dataset's next actions, which the batches do "
                "not carry; set --agent.alpha-critic 0 (the actor's BC penalty, --agent.alpha-actor, still applies)"
            )
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        actor_def = Actor(actions.shape[-1], config.actor_hidden_dims, layer_norm=config.actor_layer_norm)
        critic_def = Ensemble(config.critic_hidden_dims, 2, layer_norm=True)
        rng, actor_key, critic_key = jax.random.split(key, 3)
        params = {"actor": actor_def.init(actor_key, obs), "critic": critic_def.init(critic_key, obs, actions)}
        optimizer = adam(config.lr)
        return cls(
            params,
            jax.tree.map(jnp.copy, params),
            optimizer.init(params["actor"]),
            optimizer.init(params["critic"]),
            jnp.zeros((), jnp.int32),
            rng,
            config,
            actor_def,
            critic_def,
            optimizer,
        )
