"""Fault 5: a full disk or a read-only folder while saving; sscp must stop with one clear line, keep the earlier
checkpoints byte for byte, and resume exactly once the disk has room again."""

import contextlib
import errno
import functools
import os
import pathlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .evidence import all_finite, ckpt_steps, compare_runs, describe_stderr, file_hashes, one_line_error, stray_files
from .lab import LOG_EVERY, STEPS, Lab, Row, check, patched


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


def _went_on(run: Path, ref: Path, kind: str, reason: str, out: str, err: str, notes: list[str]) -> str:
    """Checks a run that went on past a failed write of MAY_CONTINUE: a warning naming the file and the reason, and
    the run ended bit-identical to the reference."""
    warning = [w for w in (out + err).splitlines() if w.startswith("warning:") and MAY_CONTINUE[kind] in w]
    check(bool(warning) and reason in warning[0], f"no warning naming {MAY_CONTINUE[kind]} and {reason!r}")
    check("Traceback" not in err, f"`sscp train` printed {describe_stderr(err)}")
    problems = compare_runs(run, ref, STEPS, LOG_EVERY)
    check(not problems, "; ".join(problems))
    notes.append(f"went on with {warning[0]!r}")
    return "data intact"


def _check_kept_and_resumes(lab: Lab, run: Path, ref: Path, before: dict[str, str]) -> None:
    """Checks that a run stopped by a failed write kept its earlier checkpoints (byte-identical, loadable, finite, no
    temporary file) and that rerunning it ends bit-identical to the reference."""
    from sscp import checkpoint

    after = file_hashes(run / "checkpoints")
    check(after == before, f"checkpoints/ changed: {sorted(before)} -> {sorted(after)}")
    check(not stray_files(run), f"temporary files left: {stray_files(run)}")
    restored = checkpoint.load_latest(run / "checkpoints", lab.template())
    previous = max(ckpt_steps(run), default=None)
    check((restored is None) == (previous is None), "the previous checkpoint does not load")
    check(restored is None or all_finite(restored[1]), "the previous checkpoint holds NaN or inf")
    code, _, err = lab.cli(lab.train_args(run))
    check(code == 0, f"the rerun failed ({code}): {describe_stderr(err)}")
    problems = compare_runs(run, ref, STEPS, LOG_EVERY)
    check(not problems, "; ".join(problems))


def _disk_trial(lab: Lab, rng: np.random.Generator, kind: str, row: Row, notes: list[str]) -> str:
    """One trial: the write of `kind` of DISK_KINDS fails at a random one of its steps, then the run is rerun."""
    make_fault, steps, reason = DISK_KINDS[kind]
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
        return _went_on(run, ref, kind, reason, out, err, notes)
    # A bad message is a failure, but the data checks below still run, so the notes tell whether data suffered.
    line, message = one_line_error(err), None
    if line is None:
        message = f"`sscp train` printed {describe_stderr(err)}"
    elif code != 1 or reason not in line or str(run) not in line:
        message = f"exit code {code}, message {line!r} (expected exit 1, the file and {reason!r})"
    _check_kept_and_resumes(lab, run, ref, info["before"])
    check(message is None, f"{message}; the data were fine: checkpoints unchanged, the rerun bit-identical")
    return "clear error"


def fault_disk(lab: Lab, trials: int, rng: np.random.Generator, kinds: list[str] | None = None) -> list[Row]:
    """A write fails at a random save; sscp must stop with one clear line, keep the previous checkpoint byte for byte,
    and resume exactly once the disk has room again."""
    rows = []
    for kind in kinds or list(DISK_KINDS):
        _, steps, reason = DISK_KINDS[kind]
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
        for _ in range(trials if len(steps) > 1 else 1):
            row.trial(functools.partial(_disk_trial, lab, rng, kind, row), lab.log)
        rows.append(row)
    return rows
