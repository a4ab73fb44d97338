"""OGBench-format offline datasets: generated locally, validated on load, resolved by name."""
