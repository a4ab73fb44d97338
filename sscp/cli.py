"""`sscp` command line: train, eval, data make, demo. Typed dataclass configs via tyro; errors as one line."""

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sscp import run_folder
from sscp.errors import ConfigError, SSCPError
from sscp.options import parse_agent_overrides, split_agent_overrides

# Each command imports what it runs inside its own function: `sscp --help`, `sscp data list` and `sscp plot` should not
# wait seconds for jax and the training loop, which only some commands need.

USAGE = """usage: sscp COMMAND [OPTIONS]

commands:
  demo                       make a small dataset, train SSCP, evaluate, print the result (about 6 minutes on 2 CPU
                             cores)
  train                      train an agent: sscp train --agent NAME --dataset NAME_OR_PATH [--steps N] [--seeds S ...]
                             [--run-dir DIR] [--agent.FIELD VALUE ...]
  eval RUN_DIR               evaluate a saved run: sscp eval RUN_DIR [--episodes N] [--video]
  data make NAME             generate an OGBench-format dataset locally: sscp data make NAME [--episodes N] [--out DIR]
  data list                  every dataset name `sscp data make` takes, with its evaluation environment
  data export NAME           write a dataset as Minari, D4RL or OGBench: sscp data export NAME --format F [--out DIR]
  plot RUN [RUN ...]         learning curves and an IQM table across tasks: sscp plot RUN ... [--metric M] [--out DIR]
  sweep SPEC                 run a grid of agents × datasets × seeds × options: sscp sweep SPEC.yaml [--out DIR]
                             [--address ADDR] (finished groups are skipped, unfinished ones resume)
  export RUN_DIR             write a run's policy for sscp.runtime (jax + numpy only): sscp export RUN_DIR [--out FILE]
                             [--format numpy] (sscp/sscp_bc/flow_bc/dql for sscp.runtime_numpy: numpy only)

`sscp COMMAND --help` lists every option with its meaning and default.
"""


def cmd_train(args: list[str]) -> None:
    """Parses and runs `sscp train`."""
    from sscp import report
    from sscp.agents import AGENTS, get_agent
    from sscp.train import TrainConfig, Trainer

    rest, agent_args = split_agent_overrides(args)
    if "-h" in rest or "--help" in rest:
        name = rest[rest.index("--agent") + 1] if "--agent" in rest[:-1] else "sscp"
        config_cls = get_agent(name)[1]
        wrapper = dataclasses.make_dataclass("AgentOptions", [("agent", config_cls, dataclasses.field(default=None))])
        try:  # the agent's options first, with their docstrings, as they are given: --agent.FIELD VALUE
            tyro.cli(
                wrapper,
                args=["--help"],
                prog=f"sscp train --agent {name}",
                description=config_cls.__doc__,
                default=wrapper(config_cls()),
                config=(tyro.conf.FlagConversionOff,),
            )
        except SystemExit:
            pass
        tyro.cli(TrainConfig, args=rest, prog="sscp train", description=f"agents: {', '.join(sorted(AGENTS))}")
    cfg = tyro.cli(TrainConfig, args=rest, prog="sscp train")
    _, config_cls = get_agent(cfg.agent)
    overrides = parse_agent_overrides(config_cls, agent_args, cfg.agent)
    report.run(Trainer(cfg, overrides))


@dataclass(frozen=True)
class EvalArgs:
    """Evaluate the latest checkpoint of a run folder (or the one of --step)."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run folder written by `sscp train`."""
    step: int | None = None
    """Evaluate the checkpoint of this update instead of the newest (kept ones: --keep-checkpoints of the run), e.g.
    to compare runs that a time limit stopped at different steps at the same budget."""
    episodes: int = 50
    """Episodes per run."""
    workers: int = -1
    """Processes stepping envs (-1: one per CPU core, 0: in this process)."""
    slots: int = 0
    """Envs stepped side by side (0: twice the workers, at least 4, on a CPU; eight per worker, at least 16, on an
    accelerator); results do not depend on it."""
    eval_max_steps: int | None = None
    """Cap each episode at this many steps (default: the cap the run was trained with, its --eval-max-steps in
    config.json; 0: the environment's own limit)."""
    video: bool = False
    """Also record one episode per run (goal-conditioned runs: one per evaluation goal) to <run>/videos/*.mp4 (needs
    the `video` extra and offscreen rendering: MUJOCO_GL=egl, set by default)."""
    video_max_steps: int | None = None
    """Cap the recorded episode's length (default: the environment's own limit)."""
    sample_steps: int | None = None
    """Network calls per action instead of the run's own, for agents whose sampler takes a step count that training
    does not depend on (sscp, sscp_bc: sample-steps; flow_bc: flow-steps; diffusion_bc: DDIM steps); the results go
    to eval_<step>_steps<K>.json."""


