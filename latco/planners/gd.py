"""GD actions: gradient descent on the action sequence through the rolled-out model (paper Eq. 1).

Paper §6.3 and App. B ("GD"): maximize Σ_t r(z_{t+1}) with z_{t+1} = μ(z_t, a_t) rolled out from z0,
by backpropagation through time with Adam (lr 0.05, 500 iterations), and penalize actions outside
the box by dual descent, the multipliers updated every 5 steps. Per plan the minimized Lagrangian is

    L(a, ν) = −Σ_t r(z_{t+1}) + Σ_{t,j} ν_{t,j} · ``max(0, |a_{t,j}| − a_max)²``,
    ν ← ν + dual_lr · ``max(0, |a| − a_max)²``   (every ``dual_every`` steps).

Details from the authors' code (``planners/shooting_gd.py``): actions start from N(0, 1), and after
every Adam step they are clipped to the box ("prevent out-of-distribution predictions";
``project=True``). With the projection the iterate never leaves the box after the first step, so
the multipliers only act on the initialization; ``project=False`` leaves the bound to dual descent
alone (the returned actions are then clipped, as every planner's are).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.planners.evaluate import IterationTrace, device_generator, rollout, seeded_generator


@dataclass(frozen=True)
class GDConfig:
    """Hyperparameters of GD on actions; defaults are the paper's (App. B) and the authors' code."""

    iterations: int = 500
    """Adam steps per plan (App. B: 500)."""
    lr: float = 0.05
    """Adam learning rate (App. B: 0.05)."""
    nu_init: float = 1.0
    """Initial multiplier of the action-bound penalty, per time step and action dimension."""
    dual_lr: float = 1.0
    """Dual ascent step: ν += dual_lr · ``max(0, |a| − a_max)²`` (authors' ``lam_lr``: 1)."""
    dual_every: int = 5
    """Update the multipliers every this many Adam steps (App. B: 5)."""
    project: bool = True
    """Clip the actions to the box after every step (authors' code); False: dual descent only."""
    action_max: float = 1.0
    """a_max, the action bound ``|a| <= a_max``."""
    n_plans: int = 1
    """Independent plans optimized as one batch; the best by model reward is returned (authors: 1)."""
    init_std: float = 1.0
    """Std of the N(0, std²) initialization of the actions (authors' code: 1)."""
    seed: int | None = 0
    """Seed of the planner's generator for the initialization (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the actions every this many iterations in ``trace['snapshot_*']``."""

    def __post_init__(self) -> None:
        checks = {
            "iterations": self.iterations >= 0, "lr": self.lr > 0, "nu_init": self.nu_init >= 0,
            "dual_lr": self.dual_lr >= 0, "dual_every": self.dual_every >= 1,
            "action_max": self.action_max > 0, "n_plans": self.n_plans >= 1, "init_std": self.init_std >= 0,
            "record_every": self.record_every >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid GD option(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")


@register_planner("gd", GDConfig)
class GDPlanner:
    """Shooting by gradient descent on actions (the paper's "GD actions" baseline)."""

    def __init__(self, config: GDConfig | None = None) -> None:
        self.config = config or GDConfig()
        self.generator = seeded_generator(self.config.seed)

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """Optimize H actions from z0 (F,) by Adam through the rollout; returns the clipped actions.

        ``trace`` (one value per iteration k, after its step): ``predicted_reward`` mean over the
        horizon of r(z_{t+1}) along the rollout of the current actions, ``action_violation`` mean over
        time steps of Σ_j ``max(0, |a_{t,j}| − a_max)²``, ``nu`` mean multiplier, ``wall_time`` seconds
        since planning started; for ``n_plans`` > 1, those of the plan returned, and ``plan_rewards``
        (n_plans,) each plan's return with clipped actions, used to choose.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        B, H, A = cfg.n_plans, int(horizon), model.action_size
        like = dict(device=z0.device, dtype=z0.dtype)
        gen = device_generator(self.generator, z0.device)
        a = (cfg.init_std * torch.randn(B, H, A, generator=gen, **like)).requires_grad_(True)
        nu = torch.full((B, H, A), cfg.nu_init, **like)
        optimizer = torch.optim.Adam([a], lr=cfg.lr)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        trace.snapshot(0, a)
        for k in range(cfg.iterations + 1):  # pass k evaluates the actions after k steps
            with torch.set_grad_enabled(k < cfg.iterations):
                _, rewards = rollout(model, z0, a)
                violation = (a.abs() - cfg.action_max).clamp(min=0) ** 2
                loss = -rewards.sum() + (nu * violation).sum()  # plans are independent: sum their losses
            if k:
                trace.record(k - 1, predicted_reward=rewards.mean(-1),
                             action_violation=violation.sum(-1).mean(-1), nu=nu.mean((1, 2)))
            if k == cfg.iterations:
                break
            optimizer.zero_grad(set_to_none=False)
            with torch.enable_grad():
                loss.backward()
            optimizer.step()
            if cfg.project:
                a.clamp_(-cfg.action_max, cfg.action_max)
            if (k + 1) % cfg.dual_every == 0:  # dual descent on the action bound (App. B)
                nu += cfg.dual_lr * violation
            trace.tick(k)
            trace.snapshot(k + 1, a)
        actions = a.detach().clamp(-cfg.action_max, cfg.action_max)
        features, rewards = rollout(model, z0, actions)
        returns = rewards.sum(-1)
        if not torch.isfinite(returns).any():
            raise PlanningError(f"GD: all {B} plan(s) reached NaN/Inf model rewards; check the model and z0 "
                                "for non-finite outputs, or lower lr")
        best = int(torch.argmax(torch.where(torch.isfinite(returns), returns, -torch.inf)))
        out = trace.as_dict(plan=best)
        out["plan_rewards"] = returns.double().cpu().numpy()
        return Plan(actions=actions[best], features=features[best], trace=out)
