"""Which way round the wall did each planner's offline Obstacle episodes go? (Table 2, explained)

Usage: python studies/obstacle_paths.py [--results results/quick] [--profile quick]
                                           [--planners latco cem gd]

Reads the executed offline episodes that `make paper` (notebook 03) saved and classifies each by
``envs.obstacle.wall_passage``: went above the wall, below it, or ended pressed against it.
Seconds; no planning.
"""

from __future__ import annotations

import argparse

import pandas as pd

from latco.paper import analyses, paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--planners", nargs="+", default=["latco", "cem", "gd"])
    args = parser.parse_args()
    results = args.results or paths.results_dir(args.profile)
    table: pd.DataFrame = analyses.obstacle_passages(results, args.planners)
    print(f"\nobstacle, {args.profile}: offline episodes by the way they met the wall\n")
    print(table.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