def restore_run(
    run_dir: Path, sample_steps: int | None = None, eval_max_steps: int | None = None, step: int | None = None
):
    """Returns a Trainer built from a run folder's config.json, holding the agents of its newest readable
    checkpoint, or of the checkpoint of update `step` if given (trainer.step is that checkpoint's step), or a
    ConfigError. sample_steps, if given, replaces the agent's acting step count (the config field its class names in
    acting_steps_field); eval_max_steps, if given, the evaluation episode cap (0: none)."""
    from sscp import checkpoint
    from sscp.agents import AGENTS
    from sscp.train import TrainConfig, Trainer

    cfg_path = run_dir / run_folder.CONFIG
    if not cfg_path.exists():
        raise ConfigError(f"{run_dir}: no config.json; pass a run folder written by `sscp train`")
    record = run_folder.RunFolder(run_dir).read_config()
    train = {k: tuple(v) if isinstance(v, list) else v for k, v in record["train"].items()}
    train.update(run_dir=str(run_dir), progress=False, tensorboard=False, wandb=False)  # eval writes eval_<step>.json
    if eval_max_steps is not None:
        if eval_max_steps < 0:
            raise ConfigError(f"--eval-max-steps must be >= 0 (0: the environment's own limit), got {eval_max_steps}")
        train["eval_max_steps"] = eval_max_steps or None
    agent = {k: tuple(v) if isinstance(v, list) else v for k, v in record["agent"].items()}
    if sample_steps is not None:
        name = train.get("agent")
        field = AGENTS[name][0].acting_steps_field if name in AGENTS else None
        if field is None:
            takes = [n for n, (cls, _) in AGENTS.items() if cls.acting_steps_field]
            raise ConfigError(
                f"--sample-steps: agent {name!r} of {run_dir} has no acting step count to change; it applies to "
                f"{', '.join(takes)}"
            )
        if sample_steps < 1:
            raise ConfigError(f"--sample-steps must be at least 1, got {sample_steps}")
        agent[field] = sample_steps
    trainer = Trainer(TrainConfig(**train), agent, record.get("example_shapes"))  # older runs: from the data
    ckpt_dir = run_dir / run_folder.CHECKPOINTS
    if step is not None:
        path = checkpoint.path_of(ckpt_dir, step)
        if not path.is_file():
            kept = ", ".join(str(checkpoint.step_of(p)) for p in checkpoint.list_checkpoints(ckpt_dir)) or "none"
            raise ConfigError(f"{run_dir}: no checkpoint of step {step} in {ckpt_dir} (kept: {kept})")
        restored = checkpoint.load(path, trainer.agents)  # an unreadable file: a one-line CheckpointError
    else:
        restored = checkpoint.load_latest(ckpt_dir, trainer.agents)
    if restored is None:
        raise ConfigError(f"{run_dir}: no readable checkpoint in {ckpt_dir}")
    trainer.step, trainer.agents, _ = restored
    return trainer


