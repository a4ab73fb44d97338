"""The report: the faults run in order, and the markdown table they make, written between the markers of a file."""

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from .ckpt import fault_ckpt
from .data import fault_data
from .disk import fault_disk
from .kill import fault_kill
from .lab import FAULTS, OUTCOMES, Lab, Row
from .nan import fault_nan

BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"


def commit() -> str:
    """Returns the checkout's short commit, saying so when sscp/ differs from it."""
    root = Path(__file__).resolve().parents[2]
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
