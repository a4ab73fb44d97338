"""Fault 2: corrupt dataset files; the loader and `sscp train` must stop with one clear line naming the file."""

import functools
import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .evidence import describe_stderr, one_line_error, sha256
from .lab import BASE_DATASET, Lab, Row, check


def flip_bits(data: bytes, rng: np.random.Generator, low: int = 1, high: int = 8) -> bytes:
    """Returns data with low to high bits flipped at random places (a bit may flip back)."""
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
    "1-8 random bit flips": (flip_bits, True, "train", None),
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


def _damaged_copy(lab: Lab, good: dict[str, Path], split: str, corrupt: Callable, rng: np.random.Generator) -> Path:
    """Returns the damaged file of a fresh copy of the dataset's files, in which good[split] went through corrupt."""
    folder = lab.fresh("data")
    folder.mkdir(parents=True)
    for p in good.values():
        shutil.copy(p, folder / p.name)
    path = folder / good[split].name
    path.write_bytes(corrupt(good[split].read_bytes(), rng))
    return path


def _one_step_args(lab: Lab, run_dir: Path, data_dir: Path) -> list[str]:
    """Returns the `sscp train` arguments of a 1-step run on the dataset in data_dir."""
    args = lab.train_args(run_dir)
    args[args.index("--data-dir") + 1] = str(data_dir)
    args[args.index("--steps") + 1] = "1"
    args[args.index("--log-every") + 1] = "1"
    return args


def _data_trial(lab: Lab, rng: np.random.Generator, run_cli: Callable, good: dict, kind: str, notes: list[str]) -> str:
    """One trial: a copy of the dataset damaged in the way `kind` of DATA_KINDS, loaded and trained on; good holds
    the intact files ("paths"), their hashes ("hashes") and their arrays ("arrays"), per split."""
    from sscp.data.formats import load_ogbench_npz
    from sscp.errors import DataError

    corrupt, _, split, expected = DATA_KINDS[kind]
    path = _damaged_copy(lab, good["paths"], split, corrupt, rng)
    run_dir = lab.fresh("data-run")
    try:
        loaded = load_ogbench_npz(path, add_info=True)
        error = None
    except DataError as e:
        loaded, error = None, str(e)
    code, _, err = run_cli(lab, _one_step_args(lab, run_dir, path.parent))
    unchanged = all(sha256(p) == good["hashes"][s] for s, p in good["paths"].items())
    check(unchanged, "the good dataset file changed")
    if error is None:
        # The damage missed every array (e.g. a bit flip in a zip field nothing reads): fine if nothing changed.
        for key, want in good["arrays"][split].items():
            check(key in loaded, f"the loader silently dropped key {key!r}")
            check(np.array_equal(loaded[key], want, equal_nan=True), f"the loader returned a changed {key!r}")
        check(code == 0, f"`sscp train` failed on a file that loads intact: {describe_stderr(err)}")
        notes.append("the damage missed the arrays")
        return "data intact"
    check(error.startswith(f"{path}: ") and "\n" not in error, f"DataError not one line naming the file: {error}")
    check(expected is None or expected in error, f"DataError lacks {expected!r}: {error}")
    line = one_line_error(err)
    check(line is not None, f"`sscp train` printed {describe_stderr(err)}")
    check(code == 1, f"`sscp train` exited with {code}")
    check(line.startswith(f"sscp: error: {path}: "), f"the error does not name {path}: {line}")
    check(not run_dir.exists(), "`sscp train` created a run folder before failing")
    return "clear error"


def fault_data(lab: Lab, trials: int, rng: np.random.Generator, cli: str = "subprocess") -> list[Row]:
    """Damages a copy of the dataset in each way of DATA_KINDS; the loader and `sscp train` must give one clear line.

    cli="subprocess" runs `python -m sscp.cli train` (what a user sees); "inprocess" calls sscp.cli.main (faster).
    """
    from sscp.data.formats import load_ogbench_npz

    paths = {split: lab.data_dir / f"{BASE_DATASET}{suffix}.npz" for split, suffix in (("train", ""), ("val", "-val"))}
    good = {
        "paths": paths,
        "hashes": {split: sha256(p) for split, p in paths.items()},
        "arrays": {split: load_ogbench_npz(p, add_info=True) for split, p in paths.items()},
    }
    run_cli = _run_cli_subprocess if cli == "subprocess" else Lab.cli
    rows = []
    for kind, (_, random, _, expected) in DATA_KINDS.items():
        row = Row(
            f"dataset: {kind}",
            "DataError; `sscp train`: one line `sscp: error: <file>: ...`"
            + (f" with {expected!r}" if expected else "")
            + ", exit 1, no run folder; good copy unchanged"
            + ("; or (damage missed the arrays) they load identical" if random else ""),
        )
        for _ in range(trials if random else 1):
            row.trial(functools.partial(_data_trial, lab, rng, run_cli, good, kind), lab.log)
        rows.append(row)
    return rows
