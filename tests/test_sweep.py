"""`sscp sweep`: spec expansion and checks (no Ray), and sweeps on a local Ray instance and serially with tiny
networks, including a Ray worker and a child process killed mid-run (retried, resumed) and a driver interrupted
and started again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TASKS, TINY_AGENT, killable

from sscp.errors import ConfigError
from sscp.runlog import read_csv
from sscp.sweep import expand, load_spec
from sscp.sweep_results import ATTEMPTS_FILE

TINY_BC = {"batch_size": 32, "hidden_dims": [16, 16]}


def tiny_spec(data_dir: Path, steps: int = 300, **changes) -> dict:
    spec = {
        "agents": ["sscp", "bc"],
        "datasets": [TASKS[0]],
        "seeds": [0, 1],
        "train": {
            "steps": steps,
            "data_dir": str(data_dir),
            "log_every": 50,
            "eval_every": 0,
            "eval_episodes": 1,
            "eval_max_steps": 20,
            "save_every": 100,
        },
        "agent": {"sscp": {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_AGENT.items()}, "bc": TINY_BC},
    }
    spec.update(changes)
    return spec


def test_expand_packs_seeds_and_tasks_and_crosses_the_grid(tiny_data_dir):
    spec = tiny_spec(tiny_data_dir, datasets=list(TASKS), grid={"sscp": {"alpha_flow": [1.0, 3.0], "lr": [1e-3]}})
    groups = expand(spec)
    assert [(g.agent, g.datasets, g.seeds) for g in groups] == [
        ("sscp", (TASKS[0],), (0, 1)),
        ("sscp", (TASKS[1],), (0, 1)),
        ("sscp", (TASKS[0],), (0, 1)),
        ("sscp", (TASKS[1],), (0, 1)),
        ("bc", (TASKS[0],), (0, 1)),
        ("bc", (TASKS[1],), (0, 1)),
    ]
    assert groups[0].options["alpha_flow"] == 1.0 and groups[2].options["alpha_flow"] == 3.0
    assert groups[0].options["actor_hidden_dims"] == [16, 16]  # fixed options kept under the grid's
    assert groups[0].label == "alpha_flow=1,lr=0.001" and groups[4].label == "default"
    assert len({g.key for g in groups}) == 6
    tasks = expand({**spec, "pack": "tasks"})
    assert [g.datasets for g in tasks] == [TASKS] * 3  # the variants of one dataset share a process
    alone = expand({**spec, "pack": "none", "grid": {}})
    assert len(alone) == 8 and all(len(g.seeds) == 1 for g in alone)
    assert expand(spec, gpus_available=1)[0].num_gpus == 1.0 and groups[0].num_gpus == 0.0


def test_variants_change_one_option_at_a_time_and_cross_the_grid(tiny_data_dir):
    variants = [{}, {"alpha_flow": 3.0}, {"lr": 1e-3, "actor_ema": 0.005}]
    spec = tiny_spec(tiny_data_dir, agents=["sscp"], variants={"sscp": variants})
    del spec["agent"]["bc"]
    groups = expand(spec)
    assert [g.label for g in groups] == ["default", "alpha_flow=3", "lr=0.001,actor_ema=0.005"]
    assert groups[2].options["actor_ema"] == 0.005 and groups[2].options["actor_hidden_dims"] == [16, 16]
    crossed = expand({**spec, "grid": {"sscp": {"alpha_completion": [1.0, 2.0]}}})
    assert [g.label for g in crossed][:3] == ["alpha_completion=1", "alpha_completion=1,alpha_flow=3",
                                              "alpha_completion=1,lr=0.001,actor_ema=0.005"]  # fmt: skip
    assert len(crossed) == 6
    with pytest.raises(ConfigError, match="share a run folder"):
        expand({**spec, "variants": {"sscp": [{"lr": 1e-3}, {"lr": 1e-3}]}})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"agents": ["sscp", "nope"]}, "unknown agent 'nope'"),
        ({"colour": 1}, "unknown key(s) colour"),
        ({"agent": {"sscp": {"alpha": 1}}}, "unknown option --agent.alpha"),
        ({"agent": {"sscp": {"lr": "fast"}}}, "options of agent sscp"),
        ({"grid": {"sscp": {"lr": 0.1}}}, "grid.sscp.lr must be a non-empty list"),
        ({"grid": {"fql": {"alpha": [1]}}}, "not in agents"),
        ({"train": {"seeds": [1]}}, "train.seeds is set by the sweep"),
        ({"train": {"stepz": 1}}, "unknown train option 'stepz'"),
        ({"train": {"steps": "many"}}, "train options"),
        ({"envs": ["HalfCheetah-v5"]}, "give datasets"),
        ({"seeds": [0, 0]}, "duplicates"),
        ({"pack": "all"}, "pack must be"),
        ({"datasets": ["no-such-dataset-v0"]}, "no-such-dataset-v0"),
        ({"resources": {"gpus": 1}}, "unknown resource"),
        ({"variants": {"sscp": {"lr": 1e-3}}}, "variants.sscp must be a non-empty list of option mappings"),
        ({"variants": {"sscp": [{"alpha": 1}]}}, "unknown option --agent.alpha"),
        ({"variants": {"fql": [{"alpha": 1}]}}, "not in agents"),
    ],
)
def test_expand_rejects_bad_specs_naming_the_key(tiny_data_dir, change, message):
    with pytest.raises(ConfigError, match=None) as info:
        expand({**tiny_spec(tiny_data_dir), **change}, "spec.yaml")
    assert message in str(info.value) and str(info.value).startswith("spec.yaml")


def test_load_spec_reads_yaml_and_python_and_rejects_others(tmp_path, tiny_data_dir):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(tiny_spec(tiny_data_dir)))
    (tmp_path / "s.py").write_text(f"SWEEP = {tiny_spec(tiny_data_dir)!r}\n")
    assert load_spec(tmp_path / "s.yaml") == load_spec(tmp_path / "s.py")
    (tmp_path / "bad.yaml").write_text("agents: [sscp\n")
    (tmp_path / "none.py").write_text("X = 1\n")
    for name, message in [("bad.yaml", "not valid YAML"), ("none.py", "dict named SWEEP"), ("gone.yaml", "not found")]:
        with pytest.raises(ConfigError, match=message):
            load_spec(tmp_path / name)


def _default_sigint() -> None:
    # A shell that starts the tests in the background makes them ignore SIGINT, and children inherit that; Python
    # turns SIGINT into KeyboardInterrupt only when it starts with the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _sweep(spec_path: Path, out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "sscp.cli", "sweep", str(spec_path), "--out", str(out), *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=_default_sigint
    )


def _wait_killable(proc: subprocess.Popen, run_dir: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir.is_dir() and killable(run_dir, "train.csv")):
        assert proc.poll() is None, f"the sweep ended before it could be interrupted:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "no checkpoint to interrupt after"
        time.sleep(0.05)


def _attempts(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / ATTEMPTS_FILE).read_text().splitlines()]


def _assert_resumed_cleanly(run_dir: Path, steps: int) -> None:
    assert "resuming" in (run_dir / "sweep.log").read_text()
    rows = read_csv(run_dir / "train.csv")
    for run in ("0", "1"):
        logged = [int(r["step"]) for r in rows if r["run"] == run]
        assert logged == list(range(50, steps + 1, 50))  # no row dropped or repeated by the kill


@pytest.mark.slow
def test_ray_sweep_retries_a_killed_worker_and_skips_finished_groups(tmp_path, tiny_data_dir):
    pytest.importorskip("ray")
    spec_path, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    spec_path.write_text(yaml.safe_dump(tiny_spec(tiny_data_dir, steps=2000)))
    proc = _sweep(spec_path, out, "--num-cpus", "2")
    sscp_dir = out / "runs" / f"sscp/{TASKS[0]}/default"
    _wait_killable(proc, sscp_dir)
    os.kill(_attempts(sscp_dir)[0]["pid"], signal.SIGKILL)  # the Ray worker training the sscp group
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert len(_attempts(sscp_dir)) == 2 and len(_attempts(out / "runs" / f"bc/{TASKS[0]}/default")) == 1
    _assert_resumed_cleanly(sscp_dir, 2000)
    rows = read_csv(out / "results.csv")
    assert [(r["agent"], r["seed"], r["status"]) for r in rows] == [
        ("sscp", "0", "finished"),
        ("sscp", "1", "finished"),
        ("bc", "0", "finished"),
        ("bc", "1", "finished"),
    ]
    assert all(0 <= float(r["success"]) <= 1 and float(r["updates_per_sec"]) > 0 for r in rows)
    assert "| sscp | default |" in (out / "results.md").read_text()

    again = _sweep(spec_path, out)  # everything finished: nothing runs, Ray is not even started
    output = again.communicate(timeout=120)[0]
    assert again.returncode == 0 and "2 finished, 0 to run" in output, output
    assert len(_attempts(sscp_dir)) == 2


@pytest.mark.slow
def test_process_sweep_runs_groups_at_once_retries_a_killed_one_and_reports_a_failed_one(tmp_path, tiny_data_dir):
    """--executor processes (no Ray): two groups train at once in child processes, each seeing one GPU of --gpus 2,
    the least busy (a CPU machine runs them all the same); the one killed mid-run is started again and resumes from
    its checkpoint; a group whose training raises (a missing dataset) is not retried."""
    spec_path, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    spec_path.write_text(yaml.safe_dump(tiny_spec(tiny_data_dir, steps=2000)))
    proc = _sweep(spec_path, out, "--executor", "processes", "--parallel", "2", "--gpus", "2")
    sscp_dir, bc_dir = out / "runs" / f"sscp/{TASKS[0]}/default", out / "runs" / f"bc/{TASKS[0]}/default"
    _wait_killable(proc, sscp_dir)
    assert bc_dir.is_dir()  # started beside sscp, not after it
    os.kill(_attempts(sscp_dir)[0]["pid"], signal.SIGKILL)
    output = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, output
    assert "starting it again" in output and len(_attempts(sscp_dir)) == 2 and len(_attempts(bc_dir)) == 1
    _assert_resumed_cleanly(sscp_dir, 2000)
    rows = read_csv(out / "results.csv")
    assert [(r["agent"], r["status"]) for r in rows] == [("sscp", "finished")] * 2 + [("bc", "finished")] * 2
    # the two groups started on different GPUs; the restarted one on the GPU that bc (running or done) leaves free
    assert [a["visible_devices"] for a in _attempts(sscp_dir)] == ["0", "0"]
    assert [a["visible_devices"] for a in _attempts(bc_dir)] == ["1"]

    (tiny_data_dir / "gone").mkdir(exist_ok=True)
    bad = tiny_spec(tiny_data_dir / "gone", steps=100, agents=["bc"], seeds=[0])
    del bad["agent"]["sscp"]
    spec_path.write_text(yaml.safe_dump(bad))
    failed = _sweep(spec_path, tmp_path / "bad", "--executor", "processes")
    output = failed.communicate(timeout=300)[0]
    assert failed.returncode == 1 and "failed:" in output and "starting it again" not in output, output
    assert "not finished" not in (tmp_path / "bad" / "results.md").read_text()


@pytest.mark.slow
def test_interrupted_sweep_resumes_unfinished_groups_when_started_again(tmp_path, tiny_data_dir):
    spec_path, out = tmp_path / "tiny.py", tmp_path / "sweep"
    spec = tiny_spec(tiny_data_dir, steps=1500, agents=["sscp"], seeds=[0])
    del spec["agent"]["bc"]
    spec_path.write_text(f"SWEEP = {spec!r}\n")
    proc = _sweep(spec_path, out, "--executor", "serial")
    run_dir = out / "runs" / f"sscp/{TASKS[0]}/default"
    _wait_killable(proc, run_dir)
    proc.send_signal(signal.SIGINT)  # Ctrl-C on the sweep
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130 and "started again" in output, output
    assert not (run_dir / "result.json").exists()
    again = _sweep(spec_path, out, "--executor", "serial")
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "0 finished, 1 to run" in output, output
    assert len(_attempts(run_dir)) == 2
    rows = read_csv(run_dir / "train.csv")
    assert [int(r["step"]) for r in rows] == list(range(50, 1501, 50))
    assert "resuming" in (run_dir / "sweep.log").read_text()


def test_only_runs_the_groups_it_names_and_an_unmatched_text_is_a_clear_error(tmp_path, tiny_data_dir, capsys):
    from sscp.sweep import SweepArgs, sweep

    spec_path, out = tmp_path / "tiny.yaml", tmp_path / "sweep"
    spec_path.write_text(yaml.safe_dump(tiny_spec(tiny_data_dir, steps=100, seeds=[0])))
    assert sweep(SweepArgs(str(spec_path), out=str(out), executor="serial", only=("bc/",), dry_run=True)) == 0
    listed = capsys.readouterr().out
    assert "2 groups (2 runs), 0 finished, 1 to run, 1 left out (--only)" in listed
    assert f"sscp/{TASKS[0]}/default  seeds [0]  (left out (--only))" in listed
    assert f"bc/{TASKS[0]}/default  seeds [0]  (to run)" in listed
    assert sweep(SweepArgs(str(spec_path), out=str(out), executor="serial", only=("bc/",))) == 0
    assert (out / "runs" / f"bc/{TASKS[0]}/default" / "result.json").exists()
    assert not (out / "runs" / f"sscp/{TASKS[0]}/default").exists()
    with pytest.raises(ConfigError, match="--only Hopper matches no group of .*tiny.yaml"):
        sweep(SweepArgs(str(spec_path), out=str(out), executor="serial", only=("Hopper",)))


def test_online_group_records_its_updates_and_their_rate(tmp_path, capsys):
    # online, the updates are one per env step after the random phase (the offline step counter stays 0)
    from sscp.sweep import run_group
    from sscp.sweep_results import report_group, write_tables
    from sscp.sweep_spec import Group

    train = {"online_steps": 60, "random_steps": 20, "utd": 2, "log_every": 20, "eval_every": 0, "save_every": 0}
    agent = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY_AGENT.items()}
    group = Group("sscp", (), ("Pendulum-v1",), (0,), agent, train, "default", 1.0, 0.0)
    record = run_group(group.record(), str(tmp_path))
    assert record["steps"] == 0 and record["env_steps"] == 60 and record["updates"] == (60 - 20) * 2
    assert record["updates_per_sec"] == pytest.approx(80 / record["train_s"])
    report_group(record, group)  # Pendulum measures no success: the line and the table give the return instead
    assert f"return {record['runs'][0]['return']:.1f}, " in capsys.readouterr().out
    write_tables([group], {group.key: record}, tmp_path, {})
    assert "| sscp | default | Pendulum-v1 | 1/1 | – | " in (tmp_path / "results.md").read_text()


# The runs' curves.png is left out (plot=False: matplotlib's import and two drawings, about 2.5 s here): only
# parameters are read.
SHARDED = """
import sys, jax, numpy as np
from sscp.train import TrainConfig, Trainer
agent = {agent!r}
params = {{}}
for devices in (1, 0):
    cfg = TrainConfig(dataset=({task!r},), seeds=(0, 1), steps=100, data_dir={data!r}, log_every=50, eval_every=0,
                      eval_episodes=1, eval_workers=0, eval_max_steps=5, save_every=0, progress=False,
                      plot=False, devices=devices, run_dir={out!r} + str(devices))
    t = Trainer(cfg, agent)
    t.train()
    params[devices] = jax.device_get(t.agents.params)
    print("devices", t.num_devices, len(jax.tree.leaves(t.agents)[0].sharding.device_set))
