"""The contract every agent keeps, so the training loop, evaluation and export treat them alike.

An agent is an immutable pytree (flax.struct.PyTreeNode) with

    create(key, example_batch, config) -> agent          (classmethod)
    update(batch) -> (agent, info: dict of scalars)       one gradient step
    sample_actions(observations[, goals], key) -> actions in [-1, 1]

and, from `Agent` below, defaults for what only some agents have: the actions taken while collecting online data
(explore_actions), goal conditioning, a sampler whose number of network calls can change after training
(acting_steps_field), and the one network a numpy runtime can run (numpy_export). Its config is a frozen dataclass
derived from `AgentConfig`.
"""

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import jax

from sscp.errors import ConfigError
from sscp.options import parse_agent_overrides


@dataclass(frozen=True)
class AgentConfig:
    """The fields every agent's config has (each agent sets its own defaults and documents them)."""

    lr: float = 3e-4
    """Adam learning rate."""
    batch_size: int = 256
    """Transitions per gradient step."""

    ONLINE_OPTIONS: ClassVar[tuple[str, ...]] = ()
    """The fields `--online-agent FIELD=VALUE` may change when the online phase starts: those that change neither a
    parameter's shape nor the optimiser (an agent without such fields takes none)."""

    def for_online(self, items: tuple[str, ...] | list[str], agent: str) -> "AgentConfig":
        """Returns the config with `--online-agent` items (FIELD=VALUE, as `--agent.FIELD VALUE` takes them) applied,
        or a ConfigError naming the item and the fields this agent allows."""
        args = []
        for item in items:
            name, eq, value = item.partition("=")
            if not eq or name.replace("-", "_") not in self.ONLINE_OPTIONS:
                allowed = ", ".join(self.ONLINE_OPTIONS) or "none"
                raise ConfigError(f"--online-agent {item!r}: give FIELD=VALUE with a field of agent {agent!r} that may "
                                  f"change at the online phase ({allowed})")  # fmt: skip
            args += ["--" + name.replace("_", "-"), value]
        return dataclasses.replace(self, **parse_agent_overrides(type(self), args, agent))

    def chunking(self) -> tuple[int, int, int]:
        """Returns (H, n, m): actions predicted per call, actions executed of them, observations seen; (1, 1, 1)
        for agents without action chunks or observation histories (docs/behaviour_cloning.md)."""
        return 1, 1, 1


def preset_key(dataset: str) -> str:
    """Returns the name a dataset's preset is filed under: the file or dataset name without folder, extension and
    version, with D4RL's underscores as hyphens (`/x/hopper_medium-v2.hdf5` and `hopper-medium-v5` give
    `hopper-medium`)."""
    name = re.sub(r"\.(npz|hdf5|h5)$", "", dataset.rstrip("/").rsplit("/", 1)[-1])
    return re.sub(r"-v\d+$", "", name).replace("_", "-")


def domain_key(dataset: str) -> str:
    """Returns an OGBench dataset's domain, the part of its name before the dataset kind (`cube-single` for
    cube-single-play-singletask-task2-v0, `antmaze-large` for antmaze-large-navigate-v0), or its preset_key."""
    key = preset_key(dataset)
    match = re.match(r"^(.+?)-(play|noisy|navigate|stitch|explore)(-|$)", key)
    return match.group(1) if match else key


