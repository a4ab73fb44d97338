"""`sscp sweep SPEC`: a grid of agents × datasets × seeds × hyperparameters, run on Ray or in child processes of this
machine (docs/sweeps.md).

The spec (YAML, or a Python file defining a dict SWEEP) expands into *groups*: the runs that share an agent, its
options and a dataset (or, with `pack: tasks`, the single-task variants of one dataset) train in one process with
vmap over seeds, like `sscp train --seeds ...`. Each group is one Ray task (or child process) with a fixed run
folder under the sweep folder, so a worker that dies is retried and resumes from its last checkpoint, and a sweep
started again skips the groups whose `result.json` matches and resumes the others. Results are gathered into
`results.csv` and `results.md`.
"""

import contextlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sscp import checkpoint
from sscp.data import registry
from sscp.errors import ConfigError, SSCPError
from sscp.recipes.locomotion import make as make_locomotion
from sscp.sweep_results import ATTEMPTS_FILE, report_group, write_tables
from sscp.sweep_spec import Group, as_tuples, expand, load_spec, record_identity
from sscp.train import TrainConfig, Trainer

RESULT_FILE = "result.json"
FAILURE_FILE = "failure.txt"


@dataclass(frozen=True)
class SweepArgs:
    """Run a sweep spec (YAML or Python) on Ray or in child processes: one process per group of runs that share an
    agent, its options and a dataset (seeds vmapped); finished groups are skipped and unfinished ones resumed when the
    sweep is started again."""

    spec: Annotated[str, tyro.conf.Positional]
    """The sweep spec: a .yaml/.yml file, or a .py file that defines a dict SWEEP (keys in docs/sweeps.md)."""
    out: str | None = None
    """Sweep folder (run folders, results.csv, results.md); default sweeps/<spec file name without suffix>."""
    address: str | None = None
    """Address of an existing Ray cluster (e.g. auto or ray://HOST:10001); default: start a local Ray instance."""
    num_cpus: int | None = None
    """CPUs of the local Ray instance (default: all)."""
    num_gpus: int | None = None
    """GPUs of the local Ray instance (default: all Ray finds)."""
    max_retries: int = 3
    """How often a group whose worker process died (killed, out of memory, lost node) is started again; each retry
    resumes from the group's last checkpoint. Errors raised by training (bad data, divergence) are not retried."""
    executor: Literal["ray", "processes", "serial"] = "ray"
    """ray: groups run as Ray tasks in parallel; processes: without Ray, up to --parallel groups at once, each in a
    fresh process of this machine (retried like Ray's); serial: one after another in this process, without Ray (no
    retries; a rerun still resumes)."""
    parallel: int = 2
    """With --executor processes: how many groups train at once (on one GPU they share it)."""
    gpus: int = 0
    """With --executor processes: spread the groups over this many local GPUs, each child process seeing one
    (CUDA_VISIBLE_DEVICES), the one running the fewest groups; 0 leaves the children's view as it is."""
    only: tuple[str, ...] = ()
    """Run only the groups whose folder (agent/dataset/options, as --dry-run prints it) contains one of these texts,
    e.g. --only Hopper-v5 sac/; the others are left as they are (the tables still list them)."""
    dry_run: bool = False
    """Print the groups and their run folders, then stop."""