def cmd_eval(args: list[str]) -> None:
    """Parses and runs `sscp eval`: evaluates a saved run and writes eval_<step>.json beside it (and with --video,
    one MP4 per run in videos/)."""
    from sscp import report

    a = tyro.cli(EvalArgs, args=args, prog="sscp eval")
    if a.video:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before MuJoCo is imported: offscreen rendering without a display
    if a.slots < 0:
        raise ConfigError(f"--slots must be >= 0 (0: set by workers and device), got {a.slots}")
    run_dir = Path(a.run_dir)
    trainer = restore_run(run_dir, a.sample_steps, a.eval_max_steps, a.step)
    if a.video and trainer.chunking is not None:
        raise ConfigError(
            f"{run_dir} predicts action chunks (--agent.chunk-size / --agent.obs-history); --video records one-step "
            "policies only for now: evaluate without --video"
        )
    start = time.perf_counter()
    results = trainer.evaluate(a.episodes, a.workers, a.slots)
    wall = time.perf_counter() - start
    steps = "" if a.sample_steps is None else f", {a.sample_steps} network calls per action"
    cap = trainer.cfg.eval_max_steps
    if cap is None:
        cap_text = "episodes as long as the environment allows"
    else:
        whose = "the run's --eval-max-steps" if a.eval_max_steps is None else "--eval-max-steps"
        cap_text = f"episodes capped at {cap} steps ({whose}; --eval-max-steps 0 lifts it)"
    print(f"step {trainer.step}, {a.episodes} episodes per run{steps}, {cap_text}, {wall:.0f} s")
    print(f"{'task':<44} {'seed':>4} {'success':>8} {'return':>8} {'length':>8}")
    no_success = report.without_success(trainer.runs)
    for r, res in zip(trainer.runs, results, strict=True):
        success = "–" if r.env_name in no_success else f"{res['success']:.2f}"
        print(f"{r.dataset:<44} {r.seed:>4} {success:>8} {res['return']:>8.1f} {res['length']:>8.1f}")
    if no_success:
        print(report.success_note(no_success))
    out = run_dir / f"eval_{trainer.step}{'' if a.sample_steps is None else f'_steps{a.sample_steps}'}.json"
    out.write_text(
        json.dumps([{**dataclasses.asdict(r), **res} for r, res in zip(trainer.runs, results, strict=True)], indent=2)
    )
    print(f"wrote {out}")
    if a.video:
        write_videos(trainer, a.video_max_steps)


def write_videos(trainer, max_steps: int | None) -> None:
    """Records one episode per run (seed 0, the run's own agent) to <run>/videos/ and prints where each went;
    goal-conditioned runs get one episode per evaluation goal."""
    import jax
    import numpy as np

    from sscp.envs import eval_goal_count
    from sscp.video import record_episode, write_video

    key = jax.random.PRNGKey(trainer.step)
    for r in trainer.runs:

        def act(obs, goal=None, r=r):
            runs, goals = np.array([r.index]), None if goal is None else goal[None]
            actions = trainer.act(trainer.agents, runs, obs[None], jax.random.fold_in(key, r.index), goals)
            return np.asarray(actions)[0]

        goals = range(1, eval_goal_count(r.env_name) + 1) if trainer.goal_conditioned else [None]
        for task_id in goals:
            frames, ret, success = record_episode(act, r.env_name, seed=0, max_steps=max_steps, task_id=task_id)
            goal = "" if task_id is None else f"-goal{task_id}"
            name = f"run{r.index}-{Path(r.dataset).stem}-seed{r.seed}{goal}-step{trainer.step}.mp4"
            path = write_video(trainer.run_dir / "videos" / name, frames)
            print(f"wrote {path} ({len(frames) - 1} steps, return {ret:.1f}, success {success:.0f})")


