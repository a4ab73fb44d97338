"""Pieces every agent shares: validated config fields and one optimiser step."""

from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from sscp.errors import ConfigError


def require_positive(config: Any, *names: str) -> None:
    """Raises ConfigError naming the first of config's fields that is not > 0."""
    for name in names:
        if getattr(config, name) <= 0:
            raise ConfigError(f"--agent.{name.replace('_', '-')} must be positive, got {getattr(config, name)}")


def adam(lr: float) -> optax.GradientTransformation:
    """Returns Adam on one flattened parameter vector: the same arithmetic as per-array Adam, far fewer GPU kernels."""
    return optax.flatten(optax.adam(lr))


def global_norm(tree: Any) -> jax.Array:
    """Returns the L2 norm of every array of tree together, computed on one concatenated vector: one reduction
    instead of one per array, as optax.tree.norm makes (docs/archive/benchmarks-notebook.md: the grad_norm
    diagnostic). Equal to optax.tree.norm up to float summation order."""
    flat, _ = jax.flatten_util.ravel_pytree(tree)
    return jnp.sqrt(jnp.sum(jnp.square(flat)))


def soft_update(online: Any, target: Any, rate: float) -> Any:
    """Returns rate·online + (1 − rate)·target, leaf by leaf: one Polyak (EMA) step of a target network.

    Every agent that follows the FQL/OGBench code passes the online parameters from *before* the step's gradient
    update, as those codes do (their targets are computed from the pre-step network in the same jitted step), so a
    target never runs ahead of the parameters that produced this step's losses (docs/agents.md, "Target networks")."""
    return jax.tree.map(lambda o, t: rate * o + (1.0 - rate) * t, online, target)


def smoothed(actions: jax.Array, key: jax.Array, std: float, clip: float) -> jax.Array:
    """Returns actions + clip(N(0, std²), −clip, clip), clipped to [−1, 1]: TD3's target-policy smoothing of the TD
    target's next action, so the critic's target averages Q over a small neighbourhood of it."""
    noise = jnp.clip(std * jax.random.normal(key, actions.shape), -clip, clip)
    return jnp.clip(actions + noise, -1.0, 1.0)


def apply_gradients(optimizer: optax.GradientTransformation, params: Any, opt_state: Any, grads: Any):
    """Returns (new params, new optimiser state) after one optimiser step."""
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def check_chunking(config: Any) -> None:
    """Raises ConfigError unless chunk_size, execute_steps and obs_history are positive and execute_steps <= chunk_size
    (behaviour-cloning configs; sscp/data/chunks.py and evaluate.ChunkedActor use them)."""
    require_positive(config, "chunk_size", "execute_steps", "obs_history")
    if config.execute_steps > config.chunk_size:
        raise ConfigError(
            f"--agent.execute-steps {config.execute_steps} must be <= --agent.chunk-size {config.chunk_size} (it "
            "executes the first actions of each predicted chunk)"
        )
