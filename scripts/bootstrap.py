#!/usr/bin/env python3
"""Creates .venv with sscp and its test tools (once, or again when pyproject.toml changes), then runs a command in it.

    python3 scripts/bootstrap.py demo [DEMO OPTIONS]    # the built-in demo: make data, train SSCP, evaluate
    python3 scripts/bootstrap.py test [PYTEST OPTIONS]  # the test suite
    python3 scripts/bootstrap.py sscp ARGS...           # any sscp command

Needs only Python 3.11+ and access to PyPI.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".sscp-installed"


def ensure_venv() -> None:
    """Creates the virtual environment and installs sscp[dev] unless the stamp matches pyproject.toml."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this script may be started by an older Python)
        sys.exit(f"sscp needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing sscp and its dependencies (first run only: a few minutes)", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(want)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test", "sscp"):
        print(__doc__)
        return 2
    ensure_venv()
    cmd, rest = sys.argv[1], sys.argv[2:]
    env = {**os.environ, "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore")}
    if cmd == "test":
        args = [str(BIN / "python"), "-m", "pytest", "-q", *rest]
    elif cmd == "demo":
        args = [str(BIN / "sscp"), "demo", *rest]
    else:
        args = [str(BIN / "sscp"), *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
