"""Fault injection for sscp's reliability guarantees: kills, corrupt datasets and checkpoints, NaN, full disks.

Every trial injects one fault into a tiny training run (pointmaze, 16-wide networks, batch 32, a few hundred steps)
and checks what happened against an uninterrupted reference run; a trial whose outcome is not the promised one counts
as FAILED, and the script then exits with status 1. The result is a markdown table, written between the markers
`<!-- faults:begin -->` and `<!-- faults:end -->` of --out (docs/reliability.md explains each guarantee):

    python benchmarks/faults.py                      # 5 trials per random fault, about 5 minutes on 2 CPU cores
    python benchmarks/faults.py --trials 1 --only data ckpt nan disk --out /tmp/faults.md

Outcomes: "resumed exactly" (the run finished bit-identical to the reference), "clear error" (a one-line `sscp: error:`
naming the file or step, no traceback, nothing else damaged), "data intact" (the fault was absorbed: nothing changed
that matters and the run completed), "FAILED" (anything else; the notes say what).
"""

import argparse
import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

BASE_DATASET = "pointmaze-medium-navigate-v0"
TASK = "pointmaze-medium-navigate-singletask-task1-v0"
EPISODES, EPISODE_STEPS = 3, 100  # 297 transitions: the tiny dataset of tests/conftest.py
TINY_AGENT = {"batch_size": 32, "actor_hidden_dims": (16, 16), "critic_hidden_dims": (16, 16), "time_embed_dim": 16}
OUTCOMES = ("resumed exactly", "clear error", "data intact", "FAILED")
FAULTS = ("kill", "data", "ckpt", "nan", "disk")
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"

# The in-process runs (checkpoint, NaN and disk faults): 300 steps, a row every 50, a checkpoint every 100.
STEPS, LOG_EVERY, SAVE_EVERY = 300, 50, 100
# The killed runs (subprocesses): two vmapped seeds, 600 steps, an evaluation (and plot) every 200, as in
# tests/test_train.py, so that kills land in training, evaluation, plotting and saving alike.
KILL_STEPS, KILL_SEEDS = 600, ("0", "1")


def tiny_agent_args() -> list[str]:
    """Returns TINY_AGENT as `sscp train` options."""
    args = []
    for name, value in TINY_AGENT.items():
        values = value if isinstance(value, tuple) else (value,)
        args += [f"--agent.{name.replace('_', '-')}", *map(str, values)]
    return args


# ---- trials and rows ------------------------------------------------------------------------------------------------


class TrialFailed(Exception):
    """A check of a trial did not hold; the message says which."""


def check(condition: bool, message: str) -> None:
    """Raises TrialFailed(message) unless condition holds (an `assert` that survives python -O)."""
    if not condition:
        raise TrialFailed(message)


@dataclasses.dataclass
class Row:
    """One line of the table: a fault, what its trials check, and their outcomes."""

    fault: str
    checked: str
    outcomes: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def trial(self, fn: Callable[[list[str]], str], log: Callable[[str], None] = print) -> str:
        """Runs fn(notes) -> outcome once, recording FAILED (with the reason) for failed checks and any exception."""
        start = time.perf_counter()
        notes: list[str] = []
        try:
            outcome = fn(notes)
            if outcome not in OUTCOMES:
                raise TrialFailed(f"unknown outcome {outcome!r}")
        except TrialFailed as e:
            outcome = "FAILED"
            notes.append(str(e))
        except Exception as e:  # a crash of the trial itself is a failure too, never a silent pass
            outcome = "FAILED"
            frame = traceback.extract_tb(e.__traceback__)[-1]
            notes.append(f"{type(e).__name__}: {e} (at {Path(frame.filename).name}:{frame.lineno})")
        seconds = time.perf_counter() - start
        self.seconds += seconds
        self.outcomes.append(outcome)
        label = f"trial {len(self.outcomes)}"
        if notes:
            self.notes.append(f"{label}: {'; '.join(notes)}")
        log(f"  [{self.fault}] {label}: {outcome} ({seconds:.1f} s){': ' + '; '.join(notes) if notes else ''}")
        return outcome

    @property
    def failed(self) -> int:
        return self.outcomes.count("FAILED")


# ---- helpers --------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    """Sets obj.name = value for the duration (adding the attribute if obj lacks it), then restores it."""
    missing = object()
    old = obj.__dict__.get(name, missing) if isinstance(obj, type) else getattr(obj, name, missing)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if old is missing:
            delattr(obj, name)
        else:
            setattr(obj, name, old)


@contextlib.contextmanager
def compilation_cache(path: Path) -> Iterator[None]:
    """Uses a persistent XLA compilation cache at path in this process (and restores the old settings after).

    A cached executable is the same machine code as a fresh compile, so this only saves time (each Trainer jits its
    own functions, so without the cache every in-process run would compile again).
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    settings = {
        "jax_compilation_cache_dir": str(path),
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": -1,
    }
    old = {name: getattr(jax.config, name) for name in settings}
    for name, value in settings.items():
        jax.config.update(name, value)
    cc.reset_cache()
    try:
        yield
    finally:
        for name, value in old.items():
            jax.config.update(name, value)
        cc.reset_cache()


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """Returns {name: sha256} of the files in folder ({} if it does not exist)."""
    folder = Path(folder)
    return {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


def ckpt_steps(run_dir: Path) -> list[int]:
    from sscp import checkpoint

    return [int(p.name[5:15]) for p in checkpoint.list_checkpoints(Path(run_dir) / "checkpoints")]


def stray_files(run_dir: Path) -> list[str]:
    """Returns files in checkpoints/ that are not checkpoints (temporary files a kill left behind)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not re.fullmatch(r"step_\d{10}\.ckpt", p.name))


