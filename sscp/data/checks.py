"""Validation shared by the HDF5 readers (D4RL, Minari): read whole arrays from h5py, check dtype, shape, length and
finiteness, and report every problem as one line naming the file and the key."""

import os
from pathlib import Path

import numpy as np

from sscp.errors import DataError

# What h5py raises on damaged, truncated or foreign files; some only surface when a dataset's chunks are read.
HDF5_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, EOFError, MemoryError, NotImplementedError)
ACTION_TOLERANCE = 1e-6


def describe(error: BaseException) -> str:
    """Returns the exception as one line, e.g. `OSError: Unable to open file (truncated file)`."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Checker:
    """Raises DataError `<file>: key '<key>' <problem>; <remedy>` for one file being read."""

    def __init__(self, path: str | os.PathLike, remedy: str):
        self.path = Path(path)
        self.remedy = remedy

    def error(self, problem: str, key: str | None = None) -> DataError:
        """Returns the one-line error for `problem` at `key` (or the whole file when key is None)."""
        where = f"key '{key}' " if key is not None else ""
        return DataError(f"{self.path}: {where}{problem}; {self.remedy}")

    def open_hdf5(self):
        """Returns the h5py.File at the path, opened read-only; a DataError for missing or unreadable files."""
        import h5py

        if not self.path.is_file():
            raise self.error("is a directory, not a file" if self.path.is_dir() else "does not exist")
        try:
            return h5py.File(self.path, "r")
        except HDF5_ERRORS as e:
            raise self.error(f"is not a readable HDF5 file ({describe(e)})") from e

    def read(self, group, key: str, label: str | None = None, *, kinds: str = "f") -> np.ndarray:
        """Returns the whole array `group[key]` after checking it is a numeric dataset of one of `kinds` (numpy dtype
        kind letters); `label` names it in errors (default: key)."""
        import h5py

        label = label or key
        if key not in group:
            raise self.error(f"is missing (the file has {sorted(group.keys())})", label)
        try:
            node = group[key]
        except HDF5_ERRORS as e:
            raise self.error(f"cannot be read, the file is truncated or corrupt ({describe(e)})", label) from e
        if not isinstance(node, h5py.Dataset):
            raise self.error(f"is a {type(node).__name__}, expected an array", label)
        if node.dtype.kind not in kinds:
            expected = "a float array" if kinds == "f" else "bool, integer or float values"
            raise self.error(f"has dtype {node.dtype}; expected {expected}", label)
        try:
            return np.asarray(node[()])
        except HDF5_ERRORS as e:
            raise self.error(f"cannot be read, the file is truncated or corrupt ({describe(e)})", label) from e

    def floats(self, values: np.ndarray, label: str, ndim: int) -> np.ndarray:
        """Returns `values` as float32 after checking its number of dimensions and that every value is finite."""
        if values.ndim != ndim:
            raise self.error(f"has shape {values.shape}; expected a {ndim}-D array", label)
        if ndim == 2 and values.shape[1] == 0:
            raise self.error(f"has shape {values.shape}; expected at least one column", label)
        with np.errstate(over="ignore"):
            out = values.astype(np.float32)
        for test, name in ((np.isnan, "NaN"), (np.isinf, "infinite (or too large for float32)")):
            bad = test(out)
            if bad.any():
                row = np.flatnonzero(bad.any(axis=tuple(range(1, bad.ndim))))[0]
                raise self.error(f"has {int(bad.sum())} {name} values (first at row {row})", label)
        return out

    def flags(self, values: np.ndarray, label: str) -> np.ndarray:
        """Returns a 1-D 0/1 array as bool after checking its shape and values."""
        if values.ndim != 1:
            raise self.error(f"has shape {values.shape}; expected a 1-D array", label)
        bad = (values != 0) & (values != 1)
        if bad.any():
            row = np.flatnonzero(bad)[0]
            raise self.error(
                f"has {int(bad.sum())} values other than 0 and 1 (first at row {row}: {values[row]})", label
            )
        return values.astype(bool)

    def actions(self, values: np.ndarray, label: str) -> np.ndarray:
        """Returns float32 actions clipped to [-1, 1] after checking they lie there (up to rounding)."""
        out = self.floats(values, label, 2)
        outside = np.abs(out) > 1.0 + ACTION_TOLERANCE
        if outside.any():
            row = np.flatnonzero(outside.any(axis=1))[0]
            problem = (
                f"has {int(outside.sum())} values outside [-1, 1] (first at row {row}: {out[row][outside[row]][0]:g}); "
                "sscp's agents act in [-1, 1], rescale the actions to that range"
            )
            raise self.error(problem, label)
        return np.clip(out, -1.0, 1.0)

    def same_length(self, arrays: dict[str, np.ndarray], expected: int, reference: str) -> None:
        """Checks every array has `expected` rows, as `reference` has."""
        for key, values in arrays.items():
            if len(values) != expected:
                raise self.error(f"has {len(values)} rows but '{reference}' has {expected}", key)
