"""What `sscp train` is asked to do: the options of a training process (TrainConfig), the defaults that depend on other
options (resolve), the checks that need the agent's config too (check), and the runs (tasks x seeds) it trains."""

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sscp.agents import is_goal_conditioned
from sscp.envs import check_env_id
from sscp.errors import ConfigError


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
    env_steps_per_call: Annotated[int, tyro.conf.arg(aliases=("--online-chunk",))] = 1
    """Online: env steps per device call (--online-chunk is its earlier name). 1 is the paper's loop: after every env
    step one call adds the transition, updates, and returns the next actions from the updated agent. K > 1 acts on
    the host CPU with a copy of the agent refreshed every K env steps, then one call adds the K transitions and makes
    their K × utd updates in the same order as K single calls: far fewer host round trips, but actions come from an
    agent up to K − 1 env steps stale (a speed option, docs/online.md)."""
    online_overlap: bool = False
    """With --env-steps-per-call K > 1: the host acts for the next K env steps while the device makes the current
    K steps' updates, with the agent from before them (actions up to 2K − 1 env steps stale instead of K − 1). The
    host's and the device's time per call then overlap instead of adding up (a speed option, off by default)."""
    online_agent: tuple[str, ...] = ()
    """Agent options that change when the online phase starts, as FIELD=VALUE (`--online-agent
    normalize_q_loss=False exploration_noise=0.1`): the offline phase trains with --agent.*, the online phase with
    these on top; only fields that change no parameter shape or optimiser (SSCP's losses, exploration and target
    noise; the error lists them). Not the paper's (its online phase keeps the offline settings): docs/online.md."""
    online_agent_at: int | None = None
    """Apply --online-agent's options from offline update N on instead of when the online phase starts. Without
    --online-steps this is the offline-only control of a fine-tuning with changed options: the same change at the
    same update, offline data only (benchmarks/gpu/offline_to_online.sh's control)."""
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
    least 4, on a CPU, eight per worker, at least 16, on an accelerator. Results do not depend on it; more slots mean
    fewer, larger policy calls and more envs to build."""
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
    plot: bool = True
    """Redraw <run-dir>/curves.png after each evaluation (matplotlib's import and drawing are slow on a small CPU);
    --no-plot leaves it out (`sscp plot RUN` draws learning curves from the logs at any time)."""
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
        _check_goal_conditioned(cfg)
    if cfg.env:
        _check_from_scratch(cfg)
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
    if cfg.env_steps_per_call <= 0:
        raise ConfigError(
            f"--env-steps-per-call must be positive (1: one device call per env step), got {cfg.env_steps_per_call}"
        )
    if cfg.online_overlap and cfg.env_steps_per_call == 1:
        raise ConfigError("--online-overlap needs --env-steps-per-call K > 1 (the host acts while the device updates)")
    if cfg.online_agent and not cfg.online_steps and cfg.online_agent_at is None:
        raise ConfigError(
            "--online-agent sets options of the online phase: it needs --online-steps (or --online-agent-at N, "
            "the offline update they take over at)"
        )
    if cfg.online_agent_at is not None:
        if not cfg.online_agent:
            raise ConfigError("--online-agent-at N says when --online-agent's options take over: give --online-agent")
        last = steps if cfg.online_steps else steps - 1  # offline only: a switch at the end would change nothing
        if not 0 <= cfg.online_agent_at <= last:
            raise ConfigError(f"--online-agent-at must be in [0, {last}] (--steps {steps}), got {cfg.online_agent_at}")
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


def _check_goal_conditioned(cfg: TrainConfig) -> None:
    if cfg.env or cfg.online_steps:
        raise ConfigError(f"{cfg.agent} is goal-conditioned and trains offline only: drop --env and --online-steps")
    if cfg.dataset is not None and len(cfg.dataset) != 1:
        raise ConfigError(
            f"{cfg.agent} is goal-conditioned: give one dataset (e.g. pointmaze-medium-navigate-v0), got "
            f"{len(cfg.dataset)}; every run is evaluated on all of its environment's evaluation goals"
        )


def _check_from_scratch(cfg: TrainConfig) -> None:
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
        raise ConfigError("--online-buffer separate draws half of each batch from the offline data: it needs --dataset")
    for name in cfg.env:
        check_env_id(name)


def check(cfg: TrainConfig, agent_cfg) -> None:
    """Raises a ConfigError for options out of range, given the resolved config and the agent's config."""
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
    if agent_cfg.batch_size <= 0:
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
