"""Is LatCo's offline Obstacle failure bad luck with its random initialization? Restarts vs one plan.

Usage: python benchmarks/offline_restarts.py [--results results/quick] [--profile quick]
                                             [--task obstacle] [--episodes 20]

On the offline model (``make paper`` or notebook 03 makes it), evaluates LatCo with one plan of
200 LM iterations (the default), with several plans optimized as one batch and the best kept
(``n_plans``), and CEM and GD at the profile's budgets, all from the offline evaluation's start
states. Prints success, the model's predicted and the achieved reward, and seconds per plan.
About 15 minutes for 20 Obstacle episodes on one thread.
"""

from __future__ import annotations

import argparse

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd

from latco import experiments, paths
from latco.agent import evaluate
from latco.config import get_profile, make_profile_planner
from latco.train import load_model

VARIANTS = [
    ("latco", {}),
    ("latco", {"n_plans": 4, "iterations": 50}),
    ("latco", {"n_plans": 8, "iterations": 50}),
    ("latco", {"n_plans": 4, "iterations": 200}),
    ("cem", {}),
    ("gd", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    results = args.results or paths.results_dir(args.profile)
    model = load_model(paths.model_dir(results, args.task))
    rows = []
    for name, overrides in VARIANTS:
        planner = make_profile_planner(profile, name, **overrides)
        table = evaluate(model, planner, args.task, args.episodes, seed=experiments.OFFLINE_EVAL_SEED,
                         progress=False)
        label = name + "".join(f" {k}={v}" for k, v in overrides.items())
        rows.append({"planner": label, "success": table["success"].sum(), "episodes": len(table),
                     "predicted": table["predicted_reward"].mean(),
                     "achieved": table["achieved_reward"].mean(), "s / plan": table["plan_seconds"].mean()})
        print(rows[-1], flush=True)
    print(f"\n{args.task}, {args.profile}: offline model, first {args.episodes} offline evaluation starts\n")
    print(pd.DataFrame(rows).round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
