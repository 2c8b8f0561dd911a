"""LatCo variants at about equal wall time, offline: restarts, polish, bound handling, warm start.

Usage: python studies/offline_restarts.py [--results results/quick] [--profile quick]
                                             [--task obstacle] [--episodes 20] [--variants NAME ...]
                                             [--model DIR]

On the offline model (``make paper`` or notebook 03 makes it), evaluates LatCo variants and CEM and
GD at the profile's budgets, all from the offline evaluation's start states (the same episodes
for every variant); ``--model`` names another model directory (e.g. a ``data_scaling.py`` run's
``model/``). Prints success, the model's predicted and the achieved reward (Table 3's gap),
and seconds per plan. Obstacle plans once per episode (H = T_cache = T_tot = 30), so a variant's
success there is its single plan's; Push re-plans every 20 of 40 steps (where ``shift`` warm-starts).
About 1-2 minutes per variant for 20 Obstacle episodes on one thread.
"""

from __future__ import annotations

import argparse

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd

from latco.agent import evaluate
from latco.envs.tasks import task_spec
from latco.paper import offline, paths
from latco.paper.profiles import get_profile, make_profile_planner
from latco.train import load_model

VARIANTS = {
    "latco": ("latco", {}),
    "latco-paper-bound": ("latco", {"constraints": "paper"}),
    "latco-4x50": ("latco", {"n_plans": 4, "iterations": 50}),
    "latco-polish20": ("latco", {"polish_iterations": 20}),
    "latco-4x50-polish20": ("latco", {"n_plans": 4, "iterations": 50, "polish_iterations": 20}),
    "latco-2x100-polish20": ("latco", {"n_plans": 2, "iterations": 100, "polish_iterations": 20}),
    "latco-warm": ("latco", {"shift": "t_cache"}),
    "latco-4x200": ("latco", {"n_plans": 4}),
    "latco-1x200": ("latco", {"n_plans": 1, "iterations": 200}),
    "latco-1x200-paper-bound": ("latco", {"n_plans": 1, "iterations": 200, "constraints": "paper"}),
    "cem": ("cem", {}),
    "gd": ("gd", {}),
}
"""Label -> (planner, overrides on top of the profile's budget); shift "t_cache" is the task's."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--model", default=None,
                        help="model directory (default: the offline model of --results)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    profile = get_profile(args.profile)
    results = args.results or paths.results_dir(args.profile)
    model = load_model(args.model or paths.model_dir(results, args.task))
    rows = []
    for label in args.variants:
        name, overrides = VARIANTS[label]
        if overrides.get("shift") == "t_cache":
            overrides = {**overrides, "shift": task_spec(args.task).t_cache}
        planner = make_profile_planner(profile, name, **overrides)
        table = evaluate(model, planner, args.task, args.episodes, seed=offline.OFFLINE_EVAL_SEED,
                         progress=False)
        rows.append({"variant": label, "success": table["success"].sum(), "episodes": len(table),
                     "predicted": table["predicted_reward"].mean(),
                     "achieved": table["achieved_reward"].mean(), "s / plan": table["plan_seconds"].mean()})
        print(rows[-1], flush=True)
    print(f"\n{args.task}, {args.profile}: offline model, first {args.episodes} offline evaluation starts\n")
    print(pd.DataFrame(rows).round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
