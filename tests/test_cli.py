"""The `sscp` command line: usage, one-line errors with exit codes, agent options, eval and data make."""

import functools
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import BASE_DATASET, TASKS, TINY_AGENT, tiny_agent_args

from sscp import cli, report
from sscp.agents.sscp import SSCPConfig
from sscp.data import registry
from sscp.options import parse_agent_overrides, split_agent_overrides


def sscp(capsys, *args: str) -> tuple[int, str, str]:
    """Returns (exit code, stdout, stderr) of `sscp ARGS` run in this process."""
    try:
        code = cli.main(list(args))
    except SystemExit as e:  # tyro exits itself on parse errors and --help
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_no_arguments_prints_usage(capsys):
    code, out, _ = sscp(capsys)
    assert code == 2
    assert out.startswith("usage: sscp COMMAND")
    assert all(f"\n  {name}" in out for name in ("demo", "train", "eval RUN_DIR", "data make NAME"))
    code, out, _ = sscp(capsys, "--help")
    assert code == 0 and out.startswith("usage: sscp COMMAND")


def test_unknown_command_lists_the_valid_ones(capsys):
    code, out, err = sscp(capsys, "trian")
    assert code == 2 and out == ""
    assert err == "sscp: error: unknown command 'trian'; valid commands: train, sweep, eval, data, plot, export, demo\n"


def test_unknown_agent_lists_the_valid_ones(capsys, tmp_path):
    code, _, err = sscp(capsys, "train", "--agent", "nope", "--run-dir", str(tmp_path / "run"))
    assert code == 2
    assert (
        err == "sscp: error: unknown agent 'nope'; valid agents: bc, diffusion_bc, dql, flow_bc, fql, gc_sscp, gcbc, "
        "gcivl, hiql, iql, rebrac, sac, sscp, sscp_bc\n"
    )
    assert not (tmp_path / "run").exists()


def test_unknown_agent_option_lists_the_valid_ones(capsys):
    code, _, err = sscp(capsys, "train", "--agent.not_a_field", "3")
    assert code == 2
    assert err.startswith("sscp: error: unknown option --agent.not-a-field for agent 'sscp'; valid: ")
    assert err.count("\n") == 1
    assert all(f"--agent.{f}" in err for f in ("lr", "batch-size", "actor-hidden-dims", "critic-layer-norm"))


def test_bad_agent_value_is_a_parse_error(capsys):
    code, _, err = sscp(capsys, "train", "--agent.batch-size", "abc")
    assert code == 2
    assert "--batch-size" in err and "'abc'" in err and "Traceback" not in err


def test_missing_dataset_is_one_line_naming_the_file_and_the_command(capsys, tmp_path):
    code, _, err = sscp(capsys, "train", "--dataset", TASKS[0], "--data-dir", str(tmp_path), "--run-dir", str(tmp_path))
    assert code == 1
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"sscp: error: {tmp_path / (BASE_DATASET + '.npz')}: dataset file not found")
    assert f"`sscp data make {BASE_DATASET} --out {tmp_path}`" in err


@pytest.mark.slow
def test_agent_options_reach_the_trainer(capsys, monkeypatch, tiny_data_dir, tmp_path, trained_run):
    # trained_run first: building this Trainer then reuses its compiled ops (same shapes, 4 vmapped runs).
    trainers = []
    monkeypatch.setattr(report, "run", trainers.append)  # build the Trainer, skip the training
    args = ["train", "--dataset", *TASKS, "--steps", "7", "--seeds", "3", "4"]
    args += ["--data-dir", str(tiny_data_dir), "--run-dir", str(tmp_path / "run"), *tiny_agent_args()]
    code, _, err = sscp(
        capsys, *args, "--agent.actor-hidden-dims", "16", "16", "--agent.lr=1e-3", "--agent.discount", "0.9"
    )
    assert code == 0, err
    (trainer,) = trainers
    assert trainer.cfg.steps == 7 and trainer.cfg.seeds == (3, 4) and trainer.cfg.dataset == TASKS
    assert trainer.agent_cfg.actor_hidden_dims == (16, 16)  # a tuple, as the dataclass declares
    assert trainer.agent_cfg.lr == 1e-3 and trainer.agent_cfg.discount == 0.9
    assert trainer.agent_cfg.batch_size == TINY_AGENT["batch_size"]
    assert trainer.agent_cfg.num_critics == SSCPConfig.num_critics  # untouched fields keep their defaults
    kernel = trainer.agents.params["actor"]["params"]["mlp"]["Dense_0"]["kernel"]
    assert kernel.shape[0] == 4 and kernel.shape[-1] == 16  # 2 tasks × 2 seeds vmapped, 16 wide


