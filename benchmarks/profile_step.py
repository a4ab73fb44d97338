"""Where the time of one training step goes on a GPU: kernel count and device time per step, top kernels.

python benchmarks/profile_step.py --seeds 1 8 --unroll 1 8 --out profile.json
"""

import argparse
import collections
import glob
import json
import tempfile
import time

import jax
from jax.profiler import ProfileData

from benchmarks.throughput import setup, synthetic_data


def profile(seeds: int, unroll: int, steps: int, data, overrides: dict) -> dict:
    agents, tasks, chunk = setup("sscp", seeds, data, overrides, unroll)
    agents, info = chunk(agents, tasks, data, steps)
    jax.block_until_ready(info)
    start = time.perf_counter()
    agents, info = chunk(agents, tasks, data, steps)
    jax.block_until_ready(info)
    wall = time.perf_counter() - start
    trace_dir = tempfile.mkdtemp()
    with jax.profiler.trace(trace_dir):
        agents, info = chunk(agents, tasks, data, steps)
        jax.block_until_ready(info)
    path = glob.glob(trace_dir + "/**/*.xplane.pb", recursive=True)[0]
    kernels: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    lines: collections.Counter = collections.Counter()
    for plane in ProfileData.from_file(path).planes:
        if not plane.name.startswith("/device:GPU"):
            continue
        for line in plane.lines:
            events = list(line.events)
            lines[line.name] += len(events)
            if "stream" not in line.name.lower():
                continue
            for ev in events:
                kernels[ev.name] += ev.duration_ns
                counts[ev.name] += 1
    busy = sum(kernels.values()) / 1e9
    return {
        "seeds": seeds,
        "unroll": unroll,
        "updates_per_sec": seeds * steps / wall,
        "ms_per_step_wall": 1000 * wall / steps,
        "ms_per_step_kernels": 1000 * busy / steps,
        "kernels_per_step": sum(counts.values()) / steps,
        "trace_lines": dict(lines),
        "top": [(k, round(v / 1e6 / steps, 4), counts[k] // steps) for k, v in kernels.most_common(25)],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--unroll", type=int, nargs="+", default=[1])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    data = synthetic_data(1_000_000, 40, 5)
    h = tuple(a.hidden)
    overrides = {"batch_size": a.batch, "actor_hidden_dims": h, "critic_hidden_dims": h}
    rows = []
    for s in a.seeds:
        for u in a.unroll:
            r = profile(s, u, a.steps, data, overrides)
            print(json.dumps({k: v for k, v in r.items() if k != "top"}))
            for name, ms, n in r["top"][:12]:
                print(f"   {ms:8.4f} ms/step  x{n:<4} {name[:110]}")
            rows.append(r)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
