"""Run a policy that `sscp export --format numpy` wrote, with numpy only (no jax, flax or sscp):

    from sscp import runtime_numpy
    policy = runtime_numpy.load("policy.npz")
    action = policy(observation)               # [obs_dim] -> [action_dim], or [B, obs_dim] -> [B, action_dim]
    action = policy(observation, noise=z)      # the caller's standard-normal noise z (shapes: Policy.__call__)

This file imports nothing but numpy, so it can be copied next to a controller on its own.

`load(path, cores=2)` splits every hidden layer of a batch-1 call over two CPU cores: a helper process (this file
run as a script) holds the other half of each layer's columns and **spins on the second core for as long as the
policy is loaded**, so that each layer costs one exchange through shared memory instead of a process wake-up. Each
core's half of the weights then stays in its own cache. x86-64 only (the exchange relies on its store ordering);
batches above 1 run on the calling core. `policy.close()` (or dropping the policy) stops the helper.

The policy is a sampler that calls one MLP network(s, x, step) `steps` times, starting from noise x = z:
- "euler" (SSCP's `flow.euler_then_complete`, flow BC's `flow.euler_sample`): each call adds
  scale_i · network(s, x, i) to x, and the action is clip(x, −1, 1); SSCP's one step (its default) is the one-step
  action clip(z + h(s, z, 0, 1), −1, 1).
- "ddpm" (Diffusion-QL's reverse chain, `agents.dql`): each call predicts the noise ε; x_0 = clip(a_i·x − b_i·ε,
  −1, 1), x = c_i·x_0 + d_i·x, plus σ_i times a fresh standard-normal draw after every call but the last, and the
  action is clip(x, −1, 1). It draws `steps` noise arrays per action: z, then one after each call but the last.
The network's time input (SSCP's τ_i and d_i, flow BC's t_i, DDPM's step index) is a constant of each call, so the
export folded its embedding into one first-layer bias per call: only [s, x] enters the network at run time.

File layout: a numpy .npz archive (no pickles) holding `header` (UTF-8 JSON as uint8: sizes, steps, activation
(mish or tanh-approximated gelu), sampler, where the policy came from), `input_kernel` [obs_dim + action_dim, H],
`input_bias` [steps, H], `kernel_i` and `bias_i` for the layers after the first (i = 1 ... L, the last one has
action_dim outputs), and per call [steps]: `step_scale` (euler), or `x0_from_x`, `x0_from_eps`, `mean_x0`, `mean_xt`
and `noise_std` (ddpm).
"""

import io
import json
import os
import platform
import subprocess
import sys
import time
import weakref
from multiprocessing import resource_tracker, shared_memory

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


def gelu(x: np.ndarray) -> np.ndarray:
    """Returns x · ½(1 + tanh(√(2/π)(x + 0.044715x³))), flax's default (tanh-approximated) gelu, computed in place
    in x."""
    t = x * x
    t *= np.float32(0.044715)
    t += np.float32(1.0)
    t *= x
    t *= np.float32(np.sqrt(2.0 / np.pi))
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= np.float32(0.5)
    x *= t
    return x


ACTIVATIONS = {"mish": mish, "gelu": gelu}
# the per-call arrays of each sampler, and how many standard-normal arrays an action draws (steps: the header's)
SAMPLERS = {
    "euler": (("step_scale",), lambda steps: 1),
    "ddpm": (("x0_from_x", "x0_from_eps", "mean_x0", "mean_xt", "noise_std"), lambda steps: steps),
}