def csv_steps(run_dir: Path) -> list[int]:
    from sscp.runlog import read_csv

    return [int(r["step"]) for r in read_csv(Path(run_dir) / "train.csv")]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def compare_runs(run: Path, ref: Path, steps: int, log_every: int) -> list[str]:
    """Returns what differs between run folders run and ref: CSV rows (ignoring time/*), the steps logged per run
    (each of log_every .. steps exactly once), the checkpoint files and their parameters bit for bit."""
    from sscp import checkpoint
    from sscp.runlog import read_csv

    problems = []
    for name in ("train.csv", "eval.csv"):
        got, want = without_time(read_csv(run / name)), without_time(read_csv(ref / name))
        if got != want:
            diff = next(
                (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want))
            )
            problems.append(f"{name} differs from the reference ({len(got)} vs {len(want)} rows, first at row {diff})")
    rows = read_csv(run / "train.csv")
    expected = list(range(log_every, steps + 1, log_every))
    for run_index in sorted({r["run"] for r in rows} | {"0"}):
        logged = [int(r["step"]) for r in rows if r["run"] == run_index]
        if logged != expected:
            dup = sorted({s for s in logged if logged.count(s) > 1})
            missing = sorted(set(expected) - set(logged))
            problems.append(f"train.csv run {run_index}: duplicated steps {dup}, missing steps {missing}")
    if ckpt_steps(run) != ckpt_steps(ref):
        problems.append(f"checkpoints {ckpt_steps(run)} differ from the reference's {ckpt_steps(ref)}")
        return problems
    for step in ckpt_steps(ref):
        name = f"checkpoints/step_{step:010d}.ckpt"
        got, want = (checkpoint.read_payload(d / name) for d in (run, ref))
        got_leaves, want_leaves = _leaves(got["state"]), _leaves(want["state"])
        same = got["step"] == want["step"] and len(got_leaves) == len(want_leaves) > 0
        same = same and all(
            a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in zip(got_leaves, want_leaves, strict=True)
        )
        if not same:
            problems.append(f"{name}: parameters are not bit-identical to the reference's")
    return problems


def _leaves(tree) -> list[np.ndarray]:
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def all_finite(tree) -> bool:
    return all(np.isfinite(x).all() for x in _leaves(tree) if x.dtype.kind == "f")


def one_line_error(stderr: str) -> str | None:
    """Returns the message of a stderr that is exactly one `sscp: error: ...` line, else None."""
    lines = stderr.strip().splitlines()
    if len(lines) == 1 and lines[0].startswith("sscp: error: ") and "Traceback" not in stderr:
        return lines[0]
    return None


