"""sscp: flow-based Single-Step Completion Policies (Koirala & Fleming, ICLR 2026) in JAX."""

__version__ = "0.1.0"
