"""LatCo's action bound and feasibility on problems whose optimum saturates the bound.

References are independent of the planner: multi-start L-BFGS-B on the true dynamics
(``latco.analytic.reference_optimum``) and the problems' own rollouts.
"""

import math

import pytest
import torch

from latco import analytic as an
from latco.planners import make_planner

SATURATING = {  # (model, z0, horizon): the bound is active at the optimum of each
    "linear": (an.LinearModel(seed=1), torch.zeros(4), 10),
    "linear-seed4": (an.LinearModel(F=3, A=2, seed=4), torch.zeros(3), 12),
    "double-integrator": (an.DoubleIntegrator(axes=2, goal=3.0), torch.zeros(4), 20),
    "double-integrator-gain": (an.DoubleIntegrator(axes=1, goal=-2.0, gain=2.0), torch.zeros(2), 12),
    "point-mass": (an.PointMass(goal=(3.0, 1.0)), torch.zeros(2), 15),
}


def rollout_gap(model, z0, plan) -> float:
    """Max abs difference between ``plan.features`` and the model's rollout of ``plan.actions``."""
    return float((an.rollout_features(model, z0, plan.actions) - plan.features[1:]).abs().max())


def step_errors(model, plan) -> torch.Tensor:
    """‖z_{t+1} − μ(z_t, a_t)‖ per step of the returned plan."""
    return (plan.features[1:] - model.predict_mean(plan.features[:-1], plan.actions)).norm(dim=-1)


@pytest.fixture(scope="module")
def optima():
    return {name: an.reference_optimum(m, z0, H, starts=4) for name, (m, z0, H) in SATURATING.items()}


@pytest.mark.parametrize("name", sorted(SATURATING))
def test_default_latco_keeps_the_bound_and_its_plan_on_saturating_problems(name, optima):
    model, z0, H = SATURATING[name]
    ref = optima[name]
    assert (abs(abs(ref.actions) - 1) < 1e-6).mean() >= 0.1  # the optimum saturates the bound
    for seed in (0, 1):
        plan = make_planner("latco", seed=seed).plan(model, z0, H)
        assert float(plan.trace["raw_action_max"]) <= 1.01
        # the plan's latents follow μ step by step to a few √ε, and the rollout of the returned
        # actions stays within the accumulated slack, H·√ε (docstring of LatCoPlanner.plan)
        eps = 1e-5  # LatCoConfig.eps, the paper's
        assert step_errors(model, plan).max() <= 5 * math.sqrt(eps)
        gap = rollout_gap(model, z0, plan)
        assert gap == pytest.approx(float(plan.trace["feasibility_gap"]), abs=1e-5)
        assert gap <= 1.5 * H * math.sqrt(eps), (name, seed, gap)
        objective = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
        assert ref.value * (1 - 1e-6) <= objective <= 1.05 * ref.value, (name, seed, objective / ref.value)


@pytest.mark.parametrize("name", ["linear", "double-integrator", "point-mass"])
def test_with_a_tight_eps_the_rollout_matches_the_plan_to_1e_2(name, optima):
    model, z0, H = SATURATING[name]
    plan = make_planner("latco", eps=1e-7).plan(model, z0, H)
    assert float(plan.trace["raw_action_max"]) <= 1.01
    assert rollout_gap(model, z0, plan) <= 1e-2
    objective = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
    assert objective <= 1.05 * optima[name].value


def test_paper_scheme_still_overshoots_the_bound():
    """The authors' hinge + §5 rule on ν (``constraints="paper"``): ν collapses where the bound is
    inactive, and on a bang-bang problem the raw actions end outside the box for some starts, so
    the clipped actions depart from the planned latents by more than the dynamics slack."""
    model, z0, H = SATURATING["double-integrator"]
    raw, gaps = [], []
    for seed in range(4):
        plan = make_planner("latco", constraints="paper", seed=seed).plan(model, z0, H)
        raw.append(float(plan.trace["raw_action_max"]))
        gaps.append(rollout_gap(model, z0, plan))
    assert max(raw) > 1.01
    default = [rollout_gap(model, z0, make_planner("latco", seed=s).plan(model, z0, H)) for s in range(4)]
    assert max(gaps) > 1.2 * max(default)


