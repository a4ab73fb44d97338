"""robosuite's Lift, PickPlaceCan and NutAssemblySquare with a Panda arm, as Robomimic evaluates them, behind
Gymnasium's API (ids `sscp/Lift-v0`, `sscp/PickPlaceCan-v0`, `sscp/NutAssemblySquare-v0`; extra `robomimic`).

Robomimic's settings: delta end-effector pose control through robosuite's OSC_POSE controller (the BASIC composite
controller of the Panda: 3 position and 3 axis-angle deltas in the robot base frame, then the gripper, all in
[-1, 1]), 20 Hz control, object state but no camera observations, sparse reward (1 at success). The observation is
Robomimic's low-dim keys (OBS_KEYS) concatenated as float32, the same vector the HDF5 reader builds from a file. An
episode ends (terminated) at the first success, as Robomimic's rollouts stop there, and is truncated after `horizon`
steps (400, Robomimic's rollout horizon for all three tasks).

Every random draw of a reset (object placement, the arm's initial joint noise) comes from robosuite's own generator
(robosuite 1.5.2) or NumPy's global one (1.5.1, which the `robomimic` extra installs: 1.5.2 pins a mink that needs
NumPy < 2), which `reset(seed=...)` reseeds (the global one only for the reset, then put back), so a seed fixes the
episode's start. The model is built once, with its own draws (Lift's cube size) from seed 0, so it is the same in
every process; Robomimic's hard resets rebuild it, and draw the cube's size anew, at every episode. robosuite is
imported here only, when an env is made.
"""

import inspect

import gymnasium
import numpy as np
import robosuite
from robosuite.controllers import load_composite_controller_config
from robosuite.environments.manipulation.lift import Lift

from sscp.envs import global_seed
from sscp.errors import ConfigError

