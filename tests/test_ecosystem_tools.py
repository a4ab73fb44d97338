"""Observability: TensorBoard and W&B rows beside the CSVs, `sscp plot` files, and the IQM / stratified bootstrap
numbers on hand-computed examples."""

import importlib.util
import json
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from sscp import cli
from sscp.errors import ConfigError
from sscp.runlog import CSVLogger, Trackers
from sscp.stats import aggregate, iqm, stratified_bootstrap_ci

# --- statistics ---


def test_iqm_of_a_hand_computed_example():
    scores = np.array([[0.1, 0.5], [0.2, 0.9], [0.4, 0.6], [0.3, 0.7]])  # 4 seeds x 2 tasks
    # sorted: 0.1 0.2 | 0.3 0.4 0.5 0.6 | 0.7 0.9 -> the middle half averages to 0.45
    assert iqm(scores) == pytest.approx(0.45)
    assert iqm([1.0, 2.0, 3.0, 100.0]) == pytest.approx(2.5)
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 7, 10, 33):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25))


def test_stratified_bootstrap_resamples_within_each_task():
    # Two seeds, scores 0 and 1: resamples give IQM 0 (1/4), 0.5 (1/2) or 1 (1/4), so the 95 % interval is [0, 1].
    assert stratified_bootstrap_ci([np.array([0.0, 1.0])]) == (0.0, 1.0)
    # Task A always scores 0 and task B always 1: every stratified resample holds two of each, IQM 0.5 exactly;
    # an unstratified bootstrap over the four runs would spread over [0, 1].
    assert stratified_bootstrap_ci([np.zeros(2), np.ones(2)]) == (0.5, 0.5)
    result = aggregate({"a": np.array([0.2, 0.4]), "b": np.array([0.6, 0.8])}, reps=2000)
    assert result["iqm"] == pytest.approx(0.5) and result["mean"] == pytest.approx(0.5)
    assert result["tasks"] == 2 and result["runs"] == 4
    assert (
        result["iqm_ci"][0] < 0.5 < result["iqm_ci"][1] and 0.2 <= result["mean_ci"][0] <= result["mean_ci"][1] <= 0.8
    )


# --- sscp plot ---


def _run_folder(path: Path, agent: str, seeds=(0, 1), tasks=("t1", "t2")) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"train": {"agent": agent}}))
    eval_log, train_log = CSVLogger(path / "eval.csv"), CSVLogger(path / "train.csv")
    for step in (100, 200):
        for i, (task, seed) in enumerate((t, s) for t in tasks for s in seeds):
            common = {"step": step, "run": i, "task": task, "seed": seed}
            eval_log.log({**common, "eval/success": (seed + 1) * step / 1000, "eval/return": float(step)})
            train_log.log({**common, "train/critic_loss": 1.0 / step})
    return path


def test_plot_writes_one_png_per_metric_and_the_table(capsys, tmp_path):
    runs = [_run_folder(tmp_path / "a", "sscp"), _run_folder(tmp_path / "b", "fql", seeds=(0,))]
    out = tmp_path / "plots"
    code = cli.main(["plot", *map(str, runs), "--out", str(out), "--reps", "500"])
    printed = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "aggregate.json",
        "aggregate.md",
        "eval_return.png",
        "eval_success.png",
    ]
    assert all((out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for n in ("eval_return.png", "eval_success.png"))
    rows = {(r["agent"], r["metric"]): r for r in json.loads((out / "aggregate.json").read_text())}
    # sscp's final successes: 0.2 and 0.4 on each task -> IQM of [0.2, 0.2, 0.4, 0.4] = 0.3
    assert rows[("sscp", "eval/success")]["iqm"] == pytest.approx(0.3) and rows[("sscp", "eval/success")]["runs"] == 4
    assert rows[("fql", "eval/success")]["iqm"] == pytest.approx(0.2) and rows[("fql", "eval/success")]["runs"] == 2
    assert "| sscp | 2 | 4 | 0.300 [" in printed

    code = cli.main(["plot", str(runs[0]), "--metric", "train/critic_loss", "--out", str(out / "loss")])
    assert code == 0 and (out / "loss" / "train_critic_loss.png").is_file()
    capsys.readouterr()
    code = cli.main(["plot", str(runs[0]), "--metric", "eval/nope", "--out", str(out / "x")])
    assert code == 2 and "no run folder logs 'eval/nope'" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path)]) == 2


def _one_run(path: Path, train: dict, steps: tuple[int, ...], seed: int = 0) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"train": {"agent": "sscp", "run_dir": str(path), **train}}))
    log = CSVLogger(path / "eval.csv")
    for step in steps:
        log.log({"step": step, "run": 0, "task": "t1", "seed": seed, "eval/success": step / 1000})
    return path