def test_tanh_reparametrization_keeps_the_bound_and_solves_a_saturating_problem(optima):
    model, z0, H = SATURATING["double-integrator"]
    plan = make_planner("latco", constraints="tanh").plan(model, z0, H)
    assert float(plan.trace["raw_action_max"]) <= 1.0
    objective = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
    assert objective <= 1.05 * optima["double-integrator"].value


def test_pendulum_swing_up_reaches_the_multi_start_optimum():
    """Nonlinear, with local optima (L-BFGS-B from 8 starts ends in ≥ 2 of them). One LatCo plan
    may settle in the worse basin; 4 plans in a batch with a 20-step shooting polish reach the best
    within 5 % from every seed tried, with exactly feasible returned features."""
    model, z0, H = an.Pendulum(), torch.zeros(2), 30
    ref = an.reference_optimum(model, z0, H)
    assert ref.values.max() > 1.1 * ref.value  # several local optima
    for seed in (0, 1, 2):
        plan = make_planner("latco", n_plans=4, polish_iterations=20, seed=seed).plan(model, z0, H)
        assert float(plan.trace["raw_action_max"]) <= 1.01
        assert rollout_gap(model, z0, plan) <= 1e-5  # polished: features are the actions' rollout
        objective = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
        assert objective <= 1.05 * ref.value, (seed, objective / ref.value)
    # without the polish the planned latents still follow μ step by step to the tolerance
    plan = make_planner("latco", n_plans=4).plan(model, z0, H)
    assert step_errors(model, plan).max() <= 5 * math.sqrt(1e-5)


def test_unknown_constraints_are_rejected():
    with pytest.raises(ValueError, match="unknown constraints 'box'; choose one of: project, tanh, paper"):
        make_planner("latco", constraints="box")


def test_warm_start_shifts_the_previous_plan_and_reset_forgets_it():
    model, z0, H = an.PointMass(goal=(3.0, 1.0)), torch.zeros(2), 8
    planner = make_planner("latco", shift=3, iterations=0)
    first = planner.plan(model, z0, H)
    second = planner.plan(model, first.features[3], H)
    torch.testing.assert_close(second.actions[: H - 3], first.actions[3:])
    torch.testing.assert_close(second.features[1 : H - 2], first.features[4:])
    # the tail holds the last action and follows μ from the last planned latent
    torch.testing.assert_close(second.actions[H - 3 :], first.actions[-1].expand(3, -1))
    expected = model.predict_mean(first.features[-1], first.actions[-1])
    torch.testing.assert_close(second.features[H - 2], expected)
    planner.reset()
    third = planner.plan(model, first.features[3], H)
    assert not torch.allclose(third.actions[: H - 3], first.actions[3:])
    cold = make_planner("latco", iterations=0)
    cold.plan(model, z0, H)
    assert not torch.allclose(cold.plan(model, first.features[3], H).actions[: H - 3], first.actions[3:])


POLISH_CASES = {  # (model, z0, horizon, saturating at the optimum)
    "saturating": (an.LinearModel(seed=1), torch.zeros(4), 10, True),
    "inside-bound": (an.LinearModel(seed=1, gain=4.0), torch.zeros(4), 10, False),
    "inside-bound-gain4": (an.LinearModel(F=3, A=2, seed=4, gain=4.0), torch.zeros(3), 10, False),
    "inside-bound-gain8": (an.LinearModel(F=3, A=2, seed=4, gain=8.0), torch.zeros(3), 10, False),
}


@pytest.mark.parametrize("case", sorted(POLISH_CASES))
def test_polished_plans_are_within_1_percent_of_lbfgsb(case):
    """The L-BFGS-B polish makes the returned actions optimal for their own rollout: their collocation
    objective within 1 % of multi-start L-BFGS-B from random starts, whether the optimum sits on the
    bound or inside it, while the collocation plan alone stalls far from it on the strongly actuated
    models (the ε slack leaves λ small and the actions weakly tied to the latents)."""
    model, z0, H, saturating = POLISH_CASES[case]
    ref = an.reference_optimum(model, z0, H, starts=4)
    assert ((abs(abs(ref.actions) - 1) < 1e-6).mean() >= 0.1) == saturating
    for seed in (0, 1):
        plan = make_planner("latco", polish_iterations=30, seed=seed).plan(model, z0, H)
        assert rollout_gap(model, z0, plan) <= 1e-5
        assert float(plan.actions.abs().max()) <= 1.0
        objective = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
        assert objective <= 1.01 * ref.value, (case, seed, objective / ref.value)
    if case == "inside-bound-gain8":
        raw = make_planner("latco", seed=0).plan(model, z0, H)
        assert float(an.collocation_objective(model, z0.double(), raw.actions.double())) > 2 * ref.value


