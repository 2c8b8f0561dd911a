"""LatCo ablations (beyond the paper's tables; the authors' code has both, ``config.yaml``):

- ``latco-no-relax``: LatCo started with λ₀ = 1e8 (the authors' ``latco_no_relax``), so the first
  LM step already makes the plan dynamically feasible. The §5 rule then lowers λ only as far as
  keeps the violation at about ε: the plan is never relaxed, unlike LatCo's, whose violation is
  large over the first iterations (paper §6.4, Fig. 5). Same planner, another default.
- ``latco-first-order``: the same residuals (``latco.planners.latco.collocation_residuals``),
  Lagrangian ½‖ρ‖² (with the same per-plan normalizer), action-bound treatment and §5 multiplier
  rule (``Multipliers``) as LatCo, minimized by Adam instead of Levenberg–Marquardt (paper §5: the
  LM optimizer "converges 10-100 times faster than naïve gradient descent on wall clock time").

Both honour LatCo's ``reward_reference`` ("zero" the paper's softplus(−r), "best" the running best
reward as r_ref; ``latco.planners.latco``); the first-order one raises r_ref next to its multiplier
update, every ``dual_every`` Adam steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.planners.evaluate import IterationTrace, rollout_return
from latco.planners.latco import (
    Constraints,
    LatCoConfig,
    LatCoPlanner,
    Multipliers,
    RewardReference,
    best_reward,
    collocation_residuals,
    initial_reference,
    plan_actions,
    reward_residual,
    warn_if_saturated,
)


@dataclass(frozen=True)
class LatCoNoRelaxConfig(LatCoConfig):
    """LatCo's hyperparameters with the dynamics multipliers started huge: no relaxation."""

    lam_init: float = 1e8
    """λ₀, initial dynamics multiplier (authors' ``latco_no_relax``: 1e8; LatCo: 1)."""


register_planner("latco-no-relax", LatCoNoRelaxConfig)(LatCoPlanner)


@dataclass(frozen=True)
class LatCoFirstOrderConfig:
    """Hyperparameters of first-order LatCo: LatCo's problem and multiplier rule, Adam's steps."""

    iterations: int = 2000
    """Adam steps per plan (10× LatCo's 200 LM steps; the authors ran 5000)."""
    lr: float = 0.05
    """Adam learning rate (the authors' first-order collocation: 0.05)."""
    dual_every: int = 5
    """Apply the §5 multiplier rule every this many Adam steps (authors' first-order: 5)."""
    lam_init: float = 1.0
    """λ₀, initial dynamics multiplier (as LatCo)."""
    nu_init: float = 1.0
    """ν₀, initial action-bound multiplier (as LatCo)."""
    dual_lr: float = 0.1
    """Step size of the §5 rule (as LatCo)."""
    eps: float = 1e-5
    """ε, target squared violation per time step (as LatCo)."""
    eta: float = 0.01
    """η of the §5 rule (as LatCo)."""
    multiplier_min: float = 0.0
    """Floor of λ_t and ν_t (as LatCo)."""
    multiplier_max: float = 1e12
    """Cap of λ_t and ν_t: Adam cannot reach ε, so uncapped the rule would overflow."""
    action_max: float = 1.0
    """a_max, the action bound ``|a| <= a_max``."""
    constraints: Constraints = "project"
    """The action bound as LatCo's: "project" clips the actions after every Adam step, "tanh"
    reparametrizes them, "paper" is the hinge residual with the §5 rule on ν."""
    n_plans: int = 1
    """Independent plans optimized as one batch; the best by model reward is returned."""
    init_std: float = 1.0
    """Std of the N(0, std²) initialization of latents and actions (as LatCo)."""
    normalize_residuals: bool = True
    """Divide all residuals by (mean √λ + mean √ν + 1) per plan (as LatCo)."""
    seed: int | None = 0
    """Seed of the planner's generator for the initialization (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the actions every this many iterations in ``trace['snapshot_*']``."""
    reward_reference: RewardReference = "zero"
    """r_ref of the reward residual softplus(−(r − r_ref)), as LatCo's: "zero" (the paper) or "best"."""

    def __post_init__(self) -> None:
        checks = {"iterations": self.iterations >= 0, "lr": self.lr > 0, "dual_every": self.dual_every >= 1,
                  "multiplier_max": self.multiplier_max >= max(self.lam_init, self.nu_init)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid latco-first-order option(s): "
                             f"{', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")
        self.latco_config()  # validates the shared fields

    def latco_config(self) -> LatCoConfig:
        """The LatCo config with the shared fields (initialization, multiplier rule, bound)."""
        shared = {f.name for f in fields(LatCoConfig)} & {f.name for f in fields(self)}
        return LatCoConfig(**{k: getattr(self, k) for k in shared})