def describe_stderr(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    if not lines:
        return "nothing on stderr"
    if "Traceback" in stderr:
        return f"a traceback ending in {lines[-1]!r}"
    if len(lines) == 1:
        return repr(lines[0])
    return f"{len(lines)} lines on stderr, the last {lines[-1]!r}"


class _Stop(Exception):
    """Raised by a patched Trainer to end an in-process run at a chosen point, as a crash would."""


# ---- the lab: data, compilation cache, reference runs ---------------------------------------------------------------


class Lab:
    """The shared material of all faults: a work folder, the tiny dataset, a compilation cache, reference runs."""

    def __init__(self, work: Path, data_dir: Path | None = None, log: Callable[[str], None] = print):
        self.work = Path(work)
        self.log = log
        self.cache = self.work / "jax_cache"
        self.data_dir = Path(data_dir) if data_dir is not None else self._make_data()
        self.env = {
            **os.environ,
            "JAX_COMPILATION_CACHE_DIR": str(self.cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
        }
        self._count = 0
        self._reference: Path | None = None
        self._template = None

    def _make_data(self) -> Path:
        from sscp.data.generate import generate

        folder = self.work / "data"
        generate(BASE_DATASET, folder, episodes=EPISODES, workers=1, progress=False, max_episode_steps=EPISODE_STEPS)
        return folder

    def fresh(self, label: str) -> Path:
        """Returns a new, not yet existing path under the work folder."""
        self._count += 1
        return self.work / f"{label}-{self._count}"

    # -- in-process runs --
    def train_args(self, run_dir: Path, *extra: str) -> list[str]:
        """Returns the `sscp train` arguments of the in-process runs."""
        options = (
            f"train --dataset {TASK} --seeds 0 --steps {STEPS} --log-every {LOG_EVERY} --save-every {SAVE_EVERY} "
            "--eval-every 0 --eval-episodes 1 --eval-workers 0 --eval-max-steps 50 --keep-checkpoints 2 --no-progress"
        )
        paths = ["--run-dir", str(run_dir), "--data-dir", str(self.data_dir)]
        return [*options.split(), *paths, *extra, *tiny_agent_args()]

    def cli(self, args: list[str]) -> tuple[int | str, str, str]:
        """Returns (exit code, stdout, stderr) of sscp.cli.main(args) run in this process, with the compilation cache.

        An exception escaping main() is what a user would see as a traceback: it is written to the returned stderr and
        the code is "traceback" (or "stopped" for the _Stop of a simulated crash).
        """
        from sscp.cli import main

        out, err = io.StringIO(), io.StringIO()
        with compilation_cache(self.cache), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | str = main(args)
            except _Stop:
                code = "stopped"
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
            except Exception:
                traceback.print_exc()
                code = "traceback"
        return code, out.getvalue(), err.getvalue()

    def reference(self) -> Path:
        """Returns the run folder of an uninterrupted in-process run (made on first use)."""
        if self._reference is None:
            path = self.fresh("reference")
            code, _, err = self.cli(self.train_args(path))
            if code != 0:
                raise RuntimeError(f"the reference run failed ({code}): {err[-2000:]}")
            self._reference = path
        return self._reference

    def template(self):
        """Returns agents shaped like those of the in-process runs, to load checkpoints with."""
        if self._template is None:
            from sscp.train import TrainConfig, Trainer

            cfg = TrainConfig(dataset=(TASK,), seeds=(0,), data_dir=str(self.data_dir), run_dir=str(self.fresh("t")))
            self._template = Trainer(cfg, TINY_AGENT).agents
        return self._template

    # -- subprocess runs --
    def kill_command(self, run_dir: Path) -> list[str]:
        """Returns the `python -m sscp.cli train` command of the killed runs."""
        options = (
            f"train --dataset {TASK} --seeds {' '.join(KILL_SEEDS)} --steps {KILL_STEPS} --log-every {LOG_EVERY} "
            f"--save-every {SAVE_EVERY} --eval-every 200 --eval-episodes 1 --eval-workers 0 --eval-max-steps 100 "
            "--keep-checkpoints 2 --no-progress"
        )
        return [
            *(sys.executable, "-m", "sscp.cli", *options.split()),
            *("--run-dir", str(run_dir), "--data-dir", str(self.data_dir), *tiny_agent_args()),
        ]


# ---- fault 1: SIGKILL at random points ------------------------------------------------------------------------------


def _kill_at(proc: subprocess.Popen, run_dir: Path, target: int, delay: float, deadline: float) -> str | None:
    """Waits until train.csv has a row of step >= target, sleeps delay, then SIGKILLs proc; returns where the run
    stood at the kill ("checkpoint 300, train.csv at 350"), or None when it finished before."""
    while not (steps := csv_steps(run_dir)) or max(steps) < target:
        if proc.poll() is not None:
            return None
        check(time.monotonic() < deadline, f"no train.csv row of step {target} in time")
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    check(proc.wait() == -signal.SIGKILL, f"the run did not die of SIGKILL (exit {proc.returncode})")
    return f"checkpoint {max(ckpt_steps(run_dir), default='none')}, train.csv at {max(csv_steps(run_dir), default=0)}"


def _kill_delay(rng: np.random.Generator) -> float:
    """Returns 0 s half of the time, else 0-0.3 s. Evaluation and plotting take most of the wall time (50 updates take
    tens of ms here), so random delays nearly always kill there; no delay kills in the update chunk, checkpoint write
    or evaluation that follows the row of the target step."""
    return 0.0 if rng.uniform() < 0.5 else float(rng.uniform(0.0, 0.3))


def fault_kill(lab: Lab, trials: int, rng: np.random.Generator) -> list[Row]:
    """SIGKILL a training subprocess once or twice at random points, rerun it, compare with an uninterrupted run."""
    row = Row(
        "SIGKILL at a random point (once or twice), then rerun",
        "the rerun resumes from the newest checkpoint; checkpoints bit-identical to an uninterrupted run; CSV rows "
        "equal ignoring time/*, each step once per run",
    )
    ref = lab.fresh("kill-reference")
    start = time.perf_counter()
    reference = subprocess.run(lab.kill_command(ref), capture_output=True, text=True, timeout=600, env=lab.env)
    lab.log(f"  [kill] reference run: {time.perf_counter() - start:.1f} s")
    if reference.returncode != 0:
        row.outcomes = ["FAILED"] * trials
        row.notes.append(f"the reference run failed: {describe_stderr(reference.stderr)}")
        return [row]
    targets = list(range(SAVE_EVERY, KILL_STEPS, LOG_EVERY))  # kill after the row of one of these steps (+ a delay)

    def trial(notes: list[str]) -> str:
        run = lab.fresh("kill")
        cmd = lab.kill_command(run)
        kills, target, delay = int(rng.integers(1, 3)), int(rng.choice(targets)), _kill_delay(rng)
        points: list[str] = []
        for launch in range(1, 5):
            with open(run.parent / f"{run.name}.{launch}.log", "w") as log:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=lab.env)
                try:
                    where = _kill_at(proc, run, target, delay, time.monotonic() + 300)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
            if where is None:
                check(proc.returncode == 0, f"launch {launch} exited with {proc.returncode}")
                if points:
                    points.append(f"launch {launch} finished before its kill")
                    break
                shutil.rmtree(run)  # finished before the first kill: start over, killing sooner
                target, delay = min(targets), 0.0
                continue
            points.append(f"kill {len(points) + 1} at {where}")
            later = [t for t in targets if t > max(csv_steps(run), default=0)]
            if len(points) == kills or not later:
                break
            target, delay = int(rng.choice(later)), _kill_delay(rng)
        check(bool(points), "no launch could be killed before it finished")
        newest = max(ckpt_steps(run), default=None)
        final = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=lab.env)
        notes.append("; ".join(points))
        check(final.returncode == 0, f"the rerun failed: {describe_stderr(final.stderr)}")
        if newest is not None:
            check(f"resuming {run} from step {newest}\n" in final.stdout, f"the rerun did not resume from {newest}")
        problems = compare_runs(run, ref, KILL_STEPS, LOG_EVERY)
        check(not problems, "; ".join(problems))
        if stray_files(run):
            notes.append(f"temporary files left in checkpoints/: {stray_files(run)}")
        return "resumed exactly"

    for _ in range(trials):
        row.trial(trial, lab.log)
    return [row]


# ---- fault 2: corrupt dataset files ---------------------------------------------------------------------------------


def _flip_bits(data: bytes, rng: np.random.Generator, low: int = 1, high: int = 8) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(low, high + 1))):
        i = int(rng.integers(len(out)))
        out[i] ^= 1 << int(rng.integers(8))
    return bytes(out)


def damage(old: bytes, new: bytes) -> str:
    """Returns how new differs from old: "emptied", "cut to 812 of 43471 bytes" or "3 bits flipped"."""
    if not new:
        return "emptied"
    if len(new) != len(old):
        return f"cut to {len(new)} of {len(old)} bytes"
    flipped = sum(bin(a ^ b).count("1") for a, b in zip(old, new, strict=True))
    return f"{flipped} bit{'s' if flipped != 1 else ''} flipped"


def _arrays_change(change: Callable[[dict, np.random.Generator], None]) -> Callable:
    """Returns corrupt(good bytes, rng) -> bytes: the archive re-saved after change(arrays, rng) edits its arrays."""

    def corrupt(data: bytes, rng: np.random.Generator) -> bytes:
        with np.load(io.BytesIO(data)) as archive:
            arrays = {k: archive[k] for k in archive.files}
        change(arrays, rng)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    return corrupt


