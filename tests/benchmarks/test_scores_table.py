"""benchmarks/scores_table.py: the success tables of docs/results.md, built from run folders."""

import json
from pathlib import Path

import pytest

from benchmarks import scores_table

HEADER = "step,run,task,seed,env,eval/success,eval/return,eval/length,time/eval_s\n"


def _eval_csv(folder: Path, rows: list[tuple[int, int, int, float]]) -> None:
    folder.mkdir(parents=True)
    lines = [
        f"{step},{run},fam-task{task}-demos-v0,{seed},env,{success},0,1,1\n" for step, run, task, seed, success in rows
    ]
    (folder / "eval.csv").write_text(HEADER + "".join(lines))


def test_rows_are_compared_at_the_last_common_step_with_their_extra_sampling_steps(tmp_path):
    # label a evaluated at 100 and 200, label b only at 100: the table is at 100
    _eval_csv(
        tmp_path / "a" / "fam",
        [
            (s, r, t, seed, 0.5 * seed + 0.1 * t)
            for s in (100, 200)
            for r, (t, seed) in enumerate([(1, 0), (1, 1), (2, 0), (2, 1)])
        ],
    )
    _eval_csv(
        tmp_path / "b" / "fam", [(100, r, t, seed, 1.0) for r, (t, seed) in enumerate([(1, 0), (1, 1), (2, 0), (2, 1)])]
    )
    (tmp_path / "a" / "fam" / "eval_100_steps1.json").write_text(
        json.dumps(
            [{"dataset": f"fam-task{t}-demos-v0", "seed": seed, "success": 0.25} for t in (1, 2) for seed in (0, 1)]
        )
    )
    (tmp_path / "a" / "fam" / "eval_200_steps1.json").write_text("[]")  # another step: not in this table
    table = scores_table.gather(str(tmp_path), order=["b", "a"])["fam"]
    assert table["step"] == 100
    assert list(table["rows"]) == ["b", "a", "a k=1"]
    assert table["rows"]["a"]["tasks"] == {"fam-task1-demos-v0": [0.1, 0.6], "fam-task2-demos-v0": [0.2, 0.7]}
    text = scores_table.render({"fam": table})
    # per seed over tasks: seed 0 (0.1 + 0.2) / 2 = 0.15, seed 1 0.65 -> 0.40 ± 0.25
    assert "| a | 0.35 ± 0.25 | 0.45 ± 0.25 | **0.40 ± 0.25** | – |" in text
    assert "| a k=1 | 0.25 ± 0.00 | 0.25 ± 0.00 | **0.25 ± 0.00** | – |" in text
    assert scores_table.gather(str(tmp_path), step=200)["fam"]["step"] is None  # b has no 200


def test_several_folders_merge_their_seeds_into_one_row_and_refuse_a_seed_twice(tmp_path, capsys):
    """Seeds 2-3 run later by the same spec (a second folder) join seeds 0-1 of the first into one row per
    (label, family); a row in one folder only keeps its seeds; the same seed at the compared step in two folders is
    refused with both folders named."""
    first, later = tmp_path / "first", tmp_path / "later"
    _eval_csv(first / "a" / "fam", [(100, r, 1, seed, 0.1 * seed) for r, seed in enumerate((0, 1))])
    _eval_csv(later / "a" / "fam", [(100, r, 1, seed, 0.1 * seed) for r, seed in enumerate((2, 3))])
    _eval_csv(first / "b" / "fam", [(100, r, 1, seed, 0.5) for r, seed in enumerate((0, 1))])
    table = scores_table.gather([str(first), str(later)])["fam"]
    assert table["rows"]["a"]["tasks"] == {"fam-task1-demos-v0": pytest.approx([0.0, 0.1, 0.2, 0.3])}
    assert table["rows"]["b"]["tasks"] == {"fam-task1-demos-v0": [0.5, 0.5]}
    scores_table.main([str(first), str(later)])
    assert "| a | 0.15 ± 0.11 | **0.15 ± 0.11** | – |" in capsys.readouterr().out
    _eval_csv(tmp_path / "again" / "a" / "fam", [(100, 0, 1, 1, 0.9)])
    with pytest.raises(SystemExit, match=r"a fam: seed 1 at step 100 is in .*first/a/fam and in .*again/a/fam"):
        scores_table.gather([str(first), str(tmp_path / "again")])
    with pytest.raises(SystemExit, match="missing is neither a folder of run folders"):
        scores_table.main([str(first), str(tmp_path / "missing")])


