"""Run a policy that `sscp export --format numpy` wrote, with numpy only (no jax, flax or sscp):

    from sscp import runtime_numpy
    policy = runtime_numpy.load("policy.npz")
    action = policy(observation)               # [obs_dim] -> [action_dim], or [B, obs_dim] -> [B, action_dim]
    action = policy(observation, noise=z)      # the caller's standard-normal noise z, [action_dim] or [B, action_dim]

This file imports nothing but numpy, so it can be copied next to a controller on its own.

The policy is SSCP's sampler (`flow.euler_then_complete`) with its vector-field network h(s, x, τ, d): starting from
noise x = z, each of the `steps` network calls adds scale_i · h(s, x, τ_i, d_i) to x, and the action is
clip(x, −1, 1); one step (the default) is the one-step action clip(z + h(s, z, 0, 1), −1, 1). The sampler's τ_i
and d_i are constants, so the export folded the time/step embedding e(τ_i, d_i) into one first-layer bias per
step: only [s, x] enters the network at run time.

File layout: a numpy .npz archive (no pickles) holding `header` (UTF-8 JSON as uint8: sizes, steps, activation,
where the policy came from), `input_kernel` [obs_dim + action_dim, H], `input_bias` [steps, H], `kernel_i` and
`bias_i` for the layers after the first (i = 1 ... L, the last one has action_dim outputs) and `step_scale`
[steps].
"""

import io
import json
import os

import numpy as np

FORMAT = "sscp-numpy-policy"
VERSION = 1


def pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """Returns the .npz bytes holding `header` (a JSON-able dict) and the policy's float32 arrays."""
    head = json.dumps({**header, "format": FORMAT, "version": VERSION}, sort_keys=True).encode()
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(head, np.uint8), **arrays)
    return buffer.getvalue()


def unpack(data: bytes, source: str = "policy") -> tuple[dict, dict[str, np.ndarray]]:
    """Returns (header, arrays) of a numpy policy file's bytes, or a ValueError naming `source`."""
    if data.startswith(b"SSCPPOLICY1\n"):
        raise ValueError(f"{source}: a jax policy (sscp export without --format numpy); load it with sscp.runtime")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        header = json.loads(arrays.pop("header").tobytes())
    except Exception as e:  # zipfile, numpy and json raise assorted errors on damaged bytes
        raise ValueError(f"{source}: not an sscp numpy policy file ({type(e).__name__}: {e})") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"{source}: not an sscp numpy policy file of version {VERSION} (header {header})")
    return header, arrays


def mish(x: np.ndarray) -> np.ndarray:
    """Returns x · tanh(softplus(x)), computed in place in x. exp's input is capped at 20, where tanh(softplus(x))
    is 1.0 in float32 already: numpy's exp, log1p and tanh are vectorised, its logaddexp is not."""
    t = np.minimum(x, np.float32(20.0))
    np.exp(t, out=t)
    np.log1p(t, out=t)
    np.tanh(t, out=t)
    x *= t
    return x


class Policy:
    """A loaded numpy policy: call it with one observation [obs_dim] or a batch [B, obs_dim]; returns float32
    actions in [−1, 1] of the matching shape. The noise z ~ N(0, I) is drawn from the policy's own numpy generator
    (`seed` at load) unless `noise=` is given; for the same observation and noise the action is the jax policy's."""

    def __init__(self, header: dict, arrays: dict[str, np.ndarray], seed: int = 0):
        if header.get("activation") != "mish":
            raise ValueError(f"unknown activation {header.get('activation')!r} in the policy header (expected mish)")
        self.header = header
        self.obs_dim: int = header["obs_dim"]
        self.action_dim: int = header["action_dim"]
        self.input_kernel = arrays["input_kernel"]
        self.input_bias = arrays["input_bias"]
        self.step_scale = arrays["step_scale"]
        count = sum(name.startswith("kernel_") for name in arrays)
        self.layers = [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(1, count + 1)]
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation, noise=None) -> np.ndarray:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"observation has shape {np.shape(observation)}; expected ({self.obs_dim},) or (B, {self.obs_dim})"
            )
        shape = (len(obs), self.action_dim)
        if noise is None:
            x = self._rng.standard_normal(shape, dtype=np.float32)
        else:
            z = np.asarray(noise, np.float32)
            if z.shape not in (shape, shape[1:]):
                raise ValueError(f"noise has shape {z.shape}; expected ({self.action_dim},) or {shape}")
            x = np.array(np.broadcast_to(z, shape))
        for step in range(len(self.step_scale)):
            h = np.concatenate([obs, x], axis=1) @ self.input_kernel
            h += self.input_bias[step]
            for kernel, bias in self.layers:
                h = mish(h) @ kernel
                h += bias
            x = x + self.step_scale[step] * h
        np.clip(x, -1.0, 1.0, out=x)
        return x[0] if single else x


def load(path: str | os.PathLike, seed: int = 0) -> Policy:
    """Returns the policy saved at `path` by `sscp export --format numpy`; `seed` seeds its noise generator.
    Raises ValueError for files that are not sscp numpy policies."""
    with open(path, "rb") as f:
        return Policy(*unpack(f.read(), os.fspath(path)), seed=seed)
