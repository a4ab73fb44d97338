"""The one training loop: data on the device, K updates per jitted lax.scan call, runs (tasks × seeds) vmapped in one
process, periodic evaluation, CSV logs, atomic checkpoints and exact resume; then, if asked, the online phase: one
env per run stepped on the host and one jitted device call per env step (docs/online.md)."""

import dataclasses
import functools
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from sscp import checkpoint
from sscp.agents import get_agent, is_goal_conditioned
from sscp.agents.sscp import SSCPConfig
from sscp.data import registry
from sscp.data.chunks import ChunkedData
from sscp.data.dataset import OfflineData, load_offline_data
from sscp.data.goals import GoalData, load_goal_data
from sscp.data.replay import OnlineSource, ReplayBuffer
from sscp.envs import EnvPool, check_env_id, eval_goal_count, normalized_score
from sscp.errors import ConfigError, DivergenceError
from sscp.evaluate import ChunkedActor, evaluate
from sscp.online import (
    HostCopy,
    OnlineEnvs,
    env_shapes,
    example_batch,
    make_action_std,
    make_online_chunk,
    make_online_step,
    next_actions,
)
from sscp.plot import plot_run
from sscp.runlog import CSVLogger, Trackers


@dataclass(frozen=True)
class TrainConfig:
    """One training run: which agent, on which data, for how long, and how it is logged and saved."""

    agent: str = "sscp"
    """Agent name (see `sscp train --help` for the list)."""
    dataset: tuple[str, ...] | None = None
    """Dataset name(s) or .npz path(s). Several single-task variants of one dataset, or datasets with equal observation
    and action sizes (the demonstration files of one suite), train together, vmapped. Default
    cube-single-play-singletask-task1-v0, or none when --env is given (online from scratch). Goal-conditioned agents
    take one goal-conditioned dataset (default pointmaze-medium-navigate-v0; docs/goal_conditioned.md)."""
    env: tuple[str, ...] = ()
    """Environment id(s) for online runs from scratch, without a dataset (e.g. HalfCheetah-v5); needs --online-steps.
    Several ids train together, vmapped, if their observation and action sizes agree."""
    steps: int | None = None
    """Offline gradient steps per run; default 1,000,000 with a dataset (the FQL/OGBench convention) and 0 without
    one (online from scratch has no offline phase)."""
    online_steps: int = 0
    """Environment steps per run after the offline phase (0: offline only). Online runs act in the dataset's own
    environment (OGBench single-task ids), or in --env."""
    utd: int = 1
    """Online gradient updates per environment step (1, as docs/method.md, "Online and offline-to-online")."""
    random_steps: int | None = None
    """Online steps taken with uniform random actions, and without updates, before the policy acts. Default 5000
    from scratch (CleanRL's learning_starts), capped at a tenth of --online-steps for short runs; 0 after an
    offline phase (the pretrained policy acts at once)."""
    online_buffer: Literal["append", "separate"] = "append"
    """With a dataset: "append" samples uniformly from the offline data followed by the online transitions (the
    method's default: docs/method.md, "Online and offline-to-online"); "separate" draws half of each batch from each."""
    online_chunk: int = 1
    """Online: env steps per device call. 1 is the paper's loop: after every env step one call adds the transition,
    updates, and returns the next actions from the updated agent. K > 1 acts on the host CPU with a copy of the agent
    refreshed every K env steps, then one call adds the K transitions and makes their K × utd updates in the same
    order as K single calls: far fewer host round trips, but actions come from an agent up to K − 1 env steps stale
    (a speed option, docs/online.md)."""
    online_overlap: bool = False
    """With --online-chunk K > 1: the host acts for the next chunk while the device makes the current chunk's
    updates, with the agent from before them (actions up to 2K − 1 env steps stale instead of K − 1). The host's and
    the device's time per chunk then overlap instead of adding up (a speed option, off by default)."""
    buffer_size: int | None = None
    """Capacity of each run's online replay buffer; default --online-steps (every transition is kept, as SAC's 1M
    buffer for 1M steps). Smaller makes it a ring that overwrites the oldest online transitions."""
    seeds: tuple[int, ...] = (0,)
    """Seeds; every (dataset, seed) pair is one run, all trained at once in one process with vmap."""
    run_dir: str | None = None
    """Run folder; default runs/<dataset>/<agent>/<timestamp>. An existing run folder is resumed."""
    data_dir: str | None = None
    """Dataset cache folder (default $SSCP_DATA_DIR or ~/.cache/sscp/data)."""
    make_data: bool = False
    """Generate a missing dataset locally instead of failing."""
    data_episodes: int | None = None
    """With make_data: episodes to generate (default: the official size)."""
    log_every: int = 1000
    """Offline: updates per jitted call, one train.csv row per run per call. Online: env steps per online.csv row."""
    eval_every: int = 100_000
    """Evaluate every this many steps of each phase (offline updates, online env steps) and at the end of each
    phase; 0 evaluates only at the ends."""
    eval_episodes: int = 50
    """Episodes per run and evaluation (goal-conditioned agents: per run, evaluation goal and evaluation); 0 trains
    without evaluation, also on data whose file name names no environment (`sscp eval --episodes N` evaluates
    later, where an environment exists)."""
    eval_workers: int = -1
    """Processes stepping eval envs; -1 = one per CPU core, 0 = in this process."""
    eval_slots: int = 0
    """Envs stepped side by side in evaluation (each policy call acts for all of them); 0 = twice the workers, at
    least 4. Results do not depend on it; more slots mean fewer, larger policy calls and more envs to build."""
    eval_max_steps: int | None = None
    """Cap episode length in evaluation, for smoke tests (default: the environment's own limit, 200-1000 steps)."""
    save_every: int = 100_000
    """Checkpoint every this many steps of each phase (and at the end)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep."""
    on_nonfinite: Literal["stop", "skip"] = "stop"
    """NaN/inf in a loss: stop with an error naming the step (keeping the last good checkpoint), or skip that update."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = False
    """Also log every CSV row to TensorBoard event files in <run-dir>/tensorboard/ (needs the `tensorboard` extra)."""
    wandb: bool = False
    """Also log every CSV row to Weights & Biases (needs the `wandb` extra); offline unless --wandb-mode online."""
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    """W&B mode: offline writes <run-dir>/wandb/ for a later `wandb sync`; online needs a login and a network."""
    wandb_project: str = "sscp"
    """W&B project name."""
    scan_unroll: int = 1
    """Updates per loop iteration inside the jitted scan (a speed knob; the arithmetic is the same)."""
    matmul_precision: Literal["default", "float32", "tensorfloat32", "bfloat16"] = "default"
    """JAX matmul precision for float32 arrays ("default" is JAX's own choice for the device)."""
    devices: int = 0
    """Spread the vmapped runs over this many local devices (GPUs) with jax.sharding, runs split evenly; 0 = as many
    of this machine's devices as divide the number of runs evenly (1 on a CPU or a one-GPU machine)."""


DEFAULT_DATASET = ("cube-single-play-singletask-task1-v0",)
DEFAULT_GOAL_DATASET = ("pointmaze-medium-navigate-v0",)
DEFAULT_OFFLINE_STEPS = 1_000_000
DEFAULT_RANDOM_STEPS = 5_000


@dataclass
class Run:
    """One (task, seed) pair of a vmapped training process."""

    index: int
    task: int
    seed: int
    dataset: str
    """The dataset name, or the env id of an online run from scratch."""
    env_name: str | None
    """The environment that evaluates the run; None where none can (Robomimic data)."""


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Returns cfg with the defaults that depend on other options filled in (dataset, steps, random_steps,
    buffer_size), or a ConfigError for options that cannot run together."""
    if cfg.online_steps < 0:
        raise ConfigError(f"--online-steps must be >= 0 (0: offline only), got {cfg.online_steps}")
    goal_conditioned = is_goal_conditioned(cfg.agent)
    if goal_conditioned:
        if cfg.env or cfg.online_steps:
            raise ConfigError(f"{cfg.agent} is goal-conditioned and trains offline only: drop --env and --online-steps")
        if cfg.dataset is not None and len(cfg.dataset) != 1:
            raise ConfigError(
                f"{cfg.agent} is goal-conditioned: give one dataset (e.g. pointmaze-medium-navigate-v0), got "
                f"{len(cfg.dataset)}; every run is evaluated on all of its environment's evaluation goals"
            )
    if cfg.env:
        if cfg.dataset:
            raise ConfigError(
                "--env runs online from scratch; with --dataset the online phase runs in the dataset's own "
                "environment, so give one or the other"
            )
        if cfg.online_steps == 0:
            raise ConfigError("--env runs online from scratch and needs --online-steps N (environment steps per run)")
        if cfg.steps:
            raise ConfigError(
                f"--steps {cfg.steps} counts offline gradient steps, which need --dataset; online runs from scratch "
                "take --online-steps"
            )
        if cfg.online_buffer == "separate":
            raise ConfigError(
                "--online-buffer separate draws half of each batch from the offline data: it needs --dataset"
            )
        for name in cfg.env:
            check_env_id(name)
        dataset, steps = (), 0
    else:
        default = DEFAULT_GOAL_DATASET if goal_conditioned else DEFAULT_DATASET
        dataset = default if cfg.dataset is None else cfg.dataset
        if not dataset:
            raise ConfigError("give --dataset NAME (offline, offline-to-online) or --env ID --online-steps N (online)")
        steps = DEFAULT_OFFLINE_STEPS if cfg.steps is None else cfg.steps
    if cfg.online_steps and steps < 0:
        raise ConfigError(f"--steps must be >= 0 (0: no offline phase), got {steps}")
    if not cfg.online_steps and steps <= 0:
        raise ConfigError(f"--steps must be positive, got {steps}")
    if cfg.utd <= 0:
        raise ConfigError(f"--utd must be positive, got {cfg.utd}")
    if cfg.online_chunk <= 0:
        raise ConfigError(f"--online-chunk must be positive (1: one device call per env step), got {cfg.online_chunk}")
    if cfg.online_overlap and cfg.online_chunk == 1:
        raise ConfigError("--online-overlap needs --online-chunk K > 1 (the host acts while the device updates)")
    random_steps = cfg.random_steps
    if random_steps is None:
        random_steps = min(DEFAULT_RANDOM_STEPS, cfg.online_steps // 10) if cfg.env else 0
    if not 0 <= random_steps <= cfg.online_steps:
        raise ConfigError(f"--random-steps must be in [0, --online-steps = {cfg.online_steps}], got {random_steps}")
    buffer_size = cfg.online_steps if cfg.buffer_size is None else cfg.buffer_size
    if cfg.online_steps and buffer_size <= 0:
        raise ConfigError(f"--buffer-size must be positive, got {buffer_size}")
    return dataclasses.replace(
        cfg, dataset=tuple(dataset), steps=steps, random_steps=random_steps, buffer_size=max(buffer_size, 1)
    )


def _check(cfg: TrainConfig, agent_cfg) -> None:
    if cfg.log_every <= 0:
        raise ConfigError(f"--log-every must be positive, got {cfg.log_every}")
    for name in ("eval_episodes", "eval_every", "save_every", "eval_slots"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
    if cfg.eval_max_steps is not None and cfg.eval_max_steps <= 0:
        raise ConfigError(f"--eval-max-steps must be positive (or None), got {cfg.eval_max_steps}")
    if not cfg.seeds:
        raise ConfigError("--seeds needs at least one seed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"--seeds has duplicates: {cfg.seeds}")
    if cfg.devices < 0:
        raise ConfigError(f"--devices must be >= 0 (0: every local device that divides the runs), got {cfg.devices}")
    if getattr(agent_cfg, "batch_size", 1) <= 0:
        raise ConfigError(f"--agent.batch-size must be positive, got {agent_cfg.batch_size}")


def default_run_dir(cfg: TrainConfig) -> Path:
    """Returns runs/<dataset>/<agent>/<timestamp> for a new run."""
    names = [Path(d).stem for d in cfg.dataset] or list(cfg.env)
    label = names[0] if len(names) == 1 else f"{names[0]}+{len(names) - 1}"
    base = Path("runs") / label / cfg.agent / time.strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():  # two runs started in the same second must not share (and resume) one folder
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def make_step_fn(batch_size: int, skip_nonfinite: bool):
    """Returns step(agent, task, data) -> (agent, info): sample a batch on the device, then one update."""

    def step(agent, task, data: OfflineData):
        rng, key = jax.random.split(agent.rng)
        agent = agent.replace(rng=rng)
        batch = data.sample(key, batch_size, task)
        new_agent, info = agent.update(batch)
        if skip_nonfinite:
            ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(info)]))
            new_agent = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new_agent, agent)
            new_agent = new_agent.replace(rng=jax.random.fold_in(rng, 1))
            info = {**info, "skipped": 1.0 - ok.astype(jnp.float32)}
        return new_agent, info

    return step


def make_train_chunk(step_fn, unroll: int = 1):
    """Returns chunk(agents, tasks, data, n) -> (agents, info[n, runs]): n vmapped updates in one lax.scan.

    unroll > 1 puts that many updates in one loop iteration: fewer loop-condition round trips to the host on GPUs.
    """

    def chunk(agents, tasks, data, num_steps: int):
        def body(carry, _):
            return jax.vmap(step_fn, in_axes=(0, 0, None))(carry, tasks, data)

        return jax.lax.scan(body, agents, None, length=num_steps, unroll=min(unroll, num_steps))

    return jax.jit(chunk, static_argnums=3, donate_argnums=0)


def init_agents(agent_cls, agent_cfg, example: dict, seeds: list[int]):
    """Returns one agent per seed, stacked along a leading run axis, each initialised from PRNGKey(seed)."""
    keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    return jax.vmap(lambda k: agent_cls.create(k, example, agent_cfg))(keys)


def run_sharding(num_runs: int, devices: int = 0) -> jax.sharding.NamedSharding | None:
    """Returns the sharding that splits the leading run axis over local devices, or None for one device.

    devices = 0 takes the most local devices (of the default backend) that divide num_runs evenly; an explicit count
    must divide num_runs and not exceed the local devices. The runs are independent, so the jitted updates run on
    every device at once without communication; the dataset is replicated on each."""
    local = jax.local_devices()
    if devices > len(local):
        raise ConfigError(f"--devices {devices}: this machine has {len(local)} {local[0].platform} device(s)")
    if devices and num_runs % devices:
        raise ConfigError(
            f"--devices {devices} does not divide the {num_runs} runs (datasets × seeds) evenly; use a divisor or 0"
        )
    count = devices or max(d for d in range(1, len(local) + 1) if num_runs % d == 0)
    if count == 1:
        return None
    mesh = jax.sharding.Mesh(np.array(local[:count]), ("runs",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs"))


def place_runs(tree, sharding: jax.sharding.NamedSharding | None):
    """Returns tree (leading axis: runs) split over the devices of `sharding`, or as is without one."""
    return tree if sharding is None else jax.device_put(tree, sharding)


def place_data(data, sharding: jax.sharding.NamedSharding | None):
    """Returns data copied whole to every device of `sharding`'s mesh (each samples its runs' batches from its own
    copy), or as is without one."""
    if sharding is None:
        return data
    return jax.device_put(data, jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec()))


def make_act_fn():
    """Returns act(agents, run_index [M], obs [M, d], key, goals [M, g] = None, ids [M, k] = None) -> actions
    [M, a]: slot m acts with agent run_index[m], toward goals[m] if goals are given (goal-conditioned agents). Slot
    m's noise key is key folded with each of ids[m] (evaluation passes (target, episode, step in episode), so a
    slot's noise does not depend on which or how many slots there are), or the m-th of split(key, M) without ids."""

    def act(agents, runs, obs, key, goals=None, ids=None):
        if ids is None:
            keys = jax.random.split(key, runs.shape[0])
        else:
            keys = jax.vmap(lambda i: functools.reduce(jax.random.fold_in, list(i), key))(ids)

        def one(r, o, k, g):
            agent = jax.tree.map(lambda x: x[r], agents)
            return agent.sample_actions(o, k) if g is None else agent.sample_actions(o, g, k)

        return jax.vmap(one)(runs, obs, keys, goals)

    return jax.jit(act)


