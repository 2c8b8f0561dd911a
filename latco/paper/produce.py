"""Every result of a profile in one process.
::

    python -m latco.paper.produce --profile smoke [--set PATH=VALUE]

The Snakefile makes the same files job by job through notebooks 01-04; this is the short way for
the smoke profile (``make test`` runs it before notebooks 10-14, which only read results).
"""

from __future__ import annotations

import os

from latco.paper import paths
from latco.paper.offline import offline_run
from latco.paper.online import online_training, seed_phase
from latco.paper.profiles import Profile


def produce_results(profile: Profile, results: str | os.PathLike, seed: int = 0) -> None:
    """Every result of the profile's grid that figures and tables read, in this process: offline
    data, models and evaluations (``Profile.offline_runs``: every planner on every model of a task,
    and the closed-loop ones), and every online run (from scratch: after the seed phase they share).
    Resumable.

    The Snakefile makes the same files job by job, each through its notebook (01-04); this is the
    short way for the smoke profile (``make test`` runs it before the notebooks 10-14 read them).
    """
    for task, planner, model_seed, t_cache in profile.offline_runs(seed):
        offline_run(task, planner, profile, results, model_seed, t_cache=t_cache, data_seed=seed)
    for task, run_seed in dict.fromkeys((t, s) for t, _, s in profile.online_runs()):
        if profile.online_for(task).start == "scratch":
            seed_phase(task, profile, paths.online_seed_phase_dir(results, task, run_seed), run_seed)
    for task, planner, run_seed in profile.online_runs():
        online_training(task, planner, profile, paths.online_dir(results, task, planner, run_seed),
                        seed=run_seed)


if __name__ == "__main__":
    import argparse

    from latco.paper.profiles import get_profile

    parser = argparse.ArgumentParser(description="Make every result of a profile (see produce_results).")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--results", default=None, help="default: results/<profile>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=None, help="online seeds per (task, planner); "
                        "default: the profile's")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a profile setting by its dotted path, e.g. "
                        "planners.latco.iterations=100 "
                        "(repeatable; latco.paper.settings)")
    args = parser.parse_args()
    from latco.paper.settings import parse_assignments

    profile = get_profile(args.profile).with_overrides(parse_assignments(args.overrides))
    profile = profile.with_seeds(args.seeds)
    produce_results(profile, args.results or paths.results_dir(args.profile), args.seed)