# ---- one group: what a Ray worker runs -----------------------------------------------------------------------------
def run_group(group: dict, sweep_dir: str) -> dict:
    """Trains one group in this process (resuming its run folder if it has one) and returns its result record, also
    written atomically to <run folder>/result.json: per-run results, training seconds (train_s: the jitted updates,
    compilation included) and this attempt's seconds from start to end (wall_s: loading, compiling, training,
    evaluating). Output goes to <run folder>/sweep.log."""
    started = time.perf_counter()
    g = Group.from_record(group)
    run_dir = Path(sweep_dir) / "runs" / g.key
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.time(),
               "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}  # fmt: skip
    with open(run_dir / ATTEMPTS_FILE, "a") as f:  # how many processes this group took; the pid lets a test kill one
        f.write(json.dumps(attempt) + "\n")
    train = as_tuples(g.train)
    if "eval_workers" not in train:  # the group's CPUs step its evaluation envs
        train["eval_workers"] = int(g.num_cpus) if g.num_cpus >= 2 else 0
    cfg = TrainConfig(
        **train,
        agent=g.agent,
        dataset=g.datasets or None,
        env=g.envs,
        seeds=g.seeds,
        run_dir=str(run_dir),
        progress=False,
    )
    options = as_tuples(g.options)
    with open(run_dir / "sweep.log", "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        trainer = Trainer(cfg, options)
        results = trainer.train()
    runs = []
    for r, res in zip(trainer.runs, results, strict=True):
        runs.append({"dataset": r.dataset, "seed": r.seed, **{k: float(v) for k, v in res.items()}})
    # gradient updates per run: the offline steps and one per env step after the random phase, times the UTD
    updates = trainer.step + max(trainer.env_steps - trainer.cfg.random_steps, 0) * trainer.cfg.utd
    record = {
        "group": g.record(),
        "runs": runs,
        "steps": trainer.step,
        "env_steps": trainer.env_steps,
        "updates": updates,
        "train_s": trainer.elapsed,
        "updates_per_sec": updates / trainer.elapsed if updates else float("nan"),
        "devices": trainer.num_devices,
        "wall_s": time.perf_counter() - started,
        "finished": time.time(),
    }
    checkpoint.write_atomic(run_dir / RESULT_FILE, json.dumps(record, indent=1).encode())
    return record


def finished_result(group: Group, sweep_dir: Path) -> dict | None:
    """Returns the group's result.json if it exists and belongs to this very group (same options, train config)."""
    path = sweep_dir / "runs" / group.key / RESULT_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    old = record.get("group") if isinstance(record, dict) else None
    if not isinstance(old, dict):
        return None
    return record if record_identity(old) == group.identity() else None


# ---- the sweep ---------------------------------------------------------------------------------------------------
def sweep(args: SweepArgs) -> int:
    """Runs a sweep; returns the exit code (0 when every group finished, 1 when some failed)."""
    spec = load_spec(args.spec)
    train = spec.get("train")
    if isinstance(train, dict) and isinstance(train.get("data_dir"), str):  # workers may start in another folder
        spec = {**spec, "train": {**train, "data_dir": str(Path(train["data_dir"]).expanduser().resolve())}}
    sweep_dir = Path(args.out or Path("sweeps") / Path(args.spec).stem).resolve()
    if args.max_retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {args.max_retries}")
    if args.parallel < 1:
        raise ConfigError(f"--parallel must be >= 1, got {args.parallel}")
    if args.gpus < 0:
        raise ConfigError(f"--gpus must be >= 0, got {args.gpus}")
    groups = expand(spec, str(args.spec))  # every name and option checked before Ray starts

    def chosen(g: Group) -> bool:  # by --only
        return not args.only or any(text in g.key for text in args.only)

    if args.only and not any(map(chosen, groups)):
        raise ConfigError(f"--only {' '.join(args.only)} matches no group of {args.spec} (--dry-run lists them)")
    todo = [g for g in groups if chosen(g) and finished_result(g, sweep_dir) is None]
    runs = sum(len(g.seeds) * max(len(g.datasets), len(g.envs)) for g in groups)
    left = sum(not chosen(g) for g in groups)
    print(f"sweep {sweep_dir}: {len(groups)} groups ({runs} runs), {len(groups) - len(todo) - left} finished, "
          f"{len(todo)} to run" + (f", {left} left out (--only)" if left else ""))  # fmt: skip
    if args.dry_run:
        for g in groups:
            state = "to run" if g in todo else "finished" if chosen(g) else "left out (--only)"
            print(f"  {g.key}  seeds {list(g.seeds)}  ({state})")
        return 0
    ray = _start_ray(args) if args.executor == "ray" and todo else None
    wall, failures = 0.0, {}
    try:
        if ray is not None:  # the default GPUs per group depend on the cluster
            groups = expand(spec, str(args.spec), float(ray.cluster_resources().get("GPU", 0)))
            todo = [g for g in groups if chosen(g) and finished_result(g, sweep_dir) is None]
        _prepare(sweep_dir, spec, groups)
        _prepare_data(todo)
        start = time.perf_counter()
        if ray is not None:
            failures = _run_ray(ray, todo, sweep_dir, args.max_retries)
        elif args.executor == "processes":
            failures = _run_processes(todo, sweep_dir, args.parallel, args.max_retries, args.gpus)
        else:
            failures = _run_serial(todo, sweep_dir)
        wall = time.perf_counter() - start
    finally:
        if ray is not None:
            ray.shutdown()
    records = {g.key: finished_result(g, sweep_dir) for g in groups}
    paths = write_tables(groups, records, sweep_dir, failures)
    if todo and wall > 0:
        _record_timing([records[g.key] for g in todo], wall, args.executor, len(failures), sweep_dir)
    print(paths[1].read_text().rstrip())
    print(f"wrote {paths[0]} and {paths[1]}")
    if failures:
        print(f"{len(failures)} group(s) failed; fix the cause and run the same command to continue", file=sys.stderr)
        return 1
    return 0


def _record_timing(done: list[dict | None], wall: float, executor: str, failed: int, sweep_dir: Path) -> None:
    """Prints and writes last_invocation.json: this invocation's groups, updates and updates/s."""
    updates = sum(r.get("updates", r["steps"]) * len(r["runs"]) for r in done if r)  # older records: offline only
    print(f"ran {len(done)} groups in {wall:.0f} s: {updates:,} updates in all, {updates / wall:,.0f} updates/s")
    timing = {
        "groups": len(done),
        "runs": sum(len(r["runs"]) for r in done if r),
        "updates": updates,
        "wall_s": wall,
        "updates_per_sec": updates / wall,
        "executor": executor,
        "failed": failed,
    }
    checkpoint.write_atomic(sweep_dir / "last_invocation.json", json.dumps(timing, indent=1).encode())


def _start_ray(args: SweepArgs):
    try:
        import ray
    except ImportError:
        raise ConfigError("sscp sweep runs on Ray: pip install 'sscp[ray]' (or pass --executor serial)") from None
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_cpus, num_gpus=args.num_gpus, include_dashboard=False, log_to_driver=False)
    return ray


