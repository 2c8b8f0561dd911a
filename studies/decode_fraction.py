"""World models trained with a fraction of the frames decoded, at equal wall time: do they plan better?

    python studies/decode_fraction.py --task reach --fraction 0.5 --steps 4600 [--root DIR]
    python studies/decode_fraction.py --task reach --summary

``TrainConfig.decode_fraction`` < 1 makes a training step cheaper (``benchmarks/world_model.py``
times it); more steps then fit the same wall time. Each run trains the quick profile's model of
``task`` on the quick profile's offline data (``results/quick/data/<task>``, made by ``make paper``
or the Snakefile's ``data`` rule) with that fraction and step count, then reports the held-out
reward diagnostics (notebook 02) and the offline success of LatCo and CEM on Table 2's start states.
``--summary`` prints every finished run of the task beside the quick model itself (fraction 1).
Runs resume; each takes minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from latco.paper import diagnostics, offline, paths, recipe
from latco.paper.profiles import get_profile


def run(task: str, fraction: float, steps: int, root: Path, planners: tuple[str, ...]) -> dict:
    """Train (or resume) one model and evaluate it; the summary row is also ``summary.json``."""
    prof = get_profile("quick").with_overrides({"train.decode_fraction": fraction,
                                                f"task_train_steps.{task}": steps})
    run_dir = root / task / f"fraction{fraction:g}_steps{steps}"
    episodes = recipe.oracle_data(task, prof, paths.data_dir(paths.results_dir("quick"), task))
    tick = time.perf_counter()
    model = offline.world_model_for_task(task, prof, episodes["train"], run_dir / "model")
    row = summarize(model, episodes["heldout"], task, fraction, steps, time.perf_counter() - tick)
    for planner in planners:
        table = offline.offline_evaluation(task, planner, prof, model, run_dir / planner)
        row[f"{planner} success"] = float(table["success"].mean())
        row[f"{planner} gap"] = float((table["achieved_reward"] - table["predicted_reward"]).mean())
    (run_dir / "summary.json").write_text(json.dumps(row, indent=1))
    return row


def summarize(model, heldout, task: str, fraction: float, steps: int, seconds: float) -> dict:
    quality = diagnostics.reward_quality(model, heldout, horizon=30)
    imagined = diagnostics.imagined_reward_calibration(model, heldout, horizon=30)
    return {"task": task, "decode fraction": fraction, "steps": steps,
            "train minutes (this call)": seconds / 60,
            "success_auc": quality.get("success_auc"), "imagined precision": imagined.get("precision"),
            "imagined recall": imagined.get("recall"), "imagined gap": imagined.get("gap")}


def summary(task: str, root: Path) -> pd.DataFrame:
    """Every finished run of ``task`` beside the quick model itself (all frames, the profile's steps)."""
    from latco.paper import results

    quick = paths.results_dir("quick")
    model = results.model(quick, task)
    base = summarize(model, results.heldout_episodes(quick, task), task, 1.0,
                     get_profile("quick").train_for(task).steps, 0.0)
    for planner in ("latco", "cem"):
        table = results.offline(quick, task, planner).table
        base[f"{planner} success"] = float(table["success"].mean())
        base[f"{planner} gap"] = float((table["achieved_reward"] - table["predicted_reward"]).mean())
    rows = [base] + [json.loads(p.read_text()) for p in sorted((root / task).glob("*/summary.json"))]
    return pd.DataFrame(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reach")
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=4600)
    parser.add_argument("--root", type=Path, default=Path("results/decode_fraction"))
    parser.add_argument("--planners", nargs="+", default=["latco", "cem"])
    parser.add_argument("--summary", action="store_true", help="print the finished runs and stop")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the Snakefile's jobs: one thread each, two jobs on two cores
    if args.summary:
        print(summary(args.task, args.root).round(3).to_markdown(index=False))
    else:
        print(run(args.task, args.fraction, args.steps, args.root, tuple(args.planners)))
