"""Atomic checkpoints: everything needed to continue a run, written so that a kill never corrupts the last one."""

import contextlib
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from sscp import atomic
from sscp.errors import CheckpointError

_NAME = re.compile(r"^step_(\d{10})\.ckpt$")
_MAGIC = b"SSCPCKPT1\n"  # format tag; a SHA-256 of the msgpack body follows, so any damaged byte is detected


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on run_dir/.lock while the block runs, so that a second process training into the same
    folder (the same command started twice, two sweep workers given one --run-dir) stops with a one-line error
    instead of interleaving its logs and checkpoints with this one's. The lock goes with the process, however it
    ends; on a filesystem without locks (some network mounts) and on Windows the block runs unlocked."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            raise CheckpointError(
                f"{run_dir} is in use by another sscp process (pid {holder}); wait for it to end, or pass another "
                "--run-dir"
            ) from None
        except OSError:  # no locking here: go on as before
            yield
            return
        try:
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_atomic(path: Path, data: bytes) -> None:
    """Writes data to path via a temporary file, fsync and rename; on failure the old file at path is untouched."""
    try:
        atomic.write_bytes(path, data, hidden=True)
    except OSError as e:
        raise CheckpointError(f"could not write {path}: {e.strerror or e}; the previous file is unchanged") from None


def save(ckpt_dir: Path, step: int, state: Any, meta: dict, keep: int = 2) -> Path:
    """Returns the path of a new checkpoint holding state (any pytree) and meta; keeps the newest `keep` files."""
    ckpt_dir = Path(ckpt_dir)
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"could not create {ckpt_dir}: {e.strerror or e}") from None
    payload = {"step": step, "meta": meta, "state": serialization.to_state_dict(jax.device_get(state))}
    path = path_of(ckpt_dir, step)
    body = serialization.msgpack_serialize(payload)
    write_atomic(path, _MAGIC + hashlib.sha256(body).digest() + body)
    for stray in ckpt_dir.glob(".step_*.ckpt.tmp-*"):  # left by a process killed mid-save; never a checkpoint
        stray.unlink(missing_ok=True)
    if keep > 0:
        others = [p for p in list_checkpoints(ckpt_dir) if p != path]
        # Files of later steps are unreadable ones that the resume skipped: drop them, or they would count as the
        # newest and get this (good) checkpoint pruned.
        newer = [p for p in others if p.name > path.name]
        older = [p for p in others if p.name < path.name]
        for old in newer + older[: max(0, len(older) - (keep - 1))]:
            old.unlink(missing_ok=True)
    return path


def path_of(ckpt_dir: Path, step: int) -> Path:
    """Returns the path the checkpoint of update `step` has in ckpt_dir (whether or not it exists)."""
    return Path(ckpt_dir) / f"step_{step:010d}.ckpt"


def step_of(path: Path) -> int:
    """Returns the update number in a checkpoint file's name."""
    return int(_NAME.match(Path(path).name).group(1))


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Returns checkpoint files in ckpt_dir, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if _NAME.match(p.name))


def decode(data: bytes, source: str | Path) -> dict:
    """Returns the {"step", "meta", "state"} payload of a checkpoint's bytes after checking its header and SHA-256."""
    head, digest, body = data[: len(_MAGIC)], data[len(_MAGIC) : len(_MAGIC) + 32], data[len(_MAGIC) + 32 :]
    if head != _MAGIC or hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{source}: not a readable sscp checkpoint (missing header or checksum mismatch)")
    try:
        return serialization.msgpack_restore(body)
    except Exception as e:  # a matching checksum over bytes that are not msgpack: not written by sscp
        raise CheckpointError(f"{source}: not a readable sscp checkpoint ({type(e).__name__}: {e})") from None


def read_payload(path: Path) -> dict:
    """Returns the verified payload of the checkpoint file at path, or a CheckpointError."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode(data, path)


def load(path: Path, template: Any) -> tuple[int, Any, dict]:
    """Returns (step, state shaped like template, meta) from one checkpoint file, or a CheckpointError."""
    payload = read_payload(path)
    try:
        state = serialization.from_state_dict(template, payload["state"])
        pairs = zip(jax.tree.leaves(state), jax.tree.leaves(template), strict=True)
        shapes_ok = all(np.shape(a) == np.shape(b) for a, b in pairs)
    except Exception as e:  # msgpack, key and structure errors all mean "not a usable checkpoint"
        raise CheckpointError(f"{path}: not a readable sscp checkpoint ({type(e).__name__}: {e})") from None
    if not shapes_ok:
        raise CheckpointError(f"{path}: parameter shapes differ from this run's config")
    return int(payload["step"]), state, payload["meta"]


def load_latest(ckpt_dir: Path, template: Any) -> tuple[int, Any, dict] | None:
    """Returns the newest readable checkpoint in ckpt_dir (skipping unreadable ones, with a warning), or None."""
    for path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return load(path, template)
        except CheckpointError as e:
            print(f"warning: skipping {e}", file=sys.stderr)
    return None
