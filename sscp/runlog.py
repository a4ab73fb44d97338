"""CSV logs that survive kills: one write per row, flushed, and truncated back to a checkpoint's position on resume;
every row also goes to the optional trackers (TensorBoard, Weights & Biases) that the run asked for."""

import csv
import io
import math
import os
from pathlib import Path

from sscp.errors import ConfigError, OutputError


class CSVLogger:
    """Appends rows with a fixed header to a CSV file; position() and truncate() make resume exact."""

    def __init__(self, path: Path, trackers: "Trackers | None" = None):
        self.path = Path(path)
        self.trackers = trackers
        self.fields: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                self.fields = next(csv.reader(f), None)

    def log(self, row: dict) -> None:
        """Appends one row (a dict of field → value) in a single write; the first row fixes the header."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if self.fields is None:
            self.fields = list(row)
            writer.writerow(self.fields)
        if set(row) != set(self.fields):
            raise ValueError(f"{self.path}: row fields {sorted(row)} differ from header {self.fields}")
        writer.writerow([_fmt(row[k]) for k in self.fields])
        try:
            with open(self.path, "a", newline="") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(
                f"could not append to {self.path}: {e.strerror or e}; the last checkpoint is intact, free space or fix "
                "permissions and rerun the same command to resume"
            ) from None
        if self.trackers is not None:
            self.trackers.log(row)

    def position(self) -> int:
        """Returns the file size in bytes: the resume point recorded in checkpoints."""
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, position: int) -> None:
        """Cuts the file back to `position` bytes, dropping rows written after the checkpoint being resumed."""
        if self.path.exists():
            with open(self.path, "r+b") as f:
                f.truncate(position)
        if position == 0:
            self.fields = None


def _fmt(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_csv(path: Path) -> list[dict]:
    """Returns the complete rows of a CSV log as dicts of strings (a torn last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a row cut by a kill has no line end yet
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:] if len(r) == len(header)]


class Trackers:
    """Sends the numeric fields of every logged row to TensorBoard (one event folder per run: tensorboard/run<i>-<task>-
    seed<s>/, via tensorboardX) and/or Weights & Biases (one W&B run per process, `<metric>/run<i>` keys, offline by
    default). The writers start at the first row, so building a trainer (e.g. for `sscp eval`) writes nothing.

    A resumed run appends again from the checkpoint's step: TensorBoard then shows the replayed steps twice (the CSVs,
    cut back to the checkpoint, do not)."""

    def __init__(
        self,
        run_dir: Path,
        tensorboard: bool = False,
        wandb: bool = False,
        wandb_mode: str = "offline",
        wandb_project: str = "sscp",
        config: dict | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.tensorboard, self.wandb = tensorboard, wandb
        self.wandb_mode, self.wandb_project, self.config = wandb_mode, wandb_project, config or {}
        self._tb: dict[str, object] = {}
        self._wandb_run = None
        if tensorboard:
            _require("tensorboardX", "--tensorboard", "tensorboard")
        if wandb:
            _require("wandb", "--wandb", "wandb")

    def log(self, row: dict) -> None:
        """Logs the numeric metric fields of one CSV row (`train/...`, `eval/...`, `time/...`, `episode/...`)."""
        step = int(row["step"])
        metrics = {k: float(v) for k, v in row.items() if "/" in k and _is_number(v)}
        if self.tensorboard:
            writer = self._tensorboard_writer(row)
            for key, value in metrics.items():
                writer.add_scalar(key, value, step)
        if self.wandb:
            suffix = f"/run{row['run']}" if "run" in row else ""
            self._wandb().log({"step": step, **{f"{k}{suffix}": v for k, v in metrics.items()}})

    def _tensorboard_writer(self, row: dict):
        label = f"run{row.get('run', 0)}-{Path(str(row.get('task', 'env'))).stem}-seed{row.get('seed', 0)}"
        if label not in self._tb:
            from tensorboardX import SummaryWriter

            self._tb[label] = SummaryWriter(str(self.run_dir / "tensorboard" / label), flush_secs=10)
        return self._tb[label]

    def _wandb(self):
        if self._wandb_run is None:
            import wandb

            self._wandb_run = wandb.init(
                project=self.wandb_project,
                name=f"{self.run_dir.parent.parent.name}/{self.run_dir.name}",
                dir=str(self.run_dir),
                mode=self.wandb_mode,
                config=self.config,
            )
            self._wandb_run.define_metric("*", step_metric="step")
        return self._wandb_run

    def close(self) -> None:
        """Flushes and closes every writer."""
        for writer in self._tb.values():
            writer.close()
        self._tb.clear()
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _require(module: str, flag: str, extra: str) -> None:
    """Raises ConfigError naming the extra to install when `module` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConfigError(f'{flag} needs the {module} package, which is not installed: pip install "sscp[{extra}]"')
