"""Agent registry: name → (agent class, config class). Every agent has the same create/update/sample_actions API;
goal-conditioned agents (class attribute goal_conditioned) act with sample_actions(observations, goals, key)."""

from sscp.agents.bc import BCAgent, BCConfig
from sscp.agents.diffusion_bc import DiffusionBCAgent, DiffusionBCConfig
from sscp.agents.dql import DQLAgent, DQLConfig
from sscp.agents.flow_bc import FlowBCAgent, FlowBCConfig
from sscp.agents.fql import FQLAgent, FQLConfig
from sscp.agents.gc_sscp import GCSSCPAgent, GCSSCPConfig
from sscp.agents.gcbc import GCBCAgent, GCBCConfig
from sscp.agents.gcivl import GCIVLAgent, GCIVLConfig
from sscp.agents.hiql import HIQLAgent, HIQLConfig
from sscp.agents.iql import IQLAgent, IQLConfig
from sscp.agents.rebrac import ReBRACAgent, ReBRACConfig
from sscp.agents.sac import SACAgent, SACConfig
from sscp.agents.sscp import SSCPAgent, SSCPConfig
from sscp.agents.sscp_bc import SSCPBCAgent, SSCPBCConfig
from sscp.errors import ConfigError

AGENTS: dict[str, tuple[type, type]] = {
    "sscp": (SSCPAgent, SSCPConfig),
    "bc": (BCAgent, BCConfig),
    "flow_bc": (FlowBCAgent, FlowBCConfig),
    "fql": (FQLAgent, FQLConfig),
    "sscp_bc": (SSCPBCAgent, SSCPBCConfig),
    "diffusion_bc": (DiffusionBCAgent, DiffusionBCConfig),
    "rebrac": (ReBRACAgent, ReBRACConfig),
    "iql": (IQLAgent, IQLConfig),
    "dql": (DQLAgent, DQLConfig),
    "sac": (SACAgent, SACConfig),
    "gc_sscp": (GCSSCPAgent, GCSSCPConfig),
    "gcbc": (GCBCAgent, GCBCConfig),
    "gcivl": (GCIVLAgent, GCIVLConfig),
    "hiql": (HIQLAgent, HIQLConfig),
}


ACTING_STEPS: dict[str, str] = {
    "sscp": "sample_steps",
    "sscp_bc": "sample_steps",
    "flow_bc": "flow_steps",
    "diffusion_bc": "sample_steps",
}
"""Agents whose sampler takes a number of network calls per action that training does not depend on → the config
field holding it (`sscp eval --sample-steps K` evaluates a trained run at K)."""


def get_agent(name: str) -> tuple[type, type]:
    """Returns (agent class, config class) for a registered name, or a ConfigError listing the valid names."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; valid agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


def is_goal_conditioned(name: str) -> bool:
    """Returns whether agent `name` is goal-conditioned (trains on goal-relabelled trajectories, acts toward a goal)."""
    return bool(getattr(get_agent(name)[0], "goal_conditioned", False))