def test_boolean_agent_options_take_a_value():
    rest, agent_args = split_agent_overrides(
        ["--steps", "5", "--agent.critic-layer-norm", "False", "--agent.log_grad_norm=False", "--seeds", "1"]
    )
    assert rest == ["--steps", "5", "--seeds", "1"]
    overrides = parse_agent_overrides(SSCPConfig, agent_args, "sscp")
    assert overrides == {"critic_layer_norm": False, "log_grad_norm": False}
    assert parse_agent_overrides(SSCPConfig, ["--actor-layer-norm", "True"], "sscp") == {"actor_layer_norm": True}


def test_eval_prints_a_table_and_writes_json(capsys, trained_run):
    trainer, _ = trained_run
    code, out, err = sscp(capsys, "eval", str(trainer.run_dir), "--episodes", "1", "--workers", "0")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(
        "step 300, 1 episodes per run, episodes capped at 50 steps (the run's --eval-max-steps; --eval-max-steps 0 "
        "lifts it), "
    )
    assert lines[1].split() == ["task", "seed", "success", "return", "length"]
    rows = [line.split() for line in lines[2:6]]
    assert [(r[0], int(r[1])) for r in rows] == [(t, s) for t in TASKS for s in (0, 1)]
    path = trainer.run_dir / "eval_300.json"
    assert lines[6] == f"wrote {path}"
    results = json.loads(path.read_text())
    assert [(r["dataset"], r["seed"]) for r in results] == [(t, s) for t in TASKS for s in (0, 1)]
    assert all(0.0 <= r["success"] <= 1.0 and 1 <= r["length"] <= trainer.cfg.eval_max_steps for r in results)


def test_eval_and_export_restore_the_policy_without_the_dataset(capsys, tmp_path, trained_run):
    """config.json keeps a batch's shapes, so eval and export build the agents without loading the dataset: with the
    data folder gone they act exactly as the trained run did; a run folder written before that (no example_shapes)
    still loads its dataset, and says which file is missing."""
    trainer, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(trainer.run_dir, run, ignore=shutil.ignore_patterns("eval_*.json", "policy_*"))
    record = json.loads((run / "config.json").read_text())
    assert record["example_shapes"]["observations"] == [[trainer.obs_dim], "float32"]
    record["train"]["data_dir"] = str(tmp_path / "no-data-here")
    (run / "config.json").write_text(json.dumps(record))
    restored = cli.restore_run(run)
    assert restored.data is None and restored.step == 300
    code, _, err = sscp(capsys, "eval", str(run), "--episodes", "1", "--workers", "0")
    assert code == 0, err
    again = json.loads((run / "eval_300.json").read_text())
    first = cli.restore_run(trainer.run_dir).evaluate(1, 0)
    assert [r["return"] for r in again] == [r["return"] for r in first]  # the same policy, the same episodes
    code, out, err = sscp(capsys, "export", str(run), "--out", str(tmp_path / "policy.sscp"))
    assert code == 0 and (tmp_path / "policy.sscp").is_file(), err
    del record["example_shapes"]
    (run / "config.json").write_text(json.dumps(record))
    code, _, err = sscp(capsys, "eval", str(run), "--episodes", "1", "--workers", "0")
    assert code != 0 and "no-data-here" in err and "Traceback" not in err