def test_only_keeps_the_named_rows_so_a_step_a_dropped_row_never_reached_compares(tmp_path):
    runs = [(t, seed) for t in (1, 2) for seed in (0, 1)]
    _eval_csv(tmp_path / "a" / "fam", [(s, r, t, seed, 0.5) for s in (100, 200) for r, (t, seed) in enumerate(runs)])
    _eval_csv(tmp_path / "b" / "fam", [(s, r, t, seed, 0.2) for s in (100, 200) for r, (t, seed) in enumerate(runs)])
    _eval_csv(tmp_path / "c" / "fam", [(100, r, t, seed, 0.9) for r, (t, seed) in enumerate(runs)])  # stopped early
    assert scores_table.gather(str(tmp_path), step=200)["fam"]["step"] is None
    table = scores_table.gather(str(tmp_path), step=200, only=["b", "a"])["fam"]
    assert table["step"] == 200 and sorted(table["rows"]) == ["a", "b"]
    with pytest.raises(SystemExit, match=r"--only d: no such row under .*\(it has: a, b, c\)"):
        scores_table.gather(str(tmp_path), only=["a", "d"])


def test_a_folder_without_evaluations_is_a_clear_exit(tmp_path):
    with pytest.raises(SystemExit, match="no eval.csv under"):
        scores_table.gather(str(tmp_path))


def test_goal_conditioned_runs_get_a_column_per_goal_and_the_summary_a_cell_per_agent(tmp_path):
    header = "step,run,task,seed,env,eval/success," + ",".join(f"eval/success_goal{i}" for i in (1, 2)) + "\n"
    for agent, goals in (("gc_sscp", [(0.2, 0.4), (0.6, 0.8)]), ("hiql", [(1.0, 1.0), (0.0, 0.0)])):
        folder = tmp_path / agent / "maze-navigate-v0"
        folder.mkdir(parents=True)
        rows = [f"100,{seed},maze-navigate-v0,{seed},maze,{sum(g) / 2},{g[0]},{g[1]}\n" for seed, g in enumerate(goals)]
        (folder / "eval.csv").write_text(header + "".join(rows))
    tables = scores_table.gather(str(tmp_path), order=["gc_sscp", "hiql"])
    assert tables["maze-navigate-v0"]["rows"]["gc_sscp"]["tasks"] == {"goal1": [0.2, 0.6], "goal2": [0.4, 0.8]}
    assert "| gc_sscp | 0.40 ± 0.20 | 0.60 ± 0.20 | **0.50 ± 0.20** | – |" in scores_table.render(tables)
    summary = scores_table.render_summary(tables)
    assert "| dataset | updates | gc_sscp | hiql |" in summary
    # per seed over goals: gc_sscp 0.3, 0.7 -> 0.50 ± 0.20; hiql 1.0, 0.0 -> 0.50 ± 0.50
    assert "| maze-navigate-v0 | 100 | 0.50 ± 0.20 | 0.50 ± 0.50 |" in summary


def test_intervals_are_bootstrap_percentiles_and_tables_render_from_their_json(tmp_path, capsys):
    """--ci cells are "mean [low, high]" with the 95 % bootstrap interval over seeds: with two seeds at 0.1 and 0.6
    every resample's mean is 0.1, 0.35 or 0.6, so the interval is [0.10, 0.60]; a table written by --json renders
    again from that file alone, the same as from the run folders."""
    _eval_csv(tmp_path / "runs" / "a" / "fam", [(100, r, 1, seed, [0.1, 0.6][seed]) for r, seed in enumerate((0, 1))])
    _eval_csv(tmp_path / "runs" / "b" / "fam", [(100, r, 1, seed, 0.5) for r, seed in enumerate((0, 1))])
    out = tmp_path / "tables.json"
    scores_table.main([str(tmp_path / "runs"), "--json", str(out), "--ci", "--summary"])
    from_runs = capsys.readouterr().out
    assert "| a | 0.35 [0.10, 0.60] | **0.35 [0.10, 0.60]** | – |" in from_runs
    assert "| b | 0.50 [0.50, 0.50] |" in from_runs
    scores_table.main([str(out), "--ci", "--summary"])
    assert capsys.readouterr().out == from_runs
    with pytest.raises(SystemExit, match="neither a folder"):
        scores_table.main([str(tmp_path / "missing.json")])


def test_a_run_evaluated_afterwards_by_sscp_eval_has_its_row(tmp_path):
    """A run stopped before its in-training evaluation and evaluated from a checkpoint (`sscp eval` writes
    eval_<step>.json) is compared at that step like an eval.csv row."""
    folder = tmp_path / "late" / "fam"
    folder.mkdir(parents=True)
    rows = [
        {"dataset": f"fam-task{t}-demos-v0", "seed": seed, "success": 0.1 * t + seed} for t in (1, 2) for seed in (0, 1)
    ]
    (folder / "eval_45000.json").write_text(json.dumps(rows))
    table = scores_table.gather(str(tmp_path))["fam"]
    assert table["step"] == 45000
    assert table["rows"]["late"]["tasks"] == {"fam-task1-demos-v0": [0.1, 1.1], "fam-task2-demos-v0": [0.2, 1.2]}


