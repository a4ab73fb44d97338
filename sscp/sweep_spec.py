"""Sweep specs: reading a spec (YAML, or a Python file defining a dict SWEEP) and expanding it into *groups*, the
runs that share an agent, its options and a dataset (or, with `pack: tasks`, the single-task variants of one
dataset), each trained in one process with vmap over seeds. Every name and option is checked here, before anything
runs (docs/sweeps.md)."""

import contextlib
import dataclasses
import io
import itertools
import json
import os
import re
import runpy
from dataclasses import dataclass
from pathlib import Path

import tyro

from sscp.agents import AGENTS, get_agent
from sscp.data import registry
from sscp.errors import ConfigError
from sscp.options import parse_agent_overrides
from sscp.run_folder import RENAMED_OPTIONS
from sscp.train_config import TrainConfig

SPEC_KEYS = ("name", "agents", "datasets", "envs", "seeds", "pack", "train", "agent", "grid", "variants", "resources")
SET_BY_SWEEP = ("agent", "dataset", "env", "seeds", "run_dir", "progress")


@dataclass(frozen=True)
class Group:
    """The runs of one training process: one agent with one set of options, one dataset or several single-task
    variants of one dataset (or env ids), and every seed."""

    agent: str
    datasets: tuple[str, ...]
    envs: tuple[str, ...]
    seeds: tuple[int, ...]
    options: dict
    """Agent options (--agent.FIELD), typed."""
    train: dict
    """TrainConfig fields given by the spec, typed."""
    label: str
    """The options of the grid point, as a folder name ('default' with none)."""
    num_cpus: float
    num_gpus: float

    @property
    def key(self) -> str:
        """Returns the group's folder below the sweep folder: agent/dataset/options."""
        names = [Path(d).stem for d in self.datasets] or list(self.envs)
        data = names[0] if len(names) == 1 else f"{_common_prefix(names)}{len(names)}tasks"
        return f"{self.agent}/{_safe(data)}/{self.label}"

    @classmethod
    def from_record(cls, record: dict) -> "Group":
        """Returns the group that record() described."""
        return cls(**{k: tuple(v) if k in ("datasets", "envs", "seeds") else v for k, v in record.items()})

    def record(self) -> dict:
        """Returns the group as JSON-compatible data (what result.json stores)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def identity(self) -> dict:
        """Returns what makes a finished result this group's: the record without the resources it ran on."""
        return record_identity(self.record())


def record_identity(record: dict) -> dict:
    """Returns a group record without its resources (num_cpus, num_gpus), which do not change what it computes."""
    return {k: v for k, v in record.items() if k not in ("num_cpus", "num_gpus")}


