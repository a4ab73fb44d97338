"""A run folder, the one place that knows its file names: config.json (what was asked, and where the code came from),
checkpoints/, the CSV logs train.csv, eval.csv and online.csv, and the lock that keeps two processes out of one
folder. Creating a run, resuming one from its newest readable checkpoint and saving go through here."""

import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from sscp import checkpoint
from sscp.errors import ConfigError
from sscp.runlog import CSVLogger

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
TRAIN_CSV, EVAL_CSV, ONLINE_CSV = "train.csv", "eval.csv", "online.csv"
CURVES = "curves.png"

# Options sscp no longer has, as config.json files written before their removal name them: section -> {option: the
# value that computes what sscp computes now, or None where every value did (a speed option with the same numbers)}.
REMOVED_OPTIONS = {
    "agent": {"flat_optimizer": None, "fuse_network_calls": None},
    "train": {"matmul_precision": "default"},
}


# Options that have a new name: section -> {old name: new name}.
RENAMED_OPTIONS = {"train": {"online_chunk": "env_steps_per_call"}}


def upgrade(record: dict, path: Path) -> dict:
    """Returns a config.json record without the options sscp no longer has (REMOVED_OPTIONS) and with renamed ones
    under their new names (RENAMED_OPTIONS), so that runs written before resume, evaluate and export as before; a
    ConfigError naming the file and the option where the run used a value that computed other numbers."""
    out = dict(record)
    for section in {*REMOVED_OPTIONS, *RENAMED_OPTIONS}:
        if not isinstance(out.get(section), dict):
            continue
        values = dict(out[section])
        for name, same in REMOVED_OPTIONS.get(section, {}).items():
            if name in values and same is not None and values[name] != same:
                raise ConfigError(
                    f"{path}: the run was trained with {name} = {values[name]!r}, an option sscp no longer has "
                    f"(only {same!r} remains); use the sscp version that trained it"
                )
            values.pop(name, None)
        for old, new in RENAMED_OPTIONS.get(section, {}).items():
            if old in values:
                values[new] = values.pop(old)
        out[section] = values
    return out


class RunFolder:
    """The files of one run folder and what a training process does with them (create, resume, save)."""

    def __init__(self, path: str | os.PathLike, trackers=None):
        self.path = Path(path)
        self.train_log = CSVLogger(self.path / TRAIN_CSV, trackers)
        self.eval_log = CSVLogger(self.path / EVAL_CSV, trackers)
        self.online_log = CSVLogger(self.path / ONLINE_CSV, trackers)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def lock(self):
        """Returns the context manager that holds the folder for this process (checkpoint.run_lock)."""
        return checkpoint.run_lock(self.path)

    def read_config(self) -> dict:
        """Returns config.json, or a ConfigError naming it when it cannot be read (nothing beside it is touched)."""
        try:
            record = json.loads(self.config.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(
                f"{self.config}: unreadable ({e}); the checkpoints and logs beside it are untouched — restore the "
                "file from a copy (or train in another --run-dir)"
            ) from None
        if not isinstance(record, dict):
            raise ConfigError(f"{self.config}: not a run's config (a JSON object with train, agent and runs)")
        return upgrade(record, self.config)

    def open(self, record: dict, like, agent_defaults: dict | None = None) -> tuple[int, object, dict] | None:
        """Creates the folder with config.json = record, or resumes it: checks that it holds the same agent and runs,
        restores the newest readable checkpoint into the structure of `like` and cuts the CSV logs back to that
        checkpoint's positions, and records in config.json the train options that changed (_record_changed_options).
        Returns (step, agents, meta) of the checkpoint, or None for a fresh start. An agent option that sscp gained
        after the run was written counts as its default value (agent_defaults), which keeps the behaviour of the code
        that wrote it."""
        if self.config.exists():
            old = self.read_config()
            compared = {"agent": {**(agent_defaults or {}), **old.get("agent", {})}, "runs": old.get("runs")}
            for key in ("agent", "runs"):
                if compared[key] != json.loads(json.dumps(record[key])):
                    raise ConfigError(
                        f"{self.path} holds a run with a different {key} config; use another --run-dir "
                        "or the same options to resume it"
                    )
            if old["train"]["agent"] != record["train"]["agent"]:
                raise ConfigError(f"{self.path} was trained with agent {old['train']['agent']!r}")
            restored = checkpoint.load_latest(self.checkpoints, like)
            if restored is not None:
                meta = restored[2]
                self.train_log.truncate(meta["train_csv"])
                self.eval_log.truncate(meta["eval_csv"])
                self.online_log.truncate(meta.get("online_csv", 0))
                self._record_changed_options(old, record, restored[0])
                return restored
            for log in (self.train_log, self.eval_log, self.online_log):
                log.truncate(0)
        self.path.mkdir(parents=True, exist_ok=True)
        checkpoint.write_atomic(self.config, json.dumps(record, indent=2).encode())
        return None

    def _record_changed_options(self, old: dict, record: dict, step: int) -> None:
        """Rewrites config.json (old: as read) when a run resumed at `step` was started with other train options
        (say, more --steps), so that its "train" section says what the run now does; "resumed_with" keeps, per such
        resume, the step and each changed option's old and new value."""
        new_train = json.loads(json.dumps(record["train"]))
        changed = {k: [old["train"].get(k), v] for k, v in new_train.items() if old["train"].get(k) != v}
        if not changed:
            return
        history = [*old.get("resumed_with", []), {"step": step, "changed": changed}]
        checkpoint.write_atomic(
            self.config, json.dumps({**old, "train": new_train, "resumed_with": history}, indent=2).encode()
        )
        options = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        print(f"{self.config}: resumed at step {step} with other options ({options}); recorded in it")

    def save(self, step: int, agents, meta: dict, keep: int, online: bool = False) -> None:
        """Writes the checkpoint of `step` with meta and the positions of the logs (online.csv's too with `online`),
        which a resume cuts the logs back to; keeps the newest `keep` checkpoints."""
        positions = {"train_csv": self.train_log.position(), "eval_csv": self.eval_log.position()}
        if online:
            positions["online_csv"] = self.online_log.position()
        checkpoint.save(self.checkpoints, step, agents, {**meta, **positions}, keep)


def source_commit() -> str | None:
    """Returns the sscp commit this process runs: $SSCP_COMMIT when set (a copy of the code without its git folder),
    else that of the checkout sscp is imported from (_checkout_commit)."""
    return os.environ.get("SSCP_COMMIT") or _checkout_commit()


@functools.cache
def _checkout_commit() -> str | None:
    """Returns `git rev-parse HEAD` of the checkout that holds this sscp package, with "-dirty" when it has
    uncommitted changes; None when sscp is not imported from a git checkout (an installed package: a git repository
    around its site-packages folder is not sscp's). Asked once per process."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def provenance() -> dict:
    """Returns what config.json records of where a run came from: the sscp commit and the command line."""
    return {"commit": source_commit(), "command": shlex.join(sys.argv)}
