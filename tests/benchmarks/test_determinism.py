"""benchmarks/determinism.py: each variant's environment pins the XLA scheduling it names."""

from benchmarks import determinism


def test_determinism_variants_pin_the_scheduling_they_name():
    parent = {"XLA_FLAGS": "--xla_foo=1 --xla_gpu_command_buffer_scheduling_mode=CONCURRENT", "PATH": "/bin"}
    det = determinism.variant_env("deterministic", parent)
    assert det["XLA_FLAGS"] == "--xla_foo=1 --xla_gpu_deterministic_ops=true"
    assert det["SSCP_XLA_DEFAULTS"] == "0" and det["PATH"] == "/bin"
    conc = determinism.variant_env("deterministic-concurrent", parent)
    assert conc["XLA_FLAGS"].split() == [
        "--xla_foo=1", "--xla_gpu_deterministic_ops=true", "--xla_gpu_command_buffer_scheduling_mode=CONCURRENT"
    ]  # fmt: skip
    assert "SSCP_XLA_DEFAULTS" not in conc and determinism.variant_env("default", parent)["XLA_FLAGS"] == "--xla_foo=1"
