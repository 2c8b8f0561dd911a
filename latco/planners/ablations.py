"""LatCo ablations (beyond the paper's tables; the authors' code has both, ``config.yaml``):

- ``latco-no-relax``: LatCo started with λ₀ = 1e8 (the authors' ``latco_no_relax``), so the first
  LM step already makes the plan dynamically feasible. The §5 rule then lowers λ only as far as
  keeps the violation at about ε: the plan is never relaxed, unlike LatCo's, whose violation is
  large over the first iterations (paper §6.4, Fig. 5). Same planner, another default.
- ``latco-first-order``: the same residuals, Lagrangian ½‖ρ‖² (with the same per-plan normalizer)
  and §5 multiplier rule as LatCo, minimized by Adam instead of Levenberg–Marquardt (paper §5: the
  LM optimizer "converges 10-100 times faster than naïve gradient descent on wall clock time").
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.planners.evaluate import IterationTrace, rollout_return
from latco.planners.latco import CollocationLinearization, LatCoConfig, LatCoPlanner, _Duals


@dataclass(frozen=True)
class LatCoNoRelaxConfig(LatCoConfig):
    """LatCo's hyperparameters with the dynamics multipliers started huge: no relaxation."""

    lam_init: float = 1e8
    """λ₀, initial dynamics multiplier (authors' ``latco_no_relax``: 1e8; LatCo: 1)."""


register_planner("latco-no-relax", LatCoNoRelaxConfig)(LatCoPlanner)


def collocation_residuals(model: LatentModel, z0: Tensor, x: Tensor,
                          action_max: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """LatCo's unweighted residuals at the plan x (B, H, A + F), differentiable in x.

    (dyn (B, H, F) = z_{t+1} − μ(z_t, a_t), act (B, H, A) = max(0, |a_t| − a_max),
    rew (B, H) = softplus(−r(z_{t+1})), reward (B, H) = r(z_{t+1})): the definitions of
    ``LatCoPlanner.linearize`` without the Jacobians (tests check the two agree).
    """
    A = model.action_size
    a, z_next = x[..., :A], x[..., A:]
    z_prev = torch.cat([z0.expand(x.shape[0], 1, -1), z_next[:, :-1]], 1)
    reward = model.reward(z_next)
    dyn = z_next - model.predict_mean(z_prev, a)
    return dyn, (a.abs() - action_max).clamp(min=0), F.softplus(-reward), reward


def _linearization(dyn: Tensor, act: Tensor, rew: Tensor, reward: Tensor,
                   duals: _Duals) -> CollocationLinearization:
    """LatCo's residual container without Jacobians (first order needs residuals and weights only)."""
    return CollocationLinearization(dyn=dyn, jz=None, ja=None, act=act, act_grad=None, rew=rew, rew_grad=None,
                                    reward=reward, duals=duals)


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
    """a_max, the action bound |a| <= a_max."""
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

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """A plan of ``horizon`` actions from z0 (F,); returned actions are clipped to ±a_max.

        ``trace`` (per iteration k, after its step; the plan returned): ``dynamics_violation``,
        ``predicted_reward`` (of the planned latents), ``action_violation``, ``lam``, ``nu`` as
        LatCo's, ``wall_time``; ``plan_rewards`` (n_plans,) the clipped actions' model returns.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        B, H, Fz, A = cfg.n_plans, int(horizon), model.feature_size, model.action_size
        device, dtype = z0.device, z0.dtype
        x = cfg.init_std * torch.randn(B, H, A + Fz, generator=self.generator, dtype=torch.float64)
        x = x.to(device=device, dtype=dtype).requires_grad_(True)
        f64 = dict(dtype=torch.float64, device=device)
        duals = _Duals(torch.full((B, H), cfg.lam_init, **f64), torch.full((B, H), cfg.nu_init, **f64),
                       cfg.normalize_residuals)
        optimizer = torch.optim.Adam([x], lr=cfg.lr)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        trace.snapshot(0, x[..., :A])
        all_steps = torch.ones(B, dtype=torch.bool)
        for k in range(cfg.iterations + 1):  # pass k evaluates the plan after k steps
            with torch.enable_grad():
                parts = collocation_residuals(model, z0, x, cfg.action_max)
            lin = _linearization(*(p.detach() for p in parts), duals)
            if k:
                trace.record(k - 1, dynamics_violation=lin.dyn.double().pow(2).sum(-1).mean(1),
                             predicted_reward=lin.reward.double().mean(1),
                             action_violation=lin.act.double().pow(2).sum(-1).mean(1),
                             lam=duals.lam.mean(1), nu=duals.nu.mean(1))
            if k == cfg.iterations:
                break
            if k and k % cfg.dual_every == 0:  # §5 rule on the plan after k steps, as LatCo after each
                self.latco.dual_update(duals, lin, all_steps)
                duals.lam.clamp_(max=cfg.multiplier_max)
                duals.nu.clamp_(max=cfg.multiplier_max)
            with torch.enable_grad():
                cost = _linearization(*parts, duals).cost().sum()  # plans are independent: sum
                optimizer.zero_grad(set_to_none=False)
                cost.backward()
            optimizer.step()
            trace.tick(k)
            trace.snapshot(k + 1, x[..., :A])
        actions = x.detach()[..., :A].clamp(-cfg.action_max, cfg.action_max)
        returns = rollout_return(model, z0, actions)
        if not torch.isfinite(returns).any():
            raise PlanningError(f"latco-first-order: all {B} plan(s) reached NaN/Inf; check the model and z0 "
                                "for non-finite outputs, or lower lr")
        best = int(torch.argmax(torch.where(torch.isfinite(returns), returns, -torch.inf)))
        out = trace.as_dict(plan=best)
        out["plan_rewards"] = returns.double().cpu().numpy()
        features = torch.cat([z0[None], x.detach()[best, :, A:]], 0)
        return Plan(actions=actions[best], features=features, trace=out)