def _prepare(sweep_dir: Path, spec: dict, groups: list[Group]) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"spec": spec, "groups": [g.record() for g in groups]}
    checkpoint.write_atomic(sweep_dir / "sweep.json", json.dumps(record, indent=1, default=str).encode())


def _prepare_data(groups: list[Group]) -> None:
    """Generates missing datasets here, once each, before any group starts (groups would race to write them)."""
    seen = set()
    for g in groups:
        if not g.train.get("make_data"):
            continue
        for name in g.datasets:
            spec = registry.resolve(name, g.train.get("data_dir"))
            if spec.train_path in seen or spec.train_path.exists():
                continue
            seen.add(spec.train_path)
            print(f"making {spec.dataset_name} (missing, train.make_data is set)")
            registry.make_command(
                name, g.train.get("data_episodes"), spec.train_path.parent, make_locomotion=make_locomotion
            )


def _run_serial(todo: list[Group], sweep_dir: Path) -> dict[str, str]:
    failures = {}
    for i, g in enumerate(todo):
        print(f"[{i + 1}/{len(todo)}] {g.key} seeds {list(g.seeds)}", flush=True)
        try:
            report_group(run_group(g.record(), str(sweep_dir)), g)
        except SSCPError as e:
            failures[g.key] = str(e)
            print(f"  failed: {e}", flush=True)
    return failures


def _child(group: dict, sweep_dir: str) -> None:
    """Runs one group in a child process of `--executor processes`; an error of training (SSCPError: bad data,
    divergence) is written to <run folder>/failure.txt and ends the process with status 2, which is not retried."""
    try:
        run_group(group, sweep_dir)
    except SSCPError as e:
        key = Group.from_record(group).key
        checkpoint.write_atomic(Path(sweep_dir) / "runs" / key / FAILURE_FILE, str(e).encode())
        sys.exit(2)