def test_eval_takes_another_episode_cap_and_says_which(capsys, trained_run):
    trainer, _ = trained_run
    code, out, err = sscp(capsys, "eval", str(trainer.run_dir), "--episodes", "1", "--workers", "0",
                          "--eval-max-steps", "5")  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0].startswith("step 300, 1 episodes per run, episodes capped at 5 steps (--eval-max-steps;")
    assert all(1 <= float(line.split()[-1]) <= 5 for line in out.splitlines()[2:6])
    code, _, err = sscp(capsys, "eval", str(trainer.run_dir), "--eval-max-steps", "-1")
    assert code == 2 and err.startswith("sscp: error: --eval-max-steps must be >= 0")


def test_eval_at_another_number_of_sampling_steps(capsys, trained_run):
    """sscp eval --sample-steps K evaluates a trained run with K network calls per action (the agents it is
    restored with sample with K) into its own JSON; agents without such a count refuse it in one line."""
    from sscp.cli import restore_run

    trainer, _ = trained_run
    restored = restore_run(trainer.run_dir, sample_steps=3)
    assert restored.agent_cfg.sample_steps == 3 and restored.agents.config.sample_steps == 3
    code, out, err = sscp(
        capsys, "eval", str(trainer.run_dir), "--episodes", "1", "--workers", "0", "--sample-steps", "3"
    )
    assert code == 0, err
    assert out.splitlines()[0].startswith("step 300, 1 episodes per run, 3 network calls per action")
    assert (trainer.run_dir / "eval_300_steps3.json").exists()

    code, _, err = sscp(capsys, "eval", str(trainer.run_dir), "--sample-steps", "0")
    assert code == 2 and err == "sscp: error: --sample-steps must be at least 1, got 0\n"
    code, _, err = sscp(capsys, "eval", str(trainer.run_dir), "--slots", "-1")
    assert code == 2 and err == "sscp: error: --slots must be >= 0 (0: set by workers and device), got -1\n"


def test_eval_at_a_chosen_checkpoint_step(capsys, tmp_path, trained_run):
    """sscp eval --step N evaluates the kept checkpoint of update N (not the newest) into eval_N.json; a step without
    a checkpoint is a one-line error listing the kept steps."""
    trainer, _ = trained_run  # checkpoints every 100 updates, the newest 2 kept: 200 and 300
    run = tmp_path / "run"
    shutil.copytree(trainer.run_dir, run, ignore=shutil.ignore_patterns("eval_*.json", "policy_*"))
    older, newest = cli.restore_run(run, step=200), cli.restore_run(run)
    assert (older.step, newest.step) == (200, 300)
    pairs = zip(jax.tree.leaves(older.agents), jax.tree.leaves(newest.agents), strict=True)
    assert not all(np.array_equal(a, b) for a, b in pairs)  # another checkpoint, not the newest
    code, out, err = sscp(capsys, "eval", str(run), "--step", "200", "--episodes", "1", "--workers", "0")
    assert code == 0, err
    assert out.splitlines()[0].startswith("step 200, 1 episodes per run")
    assert (run / "eval_200.json").is_file() and not (run / "eval_300.json").exists()
    code, _, err = sscp(capsys, "eval", str(run), "--step", "250", "--workers", "0")
    assert code == 2 and err.count("\n") == 1
    assert f"no checkpoint of step 250 in {run / 'checkpoints'} (kept: 200, 300)" in err


def test_eval_sample_steps_needs_an_agent_with_a_step_count(capsys, tmp_path, trained_run):
    trainer, _ = trained_run
    record = json.loads((trainer.run_dir / "config.json").read_text())
    record["train"]["agent"] = "bc"
    (tmp_path / "config.json").write_text(json.dumps(record))
    code, _, err = sscp(capsys, "eval", str(tmp_path), "--sample-steps", "2")
    assert code == 2
    assert "--sample-steps: agent 'bc'" in err and "sscp, flow_bc, sscp_bc, diffusion_bc" in err