def _set_random(key: str, value: float) -> Callable[[dict, np.random.Generator], None]:
    def change(arrays: dict, rng: np.random.Generator) -> None:
        values = arrays[key].copy()
        values[int(rng.integers(len(values))), int(rng.integers(values.shape[1]))] = value
        arrays[key] = values

    return change


def _edit(fn: Callable[[dict], None]) -> Callable[[dict, np.random.Generator], None]:
    return lambda arrays, rng: fn(arrays)


def _set_last_terminal(arrays: dict) -> None:
    arrays["terminals"] = arrays["terminals"].copy()
    arrays["terminals"][-1] = 0


# name -> (corrupt(bytes, rng) -> bytes, random?, damaged file ("train" or "val"), expected text in the error)
DATA_KINDS: dict[str, tuple[Callable, bool, str, str | None]] = {
    "truncated at a random byte": (lambda d, rng: d[: int(rng.integers(1, len(d)))], True, "train", None),
    "1-8 random bit flips": (_flip_bits, True, "train", None),
    "zero-length file": (lambda d, rng: b"", False, "train", "not a readable .npz"),
    "not a zip (CSV text)": (lambda d, rng: b"observations,actions\n0.1,0.2\n", False, "train", "not a readable .npz"),
    "missing key 'terminals'": (_arrays_change(_edit(lambda a: a.pop("terminals"))), False, "train", "'terminals'"),
    "NaN in observations": (_arrays_change(_set_random("observations", np.nan)), False, "train", "1 NaN values"),
    "inf in actions": (_arrays_change(_set_random("actions", np.inf)), False, "train", "1 infinite"),
    "an action outside [-1, 1]": (_arrays_change(_set_random("actions", 1.5)), False, "train", "outside [-1, 1]"),
    "integer observations": (
        _arrays_change(_edit(lambda a: a.update(observations=a["observations"].astype(np.int64)))),
        False,
        "train",
        "dtype int64",
    ),
    "mismatched lengths (one action fewer)": (
        _arrays_change(_edit(lambda a: a.update(actions=a["actions"][:-1]))),
        False,
        "train",
        "rows but 'observations' has",
    ),
    "empty arrays": (
        _arrays_change(_edit(lambda a: a.update({k: v[:0] for k, v in a.items()}))),
        False,
        "train",
        "no rows",
    ),
    "last terminal not 1": (_arrays_change(_edit(_set_last_terminal)), False, "train", "does not end with 1"),
    "validation split truncated": (lambda d, rng: d[: len(d) // 2], False, "val", None),
}


def _run_cli_subprocess(lab: Lab, args: list[str]) -> tuple[int | str, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "sscp.cli", *args], capture_output=True, text=True, timeout=300, env=lab.env
    )
    return done.returncode, done.stdout, done.stderr


def fault_data(lab: Lab, trials: int, rng: np.random.Generator, cli: str = "subprocess") -> list[Row]:
    """Damages a copy of the dataset in each way of DATA_KINDS; the loader and `sscp train` must give one clear line.

    cli="subprocess" runs `python -m sscp.cli train` (what a user sees); "inprocess" calls sscp.cli.main (faster).
    """
    from sscp.data.formats import load_ogbench_npz
    from sscp.errors import DataError

    good = {split: lab.data_dir / f"{BASE_DATASET}{suffix}.npz" for split, suffix in (("train", ""), ("val", "-val"))}
    before = {split: sha256(p) for split, p in good.items()}
    intact = {split: load_ogbench_npz(p, add_info=True) for split, p in good.items()}
    run_cli = _run_cli_subprocess if cli == "subprocess" else Lab.cli
    rows = []
    for kind, (corrupt, random, split, expected) in DATA_KINDS.items():
        row = Row(
            f"dataset: {kind}",
            "DataError; `sscp train`: one line `sscp: error: <file>: ...`"
            + (f" with {expected!r}" if expected else "")
            + ", exit 1, no run folder; good copy unchanged"
            + ("; or (damage missed the arrays) they load identical" if random else ""),
        )

        def trial(notes: list[str], corrupt=corrupt, split=split, expected=expected) -> str:
            folder = lab.fresh("data")
            folder.mkdir(parents=True)
            for p in good.values():
                shutil.copy(p, folder / p.name)
            path = folder / good[split].name
            path.write_bytes(corrupt(good[split].read_bytes(), rng))
            run_dir = lab.fresh("data-run")
            args = lab.train_args(run_dir)
            args[args.index("--data-dir") + 1] = str(folder)
            args[args.index("--steps") + 1] = "1"
            args[args.index("--log-every") + 1] = "1"
            try:
                loaded = load_ogbench_npz(path, add_info=True)
                error = None
            except DataError as e:
                loaded, error = None, str(e)
            code, _, err = run_cli(lab, args)
            check(all(sha256(p) == before[s] for s, p in good.items()), "the good dataset file changed")
            if error is None:
                # The damage missed every array (e.g. a bit flip in a zip field nothing reads): fine if nothing changed.
                for key, want in intact[split].items():
                    check(key in loaded, f"the loader silently dropped key {key!r}")
                    check(np.array_equal(loaded[key], want, equal_nan=True), f"the loader returned a changed {key!r}")
                check(code == 0, f"`sscp train` failed on a file that loads intact: {describe_stderr(err)}")
                notes.append("the damage missed the arrays")
                return "data intact"
            check(
                error.startswith(f"{path}: ") and "\n" not in error, f"DataError not one line naming the file: {error}"
            )
            check(expected is None or expected in error, f"DataError lacks {expected!r}: {error}")
            line = one_line_error(err)
            check(line is not None, f"`sscp train` printed {describe_stderr(err)}")
            check(code == 1, f"`sscp train` exited with {code}")
            check(line.startswith(f"sscp: error: {path}: "), f"the error does not name {path}: {line}")
            check(not run_dir.exists(), "`sscp train` created a run folder before failing")
            return "clear error"

        for _ in range(trials if random else 1):
            row.trial(trial, lab.log)
        rows.append(row)
    return rows


# ---- fault 3: corrupt checkpoints -----------------------------------------------------------------------------------


@contextlib.contextmanager
def stop_after(step: int) -> Iterator[None]:
    """Makes in-process runs stop (raise _Stop) once everything of `step` is done: after its train.csv row, or after
    its checkpoint where one is due, as if killed there."""
    from sscp.train import Trainer

    log_train, save = Trainer._log_train, Trainer.save

    def _log_train(self, *args):
        log_train(self, *args)
        if self.step == step and step % SAVE_EVERY and step < self.cfg.steps:
            raise _Stop

    def _save(self):
        save(self)
        if self.step == step:
            raise _Stop

    with patched(Trainer, "_log_train", _log_train), patched(Trainer, "save", _save):
        yield


def _flip_parameter_bit(data: bytes, rng: np.random.Generator) -> bytes:
    """Flips the lowest mantissa bit of one random parameter of a checkpoint: the smallest damage, which only a
    checksum can catch (the file still parses, with a parameter off by one unit in the last place)."""
    from sscp import checkpoint

    params = checkpoint.decode(data, "checkpoint")["state"]["params"]
    leaves = [x for x in _leaves(params) if x.dtype.kind == "f" and x.size >= 8]
    leaf = leaves[int(rng.integers(len(leaves)))]
    start = data.find(leaf.tobytes())
    check(start >= 0, "could not find the parameter bytes in the checkpoint")
    out = bytearray(data)
    out[start + leaf.dtype.itemsize * int(rng.integers(leaf.size))] ^= 1  # little-endian: byte 0 holds the low bits
    return bytes(out)


# name -> (corrupt(bytes, rng) -> bytes, random?, also make every older checkpoint unreadable?)
CKPT_KINDS: dict[str, tuple[Callable, bool, bool]] = {
    "truncated at a random byte": (lambda d, rng: d[: int(rng.integers(1, len(d)))], True, False),
    "1-8 random bit flips": (_flip_bits, True, False),
    "one low bit flipped in a parameter": (_flip_parameter_bit, False, False),
    "zero-length file": (lambda d, rng: b"", False, False),
    "every checkpoint unreadable": (lambda d, rng: d[: int(rng.integers(0, len(d)))], False, True),
}


CONFIG_KIND = "config.json truncated"


def _config_row(lab: Lab, rng: np.random.Generator) -> Row:
    """A run folder whose config.json is cut off: the rerun must refuse with one line and change nothing."""
    row = Row(
        f"run folder: {CONFIG_KIND}",
        "`sscp train` and `sscp eval`: one line `sscp: error:` naming config.json, exit 1 or 2; checkpoints and CSV "
        "logs unchanged",
    )

    def trial(notes: list[str]) -> str:
        run = lab.fresh("config")
        stop = int(rng.choice([200, 250, 300]))
        with stop_after(stop):
            code, _, err = lab.cli(lab.train_args(run))
        check(code == "stopped", f"the run to be damaged did not stop at {stop}: {describe_stderr(err)}")
        config = run / "config.json"
        data = config.read_bytes()
        config.write_bytes(data[: int(rng.integers(1, len(data)))])
        notes.append(f"stopped after step {stop}; config.json {damage(data, config.read_bytes())}")
        logs = [run / name for name in ("train.csv", "eval.csv") if (run / name).exists()]
        before = {**file_hashes(run / "checkpoints"), **{p.name: sha256(p) for p in logs}}
        for command in (lab.train_args(run), ["eval", str(run), "--episodes", "1", "--workers", "0"]):
            code, _, err = lab.cli(command)
            line = one_line_error(err)
            check(line is not None, f"`sscp {command[0]}` printed {describe_stderr(err)}")
            check(code in (1, 2), f"`sscp {command[0]}` exited with {code}")
            check(str(config) in line, f"the error of `sscp {command[0]}` does not name {config}: {line}")
        after = {**file_hashes(run / "checkpoints"), **{p.name: sha256(p) for p in logs if p.exists()}}
        check(after == before, "the run folder changed")
        return "clear error"

    row.trial(trial, lab.log)
    return row


def fault_ckpt(lab: Lab, trials: int, rng: np.random.Generator, kinds: list[str] | None = None) -> list[Row]:
    """Stops a run at a random point, damages its newest checkpoint, reruns it and compares with the reference.

    The kind CONFIG_KIND damages config.json instead (one trial: any cut leaves invalid JSON)."""
    rows = []
    for kind in kinds or [*CKPT_KINDS, CONFIG_KIND]:
        if kind == CONFIG_KIND:
            rows.append(_config_row(lab, rng))
            continue
        corrupt, random, every = CKPT_KINDS[kind]
        falls_back = "restarts from step 0" if every else "falls back to the previous checkpoint"
        row = Row(
            f"newest checkpoint: {kind}",
            f"a warning naming each damaged file; the rerun {falls_back} and ends bit-identical to an "
            "uninterrupted run (checkpoints; CSV rows ignoring time/*)",
        )

        def trial(notes: list[str], corrupt=corrupt, every=every) -> str:
            ref = lab.reference()
            run = lab.fresh("ckpt")
            stop = int(rng.choice([200, 250, 300]))
            with stop_after(stop):
                code, _, err = lab.cli(lab.train_args(run))
            check(code == "stopped", f"the run to be damaged did not stop at {stop}: {describe_stderr(err)}")
            paths = [run / "checkpoints" / f"step_{s:010d}.ckpt" for s in ckpt_steps(run)]
            check(len(paths) == 2, f"expected 2 checkpoints after step {stop}, found {ckpt_steps(run)}")
            damaged, how = paths if every else paths[-1:], []
            for path in damaged:
                data = path.read_bytes()
                path.write_bytes(corrupt(data, rng))
                how.append(f"step {int(path.name[5:15])} {damage(data, path.read_bytes())}")
            notes.append(f"stopped after step {stop}; {', '.join(how)}")
            code, out, err = lab.cli(lab.train_args(run))
            for path in damaged:
                if f"warning: skipping {path}: " not in err:
                    if code != 0:
                        then = f"the rerun failed with {describe_stderr(err)}"
                    else:
                        problems = compare_runs(run, ref, STEPS, LOG_EVERY)
                        then = "; ".join(problems) if problems else "the run still ended bit-identical"
                    raise TrialFailed(f"the damaged {path.name} was loaded without a warning; then {then}")
            check(code == 0, f"the rerun failed ({code}): {describe_stderr(err)}")
            if every:
                check("resuming" not in out, "the rerun claims to resume although no checkpoint is readable")
            else:
                previous = int(paths[0].name[5:15])
                check(
                    f"resuming {run} from step {previous}\n" in out,
                    f"the rerun did not fall back to step {previous}: "
                    + (re.search(r"resuming .*", out) or ["no 'resuming' line"])[0],
                )
            problems = compare_runs(run, ref, STEPS, LOG_EVERY)
            check(not problems, "; ".join(problems))
            return "resumed exactly"

        for _ in range(trials if random else 1):
            row.trial(trial, lab.log)
        rows.append(row)
    return rows


# ---- fault 4: NaN in an update --------------------------------------------------------------------------------------


def _adam_count(opt_state):
    import jax

    paths = jax.tree_util.tree_leaves_with_path(opt_state)
    return next(leaf for path, leaf in paths if "count" in jax.tree_util.keystr(path))


@contextlib.contextmanager
def poisoned_update(bad_when: Callable) -> Iterator[None]:
    """Patches SSCPAgent.update so that where bad_when(agent_before, agent_after) holds, grad_norm and every parameter
    become NaN (what a NaN gradient does); the same patch as tests/test_train.py."""
    import jax
    import jax.numpy as jnp

    from sscp.agents.sscp import SSCPAgent

    original = SSCPAgent.update

    def update(self, batch):
        agent, info = original(self, batch)
        nan = jnp.where(bad_when(self, agent), jnp.nan, 0.0)
        agent = agent.replace(params=jax.tree.map(lambda x: x + nan, agent.params))
        return agent, {**info, "grad_norm": info["grad_norm"] + nan}

    with patched(SSCPAgent, "update", update):
        yield


def fault_nan(lab: Lab, trials: int, rng: np.random.Generator) -> list[Row]:
    """NaN at a random update: the default stops naming the step; --on-nonfinite skip finishes with finite params."""
    from sscp import checkpoint
    from sscp.runlog import read_csv

    stop_row = Row(
        "NaN in the update of a random step (default --on-nonfinite stop)",
        "one line `sscp: error:` naming the step and the checkpoints folder, exit 1; train.csv ends at the chunk "
        "before; the newest checkpoint is the last one before the step, loads, and is finite",
    )
    skip_row = Row(
        "NaN in 5-30 % of updates at random, --on-nonfinite skip",
        "the run completes; final parameters finite; train/skipped > 0 and < 1 per chunk; every logged train/* "
        "value finite",
    )

    def stop_trial(notes: list[str]) -> str:
        bad = int(rng.integers(SAVE_EVERY + 1, STEPS + 1))
        run = lab.fresh("nan")
        with poisoned_update(lambda before, after: _adam_count(after.opt_state) == bad):
            code, _, err = lab.cli(lab.train_args(run))
        line = one_line_error(err)
        check(line is not None, f"`sscp train` printed {describe_stderr(err)}")
        check(code == 1, f"exit code {code}")
        check(
            re.match(rf"sscp: error: \S+ became (nan|inf|-inf) at step {bad} \(run 0: ", line) is not None,
            f"the error does not name step {bad}: {line}",
        )
        check(str(run / "checkpoints") in line, f"the error does not name the checkpoints folder: {line}")
        last_chunk, last_save = (bad - 1) // LOG_EVERY * LOG_EVERY, (bad - 1) // SAVE_EVERY * SAVE_EVERY
        logged = csv_steps(run)
        check(max(logged, default=0) == last_chunk, f"train.csv ends at {max(logged, default=0)}, not {last_chunk}")
        check(ckpt_steps(run)[-1:] == [last_save], f"checkpoints {ckpt_steps(run)}; expected the newest {last_save}")
        restored = checkpoint.load_latest(run / "checkpoints", lab.template())
        check(restored is not None and restored[0] == last_save, "the last good checkpoint does not load")
        check(all_finite(restored[1]), "the last good checkpoint holds NaN or inf")
        notes.append(f"NaN at step {bad}, kept checkpoint {last_save}")
        return "clear error"

    def skip_trial(notes: list[str]) -> str:
        import jax

        rate, salt = float(rng.uniform(0.05, 0.3)), int(rng.integers(1, 2**16))
        run = lab.fresh("nan-skip")
        with poisoned_update(lambda before, after: jax.random.bernoulli(jax.random.fold_in(before.rng, salt), rate)):
            code, _, err = lab.cli(lab.train_args(run, "--on-nonfinite", "skip"))
        check(code == 0, f"the run failed ({code}): {describe_stderr(err)}")
        rows = read_csv(run / "train.csv")
        check([int(r["step"]) for r in rows] == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY)), "steps missing")
        skipped = [float(r["train/skipped"]) for r in rows]
        check(sum(skipped) > 0 and all(0 <= s < 1 for s in skipped), f"train/skipped is {skipped}")
        losses = [float(r[k]) for r in rows for k in r if k.startswith("train/")]
        check(all(np.isfinite(losses)), "a logged train/* value is not finite")
        restored = checkpoint.load_latest(run / "checkpoints", lab.template())
        check(restored is not None and restored[0] == STEPS, "the final checkpoint does not load")
        check(all_finite(restored[1]), "the final parameters hold NaN or inf")
        notes.append(f"{np.mean(skipped):.0%} of updates skipped")
        return "data intact"

    for _ in range(trials):
        stop_row.trial(stop_trial, lab.log)
    for _ in range(trials):
        skip_row.trial(skip_trial, lab.log)
    return [stop_row, skip_row]