diff = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(params[1]), jax.tree.leaves(params[0])))
print("maxdiff", diff)
"""


@pytest.mark.slow
def test_runs_spread_over_two_devices_train_like_one(tmp_path, tiny_data_dir):
    """Two forced host devices stand in for two GPUs: the runs split over both, and train to the same parameters
    (up to float rounding: XLA fuses the sharded program differently)."""
    code = SHARDED.format(agent=TINY_AGENT, task=TASKS[0], data=str(tiny_data_dir), out=str(tmp_path / "run"))
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2"  # and conftest's
    env = {**os.environ, "XLA_FLAGS": flags, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "devices 1 1" in lines and "devices 2 2" in lines, result.stdout
    diff = float(next(ln for ln in lines if ln.startswith("maxdiff")).split()[1])
    assert diff < 1e-3, diff


def test_devices_option_is_checked(tiny_config, tmp_path):
    from sscp.train import Trainer

    with pytest.raises(ConfigError, match="this machine has 1"):
        Trainer(tiny_config(tmp_path / "a", devices=2, seeds=(0, 1)), TINY_AGENT)
    with pytest.raises(ConfigError, match="must be >= 0"):
        Trainer(tiny_config(tmp_path / "b", devices=-1), TINY_AGENT)


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.glob("benchmarks/sweeps/*.yaml")), ids=str)
def test_committed_sweep_specs_expand(path):
    """Every spec the GPU scripts run expands: names, options and train settings are valid today."""
    groups = expand(load_spec(path), str(path))
    assert groups and len({g.key for g in groups}) == len(groups)
    if path.name == "ogbench-full.yaml":  # the full benchmark: 4 agents x 7 datasets, 5 tasks x 8 seeds each
        assert len(groups) == 28 and all(len(g.datasets) * len(g.seeds) == 40 for g in groups)
        assert {g.agent: g.options.get("preset") for g in groups} == {"sscp": "auto", "fql": "auto",
                                                                     "rebrac": None, "iql": None}  # fmt: skip
