"""Fault 3: a damaged newest checkpoint (or config.json) in a stopped run's folder; the rerun must warn, fall back and
end bit-identical to an uninterrupted run (or refuse with one line)."""

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .data import damage, flip_bits
from .evidence import ckpt_steps, compare_runs, describe_stderr, file_hashes, leaves, one_line_error, sha256
from .lab import LOG_EVERY, SAVE_EVERY, STEPS, Lab, Row, Stop, TrialFailed, check, patched


@contextlib.contextmanager
def stop_after(step: int) -> Iterator[None]:
    """Makes in-process runs stop (raise Stop) once everything of `step` is done: after its train.csv row, or after
    its checkpoint where one is due, as if killed there."""
    from sscp.train import Trainer

    log_train, save = Trainer._log_train, Trainer.save

    def _log_train(self, *args):
        log_train(self, *args)
        if self.step == step and step % SAVE_EVERY and step < self.cfg.steps:
            raise Stop

    def _save(self):
        save(self)
        if self.step == step:
            raise Stop

    with patched(Trainer, "_log_train", _log_train), patched(Trainer, "save", _save):
        yield


def stopped_run(lab: Lab, rng: np.random.Generator, label: str) -> tuple[Path, int]:
    """Returns (run folder, step) of an in-process run stopped after a random step of 200, 250 or 300."""
    run = lab.fresh(label)
    stop = int(rng.choice([200, 250, 300]))
    with stop_after(stop):
        code, _, err = lab.cli(lab.train_args(run))
    check(code == "stopped", f"the run to be damaged did not stop at {stop}: {describe_stderr(err)}")
    return run, stop


def _flip_parameter_bit(data: bytes, rng: np.random.Generator) -> bytes:
    """Flips the lowest mantissa bit of one random parameter of a checkpoint: the smallest damage, which only a
    checksum can catch (the file still parses, with a parameter off by one unit in the last place)."""
    from sscp import checkpoint

    params = checkpoint.decode(data, "checkpoint")["state"]["params"]
    candidates = [x for x in leaves(params) if x.dtype.kind == "f" and x.size >= 8]
    leaf = candidates[int(rng.integers(len(candidates)))]
    start = data.find(leaf.tobytes())
    check(start >= 0, "could not find the parameter bytes in the checkpoint")
    out = bytearray(data)
    out[start + leaf.dtype.itemsize * int(rng.integers(leaf.size))] ^= 1  # little-endian: byte 0 holds the low bits
    return bytes(out)


# name -> (corrupt(bytes, rng) -> bytes, random?, also make every older checkpoint unreadable?)
CKPT_KINDS: dict[str, tuple[Callable, bool, bool]] = {
    "truncated at a random byte": (lambda d, rng: d[: int(rng.integers(1, len(d)))], True, False),
    "1-8 random bit flips": (flip_bits, True, False),
    "one low bit flipped in a parameter": (_flip_parameter_bit, False, False),
    "zero-length file": (lambda d, rng: b"", False, False),
    "every checkpoint unreadable": (lambda d, rng: d[: int(rng.integers(0, len(d)))], False, True),
}


CONFIG_KIND = "config.json truncated"


def _config_trial(lab: Lab, rng: np.random.Generator, notes: list[str]) -> str:
    """One trial: config.json of a stopped run cut at a random byte; `sscp train` and `sscp eval` on the folder."""
    run, stop = stopped_run(lab, rng, "config")
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


def _config_row(lab: Lab, rng: np.random.Generator) -> Row:
    """A run folder whose config.json is cut off: the rerun must refuse with one line and change nothing."""
    row = Row(
        f"run folder: {CONFIG_KIND}",
        "`sscp train` and `sscp eval`: one line `sscp: error:` naming config.json, exit 1 or 2; checkpoints and CSV "
        "logs unchanged",
    )
    row.trial(functools.partial(_config_trial, lab, rng), lab.log)
    return row


def _check_each_warned(damaged: list[Path], run: Path, ref: Path, code: int | str, err: str) -> None:
    """Fails the trial unless the rerun warned about each damaged file, saying what the rerun did instead."""
    for path in damaged:
        if f"warning: skipping {path}: " not in err:
            if code != 0:
                then = f"the rerun failed with {describe_stderr(err)}"
            else:
                problems = compare_runs(run, ref, STEPS, LOG_EVERY)
                then = "; ".join(problems) if problems else "the run still ended bit-identical"
            raise TrialFailed(f"the damaged {path.name} was loaded without a warning; then {then}")


def _ckpt_trial(lab: Lab, rng: np.random.Generator, kind: str, notes: list[str]) -> str:
    """One trial: the newest checkpoint (with `every`: each one) of a stopped run damaged as `kind` of CKPT_KINDS,
    then the same command again, compared with the reference."""
    corrupt, _, every = CKPT_KINDS[kind]
    ref = lab.reference()
    run, stop = stopped_run(lab, rng, "ckpt")
    paths = [run / "checkpoints" / f"step_{s:010d}.ckpt" for s in ckpt_steps(run)]
    check(len(paths) == 2, f"expected 2 checkpoints after step {stop}, found {ckpt_steps(run)}")
    damaged, how = paths if every else paths[-1:], []
    for path in damaged:
        data = path.read_bytes()
        path.write_bytes(corrupt(data, rng))
        how.append(f"step {int(path.name[5:15])} {damage(data, path.read_bytes())}")
    notes.append(f"stopped after step {stop}; {', '.join(how)}")
    code, out, err = lab.cli(lab.train_args(run))
    _check_each_warned(damaged, run, ref, code, err)
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


def fault_ckpt(lab: Lab, trials: int, rng: np.random.Generator, kinds: list[str] | None = None) -> list[Row]:
    """Stops a run at a random point, damages its newest checkpoint, reruns it and compares with the reference.

    The kind CONFIG_KIND damages config.json instead (one trial: any cut leaves invalid JSON)."""
    rows = []
    for kind in kinds or [*CKPT_KINDS, CONFIG_KIND]:
        if kind == CONFIG_KIND:
            rows.append(_config_row(lab, rng))
            continue
        _, random, every = CKPT_KINDS[kind]
        falls_back = "restarts from step 0" if every else "falls back to the previous checkpoint"
        row = Row(
            f"newest checkpoint: {kind}",
            f"a warning naming each damaged file; the rerun {falls_back} and ends bit-identical to an "
            "uninterrupted run (checkpoints; CSV rows ignoring time/*)",
        )
        for _ in range(trials if random else 1):
            row.trial(functools.partial(_ckpt_trial, lab, rng, kind), lab.log)
        rows.append(row)
    return rows
