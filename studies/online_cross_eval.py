"""Every online planner on every online run's final model: is a planner's gap its optimizer or its data?

Usage: python studies/online_cross_eval.py [--results results/quick] [--profile quick]
                                              [--task obstacle] [--seed 0] [--episodes 10]

Each online run (Algorithm 1) trains its own model on the data its own planner collected, so
Table 1 mixes two things. Here each planner plans on each run's final model, from the start
states of the online evaluations. Prints success, return and the model's predicted reward per
(model, planner); the diagonal repeats the runs' own final evaluations. Needs the online runs
(``make paper`` or notebook 04); about 6 minutes for Obstacle on `quick` with one thread.
"""

from __future__ import annotations

import argparse

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd

from latco.paper import analyses, paths
from latco.paper.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--seed", type=int, default=0, help="which online run of each planner")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    results = args.results or paths.results_dir(args.profile)
    models = {}
    for planner in profile.online_planners:
        run = paths.online_dir(results, args.task, planner, args.seed)
        if not (run / "model").is_dir():
            raise SystemExit(f"no online run at {run}: run `make paper` (or notebook 04) first")
        models[f"{planner}'s run"] = run / "model"
    table = analyses.cross_evaluation(args.task, models, profile.online_planners, profile, args.episodes)
    pd.set_option("display.width", 160)
    print(f"{args.task}, {args.profile}: every planner on every online run's final model "
          f"({args.episodes} episodes each)\n")
    for column, digits in (("success", 2), ("return", 1), ("predicted", 1)):
        print(f"{column} (rows: model, columns: planner)")
        grid = table.pivot(index="model", columns="planner", values=column)
        grid = grid.reindex(index=list(models), columns=list(profile.online_planners)).round(digits)
        print(grid.to_markdown(), "\n")


if __name__ == "__main__":
    main()
