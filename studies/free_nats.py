"""Does a tighter prior (fewer free nats) make the offline world model harder to exploit?

Usage: python studies/free_nats.py [--task obstacle] [--profile quick] [--free-nats 3 1]
                                      [--results results/quick] [--episodes 20]
                                      [--planners latco cem gd]

For each free-nats value, trains the profile's offline world model for the task on the profile's
offline data (both made if missing; the model of the profile's own value is the workflow's, the
others go to ``<results>/free_nats/<task>/<value>``), then prints the model's quality on the
held-out episodes (reward correlation and AUC; open-loop pixel error with the episodes' own
actions and with another episode's, ``diagnostics.action_sensitivity``) and every planner's
success rate (``analyses.cross_evaluation``) on the first ``--episodes`` offline evaluation
starts (``--planners`` with no names: model quality only). About 15 minutes of training per
extra model on `quick`, plus 1-2 minutes per planner.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import pandas as pd

from latco.paper import analyses, diagnostics, offline, paths, recipe
from latco.paper.profiles import get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="obstacle")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--free-nats", type=float, nargs="+", default=[3.0, 1.0])
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--planners", nargs="*", default=["latco", "cem", "gd"],
                        help="planners to evaluate on each model; none: model quality only")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    results = Path(args.results or paths.results_dir(args.profile))
    episodes = recipe.oracle_data(args.task, profile, paths.data_dir(results, args.task))
    models, quality = {}, []
    for free_nats in args.free_nats:
        variant = replace(profile, world_model=replace(profile.world_model, free_nats=free_nats))
        model_dir = (paths.model_dir(results, args.task) if free_nats == profile.world_model.free_nats
                     else results / "free_nats" / args.task / f"{free_nats:g}")
        model = offline.world_model_for_task(args.task, variant, episodes["train"], model_dir)
        label = f"free nats {free_nats:g}"
        models[label] = model_dir
        sensitivity = diagnostics.action_sensitivity(model, episodes["heldout"])
        quality.append({"model": label, **diagnostics.reward_quality(model, episodes["heldout"]),
                        **{f"pixel_{k}": v for k, v in sensitivity.items()}})
    table = pd.DataFrame(quality)
    if args.planners:
        success = analyses.cross_evaluation(args.task, models, args.planners, profile, args.episodes,
                                               seed=offline.OFFLINE_EVAL_SEED)
        table = table.merge(success, on="model")
    print(f"\n{args.task}, {args.profile}: offline model per free-nats value, first {args.episodes} starts\n")
    print(table.round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