# ---- fault 5: disk full and permission denied while saving ---------------------------------------------------------


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullDiskFile:
    """A file whose first write stores half the bytes, then fails with ENOSPC, as a filling disk does."""

    def __init__(self, file):
        self._file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def write(self, data):
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        _enospc()

    def __getattr__(self, name):
        return getattr(self._file, name)


class _OsProxy:
    """Stands in for the os module inside one sscp module, with some functions replaced."""

    def __init__(self, **overrides):
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(os, name)


def _full_disk_open(path, mode="r", *args, **kwargs):
    return _FullDiskFile(open(path, mode, *args, **kwargs))


@contextlib.contextmanager
def _write_enospc(ckpt_dir: Path, info: dict) -> Iterator[None]:
    import sscp.atomic

    with patched(sscp.atomic, "open", _full_disk_open):
        yield


@contextlib.contextmanager
def _fsync_enospc(ckpt_dir: Path, info: dict) -> Iterator[None]:
    import sscp.atomic

    with patched(sscp.atomic, "os", _OsProxy(fsync=_enospc)):
        yield


@contextlib.contextmanager
def _mkdir_enospc(ckpt_dir: Path, info: dict) -> Iterator[None]:
    with patched(pathlib.Path, "mkdir", _enospc):
        yield


@contextlib.contextmanager
def _read_only(ckpt_dir: Path, info: dict) -> Iterator[None]:
    """chmod 0o500 on checkpoints/; where that does not stop this process (root), a patched open raising EACCES."""
    import sscp.atomic

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    mode = ckpt_dir.stat().st_mode & 0o777
    ckpt_dir.chmod(0o500)
    try:
        probe = ckpt_dir / ".probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
            root_writes = True
        except PermissionError:
            root_writes = False
        if not root_writes:
            info["how"] = "chmod 0o500"
            yield
            return
    finally:
        ckpt_dir.chmod(mode)
    info["how"] = "simulated"

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    with patched(sscp.atomic, "open", denied):
        yield


