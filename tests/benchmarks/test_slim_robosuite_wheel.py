"""benchmarks/gpu/slim_robosuite_wheel.py: a wheel copy without the asset data files the tasks do not load, all else
kept (code, XML, and the assets named)."""

import zipfile

from benchmarks.gpu.slim_robosuite_wheel import slim


def test_only_unused_asset_data_files_are_left_out(tmp_path):
    wheel = tmp_path / "in" / "robosuite-1.5.1-py3-none-any.whl"
    wheel.parent.mkdir()
    names = {
        "robosuite/__init__.py": b"code",
        "robosuite/models/assets/robots/panda/robot.xml": b"<mujoco/>",
        "robosuite/models/assets/robots/panda/meshes/link0.stl": b"used mesh",
        "robosuite/models/assets/robots/sawyer/meshes/base.stl": b"unused mesh",
        "robosuite/models/assets/textures/floor.PNG": b"unused texture",
        "robosuite-1.5.1.dist-info/RECORD": b"record",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in names.items():
            z.writestr(name, data)
    target = slim(wheel, tmp_path / "out", {"robosuite/models/assets/robots/panda/meshes/link0.stl"})
    assert target.name == wheel.name
    with zipfile.ZipFile(target) as z:
        kept = {name: z.read(name) for name in z.namelist()}
    left_out = {"robosuite/models/assets/robots/sawyer/meshes/base.stl", "robosuite/models/assets/textures/floor.PNG"}
    assert kept == {name: data for name, data in names.items() if name not in left_out}
