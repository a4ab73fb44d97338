"""Determinism: the same `sscp train` command run several times in fresh processes, compared bit for bit.

For each variant the command runs --repeats times (separate run folders, same seed and config); the final
checkpoints' parameters and the train.csv losses are compared with the first repeat. Variants:
  default        the environment as it is (with sscp's default XLA flags: command buffers scheduled CONCURRENT)
  deterministic  XLA_FLAGS += --xla_gpu_deterministic_ops=true (GPU: deterministic scatter/reduction kernels), with
                 XLA's own command-buffer scheduling (SSCP_XLA_DEFAULTS=0)
  deterministic-concurrent   the same, with CUDA-graph command buffers scheduled CONCURRENT
                 (--xla_gpu_command_buffer_scheduling_mode=CONCURRENT: independent kernels of a step may overlap);
                 compared with `deterministic`, it shows whether that scheduling changes any result

    python benchmarks/determinism.py --out benchmarks/results/determinism-cpu.json -- \\
        --dataset cube-single-play-singletask-task1-v0 --steps 2000 ...   # sscp train options after --

One JSON row per variant: identical_params, max_param_diff, identical_losses, max_loss_diff, wall times; and
against the first variant's first repeat (`reference`): identical_params_to_reference, max_param_diff_to_reference,
identical_losses_to_reference.

    python benchmarks/determinism.py --variants deterministic deterministic-concurrent --out ... -- ...
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.throughput import emit, provenance  # noqa: E402
from sscp import checkpoint  # noqa: E402
from sscp.runlog import read_csv  # noqa: E402

SCHEDULING = "--xla_gpu_command_buffer_scheduling_mode="
FLAGS = {  # variant: (XLA flags added, environment variables set)
    "default": ("", {}),
    "deterministic": ("--xla_gpu_deterministic_ops=true", {"SSCP_XLA_DEFAULTS": "0"}),
    "deterministic-concurrent": (f"--xla_gpu_deterministic_ops=true {SCHEDULING}CONCURRENT", {}),
}


def variant_env(variant: str, environ: dict) -> dict:
    """Returns the child process's environment for a variant: this process's XLA_FLAGS without a command-buffer
    scheduling mode (importing sscp here added its default), plus the variant's flags and variables."""
    flags, extra = FLAGS[variant]
    inherited = [f for f in environ.get("XLA_FLAGS", "").split() if not f.startswith(SCHEDULING)]
    return {**environ, **extra, "XLA_FLAGS": " ".join([*inherited, flags]).strip()}


def final_state(run_dir: Path) -> dict[str, np.ndarray]:
    """Returns the newest checkpoint's arrays, flattened to {path: array}."""
    payload = checkpoint.read_payload(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1])
    flat = {}

    def walk(prefix: str, node) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}/{k}", v)
        else:
            flat[prefix] = np.asarray(node)

    walk("", payload["state"])
    return flat


def losses(run_dir: Path) -> np.ndarray:
    """Returns train.csv's train/* columns as one array [rows, columns]."""
    rows = read_csv(run_dir / "train.csv")
    keys = sorted(k for k in rows[0] if k.startswith("train/"))
    return np.array([[float(r[k]) for k in keys] for r in rows])


def param_diff(state: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[bool, float]:
    """Returns (bit-identical, largest absolute difference) of two final states' arrays."""
    same = all(np.array_equal(state[k], other[k]) for k in other)
    return same, max(float(np.max(np.abs(state[k] - other[k]))) for k in other)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["default", "deterministic"], choices=sorted(FLAGS))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="sscp train options, after --")
    a = p.parse_args()
    train_args = [t for t in a.train_args if t != "--"]
    rows: list[dict] = []
    old = json.loads(a.out.read_text()) if a.out and a.out.exists() else []
    device = None
    reference = None  # the first variant's first repeat: (name, state, losses)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants:
            env = variant_env(variant, dict(os.environ))
            walls, states, curves = [], [], []
            for i in range(a.repeats):
                run_dir = Path(tmp) / f"{variant}-{i}"
                cmd = [sys.executable, "-m", "sscp.cli", "train", *train_args, "--run-dir", str(run_dir)]
                start = time.perf_counter()
                subprocess.run([*cmd, "--no-progress"], check=True, env=env, stdout=subprocess.DEVNULL)
                walls.append(time.perf_counter() - start)
                states.append(final_state(run_dir))
                curves.append(losses(run_dir))
                device = device or json.loads((run_dir / "config.json").read_text())["versions"]
            reference = reference or (variant, states[0], curves[0])
            same, diffs = zip(*(param_diff(s, states[0]) for s in states[1:]), strict=True)
            same_as_ref, diff_to_ref = param_diff(states[0], reference[1])
            loss_diffs = [float(np.nanmax(np.abs(c - curves[0]))) for c in curves[1:]]
            row = {
                "variant": variant,
                "xla_flags": env["XLA_FLAGS"],
                "sscp_xla_defaults": env.get("SSCP_XLA_DEFAULTS", "1") != "0",
                "backend": device["backend"],
                "jax": device["jax"],
                "repeats": a.repeats,
                "identical_params": all(same),
                "max_param_diff": max(diffs),
                "identical_losses": all(np.array_equal(c, curves[0], equal_nan=True) for c in curves[1:]),
                "max_loss_diff": max(loss_diffs),
                "wall_s": walls,
                "reference": reference[0],
                "identical_params_to_reference": same_as_ref,
                "max_param_diff_to_reference": diff_to_ref,
                "identical_losses_to_reference": bool(np.array_equal(curves[0], reference[2], equal_nan=True)),
                **provenance(),
            }
            emit(row, rows, old, a.out)


if __name__ == "__main__":
    main()
