"""The tiny training setup that the tests (tests/conftest.py) and the fault-injection harness (tests/faults) share:
pointmaze data a few episodes long and 16-wide networks, sized for 2 CPU cores. No side effects on import."""

BASE_DATASET = "pointmaze-medium-navigate-v0"
EPISODES, EPISODE_STEPS = 3, 100  # 3 × 99 = 297 transitions
TINY_AGENT = {"batch_size": 32, "actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "time_embed_dim": 16}


def tiny_agent_args() -> list[str]:
    """Returns TINY_AGENT as `sscp train` options."""
    args = []
    for name, value in TINY_AGENT.items():
        values = value if isinstance(value, tuple) else (value,)
        args += [f"--agent.{name.replace('_', '-')}", *map(str, values)]
    return args
