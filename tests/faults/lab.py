"""The harness's building blocks: the tiny run's settings, trials and their rows, and the Lab (work folder, dataset,
compilation cache, reference runs, the `sscp` commands of the trials)."""

import contextlib
import dataclasses
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.tiny import BASE_DATASET, EPISODE_STEPS, EPISODES, TINY_AGENT, tiny_agent_args  # noqa: F401

TASK = "pointmaze-medium-navigate-singletask-task1-v0"
OUTCOMES = ("resumed exactly", "clear error", "data intact", "FAILED")
FAULTS = ("kill", "data", "ckpt", "nan", "disk")

# The in-process runs (checkpoint, NaN and disk faults): 300 steps, a row every 50, a checkpoint every 100.
STEPS, LOG_EVERY, SAVE_EVERY = 300, 50, 100
# The killed runs (subprocesses): two vmapped seeds, 600 steps, an evaluation (and plot) every 200, as in
# tests/test_train.py, so that kills land in training, evaluation, plotting and saving alike.
KILL_STEPS, KILL_SEEDS = 600, ("0", "1")


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


class Stop(Exception):
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
        the code is "traceback" (or "stopped" for the Stop of a simulated crash).
        """
        from sscp.cli import main

        out, err = io.StringIO(), io.StringIO()
        with compilation_cache(self.cache), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | str = main(args)
            except Stop:
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
