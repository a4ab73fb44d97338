"""Errors a user can act on: the CLI prints them as one line, without a traceback."""


class SSCPError(Exception):
    """Base class for every error sscp reports to a user as one line."""


class DataError(SSCPError):
    """A dataset file is missing, corrupt or inconsistent; the message names the file, the key and what to do."""


class ConfigError(SSCPError):
    """A configuration value or name is invalid; the message lists the valid choices."""


class CheckpointError(SSCPError):
    """A checkpoint could not be written or read."""


class DivergenceError(SSCPError):
    """Training produced NaN or inf; the message names the step and the quantity."""


class OutputError(SSCPError):
    """A log file in the run folder could not be written (disk full, permissions)."""
