"""Milliseconds per agent step (simulation + rendering the image observation) for each task.

Usage: python benchmarks/envs.py [--sizes 64 32] [--steps 200] [--tasks obstacle reach push]
       [--max-ms 20]
Median and 90th percentile over `steps` steps of the noisy oracle; "sim only" is the same
without rendering. Exits 1 if a median at 64 px exceeds `--max-ms` (the project's budget).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from latco.envs import TASKS, gl
from latco.envs.timing import step_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 32])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--max-ms", type=float, default=20.0)
    args = parser.parse_args()
    print(f"MUJOCO_GL={gl.BACKEND}")
    print("| task | px | step+render median ms | p90 ms | sim only median ms |")
    print("|---|---|---|---|---|")
    over = []
    for task in args.tasks:
        sim_only = np.median(step_times(task, steps=args.steps, render=False)) * 1e3
        for size in args.sizes:
            times = step_times(task, image_size=size, steps=args.steps) * 1e3
            median, p90 = np.median(times), np.percentile(times, 90)
            print(f"| {task} | {size} | {median:.1f} | {p90:.1f} | {sim_only:.1f} |", flush=True)
            if size == 64 and median > args.max_ms:
                over.append(f"{task} {median:.1f} ms")
    if over:
        print(f"over the {args.max_ms:g} ms budget at 64 px: {', '.join(over)}")
        return 1
    print(f"every task within {args.max_ms:g} ms per step at 64 px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