@dataclass(frozen=True)
class DataMakeArgs:
    """Generate a dataset locally: OGBench names with the scripted oracles shipped in `ogbench`; locomotion names
    (hopper-medium-v5, ...: docs/data.md) from a SAC run trained here, all five datasets of the env at once."""

    name: Annotated[str, tyro.conf.Positional]
    """Dataset name, e.g. cube-single-play-v0 (see docs/data.md for the list)."""
    episodes: int | None = None
    """Training episodes (default: the official size); the -val split gets 10 % more."""
    out: str | None = None
    """Output folder (default: the dataset cache, $SSCP_DATA_DIR or ~/.cache/sscp/data)."""
    workers: int | None = None
    """Processes (default: every CPU core); locomotion: processes stepping evaluation envs (default: none, in this
    process)."""
    seed: int = 0
    """Generation seed (locomotion: also the SAC run's seed)."""
    train_steps: int | None = None
    """Locomotion datasets only: SAC env steps (default 1,000,000, D4RL-like experts; needs a GPU or many hours)."""
    transitions: int | None = None
    """Locomotion datasets only: transitions of random, medium and expert (default 1,000,000, as D4RL)."""
    eval_every: int | None = None
    """Locomotion datasets only: env steps between kept and evaluated SAC policies (default 20,000)."""
    eval_episodes: int | None = None
    """Locomotion datasets only: deterministic episodes per evaluation of a kept policy (default 10)."""
    env_steps_per_call: Annotated[int | None, tyro.conf.arg(aliases=("--online-chunk",))] = None
    """Locomotion datasets only: the SAC run's --env-steps-per-call (earlier name --online-chunk; default 1; K > 1
    acts K env steps on the host CPU, then makes their K updates in one device call: much faster on a GPU, actions up
    to K - 1 steps stale)."""
    overwrite: bool = False
    """Replace existing dataset files (without it, existing files are kept and nothing is generated)."""


@dataclass(frozen=True)
class DataExportArgs:
    """Write a dataset sscp can load (OGBench name, .npz, D4RL .hdf5, Minari id or folder) in another format."""

    name: Annotated[str, tyro.conf.Positional]
    """Dataset name or path, as `sscp train --dataset` takes it."""
    format: Literal["minari", "d4rl", "ogbench"]
    """Output format: a Minari dataset folder, a D4RL .hdf5 file or an OGBench .npz file."""
    out: str | None = None
    """Output folder (default: the current folder; minari: the Minari folder, $MINARI_DATASETS_PATH or
    ~/.minari/datasets, as dataset sscp/<name>)."""
    data_dir: str | None = None
    """Dataset cache folder NAME is looked up in (default $SSCP_DATA_DIR or ~/.cache/sscp/data)."""


DATA_USAGE = (
    "usage: sscp data make NAME [--episodes N] [--out DIR] [--workers W] [--seed S] [--overwrite] [--train-steps N] "
    "[--transitions N] [--env-steps-per-call K]; "
    "sscp data export NAME --format minari|d4rl|ogbench [--out DIR]; sscp data list (every dataset name); "
    "`sscp data make --help` and `sscp data export --help` list the options"
)


def cmd_data(args: list[str]) -> None:
    """Parses and runs `sscp data make` and `sscp data export`."""
    from sscp.data import locomotion
    from sscp.data.registry import export_command, list_command, make_command

    if args and args[0] in ("-h", "--help"):
        print(DATA_USAGE)
    elif args and args[0] == "list":
        list_command()
    elif args and args[0] == "make":
        a = tyro.cli(DataMakeArgs, args=args[1:], prog="sscp data make")
        options = {"train_steps": a.train_steps, "transitions": a.transitions, "eval_every": a.eval_every,
                   "eval_episodes": a.eval_episodes, "env_steps_per_call": a.env_steps_per_call}  # fmt: skip
        make_locomotion = None
        if a.name in locomotion.DATASETS:  # its recipe trains SAC: jax and the training loop load for these names only
            from sscp.recipes.locomotion import make as make_locomotion
        make_command(a.name, a.episodes, a.out, a.workers, a.seed, options,
                     overwrite=a.overwrite, make_locomotion=make_locomotion)  # fmt: skip
    elif args and args[0] == "export":
        e = tyro.cli(DataExportArgs, args=args[1:], prog="sscp data export")
        export_command(e.name, e.format, e.out, e.data_dir)
    else:
        raise ConfigError(DATA_USAGE)


