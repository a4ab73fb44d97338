"""Diffusion behaviour cloning (DDPM training, DDIM sampling): a noise-prediction MLP ε_θ(s, x_t, t) trained with
the DDPM loss over T noise levels (Ho et al. 2020), acting by k DDIM steps from noise (Song et al. 2021): k network
calls per action. Defaults follow Diffusion Policy (Chi et al. 2023: 100 training steps, the squaredcos_cap_v2
cosine schedule, ε prediction, x̂_0 clipped to [−1, 1], 10 DDIM steps at inference); the network is the
state-based MLP of Diffusion-QL (sscp.nets.NoisePredictor), not Diffusion Policy's 1-D temporal U-Net."""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sscp.agents.base import Agent, ChunkingConfig
from sscp.agents.common import adam, apply_gradients, check_chunking, require_positive
from sscp.agents.dql import ddpm_schedule, noise_prediction_loss
from sscp.errors import ConfigError
from sscp.nets import NoisePredictor


@dataclass(frozen=True)
class DiffusionBCConfig(ChunkingConfig):
    """Hyperparameters of diffusion BC; schedule and sampling defaults as Diffusion Policy's DDIM setting."""

    lr: float = 3e-4
    """Adam learning rate (this library's BC baselines use 3e-4; Diffusion Policy: 1e-4 with AdamW and warm-up)."""
    batch_size: int = 1024
    """Transitions (or chunks) per gradient step."""
    hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Noise-prediction MLP widths (mish), input concat(x_t, step embedding, s); the width of the other BC agents."""
    time_dim: int = 32
    """Size of the step embedding (sinusoidal, then Dense 2·time_dim → mish → Dense time_dim)."""
    diffusion_steps: int = 100
    """T, noise levels in training (Diffusion Policy: 100)."""
    beta_schedule: Literal["cosine", "linear", "vp"] = "cosine"
    """Noise schedule (Diffusion Policy: squaredcos_cap_v2, the cosine schedule)."""
    sample_steps: int = 10
    """k <= T, DDIM steps (network calls) per action, at evenly spaced noise levels (Diffusion Policy: 10)."""
    ddim_eta: float = 0.0
    """DDIM noise η: 0 is deterministic given the starting noise; 1 with k = T is DDPM's ancestral sampler."""

    def __post_init__(self):
        require_positive(self, "lr", "batch_size", "time_dim", "diffusion_steps", "sample_steps")
        check_chunking(self)
        if self.sample_steps > self.diffusion_steps:
            raise ConfigError(
                f"--agent.sample-steps {self.sample_steps} must be <= --agent.diffusion-steps {self.diffusion_steps}"
            )
        if self.ddim_eta < 0:
            raise ConfigError(f"--agent.ddim-eta must be >= 0, got {self.ddim_eta}")


class DiffusionBCAgent(Agent, flax.struct.PyTreeNode):
    """Immutable diffusion BC agent (no critic, no EMA: it acts with the trained network)."""

    acting_steps_field: ClassVar[str | None] = "sample_steps"

    params: dict
    opt_state: Any
    rng: jax.Array
    config: DiffusionBCConfig = flax.struct.field(pytree_node=False)
    actor_def: NoisePredictor = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def diffusion_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns mean(‖ε_θ(s, x_t, t) − ε‖²) with t ~ U{0 … T − 1}, x_t = √ᾱ_t·a + √(1 − ᾱ_t)·ε."""
        cfg = self.config
        loss = noise_prediction_loss(self.actor_def, params, batch, key, cfg.beta_schedule, cfg.diffusion_steps)
        return loss, {"diffusion_loss": loss}

    def update(self, batch: dict) -> tuple["DiffusionBCAgent", dict]:
        """Returns the agent after one gradient step on batch, and diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.diffusion_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        return self.replace(params=params, opt_state=opt_state, rng=rng), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1] after sample_steps DDIM steps from x ~ N(0, I) at noise levels t_1 > … > t_k
        (evenly spaced from T − 1 down to 0, the last step landing on ᾱ = 1): each predicts ε, forms x̂_0 clipped to
        [−1, 1], recomputes ε from the clipped x̂_0 (as diffusers does), and moves to the next level."""
        cfg = self.config
        cumprod = ddpm_schedule(cfg.beta_schedule, cfg.diffusion_steps)["cumprod"]
        levels = [int(t) for t in np.round(np.linspace(cfg.diffusion_steps - 1, 0, cfg.sample_steps))]
        keys = jax.random.split(key, cfg.sample_steps + 1)
        x = jax.random.normal(keys[-1], (*observations.shape[:-1], self.actor_def.action_dim))
        for i, t in enumerate(levels):  # k is static: an unrolled chain of exactly k network calls
            a_t = cumprod[t]
            a_prev = cumprod[levels[i + 1]] if i + 1 < len(levels) else jnp.float32(1.0)
            eps = self.actor_def.apply(self.params, observations, x, jnp.full(x.shape[:-1], float(t)))
            x0 = jnp.clip((x - jnp.sqrt(1.0 - a_t) * eps) / jnp.sqrt(a_t), -1.0, 1.0)
            eps = (x - jnp.sqrt(a_t) * x0) / jnp.sqrt(1.0 - a_t)
            sigma = cfg.ddim_eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev))
            x = jnp.sqrt(a_prev) * x0 + jnp.sqrt(jnp.maximum(1.0 - a_prev - sigma**2, 0.0)) * eps
            if cfg.ddim_eta > 0:
                x = x + sigma * jax.random.normal(keys[i], x.shape)
        return jnp.clip(x, -1.0, 1.0)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: DiffusionBCConfig) -> "DiffusionBCAgent":
        """Returns a freshly initialised agent."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        actor_def = NoisePredictor(actions.shape[-1], config.hidden_dims, time_dim=config.time_dim)
        rng, init_key = jax.random.split(key)
        params = actor_def.init(init_key, obs, actions, jnp.zeros((1,)))
        optimizer = adam(config.lr)
        return cls(params, optimizer.init(params), rng, config, actor_def, optimizer)
