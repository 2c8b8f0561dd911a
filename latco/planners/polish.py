"""Polishing a plan's actions by shooting: make the returned actions optimal for their own rollout.

Collocation optimizes latents and actions together and lets each step's dynamics be violated by up
to √ε, so the actions LatCo returns are optimal for the planned latents, not necessarily for the
latents they produce when executed. On well-scaled problems the difference is small (objective
within 0.3 % of the optimum on the analytic problems). Where the dynamics amplify the actions
strongly, LatCo's loop can stall far from the optimum: with a large ∂μ/∂a the §5 rule keeps λ small
while the violations stay within ε, the actions are then only weakly tied to the latents, and the
Gauss–Newton model of the reward residual (whose own curvature it drops) moves them little. On a
linear model with ‖∂μ/∂a‖ ≈ 4.6 the default plan ends at 7-16× the optimal objective after 200
iterations (``tests/test_latco_constraints.py``); Gauss–Newton steps on the actions alone improved
that only to 1.7× in 20 steps.

``lbfgsb_polish`` hands each plan's actions to L-BFGS-B (scipy), with the bound as box constraints
and the gradient by autograd through the rollout z_{t+1} = μ(z_t, a_t), on LatCo's objective
½ Σ_t softplus(−(r(z_{t+1}) − r_ref))². Starting from the collocation actions, 30 iterations
reach the optimum to 0.2 % on every analytic problem whose basin LatCo found (``benchmarks/
planner_quality.py --part analytic``). A plan is only replaced where the polished actions score
better, so the polish never makes a plan worse.

By default the polish minimizes LatCo's own objective. With ``objective="return"`` (beyond the
paper) it maximizes the model return Σ r instead: LatCo's residual ½Σ softplus(−r)² weighs a low
reward step more than Σ r does, so its optimum can give up a little return for steadier per-step
rewards; the return objective hands the agent the plan that scores best on the measure the
shooting planners optimize and LatCo ranks its plans by.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from latco.planners.base import LatentModel
from latco.planners.evaluate import rollout

PolishObjective = Literal["latco", "return"]
POLISH_OBJECTIVES: tuple[str, ...] = ("latco", "return")


def shooting_objective(model: LatentModel, z0: Tensor, actions: Tensor, reference: Tensor | None) -> Tensor:
    """(B,) ½ Σ_t softplus(−(r(z_{t+1}) − r_ref))² along the rollout of ``actions`` (B, H, A) from z0
    (B, F), r_ref (B,) or None for 0: LatCo's objective once the dynamics hold exactly."""
    from latco.planners.latco import reward_residual

    return 0.5 * reward_residual(rollout(model, z0, actions)[1], reference).pow(2).sum(-1)


def polish_loss(model: LatentModel, z0: Tensor, actions: Tensor, reference: Tensor | None,
                objective: PolishObjective = "latco") -> Tensor:
    """(B,) what the polish minimizes along the rollout of ``actions`` (B, H, A): "latco",
    ``shooting_objective``; "return", −Σ_t r(z_{t+1}) (the model return, which the shooting
    planners maximize and by which LatCo chooses among its plans)."""
    if objective == "return":
        return -rollout(model, z0, actions)[1].sum(-1)
    return shooting_objective(model, z0, actions, reference)


def lbfgsb_polish(model: LatentModel, z0: Tensor, actions: Tensor, reference: Tensor | None,
                  iterations: int, action_max: float, objective: PolishObjective = "latco") -> Tensor:
    """Each plan's actions (B, H, A) from its start z0 (B, F) after at most ``iterations`` L-BFGS-B
    iterations on ``polish_loss`` (``objective``) within ±``action_max``; a plan keeps its given
    actions where the polish did not lower its loss. One scipy run per plan (their line searches
    stay independent)."""
    from scipy.optimize import minimize

    start = actions.detach().clamp(-action_max, action_max)
    out = start.clone()
    for b in range(start.shape[0]):
        rows = slice(b, b + 1)
        ref = None if reference is None else reference[rows]

        def fun(x: np.ndarray, rows: slice = rows, ref: Tensor | None = ref) -> tuple[float, np.ndarray]:
            with torch.enable_grad():
                a = torch.as_tensor(x, dtype=start.dtype, device=start.device)
                a = a.reshape(start[rows].shape).requires_grad_(True)
                total = polish_loss(model, z0[rows], a, ref, objective).sum()
                (grad,) = torch.autograd.grad(total, a)
            return float(total), grad.double().cpu().numpy().ravel()

        x0 = start[rows].double().cpu().numpy().ravel()
        result = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(-action_max, action_max)] * x0.size,
                          options={"maxiter": int(iterations)})
        polished = torch.as_tensor(result.x, dtype=start.dtype, device=start.device)
        polished = polished.reshape(start[rows].shape)
        before = float(polish_loss(model, z0[rows], start[rows], ref, objective))
        if np.isfinite(result.fun) and result.fun < before:  # result.fun: the polished actions' objective
            out[rows] = polished
    return out


__all__ = ["POLISH_OBJECTIVES", "PolishObjective", "lbfgsb_polish", "polish_loss", "shooting_objective"]
