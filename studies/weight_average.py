"""Does a weight average (``TrainConfig.ema``) make the offline model's exploitability stop depending
on where training stops? Checkpoints of one training run, last weights against their average.

Usage: python studies/weight_average.py [--task obstacle] [--seeds 0 1 2] [--ema 0.999]
       [--snapshots 3000 4500 6000 7500 9000] [--planners latco cem gd] [--starts 20]
       [--profile quick] [--root results/weight_average] [--report-only]

Each training seed trains the profile's world model for ``task`` on the profile's offline data,
keeping the weight average beside the weights, and copies the checkpoint at every snapshot step.
Each snapshot is then planned with, both with its last weights and with their average, from
*validation* starts (seeds ``VALIDATION_SEED + i``), none of which is one of Table 2's evaluation
starts. Everything resumes from --root; two processes with different --seeds share it. Prints one
row per (seed, step, weights, planner): success, the model's predicted reward for the executed
plans, the achieved reward and the gap (Table 3's quantities).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from latco.agent import evaluate
from latco.paper import offline, recipe
from latco.paper.profiles import get_profile, make_profile_planner
from latco.storage import EvaluationLog
from latco.train import CHECKPOINT, load_model

VALIDATION_SEED = 6_000_000
"""Start states for choosing among models; far from the data's and Table 2's seeds."""


def train_snapshots(task: str, profile, root: Path, seed: int, ema: float, snapshots: list[int]) -> None:
    """Train one seed's run up to each snapshot step in turn (resuming) and keep a copy of each."""
    train = replace(profile.train_for(task), ema=ema)
    prof = replace(profile, train=train, task_train_steps={**profile.task_train_steps, task: max(snapshots)})
    episodes = recipe.oracle_data(task, prof, root / task / "data", 0, workers=1)
    run = root / task / f"seed{seed}"
    for step in sorted(snapshots):
        copy = run / f"step{step:05d}"
        if (copy / CHECKPOINT).exists():
            continue
        offline.world_model_for_task(task, prof, episodes["train"], run / "model", seed=seed, steps=step)
        copy.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / "model" / CHECKPOINT, copy / CHECKPOINT)


def evaluate_snapshots(task: str, profile, root: Path, seed: int, snapshots: list[int],
                       planners: list[str], starts: int) -> None:
    for step in sorted(snapshots):
        copy = root / task / f"seed{seed}" / f"step{step:05d}"
        for weights in ("last", "average"):
            model = load_model(copy, average=weights == "average")
            for planner in planners:
                evaluate(model, make_profile_planner(profile, planner), task, starts, seed=VALIDATION_SEED,
                         out_dir=copy / f"{weights}_{planner}")


def report(root: Path, task: str) -> pd.DataFrame:
    rows = []
    for folder in sorted((root / task).glob("seed*/step*/*_*/")):
        seed, step, name = folder.parts[-3], folder.parts[-2], folder.parts[-1]
        weights, planner = name.split("_", 1)
        t = pd.DataFrame(list(EvaluationLog(folder).finished_rows().values()))
        if t.empty:
            continue
        rows.append({"seed": int(seed[4:]), "step": int(step[4:]), "weights": weights, "planner": planner,
                     "starts": len(t), "success": t["success"].mean(),
                     "predicted": t["predicted_reward"].mean(), "achieved": t["achieved_reward"].mean(),
                     "gap": (t["achieved_reward"] - t["predicted_reward"]).mean()})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--snapshots", nargs="+", type=int, default=[3000, 4500, 6000, 7500, 9000])
    parser.add_argument("--planners", nargs="+", default=["latco", "cem", "gd"])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--root", default="results/weight_average")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    profile, root = get_profile(args.profile), Path(args.root)
    if not args.report_only:
        for seed in args.seeds:
            train_snapshots(args.task, profile, root, seed, args.ema, args.snapshots)
            evaluate_snapshots(args.task, profile, root, seed, args.snapshots, args.planners, args.starts)
    table = report(root, args.task)
    if len(table):
        table = table.sort_values(["planner", "seed", "step", "weights"])
        print(table.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