@dataclass(frozen=True)
class PlotArgs:
    """Learning curves (mean ± std over seeds, one PNG per metric) and an aggregate table across tasks (IQM and
    mean of the final scores, 95 % stratified bootstrap confidence intervals) from one or more run folders."""

    runs: Annotated[tuple[str, ...], tyro.conf.Positional]
    """Run folders written by `sscp train` (seeds and tasks are pooled per agent and config: folders whose configs
    differ are drawn and aggregated apart, labelled with the options that differ)."""
    metric: tuple[str, ...] = ()
    """Columns to plot, e.g. eval/success train/critic_loss (default: eval/success, eval/return and
    eval/normalized_return where logged)."""
    out: str = "plots"
    """Output folder for <metric>.png, aggregate.md and aggregate.json."""
    reps: int = 10_000
    """Bootstrap resamples for the confidence intervals."""


def cmd_plot(args: list[str]) -> None:
    """Parses and runs `sscp plot`: writes the PNGs and the aggregate table, and prints the table."""
    from sscp.plot import plot_runs

    a = tyro.cli(PlotArgs, args=args, prog="sscp plot")
    if not a.runs:
        raise ConfigError("give one or more run folders: sscp plot RUN_DIR [RUN_DIR ...] (sscp plot --help: options)")
    for run in a.runs:
        if not (Path(run) / run_folder.CONFIG).is_file():
            raise ConfigError(f"{run}: no config.json; pass run folders written by `sscp train`")
    paths = plot_runs([Path(r) for r in a.runs], list(a.metric), Path(a.out), a.reps)
    print(paths[-2].read_text().rstrip())
    print("wrote " + ", ".join(map(str, paths)))


@dataclass(frozen=True)
class ExportArgs:
    """Write one run's acting policy as a self-contained jax.export file for `sscp.runtime.load` (jax + numpy only),
    or with --format numpy as arrays for `sscp.runtime_numpy.load` (numpy only), after checking that it acts like
    the trained agent."""

    run_dir: Annotated[str, tyro.conf.Positional]
    """Run folder written by `sscp train` (its newest readable checkpoint is exported)."""
    out: str | None = None
    """Output file (default: <run_dir>/policy_run<RUN>_step<STEP>.sscp, or .npz for --format numpy)."""
    run: int = 0
    """Which run of the folder (the index in config.json's runs: task-major, then seed)."""
    seed: int | None = None
    """Bake the noise key PRNGKey(SEED) into the policy (deterministic actions, no key input); by default the key is
    an input and runtime.load(path, seed) draws a fresh one per call. --format jax only."""
    format: Literal["jax", "numpy"] = "jax"
    """jax: a jax.export program for sscp.runtime (every agent; jax at run time). numpy: the network's arrays for
    sscp.runtime_numpy (sscp, sscp_bc, flow_bc and dql; numpy only at run time, the noise drawn with numpy or passed
    in)."""


def cmd_export(args: list[str]) -> None:
    """Parses and runs `sscp export`."""
    from sscp.export import export_run

    a = tyro.cli(ExportArgs, args=args, prog="sscp export")
    export_run(restore_run(Path(a.run_dir)), a.run, a.out, a.seed, format=a.format)


def cmd_demo(args: list[str]) -> None:
    """Runs the built-in demo (see sscp.demo)."""
    from sscp.demo import DemoArgs, demo

    demo(tyro.cli(DemoArgs, args=args, prog="sscp demo"))


def cmd_sweep(args: list[str]) -> int:
    """Parses and runs `sscp sweep`; returns its exit code."""
    from sscp.sweep import SweepArgs, sweep

    return sweep(tyro.cli(SweepArgs, args=args, prog="sscp sweep"))


COMMANDS = {
    "train": cmd_train,
    "sweep": cmd_sweep,
    "eval": cmd_eval,
    "data": cmd_data,
    "plot": cmd_plot,
    "export": cmd_export,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `sscp` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"sscp: error: unknown command {argv[0]!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        code = COMMANDS[argv[0]](argv[1:])
    except SSCPError as e:
        print(f"sscp: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    except KeyboardInterrupt:
        print(
            "\nsscp: interrupted; a train run resumes from its last checkpoint when rerun with the same --run-dir, "
            "a sweep when started again with the same spec and --out",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the output's reader went away (`sscp ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes stdout
        return 141
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