def test_iqm_column_drops_the_outer_quarters_of_all_tasks_and_seeds(tmp_path):
    """--iqm adds the interquartile mean over every task x seed: for 0.0, 0.2, 0.4 and 1.0 (one task, four seeds) it
    drops the lowest and the highest value, so the IQM is 0.30 where the mean is 0.40; a row where every run scores
    0.5 has the interval [0.50, 0.50]."""
    tables = {
        "fam": {
            "step": 10,
            "rows": {
                "a": {"tasks": {"fam-task1-v0": [0.0, 0.2, 0.4, 1.0]}, "updates_per_sec": None},
                "b": {"tasks": {"fam-task1-v0": [0.5] * 4}, "updates_per_sec": None},
            },
        }
    }
    text = scores_table.render(tables, ci=True, iqm=True)
    assert "| agent | task1 | **all** | IQM | updates/s per run |" in text
    row_a = next(line for line in text.splitlines() if line.startswith("| a |"))
    iqm_cell = row_a.split(" | ")[3]
    assert iqm_cell.startswith("0.30 [") and "**0.40 [" in row_a
    low, high = (float(x) for x in iqm_cell[6:-1].split(", "))
    assert 0.0 <= low < 0.30 < high <= 1.0
    assert "| b | 0.50 [0.50, 0.50] | **0.50 [0.50, 0.50]** | 0.50 [0.50, 0.50] | – |" in text
    assert "IQM" not in scores_table.render(tables, ci=True)


def test_tables_nested_under_a_key_and_the_first_files_layout_render(tmp_path, capsys):
    """Result files that keep their tables under a key beside metadata render with --key; "agents" and
    "updates_per_sec_per_run" (the layout of the first cube-scores file) read as "rows" and "updates_per_sec"."""
    path = tmp_path / "scores.json"
    table = {"step": 50, "agents": {"a": {"tasks": {"fam-task1-v0": [0.2, 0.4]}, "updates_per_sec_per_run": 77.4}}}
    path.write_text(json.dumps({"commit": "abc", "suites": {"fam": table}}))
    scores_table.main([str(path), "--key", "suites"])
    assert "| a | 0.30 ± 0.10 | **0.30 ± 0.10** | 77 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="give --key, one of: suites"):
        scores_table.main([str(path)])
    with pytest.raises(SystemExit, match="no tables under 'datasets'; keys that hold tables: suites"):
        scores_table.main([str(path), "--key", "datasets"])
    path.write_text(json.dumps({"fam": table}))
    scores_table.main([str(path)])
    assert "| a | 0.30 ± 0.10 | **0.30 ± 0.10** | 77 |" in capsys.readouterr().out


def test_a_sweep_folder_gives_a_row_per_group_and_a_table_per_dataset(tmp_path):
    (tmp_path / "sweep.json").write_text("{}")
    runs = tmp_path / "runs" / "sscp" / "fam-task2-demos-v0"
    _eval_csv(runs / "default", [(200, 0, 2, 0, 0.5), (200, 1, 2, 1, 0.7)])
    _eval_csv(runs / "actor_ema=0.005", [(200, 0, 2, 0, 0.9), (200, 1, 2, 1, 0.8)])
    tables = scores_table.gather(str(tmp_path))
    assert list(tables) == ["fam-task2-demos-v0"] and tables["fam-task2-demos-v0"]["step"] == 200
    rows = tables["fam-task2-demos-v0"]["rows"]
    assert rows["default"]["tasks"] == {"fam-task2-demos-v0": [0.5, 0.7]}
    assert rows["actor_ema=0.005"]["tasks"] == {"fam-task2-demos-v0": [0.9, 0.8]}
    _eval_csv(tmp_path / "runs" / "fql" / "fam-task2-demos-v0" / "default", [(200, 0, 2, 0, 0.1), (200, 1, 2, 1, 0.2)])
    assert sorted(scores_table.gather(str(tmp_path))["fam-task2-demos-v0"]["rows"]) == [
        "fql default", "sscp actor_ema=0.005", "sscp default"]  # fmt: skip


