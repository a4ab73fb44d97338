"""Files whose final name only ever holds a complete file: each writer fills a temporary file in the same folder,
which is flushed to disk and renamed over the name, and the folder is synced so the rename survives a crash. Used
by checkpoints, config and result files, and every dataset writer."""

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Makes a rename inside `directory` durable; file systems that cannot sync directories are skipped."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: str | os.PathLike, hidden: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside `path` (`.NAME.tmp-PID` when hidden, else `NAME.tmp-PID`) for the caller to
    write. When the block ends without an error, the file is synced, renamed over `path` and the folder synced; on
    any error (Ctrl-C included) the temporary file is removed, an existing file at `path` is untouched, and the error
    goes on to the caller."""
    path = Path(path)
    tmp = path.with_name(f"{'.' if hidden else ''}{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary folder path beside `path` (`.NAME.tmp-PID`, not yet made) for the caller to fill, as
    `replacing` does for a file. When the block ends without an error, the folder is renamed over `path` (a folder
    already there is moved aside first, put back if the rename fails, and removed after) and the parent synced; on any
    error the temporary folder is removed, a folder at `path` is untouched, and the error goes on to the caller."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists():
                os.replace(old, path)
            raise
        fsync_directory(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes, hidden: bool = False) -> None:
    """Writes `data` to `path` through `replacing`; an OSError leaves the old file untouched and goes on."""
    with replacing(path, hidden) as tmp, open(tmp, "wb") as file:
        file.write(data)
