#!/usr/bin/env bash
# Wheels for a GPU machine without a package index (Python 3.12, x86-64 Linux) that already has JAX, flax, optax,
# numpy, scipy, h5py, numba, opencv-python-headless, pillow, pyyaml, tqdm, matplotlib and lxml: the packages sscp
# needs beyond those, downloaded here for that platform, to be copied there and installed without an index:
#
#   bash benchmarks/gpu/offline_wheels.sh ogbench  wheels/            # OGBench data and envs (the core set)
#   bash benchmarks/gpu/offline_wheels.sh pusht    wheels-pusht/      # the core set + the `pusht` and `zarr` extras
#   bash benchmarks/gpu/offline_wheels.sh robomimic wheels-robosuite/ # the core set + the `robomimic` extra
#   # there:
#   python3 -m pip install --no-index --no-deps --target /tmp/site wheels/*.whl && export PYTHONPATH=/tmp/site
#
# Versions are the ones tested (pyproject.toml's bounds). dm_control's assets that OGBench never loads are dropped
# (cube, scene, puzzle and pointmaze build and step without them); the Push-T and robosuite sets leave dm_control
# out, since neither simulator needs it; robosuite's wheel is cut to the assets its three tasks load
# (benchmarks/gpu/slim_robosuite_wheel.py, which needs the `robomimic` extra installed here). Checked by installing
# each set into a Python 3.12 environment holding only the packages above, then making two demonstrations and
# training and evaluating a tiny sweep in the simulator.
set -euo pipefail
kind=${1:?usage: offline_wheels.sh ogbench|pusht|robomimic DIR}
out=${2:?usage: offline_wheels.sh ogbench|pusht|robomimic DIR}
here=$(cd "$(dirname "$0")/../.." && pwd)
common=(gymnasium==1.4.0 farama-notifications==0.0.4 ogbench==1.2.2 glfw==2.11.0 tyro==1.0.17 docstring-parser==0.18.0
        typeguard==4.6.1)
case "$kind" in
  ogbench) pkgs=("${common[@]}" mujoco==4.0.0 mujoco-core==4.0.0 pyopengl==3.1.10 dm_control==1.0.50 dm-env==1.6
                 labmaze==1.0.6 dm-tree==0.1.10) ;;
  pusht) pkgs=("${common[@]}" mujoco==4.0.0 mujoco-core==4.0.0 gym-pusht==0.1.8 pygame==2.6.1 pymunk==6.11.1
               cffi==2.1.1 pycparser==3.12 shapely==2.2.0 zarr==3.1.6 numcodecs==0.17.1 donfig==0.8.1.post1
               google-crc32c==1.9.0) ;;
  robomimic) pkgs=("${common[@]}" mujoco==3.3.7 robosuite==1.5.1 termcolor==3.3.0) ;;
  *) echo "offline_wheels.sh: unknown set '$kind'; valid: ogbench, pusht, robomimic" >&2; exit 2 ;;
esac
mkdir -p "$out"
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64; do
  plat+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d "$out" "${pkgs[@]}"
if [ "$kind" = ogbench ]; then
  python3 - "$out" <<'PY'
import glob, os, sys, zipfile
drop = ('dm_control/locomotion/walkers/', 'dm_control/locomotion/soccer/', 'dm_control/suite/dog_assets/',
        'dm_control/mujoco/testing/', 'dm_control/blender/', 'dm_control/mjcf/test_assets/')
for whl in glob.glob(os.path.join(sys.argv[1], 'dm_control-*.whl')):
    with zipfile.ZipFile(whl) as src, zipfile.ZipFile(whl + '.tmp', 'w', zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            if not name.startswith(drop):
                dst.writestr(src.getinfo(name), src.read(name))
    os.replace(whl + '.tmp', whl)
PY
fi
if [ "$kind" = robomimic ]; then
  full="$out/robosuite-1.5.1-py3-none-any.whl"
  mkdir -p "$out/.slim"
  PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 "$here/benchmarks/gpu/slim_robosuite_wheel.py" "$full" \
    --out "$out/.slim"
  mv "$out/.slim/$(basename "$full")" "$full" && rmdir "$out/.slim"
fi
du -sh "$out"
