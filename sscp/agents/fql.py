"""Flow Q-Learning (Park, Li & Levine, arXiv 2502.02538): a multi-step BC flow policy, a one-step policy distilled
from it and trained towards high Q, and a twin critic. Acting takes one call of the one-step policy."""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax
import jax
import jax.numpy as jnp
import optax

from sscp import flow
from sscp.agents.base import Agent, PresetConfig
from sscp.agents.common import adam, apply_gradients, require_positive, soft_update
from sscp.nets import MLP, Ensemble, FlowField


@dataclass(frozen=True)
class FQLConfig(PresetConfig):
    """Hyperparameters of FQL; defaults are the FQL paper's OGBench settings."""

    preset: str = "none"
    """Per-dataset settings: "none" keeps the defaults below; "auto" applies FQL's published α of the dataset's
    OGBench domain (cube-single, cube-double, scene 300; puzzle-3x3, puzzle-4x4 1000: FQL's README), "none" where it
    has none; or a domain name. Options given on the command line win over the preset."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on critic + actor loss."""
    batch_size: int = 256
    """Transitions per gradient step (FQL uses 256)."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Widths of the BC flow and the one-step policy (GELU, no LayerNorm)."""
    critic_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Critic widths (GELU, LayerNorm)."""
    discount: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Soft-update rate of the target critics."""
    q_agg: Literal["mean", "min"] = "mean"
    """How the TD target aggregates the two target critics (FQL: mean on OGBench, min on D4RL)."""
    alpha: float = 10.0
    """Distillation weight; FQL tunes it per task (300 for cube and scene, 1000 for puzzle)."""
    flow_steps: int = 10
    """Euler steps of the BC flow that the one-step policy is distilled from."""
    normalize_q_loss: bool = False
    """Scale the Q term by stopgrad(1 / mean|Q|) (off in FQL's OGBench runs)."""

    PRESETS: ClassVar[dict[str, dict]] = {
        **{domain: {"alpha": 300.0} for domain in ("cube-single", "cube-double", "scene")},
        **{domain: {"alpha": 1000.0} for domain in ("puzzle-3x3", "puzzle-4x4")},
    }

    def __post_init__(self):
        self.check_preset()
        require_positive(self, "lr", "batch_size", "flow_steps")


class FQLAgent(Agent, flax.struct.PyTreeNode):
    """Immutable FQL agent: BC flow, one-step policy and critics (online), target critics, optimiser state."""

    params: dict
    target_critic: dict
    opt_state: Any
    rng: jax.Array
    config: FQLConfig = flax.struct.field(pytree_node=False)
    flow_def: FlowField = flax.struct.field(pytree_node=False)
    onestep_def: MLP = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def flow_field(self, flow_params: dict):
        """Returns the BC flow's velocity as h(obs, x, t, d) (d is ignored), the signature the samplers take."""
        return lambda obs, x, t, d: self.flow_def.apply(flow_params, obs, x, t)

    def onestep(self, params: dict, obs: jax.Array, z: jax.Array) -> jax.Array:
        """Returns the one-step policy's action clip(μ(s, z), −1, 1)."""
        return jnp.clip(self.onestep_def.apply(params["onestep"], jnp.concatenate([obs, z], axis=-1)), -1.0, 1.0)

    def total_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns critic TD loss + BC flow loss + α·distillation loss + Q loss, and diagnostics."""
        cfg = self.config
        obs, actions = batch["observations"], batch["actions"]
        next_key, t_key, z_key, x_key = jax.random.split(key, 4)

        next_actions = self.onestep(params, batch["next_observations"], jax.random.normal(next_key, actions.shape))
        next_qs = self.critic_def.apply(self.target_critic, batch["next_observations"], next_actions)
        next_q = next_qs.mean(axis=0) if cfg.q_agg == "mean" else next_qs.min(axis=0)
        target = jax.lax.stop_gradient(batch["rewards"] + cfg.discount * batch["masks"] * next_q)
        q_data = self.critic_def.apply(params["critic"], obs, actions)
        critic_loss = jnp.mean((q_data - target[None]) ** 2)

        z = jax.random.normal(z_key, actions.shape)
        t = jax.random.uniform(t_key, actions.shape[:-1])
        x_t = (1.0 - t[..., None]) * z + t[..., None] * actions
        bc_flow_loss = flow.flow_loss(self.flow_def.apply(params["flow"], obs, x_t, t), actions, z)

        noise = jax.random.normal(x_key, actions.shape)
        flow_actions = flow.euler_sample(self.flow_field(params["flow"]), obs, noise, cfg.flow_steps)
        flow_actions = jax.lax.stop_gradient(flow_actions)  # the distillation target trains the one-step policy only
        pi = self.onestep(params, obs, noise)
        distill_loss = jnp.mean((pi - flow_actions) ** 2)
        q = self.critic_def.apply(jax.lax.stop_gradient(params["critic"]), obs, pi).mean(axis=0)
        q_scale = jax.lax.stop_gradient(1.0 / jnp.abs(q).mean()) if cfg.normalize_q_loss else 1.0
        q_loss = -q_scale * q.mean()
        actor_loss = bc_flow_loss + cfg.alpha * distill_loss + q_loss
        info = {
            "critic_loss": critic_loss,
            "q_mean": q_data.mean(),
            "actor_loss": actor_loss,
            "bc_flow_loss": bc_flow_loss,
            "distill_loss": distill_loss,
            "q_loss": q_loss,
        }
        return critic_loss + actor_loss, info

    def update(self, batch: dict) -> tuple["FQLAgent", dict]:
        """Returns the agent after one gradient step on batch and the target-critic update (toward the critics from
        before the step, as FQL's code does), and diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.total_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        target = soft_update(self.params["critic"], self.target_critic, self.config.tau)  # θ before the step, as FQL
        return self.replace(params=params, target_critic=target, opt_state=opt_state, rng=rng), info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the one-step policy's action for fresh noise: one network call."""
        z = jax.random.normal(key, (*observations.shape[:-1], self.flow_def.action_dim))
        return self.onestep(self.params, observations, z)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: FQLConfig) -> "FQLAgent":
        """Returns a freshly initialised agent; the target critics start as copies of the critics."""
        obs, actions = example_batch["observations"][:1], example_batch["actions"][:1]
        action_dim = actions.shape[-1]
        flow_def = FlowField(action_dim, config.actor_hidden_dims)
        onestep_def = MLP((*config.actor_hidden_dims, action_dim), "gelu")
        critic_def = Ensemble(config.critic_hidden_dims, 2, layer_norm=True)
        rng, k1, k2, k3 = jax.random.split(key, 4)
        params = {
            "flow": flow_def.init(k1, obs, actions, jnp.zeros((1,))),
            "onestep": onestep_def.init(k2, jnp.concatenate([obs, actions], axis=-1)),
            "critic": critic_def.init(k3, obs, actions),
        }
        optimizer = adam(config.lr)
        target = jax.tree.map(jnp.copy, params["critic"])
        return cls(params, target, optimizer.init(params), rng, config, flow_def, onestep_def, critic_def, optimizer)
