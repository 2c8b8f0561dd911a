"""Episodes per second of offline data collection, one process against several, side by side.

Usage: python benchmarks/collection.py [--tasks obstacle reach push] [--episodes 40]
       [--workers 1 2] [--size 32]
Collects the noisy oracle's episodes into a temporary directory per run (the same seeds every
run, so every row collects the same episodes), prints a Markdown table, and checks the
episodes of every run are identical to the first run's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from latco import data, envs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(envs.TASKS))
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    print("| task | workers | episodes | seconds | episodes/s | speed-up | same episodes |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        first, base = None, None
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                data.collect(task, envs.oracle(task, noise=0.3), args.episodes, tmp,
                             seed=0, image_size=args.size, workers=workers)
                seconds = time.perf_counter() - start
                images = [data.load_episode(p).images for p in sorted(Path(tmp).glob("ep_*.npz"))]
            first = first if first is not None else images
            same = all(np.array_equal(a, b) for a, b in zip(first, images, strict=True))
            base = base or seconds
            print(f"| {task} | {workers} | {args.episodes} | {seconds:.1f} | "
                  f"{args.episodes / seconds:.1f} | {base / seconds:.2f} | {same} |", flush=True)


if __name__ == "__main__":
    main()