@contextlib.contextmanager
def _failing_save(step: int, install: Callable, info: dict) -> Iterator[None]:
    """Makes the checkpoint save of `step` fail with install(checkpoints folder, info) in place."""
    from sscp.train import Trainer

    save = Trainer.save

    def _save(self):
        if self.step != step:
            return save(self)
        ckpt_dir = self.run_dir / "checkpoints"
        info["before"] = file_hashes(ckpt_dir)
        with install(ckpt_dir, info):
            return save(self)

    with patched(Trainer, "save", _save):
        yield


@contextlib.contextmanager
def _failing_log(step: int, install: Callable, info: dict) -> Iterator[None]:
    """Makes the train.csv append of `step` fail with ENOSPC after half the row."""
    import sscp.runlog
    from sscp.train import Trainer

    log_train = Trainer._log_train

    def _log_train(self, *args):
        if self.step != step:
            return log_train(self, *args)
        info["before"] = file_hashes(self.run_dir / "checkpoints")
        with patched(sscp.runlog, "open", _full_disk_open):
            return log_train(self, *args)

    with patched(Trainer, "_log_train", _log_train):
        yield


@contextlib.contextmanager
def _failing_plot(step: int, info: dict) -> Iterator[None]:
    """Makes writing curves.png after the evaluation of `step` fail with ENOSPC."""
    import matplotlib.figure

    from sscp.train import Trainer

    evaluate = Trainer.evaluate

    def _evaluate(self, *args, **kwargs):
        results = evaluate(self, *args, **kwargs)
        if self.step == step:
            info["before"] = file_hashes(self.run_dir / "checkpoints")
            stack.enter_context(patched(matplotlib.figure.Figure, "savefig", _enospc))
        return results

    with contextlib.ExitStack() as stack, patched(Trainer, "evaluate", _evaluate):
        yield


