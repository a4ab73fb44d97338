"""Flow-matching math shared by the flow agents: the straight path, the two SSCP losses and the samplers."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

# h(obs, x, t, d) -> vector of the same shape as x; t and d have x's leading shape without the action axis.
VectorFieldFn = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


def sample_path(key: jax.Array, actions: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Returns (z, τ, x_τ): noise z ~ N(0, I), τ = u² with u ~ U[0, 1] (biased toward noise), x_τ = (1 − τ)z + τa."""
    z_key, u_key = jax.random.split(key)
    z = jax.random.normal(z_key, actions.shape, actions.dtype)
    tau = jax.random.uniform(u_key, actions.shape[:-1], actions.dtype) ** 2
    x_tau = (1.0 - tau[..., None]) * z + tau[..., None] * actions
    return z, tau, x_tau


def complete(x_tau: jax.Array, tau: jax.Array, completion: jax.Array) -> jax.Array:
    """Returns the completed action x_τ + (1 − τ)·h(s, x_τ, τ, 1 − τ): one jump from τ to the end of the path."""
    return x_tau + (1.0 - tau[..., None]) * completion


def flow_and_completion(
    field: VectorFieldFn, obs: jax.Array, x_tau: jax.Array, tau: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Returns (velocity at d = 0, completion vector at d = 1 − τ), computed in ONE network call on a 2B batch.

    Stacking the two queries halves the number of kernel launches; each row is computed independently, so the
    result equals two separate calls.
    """
    n = x_tau.shape[0]
    both = field(
        jnp.concatenate([obs, obs]),
        jnp.concatenate([x_tau, x_tau]),
        jnp.concatenate([tau, tau]),
        jnp.concatenate([jnp.zeros_like(tau), 1.0 - tau]),
    )
    return both[:n], both[n:]


def flow_loss(velocity: jax.Array, actions: jax.Array, z: jax.Array) -> jax.Array:
    """Returns the flow-matching loss: mean over batch and action dimensions of (h(s, x_τ, τ, 0) − (a − z))²."""
    return jnp.mean((velocity - (actions - z)) ** 2)


def completion_loss(completed: jax.Array, actions: jax.Array) -> jax.Array:
    """Returns the completion loss: mean of (x_τ + (1 − τ)·h(s, x_τ, τ, 1 − τ) − a)²; the target is the data action."""
    return jnp.mean((completed - actions) ** 2)


def one_step_sample(field: VectorFieldFn, obs: jax.Array, z: jax.Array) -> jax.Array:
    """Returns the one-step action clip(z + h(s, z, 0, 1), −1, 1): a single completion jump from pure noise."""
    return euler_then_complete(field, obs, z, 1)


def _euler(field: VectorFieldFn, obs: jax.Array, x: jax.Array, n: int, dt: float) -> jax.Array:
    """Returns x after n Euler steps of size dt with the velocity head (d = 0), starting at τ = 0."""
    for i in range(n):
        t = jnp.full(x.shape[:-1], i * dt, x.dtype)
        x = x + dt * field(obs, x, t, jnp.zeros_like(t))
    return x


def euler_then_complete(field: VectorFieldFn, obs: jax.Array, z: jax.Array, steps: int) -> jax.Array:
    """Returns clip(x, −1, 1) after steps − 1 Euler steps of size 1/steps with the velocity head from z, then one
    completion jump from τ = (steps − 1)/steps to τ = 1: `steps` network calls; steps = 1 is one_step_sample.
    """
    x = _euler(field, obs, z, steps - 1, 1.0 / steps)
    t = jnp.full(z.shape[:-1], (steps - 1) / steps, z.dtype)
    return jnp.clip(complete(x, t, field(obs, x, t, 1.0 - t)), -1.0, 1.0)


def euler_sample(field: VectorFieldFn, obs: jax.Array, z: jax.Array, steps: int) -> jax.Array:
    """Returns clip(x, −1, 1) after integrating the velocity head from τ = 0 to 1 in `steps` Euler steps."""
    return jnp.clip(_euler(field, obs, z, steps, 1.0 / steps), -1.0, 1.0)
