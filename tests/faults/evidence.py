"""What a trial reads from a run folder and from a command's stderr: file hashes, logged and saved steps, how a run
differs from the reference, and whether stderr is one clear error line."""

import hashlib
import re
from pathlib import Path

import numpy as np


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
        got_leaves, want_leaves = leaves(got["state"]), leaves(want["state"])
        same = got["step"] == want["step"] and len(got_leaves) == len(want_leaves) > 0
        same = same and all(
            a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in zip(got_leaves, want_leaves, strict=True)
        )
        if not same:
            problems.append(f"{name}: parameters are not bit-identical to the reference's")
    return problems


def leaves(tree) -> list[np.ndarray]:
    """Returns the leaves of a pytree as NumPy arrays."""
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def all_finite(tree) -> bool:
    return all(np.isfinite(x).all() for x in leaves(tree) if x.dtype.kind == "f")


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
