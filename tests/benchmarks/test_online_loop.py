"""benchmarks/online_loop.py: the timed pieces of the online phase."""

import json
import sys

import numpy as np
import pytest

from benchmarks import online_loop


@pytest.mark.slow
def test_online_loop_benchmark_times_every_piece_of_a_chunk(tmp_path, monkeypatch):
    """benchmarks/online_loop.py builds the real online phase and times its pieces; the chunked total is their sum."""
    out = tmp_path / "loop.json"
    args = ["--env", "InvertedPendulum-v5", "--runs", "1", "--chunk", "3", "--fill", "40", "--capacity", "100",
            "--repeats", "1", "--small", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["online_loop.py", *args])
    online_loop.main()
    (row,) = json.loads(out.read_text())
    pieces = ["env_ms", "host_act_ms", "chunk_call_ms", "updates_only_ms", "offline_ms", "refresh_ms", "step_call_ms"]
    assert all(np.isfinite(row[k]) and row[k] > 0 for k in pieces), row
    total = row["env_ms"] + row["host_act_ms"] + row["chunk_call_ms"] + row["refresh_ms"]
    assert abs(row["chunk_total_ms"] - total) < 1e-3
    assert row["runs"] == 1 and row["chunk"] == 3 and row["env"] == "InvertedPendulum-v5"