class Trainer:
    """Owns one training process: data, vmapped agents, logs, checkpoints, evaluation."""

    def __init__(self, cfg: TrainConfig, agent_overrides: dict | None = None):
        self.agent_cls, config_cls = get_agent(cfg.agent)
        try:
            self.agent_cfg = config_cls(**(agent_overrides or {}))
        except TypeError as e:
            raise ConfigError(f"bad agent option for {cfg.agent}: {e}") from None
        cfg = resolve(cfg)
        self.goal_conditioned = is_goal_conditioned(cfg.agent)
        explicit = set(agent_overrides or {})
        self.preset_note: str | None = None  # what a run prints about its per-dataset settings
        if self.goal_conditioned:  # the dataset's preset; options given explicitly win
            self.agent_cfg = self.agent_cfg.with_preset(cfg.dataset[0], explicit)
        elif isinstance(self.agent_cfg, SSCPConfig) and cfg.dataset:
            asked = self.agent_cfg.preset
            self.agent_cfg = self.agent_cfg.with_preset(cfg.dataset, explicit)
            self.preset_note = self.agent_cfg.preset_note()
            if asked == "auto" and self.agent_cfg.preset == "none":
                self.preset_note = f"--agent.preset auto: no preset for {', '.join(cfg.dataset)}; the paper's defaults"
        _check(cfg, self.agent_cfg)
        self.cfg = cfg
        jax.config.update(
            "jax_default_matmul_precision", None if cfg.matmul_precision == "default" else cfg.matmul_precision
        )
        self.run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir(cfg)
        self.data: OfflineData | ChunkedData | GoalData | None = None
        if cfg.dataset and self.goal_conditioned:
            sampling = self.agent_cfg.sampling()
            self.data = load_goal_data(cfg.dataset[0], sampling, cfg.data_dir, cfg.make_data, cfg.data_episodes)
        elif cfg.dataset:
            self.data = load_offline_data(
                cfg.dataset, cfg.data_dir, cfg.make_data, cfg.data_episodes, need_env=cfg.eval_episodes > 0
            )
        # (H, n, m) of behaviour cloning with action chunks or observation histories (docs/behaviour_cloning.md)
        self.chunking = tuple(getattr(self.agent_cfg, k, 1) for k in ("chunk_size", "execute_steps", "obs_history"))
        if self.chunking[0] > 1 or self.chunking[2] > 1:
            if cfg.online_steps or self.data is None:
                raise ConfigError("action chunks and observation histories are offline only: drop --online-steps")
            self.data = ChunkedData.wrap(self.data, self.chunking[0], self.chunking[2], ", ".join(cfg.dataset))
        else:
            self.chunking = None
        if cfg.dataset:
            smallest = getattr(self.data, "smallest_task", self.data.size)
            if self.agent_cfg.batch_size > smallest:
                raise ConfigError(
                    f"--agent.batch-size {self.agent_cfg.batch_size} is larger than the dataset ({smallest} "
                    "transitions); lower it or use more data"
                )
            if cfg.online_steps and getattr(self.data, "task_rows", None) is not None:
                raise ConfigError(
                    f"--online-steps: {', '.join(cfg.dataset)} are different datasets, not single-task variants of "
                    "one; fine-tune each in its own run"
                )
            labels, env_names = cfg.dataset, self.data.env_names
            specs = [registry.resolve(d, cfg.data_dir) for d in cfg.dataset]
            self.ref_scores = [s.ref_scores for s in specs]
            # why no environment evaluates the runs, or None: datasets without one (Robomimic) train unevaluated
            self.no_env = next((s.env_note for s in specs if s.env_name is None), None)
            # which environment a file's name chose, and how closely it matches the data (D4RL files)
            self.env_notes = [f"{s.train_path.name}: {s.env_note}" for s in specs if s.env_name and s.env_note]
        else:
            labels, env_names = cfg.env, cfg.env
            self.ref_scores = [None] * len(cfg.env)
            self.no_env = None
            self.env_notes = []
        self.runs = [
            Run(len(cfg.seeds) * t + i, t, s, labels[t], env_names[t])
            for t in range(len(labels))
            for i, s in enumerate(cfg.seeds)
        ]
        if cfg.online_steps and self.no_env is not None:
            raise ConfigError(f"--online-steps acts in the dataset's environment, and there is none: {self.no_env}")
        # why training does not evaluate the runs, or None
        self.no_eval = "--eval-episodes 0 asks for none" if cfg.eval_episodes == 0 else self.no_env
        if cfg.online_steps:  # before any training: the envs exist and fit the data
            self.obs_dim, self.action_dim = env_shapes([r.env_name for r in self.runs])
            if self.data is not None:
                data_dims = (self.data.observations.shape[1], self.data.actions.shape[1])
                if data_dims != (self.obs_dim, self.action_dim):
                    raise ConfigError(
                        f"{self.runs[0].env_name} observes {self.obs_dim} numbers and acts with {self.action_dim}, "
                        f"but the dataset has {data_dims[0]} and {data_dims[1]}"
                    )
        example = self.data.example_batch() if self.data is not None else example_batch(self.obs_dim, self.action_dim)
        self.sharding = run_sharding(len(self.runs), cfg.devices)
        agents = init_agents(self.agent_cls, self.agent_cfg, example, [r.seed for r in self.runs])
        self.agents = place_runs(agents, self.sharding)
        self.tasks = place_runs(jnp.array([r.task for r in self.runs]), self.sharding)
        self.data = place_data(self.data, self.sharding)
        self.step_fn = make_step_fn(self.agent_cfg.batch_size, cfg.on_nonfinite == "skip")
        self.train_chunk = make_train_chunk(self.step_fn, cfg.scan_unroll)
        self.act = make_act_fn()
        self.trackers = None
        if cfg.tensorboard or cfg.wandb:
            self.trackers = Trackers(
                self.run_dir, cfg.tensorboard, cfg.wandb, cfg.wandb_mode, cfg.wandb_project, self.config_record()
            )
        self.train_log = CSVLogger(self.run_dir / "train.csv", self.trackers)
        self.eval_log = CSVLogger(self.run_dir / "eval.csv", self.trackers)
        self.online_log = CSVLogger(self.run_dir / "online.csv", self.trackers)
        self.step = 0  # offline gradient steps
        self.env_steps = 0  # online environment steps per run
        self.elapsed = 0.0
        self.online: OnlinePhase | None = None
        self._saved_online: dict | None = None

    @property
    def num_devices(self) -> int:
        """Returns how many devices the runs are spread over."""
        return 1 if self.sharding is None else self.sharding.mesh.size

    # ---- run folder -------------------------------------------------------------------------------------------
    def config_record(self) -> dict:
        """Returns what config.json holds: the train config, the agent config and the runs."""
        return {
            "train": dataclasses.asdict(self.cfg),
            "agent": dataclasses.asdict(self.agent_cfg),
            "runs": [dataclasses.asdict(r) for r in self.runs],
            "versions": {"jax": jax.__version__, "backend": jax.default_backend(), "devices": self.num_devices},
            "provenance": provenance(),
        }

    def prepare_run_dir(self) -> bool:
        """Creates or resumes the run folder; returns True when it resumed from a checkpoint."""
        cfg_path = self.run_dir / "config.json"
        record = self.config_record()
        if cfg_path.exists():
            try:
                old = json.loads(cfg_path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ConfigError(
                    f"{cfg_path}: unreadable ({e}); the checkpoints and logs beside it are untouched — restore the "
                    "file, or pass another --run-dir"
                ) from None
            for key in ("agent", "runs"):
                if old.get(key) != json.loads(json.dumps(record[key])):
                    raise ConfigError(
                        f"{self.run_dir} holds a run with a different {key} config; use another --run-dir "
                        "or the same options to resume it"
                    )
            if old["train"]["agent"] != self.cfg.agent:
                raise ConfigError(f"{self.run_dir} was trained with agent {old['train']['agent']!r}")
            restored = checkpoint.load_latest(self.run_dir / "checkpoints", self.agents)
            if restored is not None:
                total, agents, meta = restored
                self.agents = place_runs(agents, self.sharding)
                self.step = meta.get("offline_steps", total)
                self.env_steps = meta.get("env_steps", 0)
                self._saved_online = meta.get("online")
                self.elapsed = meta["elapsed"]
                self.train_log.truncate(meta["train_csv"])
                self.eval_log.truncate(meta["eval_csv"])
                self.online_log.truncate(meta.get("online_csv", 0))
                self._record_changed_options(cfg_path, old, record)
                return True
            self.train_log.truncate(0)
            self.eval_log.truncate(0)
            self.online_log.truncate(0)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.write_atomic(cfg_path, json.dumps(record, indent=2).encode())
        return False

    def _record_changed_options(self, cfg_path: Path, old: dict, record: dict) -> None:
        """Rewrites config.json when a resumed run was started with other train options (say, more --steps), so
        that its "train" section says what the run now does; "resumed_with" keeps, per such resume, the step and
        each changed option's old and new value."""
        new_train = json.loads(json.dumps(record["train"]))
        changed = {k: [old["train"].get(k), v] for k, v in new_train.items() if old["train"].get(k) != v}
        if not changed:
            return
        history = [*old.get("resumed_with", []), {"step": self.total_step, "changed": changed}]
        checkpoint.write_atomic(
            cfg_path, json.dumps({**old, "train": new_train, "resumed_with": history}, indent=2).encode()
        )
        options = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        print(f"{cfg_path}: resumed at step {self.total_step} with other options ({options}); recorded in it")

    @property
    def total_step(self) -> int:
        """Returns offline gradient steps + online env steps: the step of logs, evaluations and checkpoints."""
        return self.step + self.env_steps

    def save(self) -> None:
        """Writes a checkpoint of all runs with the log positions it corresponds to; in the online phase also the
        replay buffers, the envs and the next actions (docs/online.md)."""
        meta = {"elapsed": self.elapsed, "train_csv": self.train_log.position(), "eval_csv": self.eval_log.position()}
        if self.cfg.online_steps:
            meta.update(online_csv=self.online_log.position(), offline_steps=self.step, env_steps=self.env_steps)
            if self.online is not None:
                meta["online"] = self.online.state()
        checkpoint.save(self.run_dir / "checkpoints", self.total_step, self.agents, meta, self.cfg.keep_checkpoints)

    # ---- training ---------------------------------------------------------------------------------------------
    def _log_train(self, info: dict, seconds: float, n: int) -> None:
        host = jax.device_get(info)
        for r in self.runs:
            row = {"step": self.step, "run": r.index, "task": r.dataset, "seed": r.seed}
            # With on_nonfinite="skip", average only the updates that were applied (skipped ones hold NaN/inf).
            kept = host["skipped"][:, r.index] == 0 if "skipped" in host else slice(None)
            for k, v in host.items():
                values = v[:, r.index] if k == "skipped" else v[kept, r.index]
                row[f"train/{k}"] = float(np.mean(values)) if values.size else float("nan")
            row["time/updates_per_sec"] = n / seconds
            row["time/elapsed_s"] = self.elapsed
            self.train_log.log(row)

    def _check_finite(self, info: dict, start: int, per_step: int = 1, unit: str = "step") -> None:
        """Raises DivergenceError naming the earliest NaN/inf in info [updates, runs]; update i belongs to
        `unit` start + i // per_step + 1."""
        if self.cfg.on_nonfinite == "skip":
            return
        first = None  # (update index, run, key, value) of the earliest non-finite value over all quantities
        for k, v in jax.device_get(info).items():
            bad = ~np.isfinite(v)
            if bad.any():
                i, r = np.argwhere(bad)[0]  # row-major: the earliest update of this quantity
                if first is None or i < first[0]:
                    first = (i, r, k, v[i, r])
        if first is not None:
            i, r, k, value = first
            raise DivergenceError(
                f"{k} became {value} at {unit} {start + i // per_step + 1} (run {r}: {self.runs[r].dataset}, seed "
                f"{self.runs[r].seed}); the last good checkpoint in {self.run_dir / 'checkpoints'} is kept. "
                "Lower the learning rate, or pass --on-nonfinite skip"
            )

    def evaluate(self, episodes: int | None = None, workers: int | None = None, slots: int | None = None) -> list[dict]:
        """Returns one result dict per run after evaluating every run in its environment; goal-conditioned runs on
        each of the environment's evaluation goals, with success per goal (success_goalN) and overall."""
        if self.no_env is not None:
            raise ConfigError(f"{', '.join(self.cfg.dataset)} cannot be evaluated: {self.no_env}")
        episodes = episodes or self.cfg.eval_episodes
        workers = self.cfg.eval_workers if workers is None else workers
        if workers < 0:
            workers = os.cpu_count() or 1
        # One evaluation target per run, or per (run, goal) for goal-conditioned runs (task ids 1..goals).
        goals = eval_goal_count(self.runs[0].env_name) if self.goal_conditioned else 0
        target_run = np.array([r.index for r in self.runs for _ in range(max(goals, 1))])
        task_ids = [t + 1 for _ in self.runs for t in range(goals)] if goals else None
        slots = self.cfg.eval_slots if slots is None else slots
        slots = min(episodes * len(target_run), slots if slots > 0 else max(4, 2 * workers))
        pool = EnvPool(slots, workers)
        base_key = jax.random.PRNGKey(self.total_step)

        def act(targets, obs, episode_steps, goal_obs=None):
            goal_obs = None if goal_obs is None else jnp.asarray(goal_obs)
            ids = jnp.asarray(np.concatenate([targets[:, None], episode_steps], axis=1).astype(np.uint32))
            runs = jnp.asarray(target_run[targets])
            return np.asarray(self.act(self.agents, runs, jnp.asarray(obs), base_key, goal_obs, ids))

        if self.chunking is not None:
            act = ChunkedActor(act, self.data.data.actions.shape[1], self.chunking[1], self.chunking[2])
        try:
            names = [self.runs[i].env_name for i in target_run]
            results = evaluate(
                act, names, episodes, pool, seed=self.total_step, max_steps=self.cfg.eval_max_steps, task_ids=task_ids
            )
        finally:
            pool.close()
        if goals:
            results = [_per_goal_summary(results[i * goals : (i + 1) * goals]) for i in range(len(self.runs))]
        if any(self.ref_scores):  # D4RL and Minari data with reference returns: D4RL's normalised score too
            for r, res in zip(self.runs, results, strict=True):
                res["normalized_return"] = normalized_score(res["return"], self.ref_scores[r.task])
        return results

    def _log_eval(self, results: list[dict], seconds: float) -> None:
        for r, res in zip(self.runs, results, strict=True):
            row = {"step": self.total_step, "run": r.index, "task": r.dataset, "seed": r.seed, "env": r.env_name}
            if self.cfg.online_steps:
                row["env_steps"] = self.env_steps
            row.update({f"eval/{k}": v for k, v in res.items()})
            row["time/eval_s"] = seconds
            self.eval_log.log(row)

    def _unevaluated(self) -> list[dict]:
        """Returns NaN success, return and length per run: the results of runs that no environment evaluates."""
        return [dict.fromkeys(("success", "return", "length"), float("nan")) for _ in self.runs]

    def _evaluate_and_plot(self, bar) -> list[dict]:
        if self.no_eval is not None:
            bar.write(f"step {self.total_step}: not evaluated")
            results = self._unevaluated()
        else:
            t0 = time.perf_counter()
            results = self.evaluate()
            self._log_eval(results, time.perf_counter() - t0)
            summary = " ".join(f"{r['success']:.2f}" for r in results)
            if self.cfg.online_steps:
                summary += ", return " + " ".join(f"{r['return']:.1f}" for r in results)
            bar.write(f"step {self.total_step}: success {summary}")
        try:
            plot_run(self.run_dir)
        except OSError as e:  # the plot is a convenience: a full disk must not stop training here
            bar.write(f"warning: could not write {self.run_dir / 'curves.png'}: {e.strerror or e}")
        return results

    def train(self) -> list[dict]:
        """Trains all runs for cfg.steps offline updates, then cfg.online_steps env steps, evaluating and saving on
        schedule; returns the final evaluation. Holds the run folder's lock meanwhile (checkpoint.run_lock)."""
        with checkpoint.run_lock(self.run_dir):
            return self._train()

    def _train(self) -> list[dict]:
        from tqdm import tqdm

        resumed = self.prepare_run_dir()
        if resumed:
            phase = f" (offline {self.step}, env steps {self.env_steps})" if self.cfg.online_steps else ""
            print(f"resuming {self.run_dir} from step {self.total_step}{phase}")
        for note in [*self.env_notes, self.preset_note or ""]:
            if note:
                print(note)
        if self.no_eval is not None:
            print(f"no evaluation: {self.no_eval}; train.csv and checkpoints are written as usual")
        cfg = self.cfg
        total = cfg.steps + cfg.online_steps
        bar = tqdm(total=total, initial=self.total_step, disable=not cfg.progress, unit="step", dynamic_ncols=True)
        results: list[dict] = []
        if self.step < cfg.steps:  # the first call compiles the update, and the bar shows nothing meanwhile
            bar.write(f"compiling the training step for {jax.default_backend()} (first call only; slowest on a CPU)")
        while self.step < cfg.steps:
            n = min(cfg.log_every, cfg.steps - self.step)
            start = time.perf_counter()
            self.agents, info = self.train_chunk(self.agents, self.tasks, self.data, n)
            info = jax.device_get(info)  # the one host sync per chunk
            seconds = time.perf_counter() - start
            self._check_finite(info, self.step)
            self.step += n
            self.elapsed += seconds
            self._log_train(info, seconds, n)
            bar.update(n)
            bar.set_postfix({"upd/s": f"{n / seconds:.0f}", **{k: f"{np.mean(info[k]):.3g}" for k in list(info)[:3]}})
            done = self.step >= cfg.steps
            if done or (cfg.eval_every and self.step % cfg.eval_every < n):
                results = self._evaluate_and_plot(bar)
            if done or (cfg.save_every and self.step % cfg.save_every < n):
                self.save()
        if cfg.online_steps and self.env_steps < cfg.online_steps:
            self.online = OnlinePhase(self)
            try:
                results = self.online.run(bar) or results
            finally:
                self.online.close()
        bar.close()
        if not results:  # a resumed run that had already finished
            results = self.evaluate() if self.no_eval is None else self._unevaluated()
        if self.trackers is not None:
            self.trackers.close()
        return results


class OnlinePhase:
    """The online phase of a Trainer: env steps on the host, one jitted device call per env step, online.csv rows
    every log_every env steps, evaluation and checkpoints on the trainer's schedule."""

    def __init__(self, trainer: Trainer):
        self.t = trainer
        cfg, runs = trainer.cfg, trainer.runs
        self.envs = OnlineEnvs([r.env_name for r in runs], [_env_seed(r) for r in runs])
        self.buffers = ReplayBuffer.create(cfg.buffer_size, trainer.obs_dim, trainer.action_dim, runs=len(runs))
        self.act_keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(r.seed), 7_000 + r.task) for r in runs])
        self.calls: dict[bool, object] = {}
        self.first_actions = jax.jit(next_actions, static_argnums=(4, 5))
        # --online-chunk K > 1: the host acts with a CPU copy of the agents, refreshed after every chunk's call
        self.cpu = jax.devices("cpu")[0]
        self.host_keys = jax.device_put(self.act_keys, self.cpu)

        def act(agents, obs, keys):  # what the host runs (_host_actions), unjitted: a jit would hide what it reads
            return next_actions(agents, obs, keys, jnp.int32(0), cfg.random_steps, trainer.action_dim)

        self.host = HostCopy(self.cpu, act, jnp.zeros((len(runs), trainer.obs_dim)), self.host_keys)
        self.chunk_calls: dict[bool, object] = {}
        self.action_std = make_action_std(cfg.online_buffer)
        one = jax.tree.map(lambda x: x[0], (trainer.agents, self.buffers))
        shapes = jax.eval_shape(
            lambda a, b: trainer.step_fn(a, trainer.tasks[0], OnlineSource(b, trainer.data, cfg.online_buffer)), *one
        )
        self.info_keys = list(shapes[1])
        saved, trainer._saved_online = trainer._saved_online, None
        if saved is None:
            self.envs.reset()
            self.actions = self._first_actions()
        else:
            self.buffers = self.buffers.from_host(saved["buffer"])
            restarted = self.envs.restore(saved, trainer.env_steps)
            self.actions = self._first_actions() if restarted else np.asarray(saved["actions"], np.float32)

    def _first_actions(self) -> np.ndarray:
        return self._actions_from(self.t.agents, jnp.asarray(self.envs.obs), self.act_keys)

    def _actions_from(self, agents, obs: jax.Array, keys: jax.Array) -> np.ndarray:
        """Returns next_actions for the envs' next step from these agents, where the arrays live (device or host)."""
        t = self.t
        return np.asarray(self.first_actions(agents, obs, keys, t.env_steps, t.cfg.random_steps, t.action_dim))

    def _call(self, learn: bool):
        if learn not in self.calls:
            t = self.t
            self.calls[learn] = make_online_step(
                t.step_fn, t.cfg.utd, t.cfg.online_buffer, learn, t.cfg.random_steps, t.action_dim
            )
        return self.calls[learn]

    def state(self) -> dict:
        """Returns the online part of a checkpoint: buffers, next actions, envs and episodes in progress."""
        return {"buffer": self.buffers.to_host(), "actions": self.actions.copy(), **self.envs.state()}

    def run(self, bar) -> list[dict]:
        """Steps every run's env until cfg.online_steps; returns the last evaluation (empty if none ran)."""
        t, cfg = self.t, self.t.cfg
        results: list[dict] = []
        while t.env_steps < cfg.online_steps:
            n = min(cfg.log_every, cfg.online_steps - t.env_steps)
            start_step = t.env_steps
            start = time.perf_counter()
            infos, env_s, device_s, copy_s = self._steps(n)
            seconds = time.perf_counter() - start
            t.elapsed += seconds
            info = {k: np.concatenate([i[k] for i in infos]) for k in self.info_keys} if infos else {}
            first_learning = max(start_step, cfg.random_steps)
            t._check_finite(info, first_learning, per_step=cfg.utd, unit="env step")
            std = np.asarray(self.action_std(t.agents, self.buffers, t.tasks, t.data, jax.random.PRNGKey(t.total_step)))
            self._log(info, std, n, seconds, env_s, device_s, copy_s)
            bar.update(n)
            bar.set_postfix({"env steps/s": f"{n / seconds:.0f}", "device": f"{device_s / seconds:.0%}"})
            done = t.env_steps >= cfg.online_steps
            if done or (cfg.eval_every and t.env_steps % cfg.eval_every < n):
                results = t._evaluate_and_plot(bar)
            if done or (cfg.save_every and t.env_steps % cfg.save_every < n):
                t.save()
        return results

    def _steps(self, n: int) -> tuple[list[dict], float, float, float]:
        """Takes n env steps, each followed by one device call; returns the updates' infos, the seconds spent
        stepping envs and in device calls (with the transfer of the actions), and (chunks only) the seconds of
        those spent refreshing the host's copy of the agents."""
        t, cfg = self.t, self.t.cfg
        if cfg.online_chunk > 1:
            return self._chunked_steps(n)
        infos, env_s, device_s = [], 0.0, 0.0
        for _ in range(n):
            t0 = time.perf_counter()
            transitions = self.envs.step(self.actions)
            t1 = time.perf_counter()
            t.env_steps += 1
            learn = t.env_steps > cfg.random_steps  # no updates in the random phase (CleanRL's learning_starts)
            t.agents, self.buffers, actions, info = self._call(learn)(
                t.agents, self.buffers, t.tasks, t.data, transitions, self.envs.obs, self.act_keys, t.env_steps
            )
            self.actions, info = jax.device_get((actions, info))
            device_s += time.perf_counter() - t1
            env_s += t1 - t0
            if learn:
                infos.append(info)
        return infos, env_s, device_s, 0.0

    def _host_actions(self) -> np.ndarray:
        """Returns the next actions, computed on the host CPU from the copy of the agents (next_actions' keys)."""
        return self._actions_from(self.host.agents, jax.device_put(self.envs.obs, self.cpu), self.host_keys)

    def _chunked_steps(self, n: int) -> tuple[list[dict], float, float, float]:
        """Takes n env steps in chunks of up to online_chunk (a chunk never straddles the end of the random phase):
        the host acts for a whole chunk with its copy of the agents, then one device call adds the chunk's
        transitions and makes its updates. Without --online-overlap the host waits for that call and refreshes its
        copy, so a chunk acts with the agents as of its start; with it, the host acts for the next chunk while the
        call runs, with the copy from before the call, and refreshes it once that chunk is taken (the last call of the
        n steps is always waited for, so every log row, evaluation and checkpoint sees settled agents). Returns the
        infos and the seconds in envs (with host acting), waiting for device calls (with refreshing the host's copy of
        the agents) and, of those, in the refresh."""
        t, cfg = self.t, self.t.cfg
        timing = {"env": 0.0, "device": 0.0, "copy": 0.0}
        infos: list[dict] = []
        if self.host.agents is None:
            self.host.refresh(t.agents)
        end = t.env_steps + n
        pending = None  # --online-overlap: (info, learn) of the call still running
        while t.env_steps < end:
            k = min(cfg.online_chunk, end - t.env_steps)
            if t.env_steps < cfg.random_steps:
                k = min(k, cfg.random_steps - t.env_steps)
            learn = t.env_steps + 1 > cfg.random_steps  # as _steps: no updates in the random phase
            t0 = time.perf_counter()
            chunk = []
            for i in range(k):
                chunk.append(self.envs.step(self.actions))
                t.env_steps += 1
                if i < k - 1:
                    self.actions = self._host_actions()
            transitions = {key: np.stack([c[key] for c in chunk]) for key in chunk[0]}
            timing["env"] += time.perf_counter() - t0
            if pending is not None:
                self._settle(*pending, infos, timing)
            t1 = time.perf_counter()
            t.agents, self.buffers, info = self._chunk_call(learn)(t.agents, self.buffers, t.tasks, t.data, transitions)
            timing["device"] += time.perf_counter() - t1  # the dispatch; _settle adds the wait
            pending = (info, learn)
            if not cfg.online_overlap or t.env_steps >= end:
                self._settle(*pending, infos, timing)
                pending = None
            t2 = time.perf_counter()
            self.actions = self._host_actions()
            timing["env"] += time.perf_counter() - t2
        return infos, timing["env"], timing["device"], timing["copy"]

    def _settle(self, info: dict, learn: bool, infos: list[dict], timing: dict) -> None:
        """Waits for the chunk call that returned info, refreshes the host's copy of the agents (only if it
        learned: the random phase leaves them as they are) and keeps its info."""
        t1 = time.perf_counter()
        jax.block_until_ready(self.t.agents)
        t_copy = time.perf_counter()
        if learn:
            self.host.refresh(self.t.agents)  # only the leaves acting reads
        timing["copy"] += time.perf_counter() - t_copy
        info = jax.device_get(info)
        timing["device"] += time.perf_counter() - t1
        if learn:
            infos.append(info)

    def _chunk_call(self, learn: bool):
        if learn not in self.chunk_calls:
            t = self.t
            self.chunk_calls[learn] = make_online_chunk(t.step_fn, t.cfg.utd, t.cfg.online_buffer, learn)
        return self.chunk_calls[learn]

    def _log(
        self, info: dict, std: np.ndarray, n: int, seconds: float, env_s: float, device_s: float, copy_s: float
    ) -> None:
        t = self.t
        updates = next(iter(info.values())).shape[0] if info else 0
        for r in t.runs:
            row = {"step": t.total_step, "env_steps": t.env_steps, "run": r.index, "task": r.dataset, "seed": r.seed}
            kept = info["skipped"][:, r.index] == 0 if "skipped" in info else slice(None)
            for k in self.info_keys:
                values = info[k][:, r.index] if k == "skipped" else info[k][kept, r.index] if info else np.zeros(0)
                row[f"train/{k}"] = float(np.mean(values)) if values.size else float("nan")
            row["train/action_std"] = float(std[r.index])
            row.update(self.envs.pop_finished(r.index))
            row["time/env_steps_per_sec"] = n / seconds
            row["time/updates_per_sec"] = updates / seconds
            row["time/env_ms_per_step"] = 1e3 * env_s / n
            row["time/device_ms_per_step"] = 1e3 * device_s / n
            row["time/copy_ms_per_step"] = 1e3 * copy_s / n
            row["time/elapsed_s"] = t.elapsed
            t.online_log.log(row)

    def close(self) -> None:
        """Closes the envs."""
        self.envs.close()


