"""Seconds per paper-setting LatCo plan: this checkout against an earlier git revision, paired.

Usage: python benchmarks/latco_revisions.py --rev 218657a [--pairs 3] [--horizon 30] [--iterations 200]
                                            [--option constraints=paper ...]

The earlier revision is exported with ``git archive`` to a temporary folder; each measurement is a
fresh subprocess that imports ``latco`` from one tree or the other, on the paper-sized RSSM with
random weights (stoch 30, deter 200: d = 234 per step), H = 30 and App. B's 200 LM iterations.
The two trees run alternately (before, after, before, after, ...), so a busy machine slows both
alike; the table gives each run and the medians. ``--option`` passes LatCo options to this
checkout only (e.g. ``constraints=paper`` to time the authors' bound handling on the new loop).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import latco  # thread defaults before torch
import torch
from latco.model import RSSM, WorldModelConfig
from latco.planners import make_planner
torch.manual_seed(0)
model = RSSM(WorldModelConfig(action_size=4)).eval()
model.requires_grad_(False)
options = json.loads(sys.argv[3])
planner = make_planner("latco", iterations=int(sys.argv[2]), **options)
z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
planner.plan(model, z0, 3)  # warm-up
t, c = time.perf_counter(), time.process_time()
plan = planner.plan(model, z0, int(sys.argv[1]))
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "file": latco.__file__}))
"""


def export(rev: str, dest: Path) -> Path:
    """The tree of ``rev`` under ``dest`` (git archive | tar)."""
    archive = dest / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "tree", filter="data")
    return dest / "tree"


def run(tree: Path, horizon: int, iterations: int, options: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(horizon), str(iterations), json.dumps(options)],
                         env=env, cwd=tree, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["file"].startswith(str(tree)):
        raise RuntimeError(f"imported latco from {result['file']}, not from {tree}")
    return result


def parse_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the earlier git revision (e.g. a commit hash)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--option", action="append", default=[], help="key=value for this checkout's LatCo")
    args = parser.parse_args()
    options = dict(parse_option(o) for o in args.option)
    with tempfile.TemporaryDirectory() as tmp:
        before_tree = export(args.rev, Path(tmp))
        rows: dict[str, list[dict]] = {"before": [], "after": []}
        for i in range(args.pairs):
            rows["before"].append(run(before_tree, args.horizon, args.iterations, {}))
            rows["after"].append(run(ROOT, args.horizon, args.iterations, options))
            before, after = rows["before"][-1]["wall"], rows["after"][-1]["wall"]
            print(f"pair {i + 1}: before {before:.2f} s, after {after:.2f} s", flush=True)
    print(f"\nPaper-setting LatCo, H = {args.horizon}, {args.iterations} LM iterations, "
          "paper-sized random RSSM")
    print(f"| tree | s/plan (median of {args.pairs}) | CPU s | runs |\n|---|---|---|---|")
    for label, tree in (("before", args.rev), ("after", f"HEAD {json.dumps(options) if options else ''}")):
        wall = [r["wall"] for r in rows[label]]
        cpu = [r["cpu"] for r in rows[label]]
        print(f"| {label} ({tree}) | {np.median(wall):.2f} | {np.median(cpu):.2f} | "
              f"{', '.join(f'{w:.2f}' for w in wall)} |")
    ratio = np.median([a["wall"] / b["wall"] for a, b in zip(rows["after"], rows["before"], strict=True)])
    print(f"\nafter / before (median of paired ratios): {ratio:.2f}")


if __name__ == "__main__":
    main()
