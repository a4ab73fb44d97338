"""scripts/bootstrap.py installs what each command needs, and its stamp stays right when commands alternate."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bootstrap(monkeypatch, tmp_path):
    """Returns (the bootstrap module with its .venv in tmp_path, the pip targets it installs)."""
    spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").touch()  # an existing environment: nothing is created
    monkeypatch.setattr(module, "BIN", bin_dir)
    monkeypatch.setattr(module, "STAMP", tmp_path / "venv" / ".sscp-installed")
    installs = []
    monkeypatch.setattr(module.subprocess, "run", lambda cmd, **_: installs.append(cmd[-1]))
    return module, installs


def test_demo_installs_sscp_alone_and_test_adds_the_dev_extra(monkeypatch, tmp_path, capsys):
    bootstrap, installs = _bootstrap(monkeypatch, tmp_path)
    for command in ("demo", "demo", "test", "demo", "test", "sscp"):
        bootstrap.ensure_venv(bootstrap.EXTRAS[command])
    assert installs == ["pip", str(ROOT), "pip", f"{ROOT}[dev]"]  # (pip upgrade, install) for demo, then test
    assert "installing sscp and" in capsys.readouterr().out

    bootstrap.STAMP.write_text("an old stamp: the pyproject hash alone")
    bootstrap.ensure_venv(bootstrap.EXTRAS["demo"])
    assert installs[-1] == str(ROOT)
