"""LatCo's reward reference: ``"best"`` makes the plan invariant to a constant shift of the reward.

The paper's residual softplus(−r) (``reward_reference="zero"``, the default) saturates for large r,
so r + c plans differently from r; ``"best"`` takes the residual against the running best reward
r_ref, which moves with c. The models are the truth, so the return of a plan's actions rolled out
through them (under the unshifted reward) is the executed return.
"""

import functools
import warnings

import pytest
import torch

from latco.analytic import Pendulum, PointMass, negative_return, reference_optimum
from latco.analytic import ShiftedReward as Shifted
from latco.planners import make_planner
from latco.planners.evaluate import rollout_return


class PointMassJ(PointMass):
    """``PointMass`` with its analytic Jacobian (z' = z + step·a), saving torch.func's time in tests."""

    def predict_mean_jacobian(self, z, a):
        eye = torch.eye(2, dtype=z.dtype).expand(*z.shape[:-1], 2, 2)
        return eye, self.step * eye


class PendulumJ(Pendulum):
    """``Pendulum`` with its analytic Jacobian: ω' = ω + dt·(−g/l sin θ − b ω + k a), θ' = θ + dt·ω'."""

    def predict_mean_jacobian(self, z, a):
        dt, one = self.dt, torch.ones_like(z[..., 0])
        dw_dth, dw_dw = -dt * self.g_over_l * torch.cos(z[..., 0]), (1 - dt * self.damping) * one
        dz = torch.stack([torch.stack([one + dt * dw_dth, dt * dw_dw], -1),
                          torch.stack([dw_dth, dw_dw], -1)], -2)
        da = torch.stack([dt * dt * self.torque * one, dt * self.torque * one], -1)[..., None]
        return dz, da


CASES = {  # (model, z0, horizon): float64 z0, so these plain classes plan in float64
    "point-mass": (PointMassJ(goal=(3.0, 1.0)), torch.zeros(2, dtype=torch.float64), 15),  # linear, r: −dist²
    "pendulum": (PendulumJ(), torch.zeros(2, dtype=torch.float64), 30),  # nonlinear, r in [-2, 0]
}


def true_return(case: str, actions: torch.Tensor) -> float:
    model, z0, _ = CASES[case]
    return float(rollout_return(model, z0, actions.double()))