# ---- the spec ------------------------------------------------------------------------------------------------------
def load_spec(path: str | os.PathLike) -> dict:
    """Returns the spec in a YAML file, or the dict SWEEP of a Python file; ConfigError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: sweep spec not found")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            spec = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    elif path.suffix == ".py":
        try:
            spec = runpy.run_path(str(path)).get("SWEEP")
        except Exception as e:  # noqa: BLE001 (the user's file: any error is reported as one line)
            raise ConfigError(f"{path}: the Python spec failed to run ({type(e).__name__}: {e})") from None
        if spec is None:
            raise ConfigError(f"{path}: a Python sweep spec must define a dict named SWEEP")
    else:
        raise ConfigError(f"{path}: a sweep spec is a .yaml, .yml or .py file")
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: the spec must be a mapping with keys {', '.join(SPEC_KEYS)}")
    return spec


def expand(spec: dict, source: str = "spec", gpus_available: float = 0.0) -> list[Group]:
    """Returns the groups of a spec, every name and option checked (ConfigError naming the key and valid choices).

    gpus_available sets the default GPUs per group: 1 when the cluster has GPUs, else 0."""
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SPEC_KEYS)}")
    agents = _names(spec, "agents", source, required=True)
    for agent in agents:
        if agent not in AGENTS:
            raise ConfigError(f"{source}: unknown agent {agent!r} in agents; valid: {', '.join(sorted(AGENTS))}")
    datasets, envs = _names(spec, "datasets", source), _names(spec, "envs", source)
    if bool(datasets) == bool(envs):
        raise ConfigError(f"{source}: give datasets (offline, offline-to-online) or envs (online from scratch)")
    seeds = _seeds(spec, source)
    pack = spec.get("pack", "seeds")
    if pack not in ("seeds", "tasks", "none"):
        raise ConfigError(f"{source}: pack must be seeds, tasks or none, got {pack!r}")
    train = _train_options(_mapping(spec, "train", source), source)
    fixed, grid, variants = _mapping(spec, "agent", source), _mapping(spec, "grid", source), _variants(spec, source)
    for key, section in (("agent", fixed), ("grid", grid), ("variants", variants)):
        stray = sorted(set(section) - set(agents))
        if stray:
            raise ConfigError(f"{source}: {key} names agent(s) {', '.join(stray)} that are not in agents {agents}")
    num_cpus, num_gpus = _resources(spec, source, gpus_available)
    sources = _data_sets(datasets, pack, train.get("data_dir"), source) if datasets else [(e,) for e in envs]
    seed_sets = [(s,) for s in seeds] if pack == "none" else [tuple(seeds)]
    groups = []
    for agent in agents:
        for options, label in _grid_points(agent, fixed, grid, variants.get(agent), source):
            for names in sources:
                for seed_set in seed_sets:
                    groups.append(
                        Group(
                            agent=agent,
                            datasets=names if datasets else (),
                            envs=() if datasets else names,
                            seeds=seed_set,
                            options=options,
                            train=train,
                            label=_safe(label) + (f"/seed{seed_set[0]}" if pack == "none" else ""),
                            num_cpus=num_cpus,
                            num_gpus=num_gpus,
                        )
                    )
    keys = [g.key for g in groups]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{source}: two groups would share a run folder ({_first_duplicate(keys)}); list each once")
    return groups


def _seeds(spec: dict, source: str) -> list[int]:
    seeds = spec.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(f"{source}: seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{source}: seeds has duplicates: {seeds}")
    return seeds


def _resources(spec: dict, source: str, gpus_available: float) -> tuple[float, float]:
    resources = _mapping(spec, "resources", source)
    stray = sorted(set(resources) - {"num_cpus", "num_gpus"})
    if stray:
        raise ConfigError(f"{source}: unknown resource(s) {', '.join(stray)}; valid: num_cpus, num_gpus")
    num_cpus = _number(resources.get("num_cpus", 1), "resources.num_cpus", source)
    num_gpus = _number(resources.get("num_gpus", 1 if gpus_available else 0), "resources.num_gpus", source)
    if num_cpus <= 0:
        raise ConfigError(f"{source}: resources.num_cpus must be positive, got {num_cpus}")
    return num_cpus, num_gpus


def _variants(spec: dict, source: str) -> dict[str, list[dict]]:
    """Returns the spec's variants: per agent, a list of option sets, each one setting (changes one at a time, where
    a grid would cross them)."""
    variants = _mapping(spec, "variants", source)
    for agent, sets in variants.items():
        if not isinstance(sets, list) or not sets or not all(isinstance(v, dict) for v in sets):
            raise ConfigError(f"{source}: variants.{agent} must be a non-empty list of option mappings, got {sets!r}")
    return variants


def _grid_points(
    agent: str, fixed: dict, grid: dict, variants: list[dict] | None, source: str
) -> list[tuple[dict, str]]:
    """Returns (typed agent options, label) of every setting of the agent: each point of its grid, crossed with each
    of its variants (an empty option set {} is the fixed options alone), its fixed options under each."""
    config_cls = get_agent(agent)[1]
    base = _agent_options(config_cls, agent, _mapping(fixed, agent, f"{source}: agent"), source)
    axes = _mapping(grid, agent, f"{source}: grid")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{agent}.{name} must be a non-empty list of values, got {values!r}")
    points = []
    for point in itertools.product(*axes.values()):
        for variant in variants or [{}]:
            chosen = {**dict(zip(axes, point, strict=True)), **variant}
            options = {**base, **_agent_options(config_cls, agent, chosen, source)}
            points.append((options, ",".join(f"{k}={_fmt(v)}" for k, v in chosen.items()) or "default"))
    return points


def _names(spec: dict, key: str, source: str, required: bool = False) -> list[str]:
    value = spec.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of names, got {value!r}")
    if required and not value:
        raise ConfigError(f"{source}: {key} is required (a list of names)")
    if len(set(value)) != len(value):
        raise ConfigError(f"{source}: {key} lists a name twice: {_first_duplicate(value)}")
    return value


def _mapping(spec: dict, key: str, source: str) -> dict:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {key} must be a mapping, got {value!r}")
    return value


def _number(value, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{source}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def _as_args(prefix: str, options: dict) -> list[str]:
    """Returns options as command-line tokens (--PREFIXFIELD VALUE ...), the way sscp train takes them."""
    args = []
    for name, value in options.items():
        values = value if isinstance(value, list | tuple) else [value]
        args += [f"--{prefix}{str(name).replace('_', '-')}", *(str(v) for v in values)]
    return args


def _parse_quietly(fn, what: str):
    """Returns fn(), turning tyro's usage message and exit into a ConfigError that carries its gist."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return fn()
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    except SystemExit:
        lines = [ln.strip(" │╭╰─") for ln in err.getvalue().splitlines()]
        gist = " ".join(ln for ln in lines if ln and not ln.startswith(("usage", "For full")))
        raise ConfigError(f"{what}: {' '.join(gist.split())[:400]}") from None