@pytest.mark.slow
def test_a_run_folder_in_use_by_another_process_is_refused(capsys, tmp_path, tiny_data_dir):
    from sscp import checkpoint

    run = tmp_path / "run"
    args = ["train", "--dataset", TASKS[0], "--steps", "20", "--log-every", "10", "--eval-every", "0",
            "--eval-episodes", "1", "--eval-workers", "0", "--eval-max-steps", "3", "--no-progress",
            "--data-dir", str(tiny_data_dir), "--run-dir", str(run), *tiny_agent_args()]  # fmt: skip
    with checkpoint.run_lock(run):  # as if another `sscp train` were writing there
        code, _, err = sscp(capsys, *args)
        assert code != 0 and err.count("\n") == 1
        assert f"{run} is in use by another sscp process (pid {os.getpid()})" in err
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written beside the lock
    code, _, err = sscp(capsys, *args)  # the lock went with its holder
    assert code == 0, err
    assert (run / "train.csv").is_file()


def test_eval_needs_a_run_folder(capsys, tmp_path, trained_run):
    code, _, err = sscp(capsys, "eval", str(tmp_path))
    assert code == 2
    assert err == f"sscp: error: {tmp_path}: no config.json; pass a run folder written by `sscp train`\n"

    trainer, _ = trained_run  # a config but no checkpoints
    shutil.copy(trainer.run_dir / "config.json", tmp_path / "config.json")
    code, _, err = sscp(capsys, "eval", str(tmp_path), "--workers", "0")
    assert code == 2 and "no readable checkpoint" in err and "Traceback" not in err