@register_planner("latco-first-order", LatCoFirstOrderConfig)
class LatCoFirstOrderPlanner:
    """LatCo's constrained problem optimized by Adam on ½‖ρ‖² (the first-order ablation)."""

    def __init__(self, config: LatCoFirstOrderConfig | None = None) -> None:
        self.config = config or LatCoFirstOrderConfig()
        self.latco = LatCoPlanner(self.config.latco_config())  # its initialization and multiplier rule
        self.generator = self.latco.generator
        self._warned_saturated = False  # the saturated-reward warning is given once per planner

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """A plan of ``horizon`` actions from z0 (F,); returned actions are clipped to ±a_max.

        ``trace`` (per iteration k, after its step; the plan returned): ``dynamics_violation``,
        ``predicted_reward`` (of the planned latents), ``action_violation``, ``lam``, ``nu`` as
        LatCo's, ``wall_time``; ``plan_rewards`` (n_plans,) the clipped actions' model returns; with
        ``reward_reference="best"``, ``reward_reference`` the r_ref that iteration's step used.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        B, H, A = cfg.n_plans, int(horizon), model.action_size
        x = self.latco.initial_plan(B, H, model, z0).requires_grad_(True)
        multipliers = Multipliers.from_config(self.latco.config, B, H, z0.device, maximum=cfg.multiplier_max)
        optimizer = torch.optim.Adam([x], lr=cfg.lr)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        trace.snapshot(0, plan_actions(x, A, cfg.action_max, cfg.constraints))
        r0 = model.reward(z0)
        best = cfg.reward_reference == "best"
        reference = initial_reference(r0, B) if best else None  # r_ref (B,)
        used: dict[str, Tensor] = {}  # the r_ref of the step just taken, for the trace
        for k in range(cfg.iterations + 1):  # pass k evaluates the plan after k steps
            with torch.enable_grad():
                res = collocation_residuals(model, z0, x, cfg.action_max, cfg.constraints,
                                            reference=reference)
            if k:
                trace.record(k - 1, dynamics_violation=res.dynamics_violation().mean(1).detach(),
                             predicted_reward=res.reward.detach().double().mean(1),
                             action_violation=res.action_violation().mean(1).detach(),
                             lam=multipliers.lam.mean(1), nu=multipliers.nu.mean(1), **used)
            if k == cfg.iterations:
                break
            if k and k % cfg.dual_every == 0:  # §5 rule on the plan after k steps, as LatCo after each
                multipliers.update(res.dynamics_violation().detach(), res.action_violation().detach())
            if best and k % cfg.dual_every == 0:  # r_ref next to the multipliers (and at the start)
                reference = torch.maximum(reference, best_reward(res.reward.detach()))
                with torch.enable_grad():  # the residual against the new r_ref, no model call
                    res = dataclasses.replace(res, rew=reward_residual(res.reward, reference))
                used = {"reward_reference": reference}
            elif k == 0 and not best and not self._warned_saturated:
                self._warned_saturated = warn_if_saturated(r0, res.reward.detach())
            with torch.enable_grad():
                cost = res.lagrangian(multipliers.weights()).sum()  # plans are independent: sum
                optimizer.zero_grad(set_to_none=False)
                cost.backward()
            optimizer.step()
            x.data = self.latco.project(x.data, A)
            trace.tick(k)
            trace.snapshot(k + 1, plan_actions(x, A, cfg.action_max, cfg.constraints))
        x = x.detach()
        actions = plan_actions(x, A, cfg.action_max, cfg.constraints).clamp(-cfg.action_max, cfg.action_max)
        returns = rollout_return(model, z0, actions)
        if not torch.isfinite(returns).any():
            raise PlanningError(f"latco-first-order: all {B} plan(s) reached NaN/Inf; check the model and z0 "
                                "for non-finite outputs, or lower lr")
        best = int(torch.argmax(torch.where(torch.isfinite(returns), returns, -torch.inf)))
        out = trace.as_dict(plan=best)
        out["plan_rewards"] = returns.double().cpu().numpy()
        features = torch.cat([z0[None], x[best, :, A:]], 0)
        return Plan(actions=actions[best], features=features, trace=out)
