"""benchmarks/online_diagnostics.py: the per-seed diagnostics of online runs that docs/online.md quotes."""

import math

import pytest

from benchmarks import online_diagnostics

HEADER = "step,run,seed,train/action_std,value/q_visited,value/mc_return_visited,episode/length,episode/return\n"


def test_each_seed_is_averaged_over_the_window_before_the_final_step_or_a_given_one(tmp_path, capsys):
    folder = tmp_path / "sscp" / "Hopper-v5"
    folder.mkdir(parents=True)
    rows = [  # seed 1 has no finished episode in one row: that cell is left out, not counted as 0
        "5000,0,0,0.5,1,2,10,20",
        "15000,0,0,0.1,100,50,100,200",
        "20000,0,0,0.3,300,150,300,400",
        "15000,1,1,0.2,10,20,30,40",
        "20000,1,1,0.4,nan,nan,nan,nan",
        "24000,0,0,0.9,999,999,999,999",  # after the last multiple of the window: outside it
    ]
    (folder / "online.csv").write_text(HEADER + "\n".join(rows) + "\n")
    out = online_diagnostics.gather(str(tmp_path), window=10_000)
    group = out["groups"]["sscp/Hopper-v5"]
    assert group["final_step"] == 20_000
    assert group["action_std"] == pytest.approx([0.2, 0.3])
    assert group["q_visited"] == [200.0, 10.0] and group["mc_return_visited"] == [100.0, 20.0]
    assert group["seeds"] == [0, 1]
    at = online_diagnostics.gather(str(tmp_path), window=10_000, at=10_000)["groups"]["sscp/Hopper-v5"]
    assert (
        at["final_step"] == 10_000
        and at["episode_return"] == [20.0]
        and "before step 10,000" in (online_diagnostics.gather(str(tmp_path), at=10_000)["what"])
    )
    online_diagnostics.main([str(tmp_path), "--json", str(tmp_path / "d.json")])
    assert "sscp/Hopper-v5 (to 20,000): action_std 0.2 0.3" in capsys.readouterr().out
    assert (tmp_path / "d.json").exists()


def test_a_seed_without_a_value_in_the_window_is_nan_so_the_lists_line_up_with_the_seeds(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    rows = ["10000,0,0,0.1,nan,nan,nan,nan", "10000,1,1,0.2,5,6,7,8"]  # seed 0 finished no episode
    (folder / "online.csv").write_text(HEADER + "\n".join(rows) + "\n")
    group = online_diagnostics.gather(str(tmp_path))["groups"]["run"]
    assert group["seeds"] == [0, 1] and group["action_std"] == pytest.approx([0.1, 0.2])
    assert math.isnan(group["episode_return"][0]) and group["episode_return"][1] == 8.0


def test_a_folder_without_online_runs_and_a_bad_window_are_clear_exits(tmp_path):
    with pytest.raises(SystemExit, match="no online.csv under"):
        online_diagnostics.gather(str(tmp_path))
    with pytest.raises(SystemExit, match="--window must be positive, got 0"):
        online_diagnostics.main([str(tmp_path), "--window", "0"])
