"""CEM: PlaNet's cross-entropy method over action sequences (paper §6.3 and appendix B, "CEM").

A diagonal Gaussian over the H×A action sequence starts at mean 0, std 1. Each iteration samples
``samples`` sequences, clips them to the action box, scores each by the model reward along its
deterministic rollout through μ (Eq. 1), and refits mean and std to the ``elites`` best. The plan is
the final mean, not the best sample (the best sample overfits the model; authors' code,
``planners/shooting_cem.py``). App. B: 100 iterations × 10 000 samples, 100 elites.

``MPPIPlanner`` (``latco.planners.mppi``) is this loop with a softmax-weighted refit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.planners.evaluate import (
    IterationTrace,
    device_generator,
    rollout,
    rollout_return,
    seeded_generator,
)


@dataclass(frozen=True)
class CEMConfig:
    """Hyperparameters of CEM; defaults are the paper's (App. B) and the authors' code."""

    iterations: int = 100
    """Refits of the sampling distribution per plan (App. B: 100)."""
    samples: int = 10_000
    """Action sequences sampled and rolled out per iteration (App. B: 10 000)."""
    elites: int = 100
    """Best samples the Gaussian is refit to (App. B: 100)."""
    init_std: float = 1.0
    """Std of the initial N(0, std²) over every action (authors' code: 1)."""
    min_std: float = 1e-3
    """Floor of the refit std: std = sqrt(var + min_std²) (authors' code: var + 1e-6)."""
    action_max: float = 1.0
    """Samples are clipped to [-action_max, action_max] (the environments' action box)."""
    seed: int | None = 0
    """Seed of the planner's generator (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the mean every this many iterations in ``trace['snapshot_*']``."""

    def __post_init__(self) -> None:
        _check_sampling_config(self, "CEM")
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"invalid CEM option(s): elites={self.elites!r} (need 1 <= elites <= samples)")


def _check_sampling_config(cfg: object, name: str) -> None:
    """Shared validation of the sampling planners' common fields."""
    checks = {
        "iterations": cfg.iterations >= 0, "samples": cfg.samples >= 1, "init_std": cfg.init_std >= 0,
        "min_std": cfg.min_std >= 0, "action_max": cfg.action_max > 0, "record_every": cfg.record_every >= 0,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"invalid {name} option(s): {', '.join(f'{k}={getattr(cfg, k)!r}' for k in bad)}")


def finite_returns(returns: Tensor, name: str) -> Tensor:
    """Non-finite returns (the model diverged for that sample) become -inf so they are never chosen."""
    if not torch.isfinite(returns).any():
        raise PlanningError(f"{name}: every sampled action sequence got a NaN/Inf return; check the model "
                            "and z0 for non-finite outputs")
    return torch.where(torch.isfinite(returns), returns, torch.full_like(returns, -torch.inf))


@register_planner("cem", CEMConfig)
class CEMPlanner:
    """Cross-entropy method over open-loop action sequences (PlaNet; paper §6.3)."""

    name = "CEM"

    def __init__(self, config: CEMConfig | None = None) -> None:
        self.config = config or CEMConfig()
        self.generator = seeded_generator(self.config.seed)

    def refit(self, samples: Tensor, returns: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(mean, std) (H, A) of the ``elites`` best of ``samples`` (N, H, A) by ``returns`` (N,)."""
        cfg = self.config
        top = returns.topk(cfg.elites)
        elite = samples[top.indices]
        var = elite.var(0, unbiased=False)
        return elite.mean(0), (var + cfg.min_std**2).sqrt(), {"elite_return": top.values.mean()}

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """Optimize H actions from z0 (F,); returns the final mean, clipped to the box, and its rollout.

        ``trace`` (one value per iteration k, after its refit): ``predicted_reward`` mean over the
        horizon of r(z_{t+1}) along the rollout of the distribution's mean (the current solution);
        ``elite_return`` mean return (sum over the horizon) of the elites; ``std`` mean std of the
        distribution; ``wall_time`` seconds since planning started. The mean of clipped samples is
        inside the box, so there is no action violation to trace.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        H, A = int(horizon), model.action_size
        like = dict(device=z0.device, dtype=z0.dtype)
        gen = device_generator(self.generator, z0.device)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        mean = torch.zeros(H, A, **like)
        std = torch.full((H, A), cfg.init_std, **like)
        trace.snapshot(0, mean)
        for k in range(cfg.iterations):
            # row 0 has no noise: it is the current mean, scored in the same batched rollout
            noise = torch.randn(cfg.samples + 1, H, A, generator=gen, **like)
            noise[0] = 0
            batch = (mean + std * noise).clamp(-cfg.action_max, cfg.action_max)
            returns = rollout_return(model, z0, batch)
            if k:
                trace.record(k - 1, predicted_reward=returns[0] / H)
            mean, std, stats = self.refit(batch[1:], finite_returns(returns[1:], self.name))
            trace.record(k, std=std.mean(), **stats)
            trace.tick(k)
            trace.snapshot(k + 1, mean)
        mean = mean.clamp(-cfg.action_max, cfg.action_max)
        features, rewards = rollout(model, z0, mean)
        if cfg.iterations:
            trace.record(cfg.iterations - 1, predicted_reward=rewards.mean())
        return Plan(actions=mean, features=features, trace=trace.as_dict())