# name -> (context manager factory(step, info), the saves/rows that may fail, the reason the error must give)
DISK_KINDS: dict[str, tuple[Callable, tuple[int, ...], str]] = {
    "ENOSPC writing a checkpoint (half the bytes written)": (
        lambda step, info: _failing_save(step, _write_enospc, info),
        (100, 200, 300),
        "No space left on device",
    ),
    "ENOSPC at fsync of a checkpoint": (
        lambda step, info: _failing_save(step, _fsync_enospc, info),
        (100, 200, 300),
        "No space left on device",
    ),
    "EACCES: checkpoints/ read-only": (
        lambda step, info: _failing_save(step, _read_only, info),
        (100, 200, 300),
        "Permission denied",
    ),
    "ENOSPC creating checkpoints/ (first save)": (
        lambda step, info: _failing_save(step, _mkdir_enospc, info),
        (100,),
        "No space left on device",
    ),
    "ENOSPC appending a row to train.csv": (
        lambda step, info: _failing_log(step, None, info),
        (50, 150, 250),
        "No space left on device",
    ),
    "ENOSPC writing curves.png (after the final evaluation)": (
        _failing_plot,
        (STEPS,),
        "No space left on device",
    ),
}
# The plot is a convenience: a run may also go on past a failed plot, with a warning naming the file and the reason.
MAY_CONTINUE = {"ENOSPC writing curves.png (after the final evaluation)": "curves.png"}