TASKS = ("Lift", "PickPlaceCan", "NutAssemblySquare")
HORIZON = 400
"""Robomimic's rollout horizon for Lift, Can and Square."""
OBS_KEYS = ("object", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")
"""Robomimic's low-dim observation keys, in the order of the reader's `sscp.data.robomimic.DEFAULT_OBS_KEYS` (the
data layer sits above this one, so the tuple is repeated here, and a test checks that the two agree)."""
ROBOMIMIC_ENV_TYPE = 1
"""Robomimic's code for robosuite environments in a file's env_args (EnvType.ROBOSUITE_TYPE)."""
OWN_GENERATOR = "seed" in inspect.signature(Lift.__init__).parameters
"""Whether this robosuite draws from a generator of its own (1.5.2), seeded by its `seed` argument, rather than from
NumPy's global one (1.5.1)."""
_POSES = ("pos", "quat", "to_robot0_eef_pos", "to_robot0_eef_quat")
OBJECT_KEYS = {
    "Lift": ("cube_pos", "cube_quat", "gripper_to_cube_pos"),
    "PickPlaceCan": tuple(f"Can_{pose}" for pose in _POSES),
    "NutAssemblySquare": tuple(f"SquareNut_{pose}" for pose in _POSES),
}
"""robosuite's observables that make Robomimic's `object` key, in the order of Robomimic's published datasets (made
with robosuite 1.2 to 1.4); robosuite 1.5's own object-state puts the poses relative to the gripper first."""


def _panda_controller() -> dict:
    """Returns robosuite's BASIC composite controller config for the Panda with its one arm's part only (the config
    also lists a second arm, torso, head, base and legs, which robosuite drops with a warning for each)."""
    config = load_composite_controller_config(controller="BASIC", robot="Panda")
    return {**config, "body_parts": {"right": config["body_parts"]["right"]}}


def env_kwargs(task: str) -> dict:
    """Returns robosuite.make's keyword arguments for `task` (JSON-able), which a file's env_args records as
    Robomimic does, so that Robomimic's own tools rebuild the same environment."""
    return {
        "robots": ["Panda"],
        "controller_configs": _panda_controller(),
        "control_freq": 20,
        "has_renderer": False,
        "has_offscreen_renderer": False,
        "use_object_obs": True,
        "use_camera_obs": False,
        "reward_shaping": False,
        "ignore_done": True,  # the wrapper ends episodes (success, horizon)
        "hard_reset": False,  # rebuilding the model at each reset costs 0.2 s
        # the model's own draws (Lift's cube size), made once when the env is built
        **({"seed": 0} if OWN_GENERATOR else {}),
    }


def env_args(task: str) -> dict:
    """Returns the `env_args` that Robomimic writes into a dataset's `data` attributes for `task`."""
    return {
        "env_name": task,
        "env_version": robosuite.__version__,
        "type": ROBOMIMIC_ENV_TYPE,
        "env_kwargs": env_kwargs(task),
    }


class RobosuiteEnv(gymnasium.Env):
    """One robosuite task as a Gymnasium env; `robosuite_env` is robosuite's own env, for scripted demonstrators."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str, horizon: int = HORIZON, render_mode: str | None = None):
        if task not in TASKS:
            raise ConfigError(f"RobosuiteEnv: unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if horizon < 1:
            raise ConfigError(f"RobosuiteEnv({task}): horizon is {horizon}; give a positive number of steps")
        self.task, self.horizon, self.render_mode = task, horizon, render_mode
        with global_seed(0):  # 1.5.1 draws the model's sizes from the global generator
            self.robosuite_env = robosuite.make(task, horizon=horizon, **env_kwargs(task))
        self._raw: dict[str, np.ndarray] = {}
        self._steps = 0
        self._renderer = None
        size = sum(self._reset_robosuite(0)[key].size for key in OBS_KEYS)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (7,), np.float32)

    def _reset_robosuite(self, seed: int) -> dict[str, np.ndarray]:
        """Resets robosuite's env with its generator reseeded (every sampler holds that generator, so its state is
        replaced in place) and returns the observation keys (`observation_parts`)."""
        if OWN_GENERATOR:
            self.robosuite_env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
            self.robosuite_env.reset()
        else:
            with global_seed(seed):
                self.robosuite_env.reset()
        # robosuite's reset computes the object-to-gripper poses before the gripper pose they need (they come out
        # zero); a second pass reads them from the filled cache, as every step does.
        self._raw = self.robosuite_env._get_observations(force_update=True)
        self._steps = 0
        return self.observation_parts()

    def observation_parts(self) -> dict[str, np.ndarray]:
        """Returns the current value of each of Robomimic's low-dim keys (OBS_KEYS) as float64 arrays."""
        raw = {**self._raw, "object": np.concatenate([self._raw[key] for key in OBJECT_KEYS[self.task]])}
        return {key: np.asarray(raw[key], np.float64) for key in OBS_KEYS}

    def _observation(self) -> np.ndarray:
        return np.concatenate(list(self.observation_parts().values())).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Returns the first observation and info (success 0) of an episode fixed by `seed` (without one, by the
        env's own generator, itself fixed by the last seed given)."""
        super().reset(seed=seed)
        self._reset_robosuite(int(self.np_random.integers(2**63)))
        return self._observation(), {"success": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Returns (observation, reward, terminated at success, truncated at the horizon, info with `success`)."""
        self._raw, reward, _, _ = self.robosuite_env.step(np.asarray(action, np.float64))
        self._steps += 1
        success = float(self.robosuite_env._check_success())
        return self._observation(), float(reward), success > 0, self._steps >= self.horizon, {"success": success}

    def eef_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Returns the gripper's grip site position [3] and rotation matrix [3, 3] in the world frame (the Panda's base
        frame is the world's, turned by nothing, so these are also the controller's frame)."""
        env = self.robosuite_env
        site = env.robots[0].eef_site_id["right"]
        return env.sim.data.site_xpos[site].copy(), env.sim.data.site_xmat[site].reshape(3, 3).copy()

    def body_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Returns a body's position [3] and rotation matrix [3, 3] in the world frame (e.g. `cube_main`)."""
        sim = self.robosuite_env.sim
        index = sim.model.body_name2id(body)
        return sim.data.body_xpos[index].copy(), sim.data.body_xmat[index].reshape(3, 3).copy()

    def render(self) -> np.ndarray:
        """Returns an RGB frame [256, 256, 3] of the agent-view camera (needs MUJOCO_GL=egl or osmesa headless)."""
        import mujoco

        sim = self.robosuite_env.sim
        if self._renderer is None:
            self._renderer = mujoco.Renderer(sim.model._model, 256, 256)
        self._renderer.update_scene(sim.data._data, camera="agentview")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.robosuite_env.close()