class Policy:
    """A loaded numpy policy: call it with one observation [obs_dim] or a batch [B, obs_dim]; returns float32
    actions in [−1, 1] of the matching shape. The noise (`noise_draws` standard-normal arrays per action: 1 for
    euler, `steps` for ddpm) is drawn from the policy's own numpy generator (`seed` at load) unless `noise=` is given;
    for the same observation and noise the action is the jax policy's. cores=2 computes batch-1 calls on two cores
    (see the module docstring); the actions are the same."""

    def __init__(self, header: dict, arrays: dict[str, np.ndarray], seed: int = 0, cores: int = 1):
        if header.get("activation") not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {header.get('activation')!r} in the policy header (expected one of "
                f"{', '.join(ACTIVATIONS)}): a newer sscp wrote it; run it with that sscp's runtime_numpy"
            )
        self.sampler = header.get("sampler", "euler")  # the first files (SSCP only) had no sampler entry
        if self.sampler not in SAMPLERS:
            raise ValueError(
                f"unknown sampler {self.sampler!r} in the policy header (expected one of {list(SAMPLERS)})"
            )
        self.header = header
        self.obs_dim: int = header["obs_dim"]
        self.action_dim: int = header["action_dim"]
        self.activation = ACTIVATIONS[header["activation"]]
        self.input_kernel = arrays["input_kernel"]
        self.input_bias = arrays["input_bias"]
        names, draws = SAMPLERS[self.sampler]
        self.coefficients = {name: arrays[name] for name in names}  # [steps] each
        self.steps = len(self.input_bias)
        self.noise_draws: int = draws(self.steps)
        count = sum(name.startswith("kernel_") for name in arrays)
        self.layers = [(arrays[f"kernel_{i}"], arrays[f"bias_{i}"]) for i in range(1, count + 1)]
        self._rng = np.random.default_rng(seed)
        if cores not in (1, 2):
            raise ValueError(f"cores must be 1 or 2, got {cores}")
        self._two_cores = _TwoCores(self) if cores == 2 else None

    def close(self) -> None:
        """Stops the helper process of a cores=2 policy (calls then run on one core); nothing for cores=1."""
        if self._two_cores is not None:
            self._two_cores.close()
            self._two_cores = None

    def __call__(self, observation, noise=None) -> np.ndarray:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"observation has shape {np.shape(observation)}; expected ({self.obs_dim},) or (B, {self.obs_dim})"
            )
        full = (self.noise_draws, len(obs), self.action_dim)
        if noise is None:
            z = self._rng.standard_normal(full, dtype=np.float32)
        else:
            z = self._noise(noise, full)
        x = np.array(z[0])
        network = self._two_cores if self._two_cores is not None and len(obs) == 1 else self
        update = self._euler_update if self.sampler == "euler" else self._ddpm_update
        for step in range(self.steps):
            x = update(x, network.network(obs, x, step), step, z)
        np.clip(x, -1.0, 1.0, out=x)
        return x[0] if single else x

    def _noise(self, noise, full: tuple[int, int, int]) -> np.ndarray:
        """Returns the caller's noise as [noise_draws, B, action_dim]: given per row [noise_draws, B, action_dim] or
        for every row [noise_draws, action_dim]; a one-draw sampler's may leave out its first axis."""
        z = np.asarray(noise, np.float32)
        shapes = [full, (full[0], full[2])] + ([full[1:], full[2:]] if full[0] == 1 else [])
        if z.shape not in shapes:
            raise ValueError(
                f"noise has shape {z.shape}; expected one of {', '.join(map(str, shapes))} ({self.noise_draws} "
                f"standard-normal draw(s) per action for the {self.sampler} sampler, per row or shared by the batch)"
            )
        return np.broadcast_to(z.reshape(full[0], -1, full[2]), full)

    def _euler_update(self, x: np.ndarray, h: np.ndarray, step: int, z: np.ndarray) -> np.ndarray:
        """Returns x + scale_step · h (flow.euler_then_complete, flow.euler_sample)."""
        return x + self.coefficients["step_scale"][step] * h

    def _ddpm_update(self, x: np.ndarray, eps: np.ndarray, step: int, z: np.ndarray) -> np.ndarray:
        """Returns the reverse chain's next x from x and the predicted noise eps, as DQLAgent.sample computes it."""
        c = {name: values[step] for name, values in self.coefficients.items()}
        x0 = np.clip(c["x0_from_x"] * x - c["x0_from_eps"] * eps, -1.0, 1.0)
        x = c["mean_x0"] * x0 + c["mean_xt"] * x
        if step + 1 < self.steps:
            x = x + c["noise_std"] * z[step + 1]
        return x

    def network(self, obs: np.ndarray, x: np.ndarray, step: int) -> np.ndarray:
        """Returns the network's output [B, action_dim] at call `step` for observations [B, obs_dim] and points
        [B, action_dim]."""
        h = np.concatenate([obs, x], axis=1) @ self.input_kernel
        h += self.input_bias[step]
        for kernel, bias in self.layers:
            h = self.activation(h) @ kernel
            h += bias
        return h


