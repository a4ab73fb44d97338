"""benchmarks/sweep_steps.py: the step at which sweep.sh's EVAL_STEP=common compares a sweep's groups."""

from pathlib import Path

from benchmarks import sweep_steps


def _group(sweep: Path, agent: str, dataset: str, steps: list[int], variant: str = "default") -> Path:
    folder = sweep / "runs" / agent / dataset / variant
    (folder / "checkpoints").mkdir(parents=True)
    for step in steps:
        (folder / "checkpoints" / f"step_{step:010d}.ckpt").write_bytes(b"")
    return folder


def test_each_dataset_gets_the_largest_step_all_its_groups_kept(tmp_path, capsys):
    a = _group(tmp_path, "sac", "Walker2d-v5", [240000, 260000, 280000])
    b = _group(tmp_path, "sscp", "Walker2d-v5", [240000, 260000])
    c = _group(tmp_path, "sac", "Hopper-v5", [260000, 280000, 300000])
    d = _group(tmp_path, "sscp", "Hopper-v5", [260000, 280000], variant="preset=none")
    e = _group(tmp_path, "sscp", "Ant-v5", [20000])
    f = _group(tmp_path, "sac", "Ant-v5", [40000])
    (tmp_path / "runs" / "sscp" / "Ant-v5" / "no-checkpoints").mkdir()  # a group that saved none is not listed
    steps = sweep_steps.common_steps(tmp_path)
    assert steps == {a: 260000, b: 260000, c: 280000, d: 280000, e: None, f: None}
    sweep_steps.main([str(tmp_path)])
    lines = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert lines[str(b)] == "260000" and lines[str(d)] == "280000" and lines[str(e)] == ""