def source_commit() -> str | None:
    """Returns the sscp commit this process runs: $SSCP_COMMIT when set (a copy of the code without its git folder),
    else that of the checkout sscp is imported from (_checkout_commit)."""
    return os.environ.get("SSCP_COMMIT") or _checkout_commit()


@functools.cache
def _checkout_commit() -> str | None:
    """Returns `git rev-parse HEAD` of the checkout that holds this sscp package, with "-dirty" when it has
    uncommitted changes; None when sscp is not imported from a git checkout (an installed package: a git repository
    around its site-packages folder is not sscp's). Asked once per process."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def provenance() -> dict:
    """Returns what config.json records of where a run came from: the sscp commit and the command line."""
    return {"commit": source_commit(), "command": shlex.join(sys.argv)}


def _per_goal_summary(results: list[dict]) -> dict:
    """Returns one run's mean success, return and length over its evaluation goals (each with the same number of
    episodes), and success_goalN per goal N."""
    summary = {k: float(np.mean([r[k] for r in results])) for k in ("success", "return", "length")}
    return {**summary, **{f"success_goal{i + 1}": r["success"] for i, r in enumerate(results)}}


def _env_seed(run: Run) -> int:
    """Returns the seed of a run's first episode: a function of (seed, task) only, so a run trained alone or with
    others sees the same episodes."""
    return int(np.random.SeedSequence([run.seed, run.task, 1]).generate_state(1)[0])
