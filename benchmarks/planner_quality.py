"""How good are the planners' optima, and how fast do they get there? Analytic problems and trained models.

Usage: python benchmarks/planner_quality.py [--part analytic|models|both] [--results results/quick]
                                            [--tasks obstacle reach push] [--starts 3] [--seeds 3]
                                            [--profile quick] [--only latco-fast]
                                            [--out figures/planner_quality]

Part 1, analytic (``latco.analytic``; the true dynamics are the model): each planner's model return
Σ r of its returned actions against the best of 8 L-BFGS-B solves of the same return on the true
dynamics, for several planner seeds, and LatCo's own objective ½Σ softplus(−r)² against its
L-BFGS-B optimum. Part 2, trained models (``make paper`` makes them): from held-out first frames,
each planner's model return against wall time (``latco.paper.benchmark.return_vs_time``); the table gives
the final return and the first time it reaches paper-setting CEM's final return (100 × 10 000), and
the final plan's LatCo objective ½Σ softplus(−r)² (what LatCo minimizes; CEM maximizes Σ r), per
start against paper-CEM's plan: a plan can lose on the return and win on LatCo's objective.
Prints Markdown tables; with ``--out``, writes them as CSV beside that prefix.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import pandas as pd
import torch

from latco import analytic
from latco.paper import paths
from latco.paper.benchmark import return_vs_time, time_to_reach
from latco.paper.profiles import get_profile
from latco.paper.results import heldout_starts
from latco.planners import make_planner

ANALYTIC_PLANNERS = {
    "LatCo (default)": ("latco", {}),
    "LatCo, constraints=paper": ("latco", {"constraints": "paper"}),
    "LatCo, constraints=tanh": ("latco", {"constraints": "tanh"}),
    "LatCo, 4 plans x 50": ("latco", {"n_plans": 4, "iterations": 50}),
    "LatCo + L-BFGS-B polish 30": ("latco", {"polish_iterations": 30}),
    "LatCo + Adam polish 100": ("latco", {"polish_iterations": 100, "polish_method": "adam"}),
    "LatCo, 4 plans + L-BFGS-B polish 30": ("latco", {"n_plans": 4, "polish_iterations": 30}),
    "latco-fast (2 x 24 + L-BFGS-B polish 30 on the return)": ("latco-fast", {}),
    "latco-fast, polish on LatCo's objective": ("latco-fast", {"polish_objective": "latco"}),
    "CEM 30 x 1000 (quick)": ("cem", {"iterations": 30, "samples": 1000}),
    "GD 500 (paper)": ("gd", {}),
    "iCEM (quick)": ("icem", {"iterations": 10, "samples": 300}),
}


def analytic_table(seeds: int) -> pd.DataFrame:
    """Return ratio (planner / optimum, ≤ 1; higher is better) per problem, planner and seed."""
    rows = []
    for problem, (model, z0, H) in analytic.problems().items():
        best_return = -analytic.reference_optimum(model, z0, H, objective=analytic.negative_return).value
        best_collocation = analytic.reference_optimum(model, z0, H).value
        for label, (name, overrides) in ANALYTIC_PLANNERS.items():
            for seed in range(seeds):
                start = time.perf_counter()
                plan = make_planner(name, seed=seed, **overrides).plan(model, z0, H)
                seconds = time.perf_counter() - start
                actions = plan.actions.double()
                ret = -float(analytic.negative_return(model, z0.double(), actions))
                gap = (analytic.rollout_features(model, z0, plan.actions) - plan.features[1:]).abs().max()
                rows.append(dict(problem=problem, planner=label, seed=seed, seconds=seconds,
                                 **{"return": ret, "optimal return": best_return,
                                    "LatCo objective / optimum":
                                        float(analytic.collocation_objective(model, z0.double(), actions))
                                        / best_collocation,
                                    "max |a| raw": float(plan.trace.get("raw_action_max",
                                                                        plan.actions.abs().max())),
                                    "features vs rollout": float(gap)}))
    return pd.DataFrame(rows)


def summarize_analytic(table: pd.DataFrame) -> pd.DataFrame:
    g = table.groupby(["problem", "planner"], sort=False)
    return pd.DataFrame({
        "return (mean over seeds)": g["return"].mean(), "optimal return": g["optimal return"].first(),
        "LatCo objective / optimum (worst seed)": g["LatCo objective / optimum"].max(),
        "max |a| raw": g["max |a| raw"].max(), "features vs rollout (max)": g["features vs rollout"].max(),
        "s / plan": g["seconds"].median(),
    }).reset_index()


LATCO_OBJECTIVE = {"polish_objective": "latco"}
PAPER_CEM = "CEM (paper: 100 x 10 000)"  # the reference every other planner is timed against


def model_planners(profile_name: str) -> dict[str, tuple[str, dict]]:
    profile = get_profile(profile_name)
    quick = {name: dict(opts) for name, opts in profile.planners.items()}
    lat = quick.get("latco", {})
    return {
        "LatCo (profile)": ("latco", lat),
        "LatCo (profile), constraints=paper": ("latco", {**lat, "constraints": "paper"}),
        "LatCo, 1 x 200 (paper settings)": ("latco", {}),
        "LatCo, 1 x 200, constraints=paper (authors)": ("latco", {"constraints": "paper"}),
        "LatCo (profile) + L-BFGS-B polish 30": ("latco", {**lat, "polish_iterations": 30}),
        "latco-fast (2 x 24 + L-BFGS-B polish 30 on the return)": ("latco-fast", {}),
        "latco-fast, 4 plans, polish 100 on the return": (
            "latco-fast", {"n_plans": 4, "polish_iterations": 100}),
        # the polish on LatCo's own objective ½Σ softplus(−r)² (latco-fast before it polished the return)
        "latco-fast, polish on LatCo's objective": ("latco-fast", LATCO_OBJECTIVE),
        "latco-fast, L-BFGS-B polish 100 on LatCo's objective": (
            "latco-fast", {**LATCO_OBJECTIVE, "polish_iterations": 100}),
        "latco-fast, 4 plans, on LatCo's objective": ("latco-fast", {**LATCO_OBJECTIVE, "n_plans": 4}),
        "latco-fast, 4 plans, L-BFGS-B polish 100 on LatCo's objective": (
            "latco-fast", {**LATCO_OBJECTIVE, "n_plans": 4, "polish_iterations": 100}),
        "latco-fast, 4 plans, L-BFGS-B polish 300 on LatCo's objective": (
            "latco-fast", {**LATCO_OBJECTIVE, "n_plans": 4, "polish_iterations": 300}),
        "latco-fast, 8 plans, L-BFGS-B polish 100 on LatCo's objective": (
            "latco-fast", {**LATCO_OBJECTIVE, "n_plans": 8, "polish_iterations": 100}),
        "CEM (profile)": ("cem", quick.get("cem", {})),
        "GD (profile)": ("gd", quick.get("gd", {})),
        PAPER_CEM: ("cem", {}),
    }


def models_table(results: Path, tasks: list[str], starts: int, profile: str,
                 only: list[str] | None = None) -> pd.DataFrame:
    """Final model return and time to paper-CEM's return per task and planner; ``only`` keeps the
    planners whose label contains one of these strings (paper-CEM, the reference, always runs)."""
    from latco.train import load_model

    planners = model_planners(profile)
    if only:
        planners = {label: spec for label, spec in planners.items()
                    if label == PAPER_CEM or any(key in label for key in only)}
    rows = []
    for task in tasks:
        model = load_model(paths.model_dir(results, task))
        model.requires_grad_(False)
        z0s = heldout_starts(model, results, task, starts)
        horizon = 30
        curves = return_vs_time(model, z0s, planners, horizon)
        paper = curves[curves.planner == PAPER_CEM]
        paper_last = paper.sort_values("iteration").groupby("start").last()  # paper-CEM's returned plans
        target, paper_objective = paper_last["return"].to_dict(), paper_last["LatCo objective"]
        cem_time = paper.groupby("start").wall_time.max()
        for label, group in curves.groupby("planner", sort=False):
            last = group.sort_values("iteration").groupby("start").last()
            final, objective = last["return"], last["LatCo objective"]
            reach = time_to_reach(curves, label, target)
            rows.append({"task": task, "planner": label, "final model return": final.mean(),
                         "paper-CEM final return": np.mean(list(target.values())),
                         "LatCo objective (final)": objective.mean(),
                         "LatCo objective at most paper-CEM's":
                             f"{int((objective <= paper_objective).sum())}/{len(objective)}",
                         "s / plan": group.groupby("start").wall_time.max().mean(),
                         "reached paper-CEM's return": f"{int(reach.notna().sum())}/{len(reach)}",
                         "time to reach (s, median)": reach.median(),
                         "fraction of paper-CEM's time": (reach / cem_time).median()})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["analytic", "models", "both"], default="both")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", default=None, help="results root (default: results/<profile>)")
    parser.add_argument("--tasks", nargs="+", default=["obstacle", "reach", "push"])
    parser.add_argument("--starts", type=int, default=3, help="held-out start frames per task")
    parser.add_argument("--seeds", type=int, default=3, help="planner seeds per analytic problem")
    parser.add_argument("--only", nargs="+", default=None,
                        help="trained models: run only the planners whose label contains one of these "
                             "(paper-setting CEM, the reference, always runs)")
    parser.add_argument("--out", default=None, help="write <out>_analytic.csv / <out>_models.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.part in ("analytic", "both"):
        table = analytic_table(args.seeds)
        summary = summarize_analytic(table)
        print("\nAnalytic problems: return of the returned actions on the true dynamics "
              f"({args.seeds} seeds)\n")
        print(summary.to_markdown(index=False, floatfmt=".4g"))
        if args.out:
            summary.to_csv(f"{args.out}_analytic.csv", index=False)
    if args.part in ("models", "both"):
        results = Path(args.results or paths.results_dir(args.profile))
        table = models_table(results, args.tasks, args.starts, args.profile, args.only)
        print(f"\nTrained {args.profile} models, {args.starts} held-out starts per task, H = 30\n")
        print(table.to_markdown(index=False, floatfmt=".3g"))
        if args.out:
            table.to_csv(f"{args.out}_models.csv", index=False)


if __name__ == "__main__":
    main()
