"""Diffusion-QL (Wang, Hunt & Zhou, "Diffusion Policies as an Expressive Policy Class for Offline RL", ICLR 2023):
a DDPM policy with T denoising steps trained by the diffusion (noise-prediction) loss plus a Q term that is
backpropagated through the whole reverse chain, twin critics, and an EMA actor for the TD target. Acting runs the
reverse chain: T network calls per action."""

from dataclasses import dataclass
from typing import Any, Literal

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sscp.agents.base import Agent, AgentConfig
from sscp.agents.common import adam, apply_gradients, require_positive, soft_update
from sscp.nets import Ensemble, NoisePredictor


def ddpm_schedule(name: str, steps: int) -> dict[str, jax.Array]:
    """Returns the DDPM coefficients of a beta schedule: "vp" (Diffusion-QL's discretised VP SDE with β_min 0.1,
    β_max 10), "linear" (β from 1e-4 to 2e-2, Ho et al.) or "cosine" (Nichol & Dhariwal's ᾱ(t) = cos²((t/T + 0.008)
    / 1.008 · π/2), β capped at 0.999: diffusers' squaredcos_cap_v2, Diffusion Policy's), as float32 arrays indexed by
    step t = 0 … T − 1 ("cumprod" is ᾱ_t)."""
    if name == "vp":
        t = np.arange(1, steps + 1)
        betas = 1.0 - np.exp(-0.1 / steps - 0.5 * (10.0 - 0.1) * (2 * t - 1) / steps**2)
    elif name == "cosine":
        alpha_bar = np.cos((np.arange(steps + 1) / steps + 0.008) / 1.008 * np.pi / 2) ** 2
        betas = np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], 0.999)
    else:
        betas = np.linspace(1e-4, 2e-2, steps)
    alphas = 1.0 - betas
    cumprod = np.cumprod(alphas)
    cumprod_prev = np.append(1.0, cumprod[:-1])
    posterior_var = betas * (1.0 - cumprod_prev) / (1.0 - cumprod)
    coefs = {
        "cumprod": cumprod,
        "sqrt_cumprod": np.sqrt(cumprod),
        "sqrt_one_minus_cumprod": np.sqrt(1.0 - cumprod),
        "sqrt_recip_cumprod": np.sqrt(1.0 / cumprod),
        "sqrt_recipm1_cumprod": np.sqrt(1.0 / cumprod - 1.0),
        "posterior_mean_x0": betas * np.sqrt(cumprod_prev) / (1.0 - cumprod),
        "posterior_mean_xt": (1.0 - cumprod_prev) * np.sqrt(alphas) / (1.0 - cumprod),
        "posterior_std": np.exp(0.5 * np.log(np.maximum(posterior_var, 1e-20))),
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in coefs.items()}


def noise_prediction_loss(net, params: dict, batch: dict, key: jax.Array, schedule: str, steps: int) -> jax.Array:
    """Returns the DDPM loss mean(‖ε_θ(s, x_t, t) − ε‖²) of the noise predictor `net`, with t ~ U{0 … T − 1} and
    x_t = √ᾱ_t·a + √(1 − ᾱ_t)·ε (Diffusion-QL's and Diffusion Policy's training loss)."""
    c = ddpm_schedule(schedule, steps)
    actions = batch["actions"]
    t_key, noise_key = jax.random.split(key)
    t = jax.random.randint(t_key, actions.shape[:-1], 0, steps)
    noise = jax.random.normal(noise_key, actions.shape)
    x_t = c["sqrt_cumprod"][t][..., None] * actions + c["sqrt_one_minus_cumprod"][t][..., None] * noise
    return jnp.mean((net.apply(params, batch["observations"], x_t, t.astype(jnp.float32)) - noise) ** 2)


def chain_noise(key: jax.Array, steps: int, shape: tuple[int, ...]) -> jax.Array:
    """Returns the standard-normal draws of one reverse chain from key, [steps, *shape], in the order the chain uses
    them: x_T, then the noise added after the calls at t = T − 1, …, 1 (sscp.runtime_numpy's `noise=` order)."""
    keys = jax.random.split(key, steps + 1)
    return jnp.stack([jax.random.normal(k, shape) for k in (keys[-1], *keys[steps - 1 : 0 : -1])])


