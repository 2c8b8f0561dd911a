"""LatCo options that make plans cheaper: the early stop (``stop_tol``), mixed precision, the first call."""

from __future__ import annotations

import pytest
import torch

from latco import analytic
from latco.planners import make_planner
from latco.planners.latco import ConvergenceMonitor, LatCoConfig


def _still(monitor: ConvergenceMonitor, steps: int, violation: float = 0.0, failed: bool = False,
           drift: float = 0.0) -> list[bool]:
    """Feed ``steps`` iterations of one plan whose actions move by ``drift`` per iteration."""
    out = []
    for k in range(steps):
        out.append(monitor.update(torch.full((1, 3), violation), torch.tensor([-1.0]),
                                  torch.full((1, 3, 2), drift * k), torch.tensor([failed])))
    return out


def test_monitor_waits_a_full_window_of_feasible_still_iterates() -> None:
    done = _still(ConvergenceMonitor(tol=0.01, window=5, violation_max=1e-5, action_max=1.0), 8)
    assert done == [False] * 5 + [True] * 3  # the first comparison is after window + 1 iterations


def test_monitor_keeps_going_while_infeasible_or_moving() -> None:
    assert not any(_still(ConvergenceMonitor(0.01, 5, 1e-5, 1.0), 20, violation=2e-5))
    assert not any(_still(ConvergenceMonitor(0.01, 5, 1e-5, 1.0), 20, drift=0.01))  # 0.05 per window
    assert _still(ConvergenceMonitor(0.01, 5, 1e-5, 1.0), 20, drift=0.001)[-1]  # 0.005 per window


def test_monitor_counts_failed_plans_as_converged() -> None:
    assert _still(ConvergenceMonitor(0.01, 5, 1e-5, 1.0), 7, violation=1.0, failed=True)[-1]


def test_default_runs_every_iteration() -> None:
    model, z0, H = analytic.problems()["point-mass"]
    plan = make_planner("latco", iterations=60).plan(model, z0, H)
    assert int(plan.trace["stopped_at"]) == 60 and len(plan.trace["dynamics_violation"]) == 60


@pytest.mark.parametrize("problem", ["point-mass", "linear"])
def test_stop_ends_early_near_the_optimum(problem: str) -> None:
    """The stopped plan's return stays within 1 % of the best L-BFGS-B return on the true dynamics."""
    model, z0, H = analytic.problems()[problem]
    best = -analytic.reference_optimum(model, z0, H, objective=analytic.negative_return).value
    plan = make_planner("latco", stop_tol=0.03, record_every=10).plan(model, z0, H)
    stopped = int(plan.trace["stopped_at"])
    assert stopped < 200
    assert all(len(plan.trace[k]) == stopped for k in ("dynamics_violation", "predicted_reward", "wall_time"))
    assert plan.trace["snapshot_iteration"][-1] == stopped  # the returned solution is the last snapshot
    assert plan.trace["dynamics_violation"][-1] <= 2 * LatCoConfig().eps
    ret = -float(analytic.negative_return(model, z0.double(), plan.actions.double()))
    assert ret >= best - 0.01 * abs(best)


@pytest.mark.parametrize("option", [{"stop_tol": -1.0}, {"stop_window": 0}, {"stop_violation": 0.0}])
def test_bad_stop_options_are_refused(option: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(option))):
        LatCoConfig(**option)


def test_first_torch_func_jacobian_says_what_it_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model without predict_mean_jacobian: one warning naming the cost and the way around it,
    given once per process and only while torch._dynamo is not loaded yet."""
    import latco.planners.latco as latco_module

    model, z0, H = analytic.problems()["point-mass"]
    assert not hasattr(model, "predict_mean_jacobian")
    monkeypatch.setattr(latco_module, "_AUTOGRAD_NOTED", False)
    monkeypatch.setattr(latco_module, "_dynamo_loaded", lambda: False)
    with pytest.warns(UserWarning, match=r"torch\._dynamo: a one-time"):
        make_planner("latco", iterations=2).plan(model, z0, H)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second plan is silent
        make_planner("latco", iterations=2).plan(model, z0, H)


@pytest.mark.parametrize("problem", ["point-mass", "pendulum"])
def test_mixed_precision_plans_like_float64(problem: str) -> None:
    """The refined float32 solve gives LatCo the same steps, hence the same plan, as float64."""
    model, z0, H = analytic.problems()[problem]
    plain = make_planner("latco", iterations=80).plan(model, z0, H)
    mixed = make_planner("latco", iterations=80, precision="mixed").plan(model, z0, H)
    torch.testing.assert_close(mixed.actions, plain.actions, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unknown precision"):
        LatCoConfig(precision="float16")



@pytest.mark.parametrize("n_plans", [1, 2])
def test_plan_batch_equals_one_plan_per_start(n_plans: int) -> None:
    """Several starts in one batched LM give each start the plan ``plan`` gives it alone (with a
    deterministic initialization, init_std=0, the only difference is the batch)."""
    model, z0, H = analytic.problems()["point-mass"]
    z0s = torch.stack([z0, z0 + 0.3, z0 - 0.2])
    options = {"iterations": 60, "init_std": 0.0, "n_plans": n_plans}
    batched = make_planner("latco", **options).plan_batch(model, z0s, H)
    assert len(batched) == 3
    for start, plan in zip(z0s, batched, strict=True):
        alone = make_planner("latco", **options).plan(model, start, H)
        torch.testing.assert_close(plan.actions, alone.actions, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(plan.features[0], start)
        assert plan.trace["plan_rewards"].shape == (n_plans,)
        assert len(plan.trace["dynamics_violation"]) == 60


def test_plan_batch_refuses_what_it_cannot_do() -> None:
    model, z0, H = analytic.problems()["point-mass"]
    with pytest.raises(ValueError, match="shift"):
        make_planner("latco", shift=10).plan_batch(model, z0[None], H)
    with pytest.raises(ValueError, match=r"z0s must be N >= 1 start features of shape \(N, 2\)"):
        make_planner("latco").plan_batch(model, z0, H)
    with pytest.raises(ValueError, match="NaN or Inf"):
        make_planner("latco").plan_batch(model, torch.stack([z0, z0 * float("nan")]), H)