def test_plot_never_pools_other_configs_and_draws_every_run(capsys, tmp_path):
    """Folders whose configs differ are drawn and aggregated apart (old: pooled, then dropped for want of common
    steps, leaving an empty chart); runs of one config on different steps are each drawn on their own steps; two
    seed-0 runs are two runs of one seed."""
    from sscp.plot import collect, curves

    short = _one_run(tmp_path / "short", {"steps": 200}, (100, 200))
    long = _one_run(tmp_path / "long", {"steps": 400}, (300, 400))
    out = tmp_path / "plots"
    assert cli.main(["plot", str(short), str(long), "--out", str(out), "--reps", "100"]) == 0
    captured = capsys.readouterr()
    assert "sscp plot: sscp runs differ in steps: drawn and aggregated apart" in captured.err
    rows = json.loads((out / "aggregate.json").read_text())
    assert sorted((r["agent"], r["runs"]) for r in rows) == [("sscp (steps=200)", 1), ("sscp (steps=400)", 1)]
    lines = curves(collect([short, long], "eval/success"))
    assert [(label, steps) for label, steps, _, _ in lines] == [
        ("sscp (steps=200) · t1 (1 seed)", [100, 200]),
        ("sscp (steps=400) · t1 (1 seed)", [300, 400]),
    ]

    again = _one_run(tmp_path / "again", {"steps": 200}, (100, 200))
    ((label, steps, mean, _),) = curves(collect([short, again], "eval/success"))
    assert label == "sscp · t1 (2 runs of 1 seed)" and steps == [100, 200]
    np.testing.assert_allclose(mean, [0.1, 0.2])
    later = _one_run(tmp_path / "later", {"steps": 200}, (150, 250))
    lines = curves(collect([short, later], "eval/success"))
    assert [(label, steps) for label, steps, _, _ in lines] == [
        ("sscp · t1 · seed 0 of later", [150, 250]),
        ("sscp · t1 · seed 0 of short", [100, 200]),
    ]
    assert "sscp runs on t1 logged different steps: each drawn on its own" in capsys.readouterr().err


# --- trackers ---


def _tensorboard_scalars(folder: Path) -> list[tuple[str, int, float]]:
    """Returns (tag, step, value) of every scalar in the TFRecord event files under folder."""
    from tensorboardX.proto.event_pb2 import Event

    found = []
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 16 + length
            found += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    return found


def test_tensorboard_gets_every_numeric_csv_field(tmp_path):
    pytest.importorskip("tensorboardX")
    trackers = Trackers(tmp_path, tensorboard=True)
    log = CSVLogger(tmp_path / "train.csv", trackers)
    for step in (10, 20):
        log.log({"step": step, "run": 0, "task": "t", "seed": 3, "train/loss": step / 10, "time/s": 1.5})
    trackers.close()
    assert (tmp_path / "train.csv").read_text().count("\n") == 3
    scalars = _tensorboard_scalars(tmp_path / "tensorboard" / "run0-t-seed3")
    assert sorted(scalars) == [
        ("time/s", 10, 1.5),
        ("time/s", 20, 1.5),
        ("train/loss", 10, 1.0),
        ("train/loss", 20, 2.0),
    ]


def test_wandb_gets_offline_init_and_per_run_keys(tmp_path, monkeypatch):
    """What Trackers hands to W&B, checked through a stand-in module (CI does not install the heavy wandb extra;
    the test below runs the real package where it is installed)."""
    calls = []

    class FakeRun:
        def define_metric(self, *args, **kwargs):
            calls.append(("define_metric", args, kwargs))

        def log(self, data):
            calls.append(("log", data))

        def finish(self):
            calls.append(("finish",))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: calls.append(("init", kwargs)) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "wandb" else real(name, *a))
    run_dir = tmp_path / "runs" / "x" / "run"
    trackers = Trackers(run_dir, wandb=True, config={"train": {"agent": "sscp"}})
    assert calls == []  # nothing starts before the first row
    log = CSVLogger(tmp_path / "eval.csv", trackers)
    log.log({"step": 5, "run": 1, "task": "t", "seed": 0, "eval/success": 0.5})
    trackers.close()
    (_, init), _, (_, logged), (finish,) = calls
    assert init["mode"] == "offline" and init["dir"] == str(run_dir) and init["config"] == {"train": {"agent": "sscp"}}
    assert logged == {"step": 5, "eval/success/run1": 0.5} and finish == "finish"


def test_wandb_offline_run_beside_the_csvs(tmp_path, monkeypatch):
    if importlib.util.find_spec("wandb") is None:
        pytest.skip("wandb is not installed (the optional `wandb` extra); the stand-in test above covers the calls")
    monkeypatch.setenv("WANDB_SILENT", "true")
    trackers = Trackers(tmp_path / "runs" / "x" / "run", wandb=True, config={"train": {"agent": "sscp"}})
    (tmp_path / "runs" / "x" / "run").mkdir(parents=True)
    CSVLogger(tmp_path / "runs" / "x" / "run" / "eval.csv", trackers).log(
        {"step": 5, "run": 1, "task": "t", "seed": 0, "eval/success": 0.5}
    )
    trackers.close()
    offline = list((tmp_path / "runs" / "x" / "run" / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))


def test_missing_tracker_package_names_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else real(name, *a)
    )
    with pytest.raises(
        ConfigError, match=r'--tensorboard needs the tensorboardX package.*pip install "sscp\[tensorboard\]"'
    ):
        Trackers(tmp_path, tensorboard=True)