def _agent_options(config_cls: type, agent: str, options: dict, source: str) -> dict:
    """Returns options parsed and typed as `sscp train --agent.FIELD VALUE` would (the same checks and errors)."""
    if not options:
        return {}
    typed = _parse_quietly(
        lambda: parse_agent_overrides(config_cls, _as_args("", options), agent), f"{source}: options of agent {agent}"
    )
    return _lists(typed)


def _train_options(options: dict, source: str) -> dict:
    """Returns the spec's train section typed as `sscp train` parses it; the fields a sweep sets itself are refused."""
    renamed = RENAMED_OPTIONS["train"]  # a spec written with an option's earlier name still runs
    options = {renamed.get(k, k): v for k, v in options.items()}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in options:
        if name in SET_BY_SWEEP:
            raise ConfigError(f"{source}: train.{name} is set by the sweep itself (from agents, datasets, seeds)")
        if name not in fields:
            valid = ", ".join(sorted(fields - set(SET_BY_SWEEP)))
            raise ConfigError(f"{source}: unknown train option {name!r}; valid: {valid}")
    cfg = _parse_quietly(
        lambda: tyro.cli(TrainConfig, args=_as_args("", options), config=(tyro.conf.FlagConversionOff,)),
        f"{source}: train options",
    )
    return _lists({k: v for k, v in dataclasses.asdict(cfg).items() if k in options})


def _data_sets(datasets: list[str], pack: str, data_dir: str | None, source: str) -> list[tuple[str, ...]]:
    """Returns the datasets of each group: one each, or with pack=tasks the variants of one base dataset together."""
    try:  # ConfigError for unknown names, before any work
        specs = [registry.resolve(d, data_dir) for d in datasets]
    except ConfigError as e:
        raise ConfigError(f"{source}: datasets: {e}") from None
    if pack != "tasks":
        return [(d,) for d in datasets]
    families: dict[str, list[str]] = {}
    for name, spec in zip(datasets, specs, strict=True):
        families.setdefault(str(spec.train_path), []).append(name)
    return [tuple(v) for v in families.values()]


def _lists(options: dict) -> dict:
    """Returns options with tuple values as lists (JSON's form, which groups are stored and compared in)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}


def as_tuples(options: dict) -> dict:
    """Returns options with list values as tuples (the form the config dataclasses take)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def _fmt(value) -> str:
    if isinstance(value, list | tuple):
        return "x".join(_fmt(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.,=+x-]", "_", text)


def _common_prefix(names: list[str]) -> str:
    prefix = os.path.commonprefix(names)
    return prefix.rstrip("-") + "-" if prefix else ""


def _first_duplicate(items: list[str]) -> str:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return ""