def _run_processes(
    todo: list[Group], sweep_dir: Path, parallel: int, max_retries: int, gpus: int = 0
) -> dict[str, str]:
    """Runs the groups in fresh child processes (spawned: no JAX state shared), at most `parallel` at once; with
    gpus > 0 each child sees one of that many local GPUs (CUDA_VISIBLE_DEVICES), the least busy. A child that dies
    (killed, out of memory) is started again up to max_retries times, resuming from its checkpoint."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    if parallel > max(gpus, 1):  # processes sharing a GPU must not each take most of its memory up front
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    queue = [(g, 0) for g in todo]
    running: dict = {}  # process -> (group, tries, gpu)
    failures, done = {}, 0
    try:
        while queue or running:
            while queue and len(running) < parallel:
                g, tries = queue.pop(0)
                busy = [gpu for _, _, gpu in running.values()]
                gpu = min(range(gpus), key=busy.count) if gpus else None
                running[_start_child(ctx, g, sweep_dir, gpu)] = (g, tries, gpu)
            time.sleep(0.2)
            for proc in [p for p in running if not p.is_alive()]:
                g, tries, _ = running.pop(proc)
                proc.join()
                record = finished_result(g, sweep_dir) if proc.exitcode == 0 else None
                if record is None and proc.exitcode != 2 and tries < max_retries:
                    print(f"{g.key}: the process ended with status {proc.exitcode}; starting it again", flush=True)
                    queue.append((g, tries + 1))
                    continue
                done += 1
                print(f"[{done}/{len(todo)}] ", end="")
                if record is not None:
                    report_group(record, g)
                    continue
                failures[g.key] = _failure(g, sweep_dir, proc.exitcode, tries)
                print(f"{g.key} failed: {failures[g.key]}", flush=True)
    finally:
        for proc in running:  # Ctrl-C or an error here: no child outlives the sweep (each resumes next time)
            proc.terminate()
        for proc in running:
            proc.join()
    return failures


def _start_child(ctx, g: Group, sweep_dir: Path, gpu: int | None):
    """Starts the child process of a group, seeing only GPU `gpu` when it is given."""
    (sweep_dir / "runs" / g.key / FAILURE_FILE).unlink(missing_ok=True)
    proc = ctx.Process(target=_child, args=(g.record(), str(sweep_dir)), name=g.key)
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # a spawned child copies the environment as it starts
    try:
        proc.start()
    finally:
        if gpu is not None and before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        elif gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
    return proc


def _failure(g: Group, sweep_dir: Path, exitcode: int | None, tries: int) -> str:
    """Returns why a group failed: its training error (failure.txt), or how its process ended."""
    failure = sweep_dir / "runs" / g.key / FAILURE_FILE
    if failure.exists():
        return failure.read_text()
    return f"the process ended with status {exitcode} {tries + 1} times; the run folder resumes on the next start"


def _run_ray(ray, todo: list[Group], sweep_dir: Path, max_retries: int) -> dict[str, str]:
    remote = ray.remote(max_calls=1)(run_group)  # a fresh process per group: no JAX state or GPU memory carried over
    pending = {}
    for g in todo:
        env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"} if 0 < g.num_gpus < 1 else {}
        ref = remote.options(
            num_cpus=g.num_cpus,
            num_gpus=g.num_gpus,
            max_retries=max_retries,
            retry_exceptions=False,
            runtime_env={"env_vars": env} if env else None,
        ).remote(g.record(), str(sweep_dir))
        pending[ref] = g
    failures, done = {}, 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        g = pending.pop(ready[0])
        done += 1
        print(f"[{done}/{len(todo)}] ", end="")
        try:
            report_group(ray.get(ready[0]), g)
            continue
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(e.cause, BaseException) else e
            failures[g.key] = f"{type(cause).__name__}: {cause}".splitlines()[0]
        except ray.exceptions.WorkerCrashedError:
            failures[g.key] = f"worker died {max_retries + 1} times; the run folder resumes on the next start"
        print(f"{g.key} failed: {failures[g.key]}", flush=True)
    return failures
