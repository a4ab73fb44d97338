"""Run a policy that `sscp export` wrote, with jax and numpy only (no flax, optax, envs or training code):

    from sscp import runtime
    policy = runtime.load("policy.sscp")
    action = policy(observation)            # [obs_dim] -> [action_dim], or a batch [B, obs_dim] -> [B, action_dim]
    action = policy(observation, goal)      # goal-conditioned policies

This file imports nothing else from sscp, so it can be copied next to a controller on its own (jax reads the file
with the small `flatbuffers` package, an sscp dependency).

File layout: the 12 bytes `SSCPPOLICY1\\n`, a 4-byte little-endian header length, a UTF-8 JSON header (observation,
goal and action sizes, how noise is drawn, where the policy came from), then a `jax.export` serialisation of the
policy function with its parameters baked in as constants. Its batch size is symbolic: any batch runs.
"""

import json
import os
import struct

import jax
import numpy as np

MAGIC = b"SSCPPOLICY1\n"


def pack(header: dict, exported_bytes: bytes) -> bytes:
    """Returns the file bytes holding `header` (a JSON-able dict) and a serialised jax.export.Exported."""
    head = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + bytes(exported_bytes)


def unpack(data: bytes, source: str = "policy") -> tuple[dict, bytes]:
    """Returns (header, serialised Exported) of a policy file's bytes, or a ValueError naming `source`."""
    if data.startswith(b"PK"):
        raise ValueError(
            f"{source}: an archive, not a jax policy; `sscp export --format numpy` files load with sscp.runtime_numpy"
        )
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError(f"{source}: not an sscp policy file (missing the {MAGIC[:-1].decode()} header)")
    (size,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start : start + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source}: damaged sscp policy header ({e})") from None
    return header, data[start + size :]


class Policy:
    """A loaded policy: call it with one observation [obs_dim] or a batch [B, obs_dim] (and the goal(s) for
    goal-conditioned policies); returns float32 actions in [-1, 1] as a numpy array of the matching shape.

    Policies whose noise is an input draw a fresh key per call from their own key (`seed` at load), or use `key=` (a
    jax PRNG key) when given; policies exported with a fixed seed ignore keys and always return the same action for
    the same observation."""

    def __init__(self, header: dict, exported, seed: int = 0):
        self.header = header
        self.exported = exported
        self.obs_dim: int = header["obs_dim"]
        self.goal_dim: int | None = header.get("goal_dim")
        self.action_dim: int = header["action_dim"]
        self.noise_input: bool = header["noise"] == "input"
        self._key = jax.random.PRNGKey(seed)
        self._call = jax.jit(exported.call)  # compiled once per batch size; an un-jitted call re-dispatches each time
        self._call_fresh_key = jax.jit(self._fresh_key)  # the key split inside the call: an eager split cost 0.18 ms

    def __call__(self, observation, goal=None, key=None) -> np.ndarray:
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"observation has shape {np.shape(observation)}; expected ({self.obs_dim},) or (B, {self.obs_dim})"
            )
        args = [obs]
        if self.goal_dim is not None:
            if goal is None:
                raise ValueError("this policy is goal-conditioned: call policy(observation, goal)")
            goals = np.asarray(goal, np.float32)
            goals = np.broadcast_to(goals[None] if goals.ndim == 1 else goals, (len(obs), self.goal_dim))
            args.append(goals)
        elif goal is not None:
            raise ValueError("this policy is not goal-conditioned: call policy(observation)")
        if self.noise_input and key is None:
            actions, self._key = self._call_fresh_key(self._key, *args)
        else:
            actions = self._call(*args, *([key] if self.noise_input else []))
        actions = np.asarray(actions)
        return actions[0] if single else actions

    def _fresh_key(self, own_key, *args):
        """Returns (actions for args with the next key split from own_key, own_key's successor)."""
        own_key, key = jax.random.split(own_key)
        return self.exported.call(*args, key), own_key


def load(path: str | os.PathLike, seed: int = 0) -> Policy:
    """Returns the policy saved at `path` by `sscp export`; `seed` seeds the noise of policies that take it as an
    input. Raises ValueError for files that are not sscp policies."""
    with open(path, "rb") as f:
        header, body = unpack(f.read(), os.fspath(path))
    try:
        exported = jax.export.deserialize(bytearray(body))
    except Exception as e:  # flatbuffers raises assorted errors on damaged bytes
        raise ValueError(f"{path}: damaged sscp policy body ({type(e).__name__}: {e})") from None
    return Policy(header, exported, seed)