def test_another_metric_is_tabulated_with_its_name_and_a_missing_one_is_named(tmp_path, capsys):
    """--metric eval/normalized_return (the locomotion datasets' score): the column read from eval.csv and from an
    `sscp eval` JSON, one decimal, the metric named in the heading and kept when rendered again from --json."""
    folder = tmp_path / "sscp" / "hopper-medium-v5"
    folder.mkdir(parents=True)
    (folder / "eval.csv").write_text(
        "step,run,task,seed,env,eval/success,eval/normalized_return\n"
        "100,0,hopper-medium-v5,0,Hopper-v5,0,50.25\n100,1,hopper-medium-v5,1,Hopper-v5,0,60.25\n"
    )
    (folder / "eval_200.json").write_text(
        json.dumps(
            [{"dataset": "hopper-medium-v5", "seed": s, "success": 0.0, "normalized_return": 70.0 + s} for s in (0, 1)]
        )
    )
    tables = scores_table.gather(str(tmp_path), metric="eval/normalized_return")
    assert tables["hopper-medium-v5"]["metric"] == "eval/normalized_return"
    assert tables["hopper-medium-v5"]["rows"]["sscp"]["tasks"] == {"hopper-medium-v5": [70.0, 71.0]}  # at 200
    text = scores_table.render(scores_table.gather(str(tmp_path), step=100, metric="eval/normalized_return"))
    assert "### hopper-medium-v5, 100 updates per run (eval/normalized_return)" in text
    assert "| sscp | 55.2 ± 5.0 | **55.2 ± 5.0** | – |" in text
    scores_table.main([str(tmp_path), "--json", str(tmp_path / "t.json"), "--metric", "eval/normalized_return"])
    capsys.readouterr()
    scores_table.main([str(tmp_path / "t.json")])  # rendered again from the JSON: the metric and its decimals kept
    again = capsys.readouterr().out
    assert "(eval/normalized_return)" in again and "| sscp | 70.5 ± 0.5 |" in again
    with pytest.raises(SystemExit, match=r"hopper-medium-v5 has no eval/return \(it has: eval/normalized_return"):
        scores_table.gather(str(tmp_path), step=100, metric="eval/return")


def test_runs_trained_online_from_scratch_count_env_steps(tmp_path, capsys):
    """A table whose every run folder has online.csv and no train.csv is headed in env steps, also from its JSON; one
    offline (or offline-to-online) folder among them keeps the heading in updates."""
    for label in ("sscp", "sac"):
        folder = tmp_path / label / "HalfCheetah-v5"
        folder.mkdir(parents=True)
        (folder / "eval.csv").write_text(HEADER + "100,0,HalfCheetah-v5,0,env,0,1500,1000,1\n")
        (folder / "online.csv").write_text(
            "step,env_steps,run,time/updates_per_sec\n50,50,0,0\n100,100,0,300\n150,150,0,100\n200,200,0,200\n"
        )
    tables = scores_table.gather(str(tmp_path), metric="eval/return")
    assert tables["HalfCheetah-v5"]["unit"] == "env steps"
    # the median of the rows with updates after the first (compiling): the random phase's 0 left out
    assert tables["HalfCheetah-v5"]["rows"]["sscp"]["updates_per_sec"] == 150.0
    scores_table.main([str(tmp_path), "--json", str(tmp_path / "t.json"), "--metric", "eval/return"])
    assert "### HalfCheetah-v5, 100 env steps per run (eval/return)" in capsys.readouterr().out
    scores_table.main([str(tmp_path / "t.json")])
    assert "100 env steps per run" in capsys.readouterr().out
    (tmp_path / "sscp" / "HalfCheetah-v5" / "train.csv").write_text("step\n")
    assert "unit" not in scores_table.gather(str(tmp_path), metric="eval/return")["HalfCheetah-v5"]


def test_paired_difference_is_taken_seed_by_seed_and_needs_the_same_seeds(tmp_path, capsys):
    runs = [(t, seed) for t in (1, 2) for seed in (0, 1, 2)]
    _eval_csv(tmp_path / "a" / "fam", [(100, r, t, seed, 0.1 * seed + 0.05) for r, (t, seed) in enumerate(runs)])
    _eval_csv(tmp_path / "b" / "fam", [(100, r, t, seed, 0.1 * seed) for r, (t, seed) in enumerate(runs)])
    _eval_csv(tmp_path / "c" / "fam", [(100, r, t, seed, 0.3) for r, (t, seed) in enumerate(runs[:2])])
    tables = scores_table.gather(str(tmp_path), only=["a", "b"])
    # the rows' own intervals overlap (seeds spread 0 to 0.2); every pair differs by +0.05, so the interval is a point
    assert scores_table.render_paired(tables, "a", "b") == (
        "fam: a − b, paired by seed: +0.05 [+0.05, +0.05] (per seed +0.05, +0.05, +0.05)\n"
    )
    scores_table.main([str(tmp_path), "--only", "a", "b", "--paired", "b", "a"])
    assert "fam: b − a, paired by seed: -0.05 [-0.05, -0.05]" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--paired: fam has no row 'd' \\(it has: 'a', 'b'"):
        scores_table.render_paired(tables, "a", "d")
    with pytest.raises(SystemExit, match="fam/fam-task1-demos-v0 has 3 seeds in a, 2 in c; pairs need the same seeds"):
        scores_table.render_paired(scores_table.gather(str(tmp_path), only=["a", "c"], step=100), "a", "c")
