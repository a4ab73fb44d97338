"""Pieces the goal-conditioned agents share: the goal-sampling fields and per-dataset presets of their configs, the
IVL value loss of GCIVL/HIQL/GC-SSCP, advantage weights and the unit-std Gaussian log-likelihood of OGBench's
actors."""

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp

from sscp.agents.base import AgentConfig
from sscp.data.goals import GoalSampling
from sscp.errors import ConfigError

MAZES = ("medium", "large", "giant", "teleport")


def ogbench_presets(random_goals_on_stitch: bool) -> dict[str, dict]:
    """Returns OGBench's per-dataset settings of its pointmaze commands (impls/hyperparameters.sh): γ 0.995 on
    giant mazes, and actor random-goal fraction 0.5 on stitch datasets for the agents that use it (GCIVL, HIQL)."""
    presets = {}
    for maze in MAZES:
        for kind in ("navigate", "stitch"):
            preset = {"discount": 0.995} if maze == "giant" else {}
            if kind == "stitch" and random_goals_on_stitch:
                preset["actor_p_randomgoal"] = 0.5
            presets[f"pointmaze-{maze}-{kind}"] = preset
    return presets


@dataclass(frozen=True)
class GoalConfig(AgentConfig):
    """Goal-sampling fields shared by the goal-conditioned agents (OGBench's dataset settings); an agent ignores the
    ones it does not use (gcbc has no value goals; only hiql and gc_sscp use subgoal_steps)."""

    preset: str = "auto"
    """Per-dataset settings: "auto" picks them from the dataset name, "none" keeps the defaults, or a preset name
    (e.g. pointmaze-large-navigate; an unknown name is rejected with the list). Options given on the command line
    override the preset."""
    discount: float = 0.99
    """Discount γ of the value, and of the geometric offsets of value goals."""
    subgoal_steps: int = 25
    """k: steps from a state to its subgoal (HIQL's default; the presets change it per maze)."""
    value_p_curgoal: float = 0.2
    """Probability that a value goal is the current state (reward 0, mask 0)."""
    value_p_trajgoal: float = 0.5
    """Probability that a value goal is a later state of the same trajectory, at a geometric offset."""
    value_p_randomgoal: float = 0.3
    """Probability that a value goal is a random dataset state."""
    value_geom_sample: bool = True
    """Trajectory value goals at geometric offsets Geometric(1 − γ) (True), or uniform among later states."""
    actor_p_randomgoal: float = 0.0
    """Probability that an actor goal is a random state instead of a uniform later state of the trajectory (the
    presets set 0.5 on stitch datasets)."""

    PRESETS: ClassVar[dict[str, dict]] = {}
    """Preset name → field values; each agent sets its own."""

    def __post_init__(self):
        if self.preset not in ("auto", "none", *self.PRESETS):
            raise ConfigError(
                f"unknown --agent.preset {self.preset!r}; valid: auto, none, " + ", ".join(sorted(self.PRESETS))
            )
        self.sampling()  # validates the sampling fields

    def sampling(self) -> GoalSampling:
        """Returns the goal sampling these fields describe."""
        return GoalSampling(
            discount=self.discount,
            value_p_curgoal=self.value_p_curgoal,
            value_p_trajgoal=self.value_p_trajgoal,
            value_p_randomgoal=self.value_p_randomgoal,
            value_geom_sample=self.value_geom_sample,
            actor_p_randomgoal=self.actor_p_randomgoal,
            subgoal_steps=self.subgoal_steps,
        )

    def with_preset(self, dataset: str, explicit: set[str] | frozenset[str] = frozenset()):
        """Returns the config with its preset applied to the fields not in `explicit` (those given on the command
        line); "auto" becomes the name of the preset that matches `dataset` (its file name without the version), or
        "none". Applying it again changes nothing."""
        name = self.preset
        if name == "auto":
            base = re.sub(r"-v\d+$", "", dataset.rsplit("/", 1)[-1].removesuffix(".npz"))
            name = base if base in self.PRESETS else "none"
        values = {k: v for k, v in self.PRESETS.get(name, {}).items() if k not in explicit}
        return dataclasses.replace(self, preset=name, **values)


def ivl_value_loss(
    value: Callable[[jax.Array, jax.Array], jax.Array],
    target_value: Callable[[jax.Array, jax.Array], jax.Array],
    batch: dict,
    discount: float,
    expectile: float,
) -> tuple[jax.Array, dict]:
    """Returns OGBench's IVL value loss of an ensemble of 2 V(s, g), summed over the members, and diagnostics.

    Each member V_j regresses onto r + γ·mask·V̄_j(s', g) with expectile weights chosen by the sign of the target
    networks' advantage r + γ·mask·min_j V̄_j(s', g) − mean_j V̄_j(s, g) (the weight uses the target networks, the
    residual the online ones, like double DQN). `value` and `target_value` return [2, B]; the targets get no gradient.
    """
    obs, goals = batch["observations"], batch["value_goals"]
    next_v_t = jax.lax.stop_gradient(target_value(batch["next_observations"], goals))
    v_t = jax.lax.stop_gradient(target_value(obs, goals)).mean(axis=0)
    adv = batch["rewards"] + discount * batch["masks"] * next_v_t.min(axis=0) - v_t
    q = batch["rewards"][None] + discount * batch["masks"][None] * next_v_t
    v = value(obs, goals)
    weight = jnp.where(adv >= 0, expectile, 1.0 - expectile)
    loss = (weight[None] * (q - v) ** 2).mean(axis=1).sum()
    return loss, {"value_loss": loss, "v_mean": v.mean(), "v_max": v.max(), "v_min": v.min()}


def awr_weights(adv: jax.Array, temperature: float, max_weight: float = 100.0) -> jax.Array:
    """Returns min(exp(temperature · adv), max_weight), held fixed: advantage-weighted regression's weights."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(temperature * adv), max_weight))


def unit_gaussian_log_prob(mean: jax.Array, x: jax.Array) -> jax.Array:
    """Returns log N(x; mean, I) summed over the last axis: OGBench's actors with constant std 1 (const_std)."""
    return -0.5 * jnp.sum((x - mean) ** 2 + jnp.log(2.0 * jnp.pi), axis=-1)