@dataclass(frozen=True)
class PresetConfig(AgentConfig):
    """An agent config with per-dataset settings (`--agent.preset`), filed by dataset name (preset_key) or by
    OGBench domain (domain_key)."""

    preset: str = "none"
    """Per-dataset settings: "none" keeps the defaults, "auto" looks the datasets' settings up by name, or a preset
    name. Options given on the command line win over the preset; the values used are printed and saved."""

    PRESETS: ClassVar[dict[str, dict]] = {}
    """Preset name -> field values; each agent sets its own."""
    PRESET_SOURCES: ClassVar[dict[str, str]] = {}
    """Preset name -> where its values come from, printed after them (optional)."""
    UNSETTLED: ClassVar[dict[str, str]] = {}
    """Domain -> why it has no preset although it was swept (e.g. no setting succeeded), printed when "auto" finds
    none for it."""
    FROM_SCRATCH_PRESETS: ClassVar[dict[str, str]] = {}
    """Preset name -> what to do instead, for presets tuned for online runs from scratch: a run that would use one in
    an offline phase prints a warning with it."""

    def check_preset(self) -> None:
        """Raises a ConfigError for a preset name that is not none, auto or one of PRESETS."""
        if self.preset not in ("none", "auto", *self.PRESETS):
            raise ConfigError(
                f"unknown --agent.preset {self.preset!r}; valid: none, auto, " + ", ".join(sorted(self.PRESETS))
            )

    def preset_for(self, dataset: str) -> str:
        """Returns the preset "auto" picks for a dataset: the one filed under its name, else under its domain, else
        "none"."""
        for key in (preset_key(dataset), domain_key(dataset)):
            if key in self.PRESETS:
                return key
        return "none"

    def with_preset(self, datasets: list[str], explicit: set[str] | frozenset[str] = frozenset()):
        """Returns the config with its preset applied to the fields not in `explicit` (those given on the command
        line); "auto" becomes preset_for(datasets); datasets trained in one process share one config, so "auto" on
        datasets with different presets is refused. Applying it again changes nothing."""
        name = self.preset
        if name == "auto":
            found = {self.preset_for(d) for d in datasets}
            if len(found) > 1:
                raise ConfigError(
                    f"--agent.preset auto: the datasets have different presets ({', '.join(sorted(found))}), but runs "
                    "of one process share one config; train them in separate processes"
                )
            name = found.pop()
        values = {k: v for k, v in self.PRESETS.get(name, {}).items() if k not in explicit}
        return dataclasses.replace(self, preset=name, **values)

    def no_preset_note(self, datasets: list[str]) -> str:
        """Returns the line a run with "auto" prints when its datasets have no preset: the defaults, and why for a
        domain that a sweep could not settle."""
        domains = dict.fromkeys(domain_key(d) for d in datasets)  # each once, in order
        reasons = "".join(f"; {domain}: {self.UNSETTLED[domain]}" for domain in domains if domain in self.UNSETTLED)
        return f"--agent.preset auto: no preset for {', '.join(datasets)}; the defaults{reasons}"

    def preset_note(self) -> str | None:
        """Returns the line a run prints about its preset, or None when none was asked for."""
        if self.preset == "none":
            return None
        values = ", ".join(f"{k} {getattr(self, k)}" for k in self.PRESETS[self.preset])
        source = self.PRESET_SOURCES.get(self.preset)
        return f"preset {self.preset}: {values}" + (f" ({source})" if source else "")

    def offline_warning(self) -> str | None:
        """Returns the warning a run with an offline phase prints when its preset is tuned for runs from scratch."""
        advice = self.FROM_SCRATCH_PRESETS.get(self.preset)
        return f"warning: preset {self.preset} is tuned for online runs from scratch; {advice}" if advice else None


@dataclass(frozen=True)
class ChunkingConfig(AgentConfig):
    """The fields of the behaviour-cloning agents that predict action chunks from observation histories."""

    chunk_size: int = 1
    """H, actions predicted per call (an action chunk, flattened to H·action_dim); 1 is single-step BC."""
    execute_steps: int = 1
    """n <= H, actions of each predicted chunk executed before predicting again (Diffusion Policy: 8 of 16)."""
    obs_history: int = 1
    """m, observations the policy sees (the last m, oldest first, flattened; Diffusion Policy: 2)."""

    def chunking(self) -> tuple[int, int, int]:
        return self.chunk_size, self.execute_steps, self.obs_history


class Agent:
    """Defaults of the optional parts of the agent contract; agents derive from it and flax.struct.PyTreeNode."""

    goal_conditioned: ClassVar[bool] = False
    """True: trained on goal-relabelled trajectories, acting with sample_actions(observations, goals, key)."""
    acting_steps_field: ClassVar[str | None] = None
    """The config field holding the sampler's network calls per action, where training does not depend on it
    (`sscp eval --sample-steps K` evaluates a trained run at K); None where it cannot change."""

    def explore_actions(self, observations: jax.Array, key: jax.Array) -> jax.Array:
        """Returns the actions taken while collecting online data: sample_actions unless the agent explores
        otherwise (SAC samples its stochastic policy; SSCP has exploration options)."""
        return self.sample_actions(observations, key)

    def q_values(self, observations: jax.Array, actions: jax.Array) -> jax.Array | None:
        """Returns the critic's Q(s, a) as the TD target uses it (e.g. the minimum over an ensemble), for the online
        phase's check of Q against the Monte-Carlo returns of visited states; None for agents without a Q critic."""
        return None

    def numpy_export(self) -> tuple[Any, dict, tuple[str, ...], str] | None:
        """Returns (network, the parameters acting uses, the order of the first layer's input blocks, the sampler's
        schedule: "euler_then_complete", "euler" or "ddpm") for agents that act with one MLP called k times, which
        `sscp export --format numpy` folds into numpy arrays; None for the others."""
        return None
