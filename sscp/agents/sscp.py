"""SSCP actor-critic (the paper's SSCQL): one vector-field network gives flow velocities and completion vectors;
a twin critic trains it towards high Q through the completed action, and acting takes one network call.

Method and defaults: docs/method.md (Koirala & Fleming, arXiv 2506.21427).
"""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import flax
import jax
import jax.numpy as jnp
import optax

from sscp import flow
from sscp.agents.base import Agent, PresetConfig
from sscp.agents.common import adam, apply_gradients, global_norm, require_positive, smoothed, soft_update
from sscp.errors import ConfigError
from sscp.nets import Ensemble, VectorField

SWEPT_DOMAINS = ("cube-single", "scene", "puzzle-3x3")
"""OGBench domains whose settings a sweep here chose (docs/results.md, "SSCP's settings"): the paper's won or tied on
each."""
UNSETTLED_DOMAINS = {
    "cube-double": "swept on task 2 to 200k updates, where no setting left 0 success (docs/results.md), so none chosen",
}
"""OGBench domains swept here without a result to choose by; "auto" keeps the defaults there and says why."""


ONLINE_PRESET = {
    "normalize_q_loss": False,
    "explore_actor": "online",
    "exploration_noise": 0.1,
    "policy_noise": 0.2,
    "actor_hidden_dims": (256, 256),
    "critic_hidden_dims": (256, 256),
    "batch_size": 256,
}
"""`--agent.preset online`, online from scratch: TD3's recipe around SSCP's losses (the Q term unscaled, collecting with
the trained actor plus noise 0.1, target-policy smoothing 0.2) at SAC's network and batch size, the best of the
combinations screened on Hopper and Walker2d (docs/online.md, "What makes SSCP learn online"); never picked by auto."""
ONLINE_LOSSES = ("normalize_q_loss", "explore_actor", "exploration_noise", "policy_noise")
"""The online preset's options that an agent trained offline can take for its online phase (`--online-agent`): all
but the network and batch size, which cannot change after the offline phase."""


def sscp_presets() -> dict[str, dict]:
    """Returns the per-dataset settings that `--agent.preset auto` looks up by dataset name: the paper's α₂ for the
    D4RL locomotion datasets (docs/method.md), which apply to the D4RL files and to the D4RL-style datasets made here
    (hopper-medium-v2 and hopper-medium-v5 alike), and, per OGBench domain, the values a sweep here chose on the
    domain's default task (docs/results.md, "SSCP's settings"), filed even where they equal the defaults so that a
    run says which domains were swept."""
    alpha_completion = {
        "halfcheetah": {"medium": 0.20, "medium-replay": 0.05, "medium-expert": 0.10},
        "hopper": {"medium": 0.05, "medium-replay": 0.10, "medium-expert": 0.75},
        "walker2d": {"medium": 0.50, "medium-replay": 0.10, "medium-expert": 0.10},
    }
    d4rl = {f"{env}-{data}": {"alpha_completion": a} for env, d in alpha_completion.items() for data, a in d.items()}
    swept = {domain: {"alpha_completion": 1.0, "actor_ema": 0.0005} for domain in SWEPT_DOMAINS}
    return {**d4rl, **swept, "online": ONLINE_PRESET}


def sscp_preset_sources() -> dict[str, str]:
    """Returns where each preset of sscp_presets comes from, printed with the values a run uses."""
    swept = "tuned here, not the paper's: a sweep kept the paper's values (docs/results.md)"
    online = "tuned here, not the paper's: TD3's recipe around SSCP's losses, screened online (docs/online.md)"
    sources = {**dict.fromkeys(SWEPT_DOMAINS, swept), "online": online}
    return {name: sources.get(name, "the paper's α₂ for D4RL") for name in sscp_presets()}


