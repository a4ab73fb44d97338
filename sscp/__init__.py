"""sscp: flow-based Single-Step Completion Policies (Koirala & Fleming, ICLR 2026) in JAX."""

import os
import warnings

__version__ = "0.1.0"

# XLA flags sscp sets unless the user's XLA_FLAGS already sets them (docs/archive/benchmarks-notebook.md, "XLA
# scheduling flags"):
# CUDA-graph command buffers scheduled CONCURRENT let independent kernels of an update overlap on a GPU (+59 %
# single-seed SSCP updates/s on an H200) and leave every result bit-identical (benchmarks/determinism.py); CPUs
# ignore it. XLA reads XLA_FLAGS when its backend starts, so this applies where sscp is imported before any JAX
# computation (the `sscp` command always is). SSCP_XLA_DEFAULTS=0 turns it off.
DEFAULT_XLA_FLAGS = {"xla_gpu_command_buffer_scheduling_mode": "CONCURRENT"}


def apply_default_xla_flags(environ=os.environ) -> str:
    """Appends DEFAULT_XLA_FLAGS that XLA_FLAGS does not set already to environ["XLA_FLAGS"] (unless
    SSCP_XLA_DEFAULTS=0) and returns the resulting XLA_FLAGS."""
    flags = environ.get("XLA_FLAGS", "")
    if environ.get("SSCP_XLA_DEFAULTS", "1") != "0":
        missing = [f"--{k}={v}" for k, v in DEFAULT_XLA_FLAGS.items() if f"--{k}=" not in flags]
        if missing:
            flags = " ".join([flags, *missing]).strip()
            environ["XLA_FLAGS"] = flags
    return flags


apply_default_xla_flags()

# Harmless messages of the environments sscp builds, silenced in every process that imports sscp (env workers too):
# GLFW's "DISPLAY environment variable is missing" while dm_control probes renderers (it falls back to EGL or OSMesa),
# and gymnasium's notes that float64 Box bounds are cast to float32.
warnings.filterwarnings("ignore", message=r".*DISPLAY environment variable is missing", module="glfw")
warnings.filterwarnings("ignore", message=r".*precision lowered by casting to float32", category=UserWarning)
