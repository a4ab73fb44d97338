"""CSV logs that survive kills: one write per row, flushed, and truncated back to a checkpoint's position on resume."""

import csv
import io
import os
from pathlib import Path

from sscp.errors import OutputError


class CSVLogger:
    """Appends rows with a fixed header to a CSV file; position() and truncate() make resume exact."""

    def __init__(self, path: Path):
        self.path = Path(path)
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
