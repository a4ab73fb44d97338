"""Simulators of the imitation benchmarks as Gymnasium environments, installed as optional extras:

- `sscp/Lift-v0`, `sscp/PickPlaceCan-v0`, `sscp/NutAssemblySquare-v0`: robosuite's tasks with a Panda arm as
  Robomimic evaluates them (low-dimensional observation keys, success signal): `pip install "sscp[robomimic]"`,
  `sscp.sims.robosuite_env`.
- `sscp/PushT-v0`: gym-pusht's Push-T with state observations, an episode a success once 95 % of the target area is
  covered (as Diffusion Policy counts it): `pip install "sscp[pusht]"`, `sscp.sims.pusht_env`.

Importing this package registers the ids only; the simulator is imported when an env is made, and a missing extra
stops there with a one-line error that names the extra (`require`).
"""

import importlib.util

import gymnasium

from sscp.errors import ConfigError

ROBOSUITE_TASKS = {"Lift": "sscp/Lift-v0", "PickPlaceCan": "sscp/PickPlaceCan-v0",
                   "NutAssemblySquare": "sscp/NutAssemblySquare-v0"}  # fmt: skip
"""robosuite's environment name -> the id registered here."""
PUSHT_ID = "sscp/PushT-v0"

EXTRAS = {"robosuite": "robomimic", "gym_pusht": "pusht", "zarr": "pusht"}
"""The module each simulator (or its demonstrations' store) needs -> the extra of sscp that installs it."""


def available(module: str) -> bool:
    """Returns whether `module` (a key of EXTRAS) can be imported here."""
    return importlib.util.find_spec(module) is not None


def require(module: str, what: str) -> None:
    """Raises ConfigError naming the extra to install when `module` (a key of EXTRAS) is missing; `what` is the env
    or dataset that needs it."""
    if not available(module):
        extra = EXTRAS[module]
        raise ConfigError(f"{what} needs {module}, which is not installed: pip install 'sscp[{extra}]'")


def require_for(env_id: str, what: str | None = None) -> None:
    """Raises ConfigError naming the extra to install when `env_id` is one of this package's ids and its simulator
    is missing (`what`, default the id, is what needs it); does nothing for other ids."""
    if env_id in ROBOSUITE_TASKS.values():
        require("robosuite", what or env_id)
    elif env_id == PUSHT_ID:
        require("gym_pusht", what or env_id)


def register() -> None:
    """Registers the ids with Gymnasium (once; the env classes are imported only when an env is made)."""
    for task, env_id in ROBOSUITE_TASKS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point="sscp.sims.robosuite_env:RobosuiteEnv", kwargs={"task": task})
    if PUSHT_ID not in gymnasium.registry:
        gymnasium.register(PUSHT_ID, entry_point="sscp.sims.pusht_env:PushTEnv")


register()