def _layout(sizes: list[int], halves: list[tuple[int, ...]]) -> dict[str, list[tuple[int, tuple[int, ...]]]]:
    """Returns the shared-memory layout of a two-core policy: (byte offset, shape) of the control words, of the
    input [s, x] and of each hidden activation (`sizes`: the input's and each hidden layer's width), and of the
    helper's weights (`halves`: their shapes), each array on its own 64-byte lines."""
    offset, layout = 0, {}
    for name, shapes in (("control", [(16,)]), ("activations", [(n,) for n in sizes]), ("helper", halves)):
        layout[name] = []
        for shape in shapes:
            layout[name].append((offset, shape))
            size = int(np.prod(shape)) * (8 if name == "control" else 4)  # int64 control words, float32 arrays
            offset += -(-size // 64) * 64
    layout["bytes"] = offset
    return layout


def _views(buffer, layout: dict) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Returns (control int64 [16], activations, helper weights) as arrays on `buffer`."""
    (offset, shape), *_ = layout["control"]
    control = np.ndarray(shape, np.int64, buffer, offset)
    arrays = [[np.ndarray(shape, np.float32, buffer, o) for o, shape in layout[k]] for k in ("activations", "helper")]
    return control, *arrays


# control words: GO (a sequence number; the caller writes LAYER and STEP first), STOP, READY, DONE, each on its own
# 64-byte line where the other process polls it
GO, LAYER, STEP, STOP, READY, DONE = 0, 1, 2, 3, 8, 9


def _half_layer(inputs: np.ndarray, kernel: np.ndarray, bias: np.ndarray, out: np.ndarray, activation) -> None:
    """Writes activation(inputs @ kernel + bias) into out (1-D views throughout)."""
    np.dot(inputs, kernel, out=out)
    out += bias
    activation(out)


class _TwoCores:
    """The batch-1 network of a cores=2 Policy: the caller computes the first half of every hidden layer's columns,
    a helper process the second half, meeting after each layer through shared memory."""

    def __init__(self, policy: Policy):
        if platform.machine().lower() not in ("x86_64", "amd64"):
            raise ValueError(
                f"cores=2 relies on x86-64's store ordering between processes; this machine is {platform.machine()}:"
                " load the policy with cores=1"
            )
        kernels = [policy.input_kernel] + [k for k, _ in policy.layers[:-1]]  # every layer with an activation
        self.halves = [k.shape[1] // 2 for k in kernels]
        helper = []
        for i, (kernel, half) in enumerate(zip(kernels, self.halves, strict=True)):
            helper += [kernel[:, half:], (policy.input_bias if i == 0 else policy.layers[i - 1][1])[..., half:]]
        sizes = [kernels[0].shape[0]] + [k.shape[1] for k in kernels]
        layout = _layout(sizes, [a.shape for a in helper])
        self.memory = shared_memory.SharedMemory(create=True, size=layout["bytes"])
        self.control, self.activations, helper_views = _views(self.memory.buf, layout)
        self.control[:] = 0
        for view, array in zip(helper_views, helper, strict=True):
            view[...] = array
        self.kernels = [np.ascontiguousarray(k[:, :h]) for k, h in zip(kernels, self.halves, strict=True)]
        self.biases = [policy.input_bias[:, : self.halves[0]]]
        self.biases += [b[:h] for (_, b), h in zip(policy.layers[:-1], self.halves[1:], strict=True)]
        self.last_kernel, self.last_bias = policy.layers[-1]
        self.activation = policy.activation
        self.sequence = 0
        script = [sys.executable, "-P", os.path.abspath(__file__), "--serve", self.memory.name, json.dumps(layout)]
        script.append(policy.header["activation"])
        self.process = subprocess.Popen(script, stdin=subprocess.DEVNULL)
        self._finalizer = weakref.finalize(self, _stop, self.process, self.memory)
        deadline = time.monotonic() + 60.0
        while self.control[READY] != 1:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the cores=2 helper process did not start; load the policy with cores=1")
            time.sleep(0.001)

    def network(self, obs: np.ndarray, x: np.ndarray, step: int) -> np.ndarray:
        """Returns the network's output [1, action_dim] at call `step` for one observation [1, obs_dim] and one
        point x."""
        inputs = self.activations[0]
        inputs[: obs.shape[1]] = obs[0]
        inputs[obs.shape[1] :] = x[0]
        for layer, (kernel, bias, half) in enumerate(zip(self.kernels, self.biases, self.halves, strict=True)):
            self.sequence += 1
            self.control[LAYER], self.control[STEP] = layer, step
            self.control[GO] = self.sequence
            _half_layer(
                self.activations[layer],
                kernel,
                bias[step] if layer == 0 else bias,
                self.activations[layer + 1][:half],
                self.activation,
            )
            spins = 0
            while self.control[DONE] != self.sequence:
                spins += 1
                if spins % 65536 == 0 and self.process.poll() is not None:
                    raise RuntimeError("the cores=2 helper process stopped; load the policy again (or with cores=1)")
        h = self.activations[-1] @ self.last_kernel + self.last_bias
        return h[None]

    def close(self) -> None:
        """Stops the helper and frees the shared memory."""
        self.control = self.activations = None  # views of the memory: it closes only once they are gone
        self._finalizer()


def _stop(process: subprocess.Popen, memory: shared_memory.SharedMemory) -> None:
    """Tells the helper to stop, waits for it (killing it after 5 s) and frees the shared memory."""
    np.ndarray((16,), np.int64, memory.buf)[STOP] = 1
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    try:
        memory.close()
    except BufferError:  # views still alive (the interpreter is exiting): the mapping goes with the process
        pass
    memory.unlink()


def _serve(name: str, layout: dict, activation_name: str) -> None:
    """The helper's loop: spin until GO changes, compute the second half of layer LAYER's columns, write them and
    DONE; return on STOP or when the caller's process is gone."""
    memory = shared_memory.SharedMemory(name=name)
    resource_tracker.unregister(memory._name, "shared_memory")  # the caller owns it and unlinks it
    control, activations, helper = _views(memory.buf, layout)
    kernels = [np.array(k) for k in helper[0::2]]  # private copies, in this core's cache once used
    biases = [np.array(b) for b in helper[1::2]]
    halves = [a.shape[0] - k.shape[1] for a, k in zip(activations[1:], kernels, strict=True)]
    activation = ACTIVATIONS[activation_name]
    parent, sequence, spins = os.getppid(), 0, 0
    control[READY] = 1
    while True:
        sequence += 1
        while control[GO] != sequence:
            spins += 1
            if control[STOP] or (spins % 65536 == 0 and os.getppid() != parent):
                return
        layer, step = int(control[LAYER]), int(control[STEP])
        bias = biases[layer][step] if layer == 0 else biases[layer]
        _half_layer(activations[layer], kernels[layer], bias, activations[layer + 1][halves[layer] :], activation)
        control[DONE] = sequence


def load(path: str | os.PathLike, seed: int = 0, cores: int = 1) -> Policy:
    """Returns the policy saved at `path` by `sscp export --format numpy`; `seed` seeds its noise generator, cores=2
    splits batch-1 calls over two cores (a helper process spins on the second one while the policy is loaded).
    Raises ValueError for files that are not sscp numpy policies."""
    with open(path, "rb") as f:
        return Policy(*unpack(f.read(), os.fspath(path)), seed=seed, cores=cores)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    _serve(sys.argv[2], json.loads(sys.argv[3]), sys.argv[4])
