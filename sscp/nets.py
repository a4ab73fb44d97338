"""Networks shared by the agents: MLPs, ensembles, the Fourier time/step embedding and the vector-field actor."""

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def default_init(scale: float = 1.0) -> Callable:
    """Returns the variance-scaling (fan_avg, uniform) kernel initialiser used by every network (docs/method.md, "One
    network, two heads")."""
    return nn.initializers.variance_scaling(scale, "fan_avg", "uniform")


ACTIVATIONS: dict[str, Callable] = {"mish": jax.nn.mish, "gelu": nn.gelu, "relu": nn.relu, "silu": nn.silu}


def _batch_sum(a: jax.Array) -> jax.Array:
    """Returns a summed over every axis but the last, written as a product with a ones vector behind an optimisation
    barrier, so that XLA does not fuse it with the input gradient (on an H200 XLA still lowers it to a reduction
    kernel, but one of its own: docs/archive/benchmarks-notebook.md)."""
    rows = a.reshape(-1, a.shape[-1])
    ones = jax.lax.optimization_barrier(jnp.ones((rows.shape[0],), rows.dtype))
    return ones @ rows


def _ln_forward(x, scale, bias, eps):
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = xf.mean(-1, keepdims=True)
    var = jnp.maximum((xf * xf).mean(-1, keepdims=True) - mean * mean, 0.0)
    rstd = jax.lax.rsqrt(var + eps)
    return (xf - mean) * (rstd * scale) + bias, (xf - mean) * rstd, rstd


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _layer_norm_mm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    return _ln_forward(x, scale, bias, eps)[0]


def _layer_norm_mm_fwd(x, scale, bias, eps):
    y, xhat, rstd = _ln_forward(x, scale, bias, eps)
    return y, (xhat, rstd, scale, jnp.zeros((0,), x.dtype))


def _layer_norm_mm_bwd(eps, res, g):
    del eps
    xhat, rstd, scale, x_like = res
    g = g.astype(xhat.dtype)
    dxhat = g * scale
    dx = rstd * (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * xhat).mean(-1, keepdims=True))
    return dx.astype(x_like.dtype), _batch_sum(g * xhat), _batch_sum(g)


_layer_norm_mm.defvjp(_layer_norm_mm_fwd, _layer_norm_mm_bwd)


class MatmulGradLayerNorm(nn.Module):
    """LayerNorm (flax's arithmetic: float32 statistics, E[x²] − E[x]², eps 1e-6; the same parameter names) with a
    hand-written backward pass whose scale and bias gradients are products with a ones vector. With flax's LayerNorm
    XLA fuses those batch reductions and the input gradient into one multi-output kernel, the slowest of a one-seed
    GPU step (57 µs in bf16), and the input gradient waits for it; here they are kernels of their own that run beside
    the rest of the backward pass (docs/archive/benchmarks-notebook.md). A speed option; the same values up to float
    rounding."""

    epsilon: float = 1e-6
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return _layer_norm_mm(x, scale, bias, self.epsilon).astype(self.dtype)


