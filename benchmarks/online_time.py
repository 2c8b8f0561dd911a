"""Where an online run's time goes: seed data, training, collecting and evaluating, per run.

Usage: python benchmarks/online_time.py [results/quick]
Reads every online run's ``phases.csv`` (``latco.paper.online``; the seed phase that a seed's
from-scratch runs share is the planner ``_seed_phase``) and prints minutes per phase and run,
the seconds per collected and per evaluation episode, the sum over runs, and what 3 seeds per
(task, planner) would cost on 2 and 4 cores (job time / cores: the lower bound Snakemake reaches
when the cores are never idle).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from latco.paper.online import PHASES, phase_times


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results/quick")
    runs = sorted((results / "online").glob(f"*/*/seed*/{PHASES}"))
    if not runs:
        raise SystemExit(f"no online run with {PHASES} under {results / 'online'}; run the workflow first")
    rows = []
    for path in runs:
        run = path.parent
        task, planner, seed = run.parts[-3], run.parts[-2], run.parts[-1]
        t = phase_times(run)
        minutes = (t["seconds"] / 60).to_dict()
        evals = sorted(run.glob("eval_*/rows.jsonl"))
        eval_episodes = sum(len(p.read_text().splitlines()) for p in evals)
        per_collect = None
        if "collect" in t.index:
            per_collect = t.loc["collect", "seconds"] / t.loc["collect", "times"]
        rows.append({
            "task": task, "planner": planner, "seed": seed,
            "seed data": minutes.get("seed episodes", 0.0), "train": minutes.get("train", 0.0),
            "collect": minutes.get("collect", 0.0), "evaluate": minutes.get("evaluate", 0.0),
            "total": sum(minutes.values()),
            "s / collected ep.": float("nan") if per_collect is None else per_collect,
            "s / eval ep.": 60 * minutes.get("evaluate", 0.0) / max(eval_episodes, 1),
        })
    table = pd.DataFrame(rows)
    print("minutes per phase and run (one thread each):\n")
    print(table.to_markdown(index=False, floatfmt=".1f"))
    total = table["total"].sum()
    share = table[["seed data", "train", "collect", "evaluate"]].sum() / total
    print("\nshare of the runs' time: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items()))
    seeds = table.groupby(["task", "planner"])["seed"].nunique()
    per_config = table.groupby(["task", "planner"])["total"].mean()
    counts = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    print(f"\n{len(table)} runs, {total:.0f} min of job time ({counts} seeds per (task, planner)). "
          f"3 seeds of each, from the mean run time per (task, planner): "
          f"{3 * per_config.sum():.0f} min of job time, >= {3 * per_config.sum() / 2:.0f} min on 2 cores, "
          f">= {3 * per_config.sum() / 4:.0f} min on 4")


if __name__ == "__main__":
    main()