@dataclass(frozen=True)
class DQLConfig(AgentConfig):
    """Hyperparameters of Diffusion-QL; defaults are the paper's and its reference code's (Zhendong-Wang/
    Diffusion-Policies-for-Offline-RL), which tunes α (eta) and a gradient-norm clip per task; no clip here."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on critic + actor loss (the paper: two Adams at 3e-4, the same
    arithmetic since the two losses reach disjoint parameters)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (256, 256, 256)
    """Noise-prediction MLP widths (mish), input concat(x_t, time embedding, s)."""
    critic_hidden_dims: tuple[int, ...] = (256, 256, 256)
    """Twin critic widths (mish, no LayerNorm)."""
    time_dim: int = 16
    """Size of the step embedding (sinusoidal, then Dense 32 → mish → Dense 16)."""
    diffusion_steps: int = 5
    """T, denoising steps: network calls per action, and the depth the Q gradient is backpropagated through."""
    beta_schedule: Literal["vp", "linear"] = "vp"
    """Noise schedule ("vp" in the paper's experiments)."""
    discount: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Soft-update rate of the target critics."""
    alpha: float = 1.0
    """η, weight of the normalised Q term −Q(s, π(s)) / stopgrad(mean|Q'|); tuned per task in the paper (0.5–3.5)."""
    max_q_backup: bool = False
    """Back up the max over 10 sampled next actions of each target critic (the paper's AntMaze option)."""
    ema_decay: float = 0.995
    """Decay of the EMA actor that produces the TD target's next actions."""
    ema_every: int = 5
    """The EMA is updated every ema_every steps ..."""
    ema_start: int = 1000
    """... from this step on; before it the EMA actor stays at its initial weights, as in the reference code."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "diffusion_steps", "time_dim", "ema_every")


class DQLAgent(Agent, flax.struct.PyTreeNode):
    """Immutable Diffusion-QL agent: noise predictor and critics (online), EMA actor, target critics, optimiser state
    and a step counter (for the EMA schedule)."""

    params: dict
    ema_actor: dict
    target_critic: dict
    opt_state: Any
    step: jax.Array
    rng: jax.Array
    config: DQLConfig = flax.struct.field(pytree_node=False)
    actor_def: NoisePredictor = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def sample(self, actor_params: dict, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1] from the reverse chain x_T ~ N(0, I) → x_0: T network calls, differentiable in
        actor_params. Each step predicts x_0 from the noise estimate, clips it to [−1, 1], and samples the posterior
        q(x_{t−1} | x_t, x_0) (no noise at the last step)."""
        c = ddpm_schedule(self.config.beta_schedule, self.config.diffusion_steps)
        noise = chain_noise(key, self.config.diffusion_steps, (*obs.shape[:-1], self.actor_def.action_dim))
        x = noise[0]
        for i, t in enumerate(reversed(range(self.config.diffusion_steps))):  # T is static: an unrolled chain
            eps = self.actor_def.apply(actor_params, obs, x, jnp.full(x.shape[:-1], float(t)))
            x0 = jnp.clip(c["sqrt_recip_cumprod"][t] * x - c["sqrt_recipm1_cumprod"][t] * eps, -1.0, 1.0)
            x = c["posterior_mean_x0"][t] * x0 + c["posterior_mean_xt"][t] * x
            if t > 0:
                x = x + c["posterior_std"][t] * noise[i + 1]
        return jnp.clip(x, -1.0, 1.0)

    def critic_loss(self, batch: dict, critic_params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns Σ over the twin critics of the TD loss against r + γ·mask·min target Q(s', a'), a' from the EMA
        actor, and diagnostics."""
        cfg = self.config
        next_obs = batch["next_observations"]
        if cfg.max_q_backup:
            many = jnp.broadcast_to(next_obs, (10, *next_obs.shape))
            next_qs = self.critic_def.apply(self.target_critic, many, self.sample(self.ema_actor, many, key)).max(
                axis=1
            )
        else:
            next_qs = self.critic_def.apply(self.target_critic, next_obs, self.sample(self.ema_actor, next_obs, key))
        target = jax.lax.stop_gradient(batch["rewards"] + cfg.discount * batch["masks"] * next_qs.min(axis=0))
        q = self.critic_def.apply(critic_params, batch["observations"], batch["actions"])
        loss = jnp.mean(jnp.sum((q - target[None]) ** 2, axis=0))
        return loss, {"critic_loss": loss, "q_mean": q.mean()}

    def bc_loss(self, actor_params: dict, batch: dict, key: jax.Array) -> jax.Array:
        """Returns the diffusion loss of the actor (noise_prediction_loss)."""
        cfg = self.config
        return noise_prediction_loss(self.actor_def, actor_params, batch, key, cfg.beta_schedule, cfg.diffusion_steps)

    def q_loss(self, params: dict, batch: dict, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Returns (−mean Q_i(s, π(s)) / stopgrad(mean|Q_j(s, π(s))|), mean Q) for a random one i of the twin
        critics and j the other (the paper's normalisation); π(s) is sampled through the whole chain, whose every
        step the gradient reaches; the critics are held fixed."""
        pick_key, sample_key = jax.random.split(key)
        new_actions = self.sample(params["actor"], batch["observations"], sample_key)
        qs = self.critic_def.apply(jax.lax.stop_gradient(params["critic"]), batch["observations"], new_actions)
        first = jax.random.bernoulli(pick_key)
        q, other = jnp.where(first, qs[0], qs[1]), jnp.where(first, qs[1], qs[0])
        return -q.mean() / jax.lax.stop_gradient(jnp.abs(other).mean()), qs.mean()

    def total_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns critic loss + diffusion loss + α·Q loss, and diagnostics."""
        critic_key, bc_key, q_key = jax.random.split(key, 3)
        critic_loss, info = self.critic_loss(batch, params["critic"], critic_key)
        bc_loss = self.bc_loss(params["actor"], batch, bc_key)
        q_loss, q_pi = self.q_loss(params, batch, q_key)
        actor_loss = bc_loss + self.config.alpha * q_loss
        info = {**info, "actor_loss": actor_loss, "bc_loss": bc_loss, "q_loss": q_loss, "q_pi": q_pi}
        return critic_loss + actor_loss, info

    def update(self, batch: dict) -> tuple["DQLAgent", dict]:
        """Returns the agent after one gradient step on batch, the target-critic update and (on its schedule) the
        EMA-actor update, and diagnostics."""
        cfg = self.config
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.total_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        # Toward the critics from after this step, as Diffusion-QL's PyTorch code does (its optimiser steps first).
        target = soft_update(params["critic"], self.target_critic, cfg.tau)
        # jnp.where, not Python control flow: the step counter is traced (and batched when runs are vmapped).
        ema_now = (self.step >= cfg.ema_start) & (self.step % cfg.ema_every == 0)
        ema = jax.tree.map(
            lambda n, o: jnp.where(ema_now, cfg.ema_decay * o + (1.0 - cfg.ema_decay) * n, o),
            params["actor"],
            self.ema_actor,
        )
        agent = self.replace(
            params=params, ema_actor=ema, target_critic=target, opt_state=opt_state, step=self.step + 1, rng=rng
        )
        return agent, info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns one action per observation from the online actor's reverse chain: diffusion_steps network calls.
        (The paper's evaluation also samples 50 actions and picks one by softmax over Q; not done here.)"""
        return self.sample(self.params["actor"], observations, key)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: DQLConfig) -> "DQLAgent":
        """Returns a freshly initialised agent; the EMA actor and target critics start as copies."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        actor_def = NoisePredictor(actions.shape[-1], config.actor_hidden_dims, time_dim=config.time_dim)
        critic_def = Ensemble(config.critic_hidden_dims, 2, activation="mish", layer_norm=False)
        rng, actor_key, critic_key = jax.random.split(key, 3)
        params = {
            "actor": actor_def.init(actor_key, obs, actions, jnp.zeros((1,))),
            "critic": critic_def.init(critic_key, obs, actions),
        }
        optimizer = adam(config.lr)
        return cls(
            params,
            jax.tree.map(jnp.copy, params["actor"]),
            jax.tree.map(jnp.copy, params["critic"]),
            optimizer.init(params),
            jnp.zeros((), jnp.int32),
            rng,
            config,
            actor_def,
            critic_def,
            optimizer,
        )

    def numpy_export(self):
        """Returns the acting network, its parameters, its first layer's input order and the sampler's schedule."""
        return self.actor_def, self.params["actor"], ("x", "time", "obs"), "ddpm"