@functools.cache
def plan(case: str, c: float, reference: str, **options) -> tuple[torch.Tensor, dict, list[str]]:
    """(actions, trace, warnings) of a default LatCo plan on ``case`` with reward r + c (cached)."""
    model, z0, H = CASES[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = make_planner("latco", reward_reference=reference, **options).plan(Shifted(model, c), z0, H)
    return result.actions, result.trace, [str(w.message) for w in caught if w.category is RuntimeWarning]


@pytest.mark.parametrize("c", [10.0, -10.0])
@pytest.mark.parametrize("case", sorted(CASES))
def test_best_reference_plans_the_same_for_a_shifted_reward(case, c):
    base_actions, base_trace, _ = plan(case, 0.0, "best")
    actions, trace, caught = plan(case, c, "best")
    # the same optimization up to rounding: r + c − (r_ref + c) vs r − r_ref in float64 (measured:
    # the actions agree to 3e-14 over the 200 LM steps on both models, shifts ±10)
    torch.testing.assert_close(actions, base_actions, atol=1e-9, rtol=0)
    assert true_return(case, actions) == pytest.approx(true_return(case, base_actions), rel=1e-9)
    torch.testing.assert_close(torch.as_tensor(trace["reward_reference"]),
                               torch.as_tensor(base_trace["reward_reference"]) + c, atol=1e-9, rtol=0)
    assert not caught  # "best" never warns about saturation

    # the paper's residual is not invariant: the shift changes the plan (measured max |Δa| 0.7-2.0),
    # and +10 degrades the return (point mass -78.26 -> -85.32, pendulum -38.04 -> -59.81)
    zero_actions, _, _ = plan(case, 0.0, "zero")
    shifted_actions, _, zero_caught = plan(case, c, "zero")
    assert (shifted_actions - zero_actions).abs().max() > 0.1
    if c > 0:
        before, after = true_return(case, zero_actions), true_return(case, shifted_actions)
        assert after < before - 0.05 * abs(before), (before, after)
    # the guard: r + 10 on the pendulum is above ln 99 everywhere at the start (r in [8, 10])
    saturated = case == "pendulum" and c > 0
    assert any('reward_reference="best"' in m for m in zero_caught) == saturated


def test_best_reference_returns_are_comparable_to_the_papers():
    """On the unshifted problems "best" plans about as well as "zero" (measured returns: point mass
    -78.2602 vs -78.2609, L-BFGS-B over the actions -78.2500; pendulum -38.93 vs -38.04, a local
    optimum both, L-BFGS-B from 4 starts -29.06): within 0.1 % of the convex point mass's optimum,
    and within 5 % of "zero" on both."""
    model, z0, H = CASES["point-mass"]
    optimum = -reference_optimum(model, z0, H, objective=negative_return, starts=1).value
    best = true_return("point-mass", plan("point-mass", 0.0, "best")[0])
    assert optimum - 1e-3 * abs(optimum) <= best <= optimum + 1e-9 * abs(optimum)  # nothing beats it
    for case in CASES:
        best, zero = (true_return(case, plan(case, 0.0, r)[0]) for r in ("best", "zero"))
        assert best >= zero - 0.05 * abs(zero), (case, best, zero)


@pytest.mark.parametrize("name, options", [
    ("latco", dict(adaptive_damping=True, iterations=50)),  # Lagrangians compared under one r_ref
    ("latco", dict(polish_iterations=20, iterations=50)),  # the polish uses the final r_ref
    ("latco-no-relax", dict(iterations=50)),
    ("latco-first-order", dict(iterations=200)),
], ids=["adaptive", "polish", "no-relax", "first-order"])
def test_every_latco_variant_honours_the_best_reference(name, options):
    model, z0, H = CASES["point-mass"]
    best = {c: make_planner(name, reward_reference="best", **options).plan(Shifted(model, c), z0, H)
            for c in (0.0, 10.0)}
    torch.testing.assert_close(best[10.0].actions, best[0.0].actions, atol=1e-9, rtol=0)
    ref = best[0.0].trace["reward_reference"]
    assert len(ref) == options["iterations"] and (ref[1:] >= ref[:-1]).all()  # a running max
    zero = {c: make_planner(name, **options).plan(Shifted(model, c), z0, H) for c in (0.0, 10.0)}
    assert (zero[10.0].actions - zero[0.0].actions).abs().max() > 0.1  # the option makes the difference
    assert "reward_reference" not in zero[0.0].trace


def test_float32_model_plans_nearly_the_same():
    """In float32, r + 10 is rounded to ulp(10) ≈ 1e-6, so the plans differ by rounding only."""
    model, _, H = CASES["point-mass"]
    z0 = torch.zeros(2)
    a, b = (make_planner("latco", reward_reference="best", iterations=50).plan(Shifted(model, c), z0, H)
            .actions for c in (0.0, 10.0))  # a fresh planner each: the same initialization
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # measured: 1e-6 after 50 and after 200 steps


def test_the_saturation_warning_is_given_once_per_planner():
    model, z0, H = CASES["pendulum"]
    for name in ("latco", "latco-first-order"):
        planner = make_planner(name, iterations=2)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            planner.plan(Shifted(model, 10.0), z0, H)
            planner.plan(Shifted(model, 10.0), z0, H)
            make_planner(name, iterations=2).plan(model, z0, H)  # r in [-2, 0]: not saturated
        messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
        assert len(messages) == 1 and "softplus(−r)" in messages[0], (name, messages)
