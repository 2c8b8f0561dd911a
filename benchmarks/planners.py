"""Every planner at paper and quick settings: seconds per plan, and model return against wall time.

Usage: python benchmarks/planners.py [--starts 3] [--horizon 30] [--budget 30] [--no-curves]
                                     [--out figures/planning_time.png]

Part 1 — seconds per 30-step plan for each planner at its paper settings (App. B) and at the
quick profile's budget, on a quick-sized and a paper-sized RSSM (random weights: time does not
depend on them). Plans that would exceed ``--budget`` seconds are timed over fewer iterations and
scaled (marked "*"). The paper: 12 s CEM, 14 s GD, 14 s LatCo on one RTX 2080 Ti.

Part 2 — on the trained quick Obstacle model (results/quick/models/obstacle; a random quick-sized
model if it is missing), from the first frames of held-out episodes: the model return of each
planner's current actions against wall time, and the time LatCo takes to reach the return that
paper-setting CEM ends with. Writes the curves to ``--out`` (PNG and PDF).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

# isort: off
import latco  # noqa: F401  (sets the OMP/OpenBLAS thread defaults before numpy and torch load)
# isort: on
import numpy as np
import torch

from latco.model import WorldModelConfig
from latco.paper import benchmark, paths, plotting
from latco.paper import results as readers
from latco.paper.profiles import PROFILES

NAMES = benchmark.TIMED_PLANNERS  # every registered planner


def settings(name: str) -> dict[str, dict]:
    """{"paper": overrides, "quick": overrides} (paper = the config defaults)."""
    return {"paper": {}, "quick": dict(PROFILES["quick"].planners.get(name, {}))}


def quick_model_and_starts(n: int, task: str = "obstacle"):
    """The trained quick model and the filtered first features of ``n`` held-out episodes."""
    results = paths.results_dir("quick")
    try:
        model = readers.model(results, task)
        return model, readers.heldout_starts(model, results, task, n), "trained quick Obstacle model"
    except (FileNotFoundError, RuntimeError) as err:
        print(f"(no trained quick model: {err}; using random weights)")
        model = benchmark.random_model(replace(PROFILES["quick"].world_model, action_size=2))
        g = torch.Generator().manual_seed(0)
        starts = [torch.randn(model.feature_size, generator=g) for _ in range(n)]
        return model, starts, "random quick-sized model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--budget", type=float, default=30.0, help="longest plan timed in full (s)")
    parser.add_argument("--no-curves", action="store_true", help="skip part 2")
    parser.add_argument("--out", type=Path, default=paths.FIGURES / "planning_time.png")
    args = parser.parse_args()
    H = args.horizon
    models = {
        "quick-sized": benchmark.random_model(replace(PROFILES["quick"].world_model, action_size=4)),
        "paper-sized": benchmark.random_model(WorldModelConfig(action_size=4)),
    }
    specs = {f"{name} ({label})": (name, ov) for name in NAMES for label, ov in settings(name).items()
             if label == "paper" or ov}  # quick settings only where they differ from the paper's
    print(f"Part 1: seconds per {H}-step plan, CPU, {torch.get_num_threads()} torch threads "
          "(* = timed over fewer iterations and scaled)")
    table = benchmark.planning_time_table(models, specs, H, args.budget)
    print(f"  {'planner':30s} " + " ".join(f"{m:>12s}" for m in models))
    for _, row in table.iterrows():
        cells = [f"{row[m]:11.2f}{'*' if row[f'{m} extrapolated'] else ' '}" for m in models]
        print(f"  {row.planner:30s} " + " ".join(cells), flush=True)
    if args.no_curves:
        return

    model, starts, what = quick_model_and_starts(args.starts)
    print(f"\nPart 2: model return of the current actions vs wall time, {what}, {len(starts)} start(s)")
    curves = benchmark.return_vs_time(model, starts, specs, H)
    final = curves.sort_values("iteration").groupby(["planner", "start"]).last().reset_index()
    summary = final.groupby("planner", sort=False).agg(seconds=("wall_time", "mean"), ret=("return", "mean"))
    print(f"  {'planner':30s} {'s/plan':>8s} {'final return':>13s}")
    for label, row in summary.iterrows():
        print(f"  {label:30s} {row.seconds:8.2f} {row.ret:13.2f}")
    target = final[final.planner == "cem (paper)"].set_index("start")["return"].to_dict()
    cem_time = final[final.planner == "cem (paper)"].wall_time.mean()
    reach = benchmark.time_to_reach(curves, "latco (paper)", target)
    print(f"  LatCo reaches paper-CEM's final return on {int(reach.notna().sum())}/{len(reach)} starts; "
          f"mean time {np.nanmean(reach.to_numpy()) if reach.notna().any() else float('nan'):.2f} s "
          f"vs CEM {cem_time:.1f} s")
    fig = benchmark.plot_return_vs_time(curves, f"Return vs wall time, {what}, H = {H}")
    plotting.save_figure(plotting.stamp(fig, "benchmark"), args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.png')} (+ .pdf)")


if __name__ == "__main__":
    main()