def test_data_make_unknown_name_names_the_close_ones_and_the_list_command(capsys, tmp_path):
    code, _, err = sscp(capsys, "data", "make", "cube-sextuple-play-v0", "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and len(err) < 500
    assert err.startswith("sscp: error: unknown dataset 'cube-sextuple-play-v0'; did you mean cube-triple-play-v0")
    assert "cube-single-play-v0" in err and "`sscp data list` prints every name" in err
    assert list(tmp_path.iterdir()) == []
    code, _, err = sscp(capsys, "data", "frobnicate")
    assert code == 2 and "usage: sscp data make NAME" in err


def test_data_make_writes_the_files(capsys, monkeypatch, tmp_path):
    # The CLI has no episode-length option; shorten episodes (1000 steps officially) to keep the test quick.
    monkeypatch.setattr(registry, "generate", functools.partial(registry.generate, max_episode_steps=20))
    args = ("data", "make", "cube-single-play-v0", "--episodes", "1", "--workers", "1", "--out", str(tmp_path))
    code, out, err = sscp(capsys, *args)
    assert code == 0, err
    train, val = tmp_path / "cube-single-play-v0.npz", tmp_path / "cube-single-play-v0-val.npz"
    assert train.is_file() and val.is_file()
    assert f"{train}: 1 episodes, 19 transitions" in out and f"{val}: 1 episodes, 19 transitions" in out


def test_data_make_refuses_to_overwrite_unless_asked(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "generate", functools.partial(registry.generate, max_episode_steps=20))
    args = ("data", "make", "cube-single-play-v0", "--workers", "1", "--out", str(tmp_path))
    assert sscp(capsys, *args, "--episodes", "1")[0] == 0
    train = tmp_path / "cube-single-play-v0.npz"
    before = train.read_bytes()
    code, out, err = sscp(capsys, *args, "--episodes", "2")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err == (
        f"sscp: error: {train} already exists (and 1 more of its files); pass --overwrite to replace it, or --out DIR "
        "to write elsewhere\n"
    )
    assert train.read_bytes() == before
    code, out, err = sscp(capsys, *args, "--episodes", "2", "--overwrite")
    assert code == 0, err
    assert f"{train}: 2 episodes, 38 transitions" in out


def test_console_script_exit_codes():
    script = shutil.which("sscp", path=os.path.dirname(sys.executable))
    assert script is not None, "the sscp console script is not installed next to this Python"
    bad = subprocess.run([script, "trian"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert (
        "sscp: error: unknown command 'trian'; valid commands: train, sweep, eval, data, plot, export, demo"
        in bad.stderr
    )
    usage = subprocess.run([script], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and usage.stdout.startswith("usage: sscp COMMAND")


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_train_help_lists_agents_and_options(capsys, flag):
    code, out, _ = sscp(capsys, "train", flag)
    assert code == 0
    assert (
        "agents: bc, diffusion_bc, dql, flow_bc, fql, gc_sscp, gcbc, gcivl, hiql, iql, rebrac, sac, sscp, sscp_bc"
        in out
        and "--agent.batch-size" in out
        and "--eval-max-steps" in out
    )


def test_default_xla_flags_respect_the_users_and_the_opt_out():
    from sscp import apply_default_xla_flags

    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert apply_default_xla_flags(env) == (
        "--xla_force_host_platform_device_count=2 --xla_gpu_command_buffer_scheduling_mode=CONCURRENT"
    )
    assert apply_default_xla_flags(env) == env["XLA_FLAGS"]  # not added twice
    mine = {"XLA_FLAGS": "--xla_gpu_command_buffer_scheduling_mode=LHS"}
    assert apply_default_xla_flags(mine) == "--xla_gpu_command_buffer_scheduling_mode=LHS"
    off = {"SSCP_XLA_DEFAULTS": "0"}
    assert apply_default_xla_flags(off) == "" and "XLA_FLAGS" not in off
    assert apply_default_xla_flags({}) == "--xla_gpu_command_buffer_scheduling_mode=CONCURRENT"


def test_importing_sscp_sets_the_default_xla_flags_in_this_process():
    assert "--xla_gpu_command_buffer_scheduling_mode=" in os.environ.get("XLA_FLAGS", "")


def test_results_table_without_a_timed_row_says_why(capsys, tmp_path):
    """A run whose only train.csv rows are the first (compiling) ones prints '–' for updates/s and one line saying
    why, not 'nan'; with a later row it prints that row's speed."""
    from types import SimpleNamespace

    from sscp.report import print_results

    run = SimpleNamespace(
        dataset="cube-single-play-singletask-task2-v0", seed=0, env_name="cube-single-singletask-task2-v0"
    )
    trainer = SimpleNamespace(run_dir=tmp_path, runs=[run], no_eval=None)
    (tmp_path / "train.csv").write_text("step,run,time/updates_per_sec\n100,0,12.0\n")
    print_results(trainer, [{"success": 0.5, "return": -10.0}], 3.0)
    out = capsys.readouterr().out
    assert "nan" not in out and "–" in out and "only the first log row exists" in out
    (tmp_path / "train.csv").write_text("step,run,time/updates_per_sec\n100,0,12.0\n200,0,345.0\n")
    print_results(trainer, [{"success": 0.5, "return": -10.0}], 3.0)
    out = capsys.readouterr().out
    assert " 345 " in out and "only the first" not in out


@pytest.mark.parametrize(("agent", "name"), [("sscp", "data.npz"), ("sscp", "my-data.hdf5"), ("gcbc", "data.npz")])
def test_a_missing_file_is_reported_as_missing_before_its_name(capsys, tmp_path, agent, name):
    path = tmp_path / "nowhere" / name
    code, _, err = sscp(capsys, "train", "--agent", agent, "--dataset", str(path), "--run-dir", str(tmp_path / "run"))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"sscp: error: {path}: dataset file not found")
    assert "cannot tell which environment" not in err


def test_results_table_shows_the_normalized_score_where_tasks_have_one(capsys, tmp_path):
    """Runs on data with reference returns (D4RL, locomotion) get the normalised score, not a success rate that their
    MuJoCo tasks do not measure; others keep the success rate."""
    from types import SimpleNamespace

    from sscp.report import print_results

    run = SimpleNamespace(dataset="hopper-medium-v2", seed=0, env_name="Hopper-v5")
    trainer = SimpleNamespace(run_dir=tmp_path, runs=[run], no_eval=None)
    (tmp_path / "train.csv").write_text("step,run,time/updates_per_sec\n100,0,12.0\n200,0,345.0\n")
    print_results(trainer, [{"success": 0.0, "return": 1500.0, "normalized_return": 46.7}], 3.0)
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:4] == ["task", "seed", "normalized", "return"]
    assert out.splitlines()[2].split()[:4] == ["hopper-medium-v2", "0", "46.7", "1500.0"]
    print_results(trainer, [{"success": 0.5, "return": -10.0}], 3.0)
    assert capsys.readouterr().out.splitlines()[1].split()[2] == "success"


def test_evaluation_progress_line_shows_the_score_each_task_measures():
    """The line printed at each evaluation: the normalised return for locomotion data, the return for envs without a
    success measure, the success (and online the return) elsewhere; not a success of 0.00 for a MuJoCo task."""
    from types import SimpleNamespace

    from sscp.report import evaluation_line

    hopper, cube = SimpleNamespace(env_name="Hopper-v5"), SimpleNamespace(env_name="cube-single-singletask-task2-v0")
    res = {"success": 0.0, "return": 1500.04, "normalized_return": 46.71}
    assert evaluation_line([hopper], [res], online=False) == "normalized 46.7"
    assert evaluation_line([hopper], [{"success": 0.0, "return": 1500.04}], online=True) == "return 1500.0"
    assert evaluation_line([cube], [{"success": 0.5, "return": -80.0}], online=False) == "success 0.50"
    assert evaluation_line([cube], [{"success": 0.5, "return": -80.0}], online=True) == "success 0.50, return -80.0"


def test_results_table_shows_no_success_rate_for_envs_that_measure_none(capsys, tmp_path):
    """An online run from scratch on a Gymnasium MuJoCo env has no success measure: its cell is "–" with a note,
    not a success rate of 0.00; an OGBench env keeps its success rate."""
    from types import SimpleNamespace

    from sscp.report import print_results

    runs = [
        SimpleNamespace(dataset="HalfCheetah-v5", seed=0, env_name="HalfCheetah-v5"),
        SimpleNamespace(
            dataset="cube-single-play-singletask-task1-v0", seed=0, env_name="cube-single-singletask-task1-v0"
        ),
    ]
    trainer = SimpleNamespace(run_dir=tmp_path, runs=runs, no_eval=None)
    print_results(trainer, [{"success": 0.0, "return": 1234.5}, {"success": 0.25, "return": -150.0}], 3.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[:4] == ["HalfCheetah-v5", "0", "–", "1234.5"]
    assert lines[3].split()[2] == "0.25"
    assert "(–: HalfCheetah-v5 report no success; compare the returns)" in lines
    print_results(trainer, [{"success": float("nan"), "return": float("nan")}, {"success": 0.25, "return": -1.0}], 3.0)
    assert not any(line.startswith("(–:") for line in capsys.readouterr().out.splitlines())  # nothing shows "–"


@pytest.mark.slow
def test_training_says_it_is_compiling_before_the_first_step(capsys, tiny_config, tmp_path):
    from sscp.train import Trainer

    Trainer(tiny_config(tmp_path / "run", steps=2, log_every=2, eval_episodes=0), TINY_AGENT).train()
    out = capsys.readouterr().out
    assert "compiling the training step for cpu (first call only" in out


def test_small_usage_problems_get_plain_answers(capsys, tmp_path):
    code, out, _ = sscp(capsys, "data", "--help")
    assert code == 0 and out.startswith("usage: sscp data make NAME")
    code, _, err = sscp(capsys, "plot")
    assert code == 2 and err == (
        "sscp: error: give one or more run folders: sscp plot RUN_DIR [RUN_DIR ...] (sscp plot --help: options)\n"
    )
    code, _, err = sscp(capsys, "train", "--dataset", "cube-sextuple-play-v0", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and len(err) < 500 and "did you mean cube-triple-play-v0" in err and "`sscp data list`" in err
    code, out, _ = sscp(capsys, "data", "list")
    assert code == 0 and "  cube-single-play-v0 " in out and "  hopper-medium-v5 " in out
    assert len(out.splitlines()) > 80


def test_demo_names_the_cached_file_it_trains_on(capsys, monkeypatch, tiny_data_dir, tmp_path):
    monkeypatch.setattr(report, "run", lambda trainer: None)  # build the demo's Trainer, skip the training
    args = ["demo", "--dataset", TASKS[0], "--data-dir", str(tiny_data_dir), "--run-dir", str(tmp_path / "run")]
    code, out, err = sscp(capsys, *args, "--episodes", "5", "--hidden", "16")
    assert code == 0, err
    path = tiny_data_dir / f"{BASE_DATASET}.npz"
    assert f"the cached {path} (3 episodes; --episodes 5 applies only when no file is cached)" in out
    assert "generated" not in out


def test_building_environments_prints_no_harmless_warnings():
    """GLFW's missing-DISPLAY message and gymnasium's float32 casting notes, which every env build printed, are
    silenced by importing sscp (the process is fresh: pytest's own warning capture stays out of it)."""
    code = "import sscp, gymnasium, ogbench; gymnasium.make('cube-single-singletask-task1-v0').close()"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL", "PYTHONWARNINGS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "DISPLAY environment variable is missing" not in done.stderr and "precision lowered" not in done.stderr


def test_writing_a_video_runs_no_python_fork(tmp_path):
    """ffmpeg starts without a Python-level fork, the kind JAX warns may deadlock a multithreaded process."""
    pytest.importorskip("imageio_ffmpeg")
    import numpy as np

    from sscp.video import write_video

    forks = []
    os.register_at_fork(before=lambda: forks.append(1))
    write_video(tmp_path / "x.mp4", [np.zeros((4, 4, 3), np.uint8)] * 2)
    assert (tmp_path / "x.mp4").stat().st_size > 0 and forks == []


@pytest.mark.slow
def test_runs_in_an_env_without_a_success_measure_show_no_success_rate(capsys, tmp_path):
    """An online run on Pendulum (no success in its step info): `sscp train` and `sscp eval` print "–" and say why,
    not a success rate of 0.00."""
    run_dir = tmp_path / "run"
    code, out, err = sscp(capsys, "train", "--agent", "sac", "--env", "Pendulum-v1", "--online-steps", "16",
                          "--random-steps", "16", "--log-every", "8", "--eval-episodes", "1", "--eval-workers", "0",
                          "--eval-max-steps", "5", "--run-dir", str(run_dir), "--no-progress",
                          "--agent.actor-hidden-dims", "8", "--agent.critic-hidden-dims", "8",
                          "--agent.batch-size", "8")  # fmt: skip
    assert code == 0, err
    assert next(line for line in out.splitlines() if line.startswith("Pendulum-v1")).split()[2] == "–"
    assert "(–: Pendulum-v1 report no success; compare the returns)" in out.splitlines()
    code, out, err = sscp(capsys, "eval", str(run_dir), "--episodes", "1", "--workers", "0")
    assert code == 0, err
    assert next(line for line in out.splitlines() if line.startswith("Pendulum-v1")).split()[2] == "–"
    assert "(–: Pendulum-v1 report no success; compare the returns)" in out.splitlines()


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """`sscp ... | head` closes the pipe before sscp has printed everything: sscp stops with 141 (the shell's code for
    SIGPIPE) and no traceback, instead of a BrokenPipeError."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("agents: [sscp, fql]\ndatasets: [cube-single-play-singletask-task1-v0]\nseeds: [0, 1]\n")
    command = [sys.executable, "-m", "sscp.cli", "sweep", str(spec), "--executor", "serial", "--dry-run"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    child.stdout.close()  # the reader is gone before sscp prints its first line
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