@pytest.mark.parametrize("case", sorted(POLISH_CASES))
def test_a_polish_on_the_return_reaches_the_best_return_of_lbfgsb(case):
    """``polish_objective="return"`` makes the returned actions maximize the model return Σ r of their
    own rollout: within 1 % of multi-start L-BFGS-B on −Σ r (the shooting planners' objective), and
    at least as high a return as the polish on LatCo's objective, whose optimum is another point."""
    model, z0, H, _ = POLISH_CASES[case]
    best = -an.reference_optimum(model, z0, H, objective=an.negative_return, starts=4).value
    for seed in (0, 1):
        on_return = make_planner("latco", polish_iterations=30, polish_objective="return", seed=seed)
        on_latco = make_planner("latco", polish_iterations=30, seed=seed)
        ours, theirs = (-float(an.negative_return(model, z0.double(), p.plan(model, z0, H).actions.double()))
                        for p in (on_return, on_latco))
        assert best - ours <= 0.01 * abs(best), (case, seed, ours, best)
        assert ours >= theirs - 1e-6 * abs(theirs), (case, seed, ours, theirs)
    if case == "saturating":  # and on the nonlinear pendulum, with its local optima: 4 plans, polish 20
        model, z0, H = an.Pendulum(), torch.zeros(2), 30
        best = -an.reference_optimum(model, z0, H, objective=an.negative_return).value
        for seed in (0, 1):
            plan = make_planner("latco", n_plans=4, polish_iterations=20, polish_objective="return",
                                seed=seed).plan(model, z0, H)
            ours = -float(an.negative_return(model, z0.double(), plan.actions.double()))
            assert best - ours <= 0.01 * abs(best), (seed, ours, best)
    with pytest.raises(ValueError, match="unknown polish_objective 'reward'; choose one of: latco, return"):
        make_planner("latco", polish_objective="reward")


def test_the_polish_never_makes_a_plan_worse():
    """Both polish methods keep the collocation actions of a plan they did not improve (Adam with a
    fixed step size oscillates around an optimum inside the bound)."""
    model, z0, H, _ = POLISH_CASES["inside-bound"]
    base = make_planner("latco", seed=0).plan(model, z0, H)
    before = float(an.collocation_objective(model, z0.double(), base.actions.double()))
    for method in ("lbfgsb", "adam"):
        plan = make_planner("latco", polish_iterations=20, polish_method=method, seed=0).plan(model, z0, H)
        after = float(an.collocation_objective(model, z0.double(), plan.actions.double()))
        assert after <= before * (1 + 1e-9), method
    with pytest.raises(ValueError, match="unknown polish_method 'newton'; choose one of: lbfgsb, adam"):
        make_planner("latco", polish_method="newton")


def test_latco_fast_is_latco_with_two_short_plans_and_the_polish():
    """``latco-fast`` is LatCo's planner with its own defaults (2 plans x 24 + L-BFGS-B polish 30 on
    the return), overridable like any planner, and its plans' return is within 1 % of multi-start
    L-BFGS-B's best on a linear problem whose optimum lies inside the bound (where collocation alone
    stalls far from it)."""
    planner = make_planner("latco-fast")
    cfg = planner.config
    assert (cfg.n_plans, cfg.iterations, cfg.polish_iterations, cfg.polish_method, cfg.polish_objective) == (
        2, 24, 30, "lbfgsb", "return")
    assert (cfg.lam_init, cfg.eps, cfg.eta) == (1.0, 1e-5, 0.01)  # the paper's multiplier rule
    assert make_planner("latco-fast", iterations=10).config.iterations == 10
    model, z0, H, _ = POLISH_CASES["inside-bound-gain8"]
    best = -an.reference_optimum(model, z0, H, objective=an.negative_return, starts=4).value
    plan = planner.plan(model, z0, H)
    assert -float(an.negative_return(model, z0.double(), plan.actions.double())) >= best - 0.01 * abs(best)
