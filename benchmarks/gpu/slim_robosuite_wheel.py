"""Writes a copy of a robosuite wheel that holds only the asset files that sscp's three robosuite tasks load (Lift,
PickPlaceCan, NutAssemblySquare with a Panda arm), for a GPU machine without a package index, where every wheel must
be carried in: robosuite 1.5.1's wheel is ~157 MB, most of it meshes and textures of robots these tasks never build.

The assets are found by building the three envs with the robosuite installed here (the `robomimic` extra) and
reading the `file=` attributes of their compiled MuJoCo XML; every other mesh, texture or URDF under
`robosuite/models/assets/` is left out, and everything else (code, XML, configs) is kept.

    pip download --no-deps robosuite==1.5.1 -d wheels/
    python benchmarks/gpu/slim_robosuite_wheel.py wheels/robosuite-1.5.1-py3-none-any.whl --out wheels-slim/
"""

import argparse
import os
import re
import zipfile
from pathlib import Path

DATA_SUFFIXES = (".stl", ".obj", ".msh", ".png", ".jpg", ".jpeg", ".dae", ".ply", ".urdf", ".mtl", ".bullet")


def used_assets() -> set[str]:
    """Returns the asset files (paths inside the wheel, `robosuite/...`) that the three tasks' models load."""
    import robosuite

    from sscp.sims.robosuite_env import TASKS, RobosuiteEnv

    root = Path(robosuite.__file__).resolve().parent
    used = set()
    for task in TASKS:
        env = RobosuiteEnv(task)
        for name in re.findall(r'file="([^"]+)"', env.robosuite_env.sim.model.get_xml()):
            used.add("robosuite/" + os.path.relpath(os.path.realpath(name), root).replace(os.sep, "/"))
        env.close()
    return used


def slim(wheel: Path, out: Path, keep: set[str]) -> Path:
    """Writes `out/<wheel's name>` without the asset data files outside `keep`; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            name = info.filename
            is_asset = name.startswith("robosuite/models/assets/") and name.lower().endswith(DATA_SUFFIXES)
            if not is_asset or name in keep:
                dst.writestr(info, src.read(name))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="robosuite's wheel, as pip downloaded it")
    parser.add_argument("--out", type=Path, required=True, help="folder for the slim wheel (not the wheel's own)")
    args = parser.parse_args()
    if args.out.resolve() == args.wheel.parent.resolve():
        parser.error("--out must be another folder than the wheel's: the slim wheel keeps the same name")
    keep = used_assets()
    target = slim(args.wheel, args.out, keep)
    mb = 1e-6
    print(f"{target}: {target.stat().st_size * mb:.1f} MB (from {args.wheel.stat().st_size * mb:.1f} MB), "
          f"{len(keep)} asset files kept")  # fmt: skip


if __name__ == "__main__":
    main()
