"""Offline success and Table 3's achieved − predicted gap against offline data size (model exploitation).

Usage: python studies/data_scaling.py --task reach --steps 30000 60000 [--balance 0 0.5]
       [--reward-scale 1 10] [--train-steps 3000 9000] [--planners latco cem gd] [--starts 20]
       [--profile quick] [--workers 2]
       [--root results/data_scaling] [--figure figures/data_scaling.png]
Each (size, balance) trains the profile's world model at its fixed training budget on that much
offline data (the profile's oracle : random : greedy mix), measures the reward head on held-out
and imagined windows, and evaluates each planner offline from the same start states
(`latco.paper.scaling`). Everything resumes from --root. Prints every finished run as a Markdown
table and redraws the figure from all runs under --root.
"""

from __future__ import annotations

import argparse

from latco.paper import plotting, scaling
from latco.paper.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--steps", nargs="*", type=int, default=[])
    parser.add_argument("--balance", nargs="+", type=float, default=[None])
    parser.add_argument("--reward-scale", nargs="+", type=float, default=[None])
    parser.add_argument("--train-steps", nargs="+", type=int, default=[None],
                        help="world-model gradient steps (default: the profile's); longer runs continue "
                             "shorter ones' checkpoints")
    parser.add_argument("--train-figure", default="figures/training_steps.png",
                        help="success and gap against gradient steps, drawn when runs differ in them")
    parser.add_argument("--planners", nargs="+", default=["latco", "cem", "gd"])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="results/data_scaling")
    parser.add_argument("--figure", default="figures/data_scaling.png")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    for steps in args.steps:
        for balance in args.balance:
            for reward_scale in args.reward_scale:
                # shortest first: a longer run continues the shorter one's checkpoint
                default = profile.train_for(args.task).steps
                for train_steps in sorted(args.train_steps, key=lambda n: n or default):
                    scaling.scaling_run(args.task, profile, steps, args.root, args.planners, args.starts,
                                        balance, args.workers, reward_scale=reward_scale,
                                        train_steps=train_steps)
    table = scaling.collect_summaries(args.root)
    print(table.to_markdown(index=False, floatfmt=".3g"))
    if args.figure:
        plotting.save_figure(scaling.scaling_figure(table), args.figure)
    if args.train_figure and table["train_steps"].nunique() > 1:
        plotting.save_figure(scaling.scaling_figure(table, x="train_steps"), args.train_figure)


if __name__ == "__main__":
    main()
