"""Agent registry: name → (agent class, config class). Every agent keeps the contract of sscp.agents.base
(create/update/sample_actions, and the optional parts with their defaults); goal-conditioned agents act with
sample_actions(observations, goals, key)."""

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


def get_agent(name: str) -> tuple[type, type]:
    """Returns (agent class, config class) for a registered name, or a ConfigError listing the valid names."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; valid agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[name]


def is_goal_conditioned(name: str) -> bool:
    """Returns whether agent `name` is goal-conditioned (trains on goal-relabelled trajectories, acts toward a goal)."""
    return get_agent(name)[0].goal_conditioned