class MLP(nn.Module):
    """Returns the output of a multilayer perceptron: Dense → activation (→ LayerNorm) per hidden layer."""

    hidden_dims: Sequence[int]
    activation: str = "gelu"
    activate_final: bool = False
    layer_norm: bool = False
    dtype: str = "float32"
    matmul_norm_grads: bool = False
    """LayerNorm as MatmulGradLayerNorm (a speed option)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for i, size in enumerate(self.hidden_dims):
            x = nn.Dense(size, kernel_init=default_init(), dtype=self.dtype)(x)
            if i + 1 < len(self.hidden_dims) or self.activate_final:
                x = act(x)
                if self.layer_norm and self.matmul_norm_grads:
                    x = MatmulGradLayerNorm(dtype=self.dtype, name=f"LayerNorm_{i}")(x)
                elif self.layer_norm:
                    x = nn.LayerNorm(dtype=self.dtype)(x)
        return x


class FourierFeatures(nn.Module):
    """Returns [cos(2π·x·Wᵀ), sin(2π·x·Wᵀ)] with a learnable W ~ N(0, scale²) of shape (out_dim/2, 1)."""

    out_dim: int = 128
    scale: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        w = self.param("kernel", nn.initializers.normal(self.scale), (self.out_dim // 2, 1))
        proj = 2.0 * jnp.pi * x[..., None] * w[:, 0]
        return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)], axis=-1)


class TimeStepEmbedding(nn.Module):
    """Returns e(τ) + e(d): one shared Fourier map, then a separate 2-layer MLP for τ and for d (docs/method.md, "One
    network, two heads").

    The MLPs are Dense → mish (→ LayerNorm) → Dense (no activation after the last layer), the usual timestep-embedder
    shape; the LayerNorm is there when the actor that owns the embedding has LayerNorm, as in the authors' code.
    """

    fourier_dim: int = 128
    hidden_dim: int = 128
    fourier_scale: float = 0.2
    layer_norm: bool = False

    @nn.compact
    def __call__(self, t: jax.Array, d: jax.Array) -> jax.Array:
        fourier = FourierFeatures(self.fourier_dim, self.fourier_scale, name="fourier")
        dims, ln = (self.hidden_dim, self.hidden_dim), self.layer_norm
        e_t = MLP(dims, activation="mish", layer_norm=ln, name="t_mlp")(fourier(t))
        e_d = MLP(dims, activation="mish", layer_norm=ln, name="d_mlp")(fourier(d))
        return e_t + e_d


class VectorField(nn.Module):
    """Returns h_θ(s, x, τ, d): d = 0 gives the flow velocity, d = 1 − τ the completion vector (docs/method.md, "One
    network, two heads")."""

    action_dim: int
    hidden_dims: Sequence[int] = (512, 512, 512, 512)
    activation: str = "mish"
    layer_norm: bool = False
    embed_dim: int = 128
    fourier_scale: float = 0.2
    dtype: str = "float32"
    """Computation dtype of the MLP (parameters stay float32; the output is float32)."""

    @nn.compact
    def __call__(self, obs: jax.Array, x: jax.Array, t: jax.Array, d: jax.Array) -> jax.Array:
        emb = TimeStepEmbedding(self.embed_dim, self.embed_dim, self.fourier_scale, self.layer_norm, name="embed")(t, d)
        h = jnp.concatenate([obs, x, emb], axis=-1)
        mlp = MLP(
            (*self.hidden_dims, self.action_dim),
            self.activation,
            layer_norm=self.layer_norm,
            dtype=self.dtype,
            name="mlp",
        )
        return mlp(h).astype(jnp.float32)


class Ensemble(nn.Module):
    """Returns the stacked outputs [n, ...] of n independently initialised copies of an MLP with a scalar head."""

    hidden_dims: Sequence[int] = (512, 512, 512, 512)
    num: int = 2
    activation: str = "gelu"
    layer_norm: bool = True
    dtype: str = "float32"
    matmul_norm_grads: bool = False
    """LayerNorm as MatmulGradLayerNorm (a speed option)."""

    @nn.compact
    def __call__(self, *inputs: jax.Array) -> jax.Array:
        vmapped = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num,
        )
        out = vmapped(
            (*self.hidden_dims, 1),
            self.activation,
            layer_norm=self.layer_norm,
            dtype=self.dtype,
            matmul_norm_grads=self.matmul_norm_grads,
            name="members",
        )(jnp.concatenate(inputs, axis=-1))
        return out[..., 0].astype(jnp.float32)


class GaussianActor(nn.Module):
    """Returns (mean, log_std) of a diagonal Gaussian policy; log_std is one learned vector (state-independent)."""

    action_dim: int
    hidden_dims: Sequence[int] = (512, 512, 512, 512)
    activation: str = "gelu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP((*self.hidden_dims, self.action_dim), self.activation, layer_norm=self.layer_norm, name="mlp")(obs)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return mean, jnp.broadcast_to(jnp.clip(log_std, -5.0, 2.0), mean.shape)


class FlowField(nn.Module):
    """Returns v(s, x, t) = MLP(concat(s, x, t)): the plain flow-matching velocity network of FQL's BC flow."""

    action_dim: int
    hidden_dims: Sequence[int] = (512, 512, 512, 512)
    activation: str = "gelu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
        h = jnp.concatenate([obs, x, t[..., None]], axis=-1)
        return MLP((*self.hidden_dims, self.action_dim), self.activation, layer_norm=self.layer_norm, name="mlp")(h)


class Actor(nn.Module):
    """Returns Dense(MLP(obs)), tanh-squashed when squash: the OGBench/FQL actor of ReBRAC (squashed, deterministic)
    and IQL (the mean of a Gaussian). The output layer starts small (final_init_scale) so early actions sit near 0."""

    action_dim: int
    hidden_dims: Sequence[int] = (512, 512, 512, 512)
    activation: str = "gelu"
    layer_norm: bool = False
    final_init_scale: float = 1e-2
    squash: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = MLP(self.hidden_dims, self.activation, activate_final=True, layer_norm=self.layer_norm, name="mlp")(obs)
        out = nn.Dense(self.action_dim, kernel_init=default_init(self.final_init_scale), name="head")(h)
        return jnp.tanh(out) if self.squash else out


class SinusoidalEmbedding(nn.Module):
    """Returns [sin(t·f), cos(t·f)] with dim/2 fixed frequencies f from 1 down to 1/10000 (the transformer map)."""

    dim: int = 16

    @nn.compact
    def __call__(self, t: jax.Array) -> jax.Array:
        half = self.dim // 2
        freqs = jnp.exp(-jnp.log(10000.0) * jnp.arange(half) / (half - 1))
        args = t[..., None] * freqs
        return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class NoisePredictor(nn.Module):
    """Returns ε_θ(s, x_t, t): Diffusion-QL's noise-prediction MLP on concat(x_t, e(t), s), where e is a sinusoidal
    embedding of the step index followed by Dense(2·time_dim) → mish → Dense(time_dim)."""

    action_dim: int
    hidden_dims: Sequence[int] = (256, 256, 256)
    activation: str = "mish"
    time_dim: int = 16

    @nn.compact
    def __call__(self, obs: jax.Array, x: jax.Array, t: jax.Array) -> jax.Array:
        emb = SinusoidalEmbedding(self.time_dim, name="sinusoidal")(t)
        emb = MLP((2 * self.time_dim, self.time_dim), "mish", name="time_mlp")(emb)
        h = jnp.concatenate([x, emb, obs], axis=-1)
        return MLP((*self.hidden_dims, self.action_dim), self.activation, name="mlp")(h)


def length_normalize(x: jax.Array) -> jax.Array:
    """Returns x rescaled along its last axis to length √dim (HIQL's LengthNormalize)."""
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True) * jnp.sqrt(x.shape[-1])


class GoalRepresentation(nn.Module):
    """Returns φ([s; g]): an MLP (GELU, LayerNorm) on concat(s, g) to rep_dim numbers, length-normalised to √rep_dim;
    HIQL's subgoal representation, shared by its value and actors."""

    hidden_dims: Sequence[int] = (512, 512, 512)
    rep_dim: int = 10
    layer_norm: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array, goals: jax.Array) -> jax.Array:
        h = jnp.concatenate([obs, goals], axis=-1)
        return length_normalize(MLP((*self.hidden_dims, self.rep_dim), "gelu", layer_norm=self.layer_norm)(h))
