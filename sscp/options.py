"""The `--agent.FIELD VALUE` options of `sscp train` (and of sweep specs): split from a command line, then typed and
checked against an agent's config class."""

import dataclasses

import tyro

from sscp.errors import ConfigError


def split_agent_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """Returns (other args, agent args with the `agent.` prefix removed) from a train command line."""
    rest, agent_args = [], []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok.startswith("--agent."):
            name, eq, value = tok[len("--agent.") :].partition("=")
            agent_args.append("--" + name.replace("_", "-"))
            if eq:
                agent_args.append(value)
            i += 1
            while i < len(args) and not args[i].startswith("--"):
                agent_args.append(args[i])
                i += 1
        else:
            rest.append(tok)
            i += 1
    return rest, agent_args


def parse_agent_overrides(config_cls: type, agent_args: list[str], agent_name: str) -> dict:
    """Returns {field: typed value} for the --agent.FIELD options, or a ConfigError listing valid fields."""
    if not agent_args:
        return {}
    valid = {f.name.replace("_", "-") for f in dataclasses.fields(config_cls)}
    for tok in agent_args:
        if tok.startswith("--") and tok[2:] not in valid:
            raise ConfigError(
                f"unknown option --agent.{tok[2:]} for agent {agent_name!r}; valid: "
                + ", ".join(f"--agent.{v}" for v in sorted(valid))
            )
    # FlagConversionOff: booleans take a value like every other field (--agent.critic-layer-norm False); tyro's
    # default --no-FIELD form would be rejected above as an unknown field, leaving no way to turn a boolean off.
    parsed = tyro.cli(
        config_cls,
        args=agent_args,
        prog=f"sscp train --agent {agent_name} --agent.FIELD",
        config=(tyro.conf.FlagConversionOff,),
    )
    given = {tok[2:].replace("-", "_") for tok in agent_args if tok.startswith("--")}
    return {k: getattr(parsed, k) for k in given}