@dataclass(frozen=True)
class SSCPConfig(PresetConfig):
    """Hyperparameters of the SSCP actor-critic; defaults are the paper's (docs/method.md)."""

    preset: str = "none"
    """Per-dataset settings: "none" keeps the defaults below; "auto" looks the datasets' settings up by name (the
    paper's α₂ for the D4RL locomotion datasets, the values swept here per OGBench domain: docs/method.md,
    "Presets"); or a preset name, such as "online" for online runs from scratch (TD3's recipe around SSCP's losses at
    SAC's network size; tuned here, not the paper's: docs/online.md). Options given on the command line win over the
    preset; the values used are printed and saved in config.json."""

    lr: float = 3e-4
    """Adam learning rate of the one optimiser on critic + actor loss."""
    batch_size: int = 1024
    """Transitions per gradient step."""
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Vector-field MLP widths (mish, no LayerNorm)."""
    critic_hidden_dims: tuple[int, ...] = (512, 512, 512, 512)
    """Critic MLP widths (GELU, LayerNorm after each hidden activation)."""
    actor_layer_norm: bool = False
    """LayerNorm in the vector-field MLP (off in the paper)."""
    critic_layer_norm: bool = True
    """LayerNorm in the critic MLPs (on in the paper)."""
    time_embed_dim: int = 128
    """Width of the shared Fourier features and of the τ / d embedding MLPs."""
    fourier_scale: float = 0.2
    """Std of the learnable Fourier frequencies W ~ N(0, scale²)."""
    num_critics: int = 2
    """Critic ensemble size; targets take the min over the ensemble."""
    discount: float = 0.99
    """Discount γ (0.995 for long-horizon tasks)."""
    alpha_flow: float = 1.0
    """α₁: weight of the flow-matching loss."""
    alpha_completion: float = 1.0
    """α₂: weight of the completion loss; the paper tunes it per task (D4RL values 0.05-0.75)."""
    q_action: Literal["completed", "one_step"] = "completed"
    """The action the actor's Q term scores: "completed" (the paper's), the completed action â_τ from the sampled
    path point x_τ at a random τ; "one_step", the one-step action clip(z + h(s, z, 0, 1)) from fresh noise z, the
    action the policy acts with (one more actor pass per update; a variant, not the paper's)."""
    normalize_q_loss: bool = True
    """Scale the actor's Q term by stopgrad(1 / mean|Q|), as the authors' code does."""
    critic_tau: float = 0.005
    """Soft-update rate of the target critics, every step."""
    actor_ema: float = 0.0005
    """EMA rate of the acting ("target") actor, every step; it also gives the TD target's next action unless
    td_actor_ema is set."""
    td_actor_ema: float | None = None
    """EMA rate of a separate actor that gives the TD target's next action. None (the paper's): the acting EMA actor
    plays both roles. Setting it keeps a second EMA copy, so the two roles can be tuned apart (1 follows the online
    actor one step behind)."""
    policy_noise: float = 0.0
    """Std of TD3's target-policy smoothing: clipped Gaussian noise on the TD target's next action. 0 is the paper's
    (the next action is the one-step action alone, and its own noise z barely spreads it, docs/method.md, "The
    one-step action is a conditional mean"); an online option (docs/online.md), as ReBRAC's option of this name."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to [−noise_clip, noise_clip] (TD3's 0.5)."""
    action_clip_eps: float = 1e-5
    """Dataset actions are clipped to ±(1 − eps) before every loss (the critic's Q(s, a) and the flow losses), as the
    authors' code clips them once when the dataset is loaded."""
    compute_dtype: Literal["float32", "bfloat16"] = "float32"
    """Dtype of the networks' activations and matmuls; parameters, losses and Adam stay float32. bfloat16 is a
    speed option (not the paper's)."""
    log_one_step_mse: bool = True
    """Compute the one_step_mse diagnostic (one extra actor forward pass per update)."""
    log_grad_norm: bool = True
    """Compute the grad_norm diagnostic (a reduction over every weight's gradient per update; the GPU profile's
    costliest kernels are reductions of weight-sized arrays)."""
    sample_steps: int = 1
    """Network calls per action when acting: sample_steps − 1 Euler steps with the velocity head, then a completion
    jump to τ = 1. 1 is the paper's one-step sampler; the critic's TD target always uses one step."""
    matmul_norm_grads: bool = False
    """The critics' LayerNorm with a hand-written backward pass whose scale/bias gradients are products with a ones
    vector, kept apart from the input gradient's kernel (nets.MatmulGradLayerNorm): the same values up to float
    rounding; a GPU speed option (+8–13 % for one seed in bf16 on an H200, nothing in float32;
    docs/archive/benchmarks-notebook.md)."""
    exploration_noise: float = 0.0
    """Std of Gaussian noise added to the actions taken while collecting online data (not in evaluation or TD
    targets). 0 is the paper's: acting uses the EMA actor's own noise z, but the one-step action tends to the
    conditional mean (docs/method.md, "The one-step action is a conditional mean"), so online from scratch it
    explores little (docs/online.md)."""
    exploration_noise_decay: int = 0
    """0 keeps exploration_noise constant; N > 0 moves its std linearly from exploration_noise to
    exploration_noise_final over the agent's first N updates (online, about N env steps after the warm-up at one
    update per step), so early data is spread widely and later data follows the learned policy."""
    exploration_noise_final: float = 0.0
    """The std that a decayed exploration_noise reaches after exploration_noise_decay updates, and keeps."""
    explore_actor: Literal["ema", "online"] = "ema"
    """Which actor collects online data: "ema", the acting EMA actor (the paper's), or "online", the actor being
    trained (fresher; evaluation and the TD target keep their own actors)."""
    explore_sample_steps: int = 0
    """Network calls per action while collecting online data: 0 uses sample_steps (the paper's one step); k > 1
    integrates the velocity head for k − 1 Euler steps before the completion jump, which keeps more of the spread
    over z that the one-step jump loses (docs/expressiveness.md)."""

    ONLINE_OPTIONS: ClassVar[tuple[str, ...]] = (
        "alpha_flow", "alpha_completion", "normalize_q_loss", "q_action", "policy_noise", "noise_clip",
        "exploration_noise", "exploration_noise_decay", "exploration_noise_final", "explore_actor",
        "explore_sample_steps",
    )  # fmt: skip
    PRESETS: ClassVar[dict[str, dict]] = sscp_presets()
    PRESET_SOURCES: ClassVar[dict[str, str]] = sscp_preset_sources()
    UNSETTLED: ClassVar[dict[str, str]] = UNSETTLED_DOMAINS
    FROM_SCRATCH_PRESETS: ClassVar[dict[str, str]] = {
        "online": "offline, its losses collapsed the policy where measured (docs/online.md); to fine-tune with "
        "them, give them to the online phase alone: --online-agent "
        + " ".join(f"{k}={ONLINE_PRESET[k]}" for k in ONLINE_LOSSES)
    }

    def __post_init__(self):
        self.check_preset()
        require_positive(self, "lr", "batch_size", "num_critics", "sample_steps", "time_embed_dim", "noise_clip")
        for name in ("exploration_noise", "exploration_noise_final", "exploration_noise_decay", "policy_noise"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--agent.{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.explore_sample_steps < 0:
            raise ConfigError(
                f"--agent.explore-sample-steps must be >= 0 (0: sample-steps), got {self.explore_sample_steps}"
            )
        if not 0.0 <= self.discount <= 1.0:
            raise ConfigError(f"--agent.discount must be in [0, 1], got {self.discount}")
        for name in ("critic_tau", "actor_ema", "td_actor_ema"):
            if getattr(self, name) is not None and not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"--agent.{name.replace('_', '-')} must be in (0, 1], got {getattr(self, name)}")


class SSCPAgent(Agent, flax.struct.PyTreeNode):
    """Immutable SSCP agent: online and target parameters, optimiser state, RNG key; config and modules static."""

    acting_steps_field: ClassVar[str | None] = "sample_steps"

    params: dict
    target_params: dict
    opt_state: Any
    rng: jax.Array
    config: SSCPConfig = flax.struct.field(pytree_node=False)
    actor_def: VectorField = flax.struct.field(pytree_node=False)
    critic_def: Ensemble = flax.struct.field(pytree_node=False)
    optimizer: optax.GradientTransformation = flax.struct.field(pytree_node=False)

    def field(self, actor_params: dict):
        """Returns h(obs, x, t, d) bound to the given actor parameters."""
        return lambda obs, x, t, d: self.actor_def.apply(actor_params, obs, x, t, d)

    def td_loss(self, batch: dict, q: jax.Array, next_q: jax.Array) -> tuple[jax.Array, dict]:
        """Returns mean_j,batch (Q_j(s, a) − y)², y = r + γ·mask·min_j Q̄_j(s', a') held fixed, from critic outputs."""
        target = batch["rewards"] + self.config.discount * batch["masks"] * next_q.min(axis=0)
        loss = jnp.mean((q - jax.lax.stop_gradient(target)[None]) ** 2)
        return loss, {"critic_loss": loss, "q_mean": q.mean(), "q_max": q.max(), "q_min": q.min()}

    def policy_loss(
        self, actions: jax.Array, z: jax.Array, velocity: jax.Array, completed: jax.Array, q_pi: jax.Array
    ) -> tuple[jax.Array, dict]:
        """Returns α₁·L_flow + α₂·L_completion + L_Qπ from the actor's outputs and the critics' Q(s, â_τ)."""
        cfg = self.config
        flow_loss = flow.flow_loss(velocity, actions, z)
        completion_loss = flow.completion_loss(completed, actions)
        q = q_pi.mean(axis=0)
        q_scale = jax.lax.stop_gradient(1.0 / jnp.abs(q).mean()) if cfg.normalize_q_loss else 1.0
        q_loss = -q_scale * q.mean()
        loss = cfg.alpha_flow * flow_loss + cfg.alpha_completion * completion_loss + q_loss
        return loss, {"actor_loss": loss, "flow_loss": flow_loss, "completion_loss": completion_loss, "q_loss": q_loss}

    def _draws(self, batch: dict, key: jax.Array):
        """Returns this step's random draws: next-action noise, (z, τ, x_τ) on the path, diagnostic noise."""
        critic_key, actor_key = jax.random.split(key)
        path_key, noise_key = jax.random.split(actor_key)
        actions = self._clipped_actions(batch)
        z_next = jax.random.normal(critic_key, actions.shape)
        return z_next, flow.sample_path(path_key, actions), jax.random.normal(noise_key, actions.shape)

    def _clipped_actions(self, batch: dict) -> jax.Array:
        eps = self.config.action_clip_eps
        return jnp.clip(batch["actions"], -1.0 + eps, 1.0 - eps)

    def total_loss(self, batch: dict, params: dict, key: jax.Array) -> tuple[jax.Array, dict]:
        """Returns L_Q + L_π (optimised jointly by one Adam) and diagnostics, one network call per query.

        The critic is evaluated with stop-gradient parameters for L_Qπ, so it gets no gradient from the actor term.
        """
        obs, obs_next, actions = batch["observations"], batch["next_observations"], self._clipped_actions(batch)
        z_next, (z, tau, x_tau), z_diag = self._draws(batch, key)
        next_actions = flow.one_step_sample(self.field(self.td_actor()), obs_next, z_next)
        if self.config.policy_noise > 0:  # a key of its own: without the option the paper's draws are unchanged
            noise_key = jax.random.fold_in(key, 1)
            next_actions = smoothed(next_actions, noise_key, self.config.policy_noise, self.config.noise_clip)
        next_q = self.critic_def.apply(self.target_params["critic"], obs_next, next_actions)
        q = self.critic_def.apply(params["critic"], obs, actions)
        critic_loss, info = self.td_loss(batch, q, next_q)

        field = self.field(params["actor"])
        velocity, completion = flow.flow_and_completion(field, obs, x_tau, tau)
        completed = flow.complete(x_tau, tau, completion)
        one_step = None
        if self.config.q_action == "one_step" or self.config.log_one_step_mse:
            one_step = flow.one_step_sample(field, obs, z_diag)  # clipped to [-1, 1]
        scored = one_step if self.config.q_action == "one_step" else jnp.clip(completed, -1.0, 1.0)
        q_pi = self.critic_def.apply(jax.lax.stop_gradient(params["critic"]), obs, scored)
        actor_loss, actor_info = self.policy_loss(actions, z, velocity, completed, q_pi)
        if self.config.log_one_step_mse:  # diagnostic: the online actor's one-step action vs the dataset action
            actor_info["one_step_mse"] = jnp.mean((jax.lax.stop_gradient(one_step) - actions) ** 2)
        return critic_loss + actor_loss, {**info, **actor_info}

    def target_update(self) -> dict:
        """Returns the soft-updated targets: critics at critic_tau, the acting actor at actor_ema, each moved toward
        the online parameters from *before* this step's gradient update (the authors' code computes them from the
        pre-step network in the same step)."""
        cfg, before, targets = self.config, self.params, self.target_params
        updated = {
            "critic": soft_update(before["critic"], targets["critic"], cfg.critic_tau),
            "actor": soft_update(before["actor"], targets["actor"], cfg.actor_ema),
        }
        if cfg.td_actor_ema is not None:
            updated["td_actor"] = soft_update(before["actor"], targets["td_actor"], cfg.td_actor_ema)
        return updated

    def td_actor(self) -> dict:
        """Returns the parameters of the actor whose one-step action enters the TD target: the acting EMA actor, or
        the separate EMA copy when td_actor_ema is set."""
        return self.target_params["td_actor" if self.config.td_actor_ema is not None else "actor"]

    def update(self, batch: dict) -> tuple["SSCPAgent", dict]:
        """Returns the agent after one gradient step on batch, and scalar diagnostics."""
        rng, key = jax.random.split(self.rng)
        grads, info = jax.grad(lambda p: self.total_loss(batch, p, key), has_aux=True)(self.params)
        params, opt_state = apply_gradients(self.optimizer, self.params, self.opt_state, grads)
        if self.config.log_grad_norm:
            info["grad_norm"] = global_norm(grads)
        agent = self.replace(params=params, target_params=self.target_update(), opt_state=opt_state, rng=rng)
        return agent, info

    def sample_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns actions in [−1, 1] from the EMA actor with fresh noise: one network call (sample_steps = 1)."""
        z = jax.random.normal(key, (*observations.shape[:-1], self.actor_def.action_dim))
        field = self.field(self.target_params["actor"])
        return flow.euler_then_complete(field, observations, z, self.config.sample_steps)

    def explore_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the actions taken while collecting online data: by default sample_actions (the paper's); with the
        options, the online actor instead of the EMA actor (explore_actor), explore_sample_steps network calls, and
        clipped Gaussian noise of std exploration_noise on top."""
        cfg = self.config
        steps = cfg.explore_sample_steps or cfg.sample_steps
        if cfg.exploration_noise == 0.0 and cfg.explore_actor == "ema" and steps == cfg.sample_steps:
            return self.sample_actions(observations, key)
        action_key, noise_key = jax.random.split(key)
        z = jax.random.normal(action_key, (*observations.shape[:-1], self.actor_def.action_dim))
        actor = self.params["actor"] if cfg.explore_actor == "online" else self.target_params["actor"]
        actions = flow.euler_then_complete(self.field(actor), observations, z, steps)
        if cfg.exploration_noise == 0.0 and cfg.exploration_noise_decay == 0:
            return actions
        noise = self.exploration_std() * jax.random.normal(noise_key, actions.shape)
        return jnp.clip(actions + noise, -1.0, 1.0)

    def exploration_std(self) -> jax.Array:
        """Returns the std of the collecting actions' noise at this agent's update count (exploration_noise, or its
        linear decay to exploration_noise_final over exploration_noise_decay updates)."""
        cfg = self.config
        if cfg.exploration_noise_decay == 0:
            return jnp.asarray(cfg.exploration_noise, jnp.float32)
        count = optax.tree_utils.tree_get(self.opt_state, "count")
        frac = jnp.minimum(count.astype(jnp.float32) / cfg.exploration_noise_decay, 1.0)
        return cfg.exploration_noise + frac * (cfg.exploration_noise_final - cfg.exploration_noise)

    @classmethod
    def create(cls, key: jax.Array, example_batch: dict, config: SSCPConfig) -> "SSCPAgent":
        """Returns a freshly initialised agent; targets start as copies of the online networks."""
        obs = example_batch["observations"][:1]
        actions = example_batch["actions"][:1]
        actor_def = VectorField(
            action_dim=actions.shape[-1],
            hidden_dims=config.actor_hidden_dims,
            layer_norm=config.actor_layer_norm,
            embed_dim=config.time_embed_dim,
            fourier_scale=config.fourier_scale,
            dtype=config.compute_dtype,
        )
        critic_def = Ensemble(
            config.critic_hidden_dims,
            config.num_critics,
            layer_norm=config.critic_layer_norm,
            dtype=config.compute_dtype,
            matmul_norm_grads=config.matmul_norm_grads,
        )
        rng, actor_key, critic_key = jax.random.split(key, 3)
        t = jnp.zeros((1,))
        params = {
            "actor": actor_def.init(actor_key, obs, actions, t, t),
            "critic": critic_def.init(critic_key, obs, actions),
        }
        optimizer = adam(config.lr)
        return cls(
            params=params,
            target_params=jax.tree.map(
                jnp.copy, {**params, "td_actor": params["actor"]} if config.td_actor_ema is not None else params
            ),
            opt_state=optimizer.init(params),
            rng=rng,
            config=config,
            actor_def=actor_def,
            critic_def=critic_def,
            optimizer=optimizer,
        )

    def q_values(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        """Returns min_j Q_j(s, a) of the online critics, the aggregate the TD target takes."""
        return self.critic_def.apply(self.params["critic"], observations, actions).min(axis=0)

    def numpy_export(self):
        """Returns the acting network, its parameters, its first layer's input order and the sampler's schedule."""
        return self.actor_def, self.target_params["actor"], ("obs", "x", "time"), "euler_then_complete"
