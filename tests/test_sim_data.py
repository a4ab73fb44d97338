"""The simulator datasets' names (sscp.data.sim_data): listed, resolved to their file and evaluation env, and made
only where the simulator is installed, with one-line errors that name the extra or the command otherwise."""

import pytest

from sscp import cli, sims
from sscp.data import registry, sim_data
from sscp.errors import ConfigError, DataError


def test_each_name_resolves_to_its_file_format_and_simulator(tmp_path):
    for name, (env_id, suffix, _) in sim_data.DATASETS.items():
        spec = registry.resolve(name, tmp_path)
        assert spec.train_path == tmp_path / f"{name}{suffix}" and spec.env_name == env_id
        assert spec.format == ("zarr" if suffix == ".zarr" else "robomimic") and name in registry.names()


def test_a_missing_file_names_the_command_that_makes_it(tmp_path):
    spec = registry.resolve("lift-demos-v0", tmp_path)
    with pytest.raises(DataError, match=r"lift-demos-v0.hdf5: dataset file not found; make it with `sscp data make"):
        registry.load(spec)


def test_making_without_the_simulator_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sims, "available", lambda module: False)
    with pytest.raises(
        ConfigError, match=r"square-demos-v0 needs robosuite, which is not installed: .*sscp\[robomimic\]"
    ):
        registry.make_command("square-demos-v0", out=tmp_path)
    code = cli.main(["data", "make", "pusht-demos-v0", "--out", str(tmp_path)])
    assert code != 0 and "pip install 'sscp[pusht]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_making_push_t_demonstrations_without_zarr_stops_before_playing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sims, "available", lambda module: module != "zarr")
    code = cli.main(["data", "make", "pusht-demos-v0", "--episodes", "1", "--out", str(tmp_path)])
    assert code != 0 and "pusht-demos-v0 needs zarr, which is not installed: pip install 'sscp[pusht]'" in (
        capsys.readouterr().err
    )
    assert not list(tmp_path.iterdir())


def test_make_env_names_the_extra_when_the_simulator_is_missing(monkeypatch):
    from sscp.envs import make_env

    monkeypatch.setattr(sims, "available", lambda module: False)
    for env_id, extra in (("sscp/Lift-v0", "robomimic"), ("sscp/PushT-v0", "pusht")):
        with pytest.raises(ConfigError, match=rf"{env_id} needs .*pip install 'sscp\[{extra}\]'"):
            make_env(env_id)
