"""latco.paper.benchmark: the yardstick curves and the solver-scaling table on a smoke-sized model."""

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from latco.paper import benchmark
from latco.paper.profiles import PROFILES
from latco.planners.evaluate import rollout_return


def smoke_model():
    return benchmark.random_model(replace(PROFILES["smoke"].world_model, action_size=2))


def test_return_vs_time_scores_the_actions_each_planner_would_execute():
    model = smoke_model()
    starts = [torch.randn(model.feature_size, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    specs = {"latco": ("latco", {"iterations": 8}),
             "cem": ("cem", {"iterations": 4, "samples": 32, "elites": 4})}
    curves = benchmark.return_vs_time(model, starts, specs, horizon=6, points=4)
    assert set(curves.columns) == {"planner", "start", "iteration", "wall_time", "return", "LatCo objective"}
    for (label, _), group in curves.groupby(["planner", "start"]):
        group = group.sort_values("iteration")
        assert group.iteration.iloc[0] == 0 and group.wall_time.iloc[0] == 0
        assert group.iteration.iloc[-1] == specs[label][1]["iterations"] + 1  # the returned plan
        assert (np.diff(group.wall_time) >= 0).all()
    # the last point is the plan's own clipped actions, rolled out independently here
    plan = benchmark.make_planner("cem", iterations=4, samples=32, elites=4).plan(model, starts[0], 6)
    last = curves[(curves.planner == "cem") & (curves.start == 0)].sort_values("iteration")["return"].iloc[-1]
    assert np.isclose(last, float(rollout_return(model, starts[0], plan.actions)), rtol=1e-5)
    # ... and its LatCo objective, ½ Σ softplus(−r)², written out from the rolled-out rewards
    z, rewards = starts[0], []
    for a in plan.actions.clamp(-1, 1):
        z = model.predict_mean(z, a)
        rewards.append(model.reward(z))
    expected = 0.5 * float(sum(torch.nn.functional.softplus(-r) ** 2 for r in rewards))
    final = curves[(curves.planner == "cem") & (curves.start == 0)].sort_values("iteration").iloc[-1]
    assert np.isclose(final["LatCo objective"], expected, rtol=1e-5)
    reach = benchmark.time_to_reach(curves, "latco", {0: -np.inf, 1: np.inf})
    assert reach[0] == 0.0 and np.isnan(reach[1])
    assert benchmark.plot_return_vs_time(curves).axes[0].get_xscale() == "log"


def test_seconds_per_plan_extrapolates_only_past_the_budget():
    model = smoke_model()
    z0 = torch.zeros(model.feature_size)
    full, scaled = benchmark.seconds_per_plan(model, ("gd", {"iterations": 40}), z0, 5)
    assert not scaled and full > 0
    estimate, scaled = benchmark.seconds_per_plan(model, ("gd", {"iterations": 40}), z0, 5, budget_s=full / 8)
    assert scaled and estimate > 0  # (its size is a timing: no bound here, it failed under load)


def test_solver_scaling_table_checks_block_against_dense():
    table = benchmark.solver_scaling(smoke_model(), [4, 8], repeats=1)
    assert list(table.horizon) == [4, 8] and table.dense_measured.all()
    assert (table[["model_s", "block_s", "dense_s"]] > 0).all().all()
    assert benchmark.plot_solver_scaling(table, d=14).axes[0].get_yscale() == "log"


def test_gpu_check_runs_tiny_on_the_cpu(tmp_path):
    """benchmarks/gpu_check.py --tiny: every part (planning, training, pipeline slice) runs and writes
    its table, so the script a lent accelerator gets is known to work up to the device."""
    import importlib.util

    from latco.paper import paths

    spec = importlib.util.spec_from_file_location("gpu_check", paths.ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.main(["--tiny", "--out", str(tmp_path)]) == 0
    for part in ("planning", "training", "pipeline"):
        table = pd.read_csv(tmp_path / f"{part}.csv")
        assert len(table) and table.select_dtypes("number").notna().any().any()
    assert not (tmp_path / "errors.txt").exists()