def fault_disk(lab: Lab, trials: int, rng: np.random.Generator, kinds: list[str] | None = None) -> list[Row]:
    """A write fails at a random save; sscp must stop with one clear line, keep the previous checkpoint byte for byte,
    and resume exactly once the disk has room again."""
    from sscp import checkpoint

    rows = []
    for kind in kinds or list(DISK_KINDS):
        make_fault, steps, reason = DISK_KINDS[kind]
        row = Row(
            f"disk: {kind}",
            f"one line `sscp: error:` naming the file and {reason!r}, exit 1; earlier checkpoints byte-identical "
            "and loadable, no temporary file; the rerun ends bit-identical to an uninterrupted run"
            + (
                "; or: a warning naming the file and the reason, and the run ends bit-identical"
                if kind in MAY_CONTINUE
                else ""
            ),
        )

        def trial(notes: list[str], make_fault=make_fault, steps=steps, reason=reason, row=row, kind=kind) -> str:
            ref = lab.reference()
            run = lab.fresh("disk")
            step = int(rng.choice(steps))
            info: dict = {}
            with make_fault(step, info):
                code, out, err = lab.cli(lab.train_args(run))
            notes.append(f"failed at step {step}" + (f" ({info['how']})" if "how" in info else ""))
            if info.get("how") == "simulated" and "simulated" not in row.fault:
                row.fault += " (simulated by a patched open: running as root, chmod 0o500 does not stop writes)"
            check("before" in info, "the fault was never triggered")
            if code == 0 and kind in MAY_CONTINUE:  # the run went on past the failed write
                warning = [w for w in (out + err).splitlines() if w.startswith("warning:") and MAY_CONTINUE[kind] in w]
                check(bool(warning) and reason in warning[0], f"no warning naming {MAY_CONTINUE[kind]} and {reason!r}")
                check("Traceback" not in err, f"`sscp train` printed {describe_stderr(err)}")
                problems = compare_runs(run, ref, STEPS, LOG_EVERY)
                check(not problems, "; ".join(problems))
                notes.append(f"went on with {warning[0]!r}")
                return "data intact"
            # A bad message is a failure, but the data checks below still run, so the notes tell whether data suffered.
            line, message = one_line_error(err), None
            if line is None:
                message = f"`sscp train` printed {describe_stderr(err)}"
            elif code != 1 or reason not in line or str(run) not in line:
                message = f"exit code {code}, message {line!r} (expected exit 1, the file and {reason!r})"
            after = file_hashes(run / "checkpoints")
            check(after == info["before"], f"checkpoints/ changed: {sorted(info['before'])} -> {sorted(after)}")
            check(not stray_files(run), f"temporary files left: {stray_files(run)}")
            restored = checkpoint.load_latest(run / "checkpoints", lab.template())
            previous = max(ckpt_steps(run), default=None)
            check((restored is None) == (previous is None), "the previous checkpoint does not load")
            check(restored is None or all_finite(restored[1]), "the previous checkpoint holds NaN or inf")
            code, _, err = lab.cli(lab.train_args(run))
            check(code == 0, f"the rerun failed ({code}): {describe_stderr(err)}")
            problems = compare_runs(run, ref, STEPS, LOG_EVERY)
            check(not problems, "; ".join(problems))
            check(message is None, f"{message}; the data were fine: checkpoints unchanged, the rerun bit-identical")
            return "clear error"

        for _ in range(trials if len(steps) > 1 else 1):
            row.trial(trial, lab.log)
        rows.append(row)
    return rows


# ---- the report -----------------------------------------------------------------------------------------------------


def commit() -> str:
    """Returns the checkout's short commit, saying so when sscp/ differs from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True).strip()
        dirty = subprocess.check_output(["git", "status", "--porcelain", "--", "sscp"], cwd=root, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha} with uncommitted changes to sscp/" if dirty else sha


def machine() -> str:
    """Returns e.g. '2-core CPU (x86_64, Linux), jax 0.10.2 on cpu'."""
    import jax

    return (
        f"{os.cpu_count()}-core CPU ({platform.machine()}, {platform.system()}), jax {jax.__version__} on "
        f"{jax.default_backend()}"
    )


def table(rows: list[Row], command: str, seconds: float) -> str:
    """Returns the markdown block: how it was produced, the table, and the notes of every trial."""
    lines = [
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}, {machine()}, commit {commit()}; "
        f"{seconds:.0f} s in all.",
        "",
        "| fault | trials | resumed exactly | clear error | data intact | FAILED | seconds | what was checked |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        counts = [r.outcomes.count(o) for o in OUTCOMES]
        cells = [str(c) if c else "" for c in counts[:3]] + [f"**{counts[3]}**" if counts[3] else "0"]
        lines.append(f"| {r.fault} | {len(r.outcomes)} | {' | '.join(cells)} | {r.seconds:.0f} | {r.checked} |")
    noted = [r for r in rows if r.notes]
    if noted:
        lines += ["", "What happened in each trial (FAILED ones say why):", ""]
        lines += [f"- {r.fault}: {'. '.join(dict.fromkeys(r.notes))}" for r in noted]
    return "\n".join(lines) + "\n"


def write_report(out: Path, block: str) -> None:
    """Puts block between the markers of out (keeping the rest of the file), or writes a new file holding it."""
    out = Path(out)
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = f"{head}{BEGIN}\n{block}{END}{rest.split(END, 1)[1]}"
    else:
        text = (
            f"{text}{'' if not text or text.endswith(chr(10)) else chr(10)}# Fault injection\n\n{BEGIN}\n{block}{END}\n"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


def run_faults(lab: Lab, faults: list[str], trials: int, seed: int = 0) -> list[Row]:
    """Returns the rows of the chosen faults, each drawing its random choices from its own stream of seed."""
    functions = {"kill": fault_kill, "data": fault_data, "ckpt": fault_ckpt, "nan": fault_nan, "disk": fault_disk}
    rows = []
    for name in faults:
        lab.log(f"{name}:")
        rows += functions[name](lab, trials, np.random.default_rng([seed, FAULTS.index(name)]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="trials per randomised fault (default 5)")
    parser.add_argument("--out", default="docs/reliability.md", help="markdown file to write the table into")
    parser.add_argument("--only", nargs="+", choices=FAULTS, default=list(FAULTS), help="faults to run (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random choices (kill points, bytes, steps)")
    parser.add_argument("--work-dir", help="keep the run folders here (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    command = "python benchmarks/faults.py " + " ".join(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work = Path(args.work_dir) if args.work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        lab = Lab(work)
        rows = run_faults(lab, args.only, args.trials, args.seed)
        for row in rows:  # run folders are temporary: name them relative to the work folder
            row.notes = [note.replace(str(work), "<work>") for note in row.notes]
    seconds = time.perf_counter() - start
    block = table(rows, command.strip(), seconds)
    write_report(Path(args.out), block)
    print(f"\n{block}\nwrote {args.out}")
    failed = sum(r.failed for r in rows)
    if failed:
        print(f"{failed} trial(s) FAILED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
