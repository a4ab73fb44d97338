"""Push-T (gym-pusht) with state observations as sscp evaluates it: actions in [-1, 1], success once 95 % of the goal
area is covered, 300 steps at most, as Diffusion Policy counts it. Needs the `pusht` extra (`pip install
"sscp[pusht]"`); gym_pusht is imported here only.

The observation is gym-pusht's state (agent x, y, block x, y, block angle in [0, 2π)), the layout of Diffusion
Policy's `data/state`. The action is the target position of the agent's PD controller: the policy's [-1, 1]² maps
linearly onto [action_low, action_high] (pixels), a = low + (â + 1) / 2 · (high − low). The registry passes the
bounds that `sscp.data.zarr_replay` rescaled a store's actions from, so a policy trained on those acts in the units
of its data; the default is the whole 512 × 512 arena. With obs_low and obs_high (the bounds the reader rescaled the
store's observations from) observations are rescaled the same way, o' = 2 (o − low) / (high − low) − 1, so the
policy sees what it was trained on; without them they are as gym-pusht gives them.
"""

import os

import gymnasium
import numpy as np

from sscp.errors import ConfigError

SUCCESS_COVERAGE = 0.95
"""The share of the goal area the block must cover for success (Diffusion Policy's threshold)."""
MAX_EPISODE_STEPS = 300
"""Diffusion Policy's evaluation length for Push-T."""
ARENA = 512.0
"""The arena's side in pixels: positions lie in [0, 512]."""


def pixels(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Returns the target position in pixels of an action in [-1, 1]² (clipped first), mapped onto [low, high]."""
    unit = (np.clip(np.asarray(action, np.float64), -1.0, 1.0) + 1.0) / 2.0
    return low + unit * (high - low)


def _bounds(action_low, action_high) -> tuple[np.ndarray, np.ndarray]:
    """Returns the action bounds as float64 arrays of 2, or a ConfigError saying which is malformed."""
    low, high = np.asarray(action_low, np.float64), np.asarray(action_high, np.float64)
    if low.shape != (2,) or high.shape != (2,) or not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError(f"sscp/PushT-v0: action_low {low.tolist()} and action_high {high.tolist()} must be 2 numbers")
    if (high <= low).any():
        raise ConfigError(f"sscp/PushT-v0: action_high {high.tolist()} must exceed action_low {low.tolist()}")
    return low, high


def _obs_bounds(obs_low, obs_high) -> tuple[np.ndarray, np.ndarray] | None:
    """Returns the observation bounds as float64 arrays of 5 (None when neither is given), or a ConfigError."""
    if obs_low is None and obs_high is None:
        return None
    low, high = np.asarray(obs_low, np.float64), np.asarray(obs_high, np.float64)
    if low.shape != (5,) or high.shape != (5,) or not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ConfigError(f"sscp/PushT-v0: obs_low {obs_low} and obs_high {obs_high} must be 5 numbers each")
    return low, high


class PushTEnv(gymnasium.Env):
    """gym-pusht's `PushT-v0` (obs_type "state") with actions in [-1, 1]², `info["success"]` and `info["coverage"]`;
    terminated on success, truncated after max_episode_steps. Reset is deterministic by seed."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        action_low=(0.0, 0.0),
        action_high=(ARENA, ARENA),
        max_episode_steps: int = MAX_EPISODE_STEPS,
        render_mode=None,
        obs_low=None,
        obs_high=None,
    ):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame prints a banner on import otherwise
        from gym_pusht.envs import PushTEnv as Simulator

        self.low, self.high = _bounds(action_low, action_high)
        self.obs_bounds = _obs_bounds(obs_low, obs_high)
        self.max_episode_steps = int(max_episode_steps)
        self.render_mode = render_mode
        self.sim = Simulator(obs_type="state", render_mode="rgb_array")
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
        raw_high = np.array([ARENA] * 4 + [2 * np.pi], np.float32)
        low, high = (np.zeros(5, np.float32), raw_high) if self.obs_bounds is None else (-np.inf, np.inf)
        self.observation_space = gymnasium.spaces.Box(low, high, (5,), dtype=np.float32)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Returns (observation, info) of a new episode; the same seed gives the same start. gym-pusht's option
        `reset_to_state` (5 numbers) starts from a given state."""
        super().reset(seed=seed)
        if seed is None:  # the simulator's own generator follows this env's, so unseeded resets stay reproducible
            seed = int(self.np_random.integers(2**31))
        obs, _ = self.sim.reset(seed=seed, options=options)
        self.steps = 0
        coverage = float(self.sim._get_coverage())
        return self._observe(obs), {"success": float(coverage >= SUCCESS_COVERAGE), "coverage": coverage}

    def _observe(self, state: np.ndarray) -> np.ndarray:
        """Returns the observation of a simulator state: rescaled with obs_low and obs_high when they were given."""
        if self.obs_bounds is None:
            return np.asarray(state, np.float32)
        low, high = self.obs_bounds
        span = np.where(high > low, high - low, 1.0)
        return (2.0 * (np.asarray(state, np.float64) - low) / span - 1.0).astype(np.float32)

    def step(self, action):
        """Returns (observation, reward, terminated, truncated, info): the reward is coverage / 0.95 clipped to
        [0, 1] (Diffusion Policy's), terminated once the coverage reaches 0.95."""
        obs, _, _, _, sim_info = self.sim.step(pixels(action, self.low, self.high))
        self.steps += 1
        coverage = float(sim_info["coverage"])
        success = coverage >= SUCCESS_COVERAGE
        reward = float(np.clip(coverage / SUCCESS_COVERAGE, 0.0, 1.0))
        info = {"success": float(success), "coverage": coverage}
        return self._observe(obs), reward, success, self.steps >= self.max_episode_steps, info

    def render(self):
        """Returns an RGB frame of the arena and the goal when render_mode is "rgb_array", else None."""
        if self.render_mode != "rgb_array":
            return None
        return self.sim.render()

    def close(self):
        self.sim.close()
