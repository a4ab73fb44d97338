#!/usr/bin/env python3
"""Creates .venv with what a command needs (once, or again when pyproject.toml changes), then runs the command in it:
sscp alone for `demo` and `sscp`, sscp with its development extra (pytest, ruff, Ray, ...) for `test`.

    python3 scripts/bootstrap.py demo [DEMO OPTIONS]    # the built-in demo: make data, train SSCP, evaluate
    python3 scripts/bootstrap.py test [PYTEST OPTIONS]  # the test suite, one worker per core (pytest-xdist)
    python3 scripts/bootstrap.py sscp ARGS...           # any sscp command

Needs only Python 3.11+ and access to PyPI.
"""

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".sscp-installed"
EXTRAS = {"demo": (), "sscp": (), "test": ("dev",)}
"""The pyproject.toml extras each command needs."""


def _installed(pyproject: str) -> set[str] | None:
    """Returns the extras the stamp says are installed for this pyproject.toml (hash), or None when nothing current
    is (no stamp, an unreadable one, or one for another pyproject.toml)."""
    try:
        stamp = json.loads(STAMP.read_text())
        return set(stamp["extras"]) if stamp["pyproject"] == pyproject else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_venv(extras: tuple[str, ...] = ()) -> None:
    """Creates the virtual environment and installs sscp with `extras`, unless the stamp says they are installed for
    this pyproject.toml; the stamp then records what is installed (after switching commands, the union)."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this script may be started by an older Python)
        sys.exit(f"sscp needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    pyproject = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed = _installed(pyproject)
    if installed is not None and set(extras) <= installed:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = sorted(set(extras) | (installed or set()))
    suffix = f"[{','.join(wanted)}]" if wanted else ""
    print(f"installing sscp{suffix} and its dependencies (a few minutes, once)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}{suffix}"], check=True)
    STAMP.write_text(json.dumps({"pyproject": pyproject, "extras": wanted}))


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test", "sscp"):
        print(__doc__)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    ensure_venv(EXTRAS[cmd])
    env = {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore")}
    if cmd == "test":  # one pytest worker per core (at most 4), each test file on one worker; `-n 0`: serial
        workers = str(max(1, min(4, os.cpu_count() or 1)))
        args = [str(BIN / "python"), "-m", "pytest", "-q", "-n", workers, "--dist", "loadfile", *rest]
    elif cmd == "demo":
        args = [str(BIN / "sscp"), "demo", *rest]
    else:
        args = [str(BIN / "sscp"), *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
