"""iCEM: the improved cross-entropy method of Pinneri et al. (2020), "Sample-efficient Cross-Entropy
Method for Real-time Planning" (CoRL), beyond the paper.

CEM (``latco.planners.cem``) with the changes of their Algorithm 1:

- colored noise: each action dimension's perturbation along time has power spectrum ∝ 1/f^β
  (β = 0 is CEM's white noise; larger β gives smoother, more exploratory sequences);
- a population that shrinks by ``population_decay`` per iteration, N_i = max(N·γ^(−i), 2K);
- elite memory: a fraction ``keep_elites`` of the previous iteration's elites joins the samples;
- momentum: mean and std are refit as α·old + (1 − α)·elite statistics;
- the mean joins the samples at the last iteration, and the best sequence seen is returned;
- MPC warm start ("shift"): the previous call's mean and elites, shifted by the actions executed
  since (``shift``, the agent's T_cache), start the next plan; ``reset()`` forgets them (new episode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from latco.planners.base import LatentModel, Plan, check_plan_inputs, register_planner
from latco.planners.cem import finite_returns
from latco.planners.evaluate import (
    IterationTrace,
    device_generator,
    rollout,
    rollout_return,
    seeded_generator,
)


@dataclass(frozen=True)
class ICEMConfig:
    """Hyperparameters of iCEM; defaults from Pinneri et al. (2020) where they give one."""

    iterations: int = 10
    """Refits per plan (iCEM replans every step with 3-4; one plan here serves T_cache steps)."""
    samples: int = 1000
    """Population of the first iteration, N."""
    population_decay: float = 1.25
    """γ: iteration i samples max(N·γ^(−i), 2·elites) sequences (iCEM: 1.25)."""
    elites: int = 100
    """K, samples the Gaussian is refit to (iCEM: 10 % of N)."""
    keep_elites: float = 0.3
    """ξ, fraction of the elites carried into the next iteration's population (iCEM: 0.3)."""
    noise_beta: float = 2.0
    """β, exponent of the colored noise's power spectrum 1/f^β (iCEM: 2-2.5; 0 = white)."""
    momentum: float = 0.1
    """α: mean, std ← α·old + (1 − α)·elite statistics (iCEM: 0.1)."""
    init_std: float = 0.5
    """Std of the initial distribution (iCEM: 0.5 for actions in [-1, 1])."""
    min_std: float = 1e-3
    """Floor of the refit std."""
    return_best: bool = True
    """Return the best sequence seen (iCEM); False returns the final mean (as CEM)."""
    shift: int | None = None
    """Actions executed between two calls (the agent's T_cache): the previous solution shifted by
    this many steps warm-starts the next plan. None: no warm start (every call starts afresh)."""
    action_max: float = 1.0
    """Samples are clipped to [-action_max, action_max]."""
    seed: int | None = 0
    """Seed of the planner's generator (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the current solution every this many iterations in ``trace['snapshot_*']``."""

    def __post_init__(self) -> None:
        checks = {
            "iterations": self.iterations >= 0, "samples": self.samples >= 1,
            "population_decay": self.population_decay >= 1, "elites": 1 <= self.elites <= self.samples,
            "keep_elites": 0 <= self.keep_elites <= 1, "noise_beta": self.noise_beta >= 0,
            "momentum": 0 <= self.momentum < 1, "init_std": self.init_std >= 0, "min_std": self.min_std >= 0,
            "shift": self.shift is None or self.shift >= 1, "action_max": self.action_max > 0,
            "record_every": self.record_every >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid iCEM option(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")


def colored_noise(n: int, horizon: int, action_size: int, beta: float, generator: torch.Generator,
                  device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """(n, horizon, action_size) Gaussian noise, unit variance per entry, power spectrum ∝ 1/f^β in time.

    Random Fourier coefficients scaled by f^(−β/2) (f ≥ 1/horizon) and transformed back with the
    inverse real FFT (Timmer & König 1995, as iCEM). Every coefficient is an independent Gaussian,
    so every time step has the same variance, (2·s_0² + 4·Σ_k s_k² + 2·s_ny²) / horizon² with the
    Nyquist term for even horizons only; we divide by its square root.
    """
    freqs = torch.fft.rfftfreq(horizon, dtype=torch.float64)
    scale = freqs.clamp(min=1.0 / horizon) ** (-beta / 2)
    weight = torch.full_like(scale, 4.0)  # a complex coefficient enters twice: 2·(1² + 1²)
    weight[0] = 2.0  # DC: real only, variance 2
    if horizon % 2 == 0:
        weight[-1] = 2.0  # Nyquist: real only, variance 2
    std = math.sqrt(float((weight * scale**2).sum())) / horizon
    m = freqs.shape[0]
    spec = torch.randn(n, action_size, m, 2, generator=generator, device=device, dtype=torch.float64)
    spec[..., 0, 1] = 0
    spec[..., 0, 0] *= math.sqrt(2)
    if horizon % 2 == 0:
        spec[..., -1, 1] = 0
        spec[..., -1, 0] *= math.sqrt(2)
    coeff = torch.view_as_complex(spec) * scale.to(spec.device)
    noise = torch.fft.irfft(coeff, n=horizon) / std  # (n, A, H)
    return noise.transpose(1, 2).to(dtype)


@register_planner("icem", ICEMConfig)
class ICEMPlanner:
    """Improved CEM (Pinneri et al. 2020) for MPC with a learned latent model."""

    def __init__(self, config: ICEMConfig | None = None) -> None:
        self.config = config or ICEMConfig()
        self.generator = seeded_generator(self.config.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan (call at the start of every episode)."""
        self._previous: tuple[Tensor, Tensor] | None = None  # (mean (H, A), elites (K, H, A))

    def population(self, i: int) -> int:
        """Samples drawn in iteration i: max(N·γ^(−i), 2K)."""
        cfg = self.config
        return max(int(cfg.samples * cfg.population_decay ** (-i)), 2 * cfg.elites)

    def _sample(self, n: int, mean: Tensor, std: Tensor, gen: torch.Generator) -> Tensor:
        H, A = mean.shape
        noise = colored_noise(n, H, A, self.config.noise_beta, gen, mean.device, mean.dtype)
        return (mean + std * noise).clamp(-self.config.action_max, self.config.action_max)

    def _warm_start(self, H: int, A: int, like: dict) -> tuple[Tensor, Tensor | None]:
        """(initial mean, shifted elites of the previous call or None)."""
        cfg = self.config
        mean = torch.zeros(H, A, **like)
        if cfg.shift is None or self._previous is None or self._previous[0].shape != (H, A) or cfg.shift >= H:
            return mean, None
        prev_mean, prev_elites = self._previous
        mean[: H - cfg.shift] = prev_mean[cfg.shift:]
        return mean, prev_elites[:, cfg.shift:]

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """Optimize H actions from z0 (F,); returns the best sequence seen (or the final mean).

        ``trace`` (one value per iteration k, after its refit): ``predicted_reward`` mean over the
        horizon of r(z_{t+1}) along the rollout of the current solution (the best sequence so far, or
        the mean if ``return_best`` is False); ``elite_return`` mean return of the elites; ``std``;
        ``population`` samples rolled out; ``wall_time`` seconds since planning started.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        H, A = int(horizon), model.action_size
        like = dict(device=z0.device, dtype=z0.dtype)
        gen = device_generator(self.generator, z0.device)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        mean, shifted = self._warm_start(H, A, like)
        std = torch.full((H, A), cfg.init_std, **like)
        keep = int(round(cfg.keep_elites * cfg.elites))
        carried = None  # elites kept from the previous iteration (or shifted from the previous call)
        if shifted is not None and keep:
            tail = self._sample(shifted.shape[0], mean, std, gen)  # fresh actions after the shifted ones
            carried = torch.cat([shifted, tail[:, shifted.shape[1]:]], 1)[:keep]
        best, best_return = mean, torch.tensor(-torch.inf, device=z0.device)
        elites = mean[None]
        trace.snapshot(0, mean)
        for i in range(cfg.iterations):
            parts = [self._sample(self.population(i), mean, std, gen)]
            if carried is not None:
                parts.append(carried)
            if i == cfg.iterations - 1:
                parts.append(mean[None])  # the mean is a candidate at the last iteration (iCEM)
            candidates = torch.cat(parts)
            # the current mean is scored in the same rollout (row 0) for the trace when it is the solution
            score_mean = not cfg.return_best
            batch = torch.cat([mean[None], candidates]) if score_mean else candidates
            returns = rollout_return(model, z0, batch)
            if score_mean and i:
                trace.record(i - 1, predicted_reward=returns[0] / H)
            returns = finite_returns(returns[int(score_mean):], "iCEM")
            top = returns.topk(min(cfg.elites, returns.shape[0]))
            elites = candidates[top.indices]
            if top.values[0] > best_return:
                best, best_return = elites[0], top.values[0]
            var = elites.var(0, unbiased=False)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * elites.mean(0)
            std = cfg.momentum * std + (1 - cfg.momentum) * (var + cfg.min_std**2).sqrt()
            carried = elites[:keep] if keep else None
            trace.record(i, elite_return=top.values.mean(), std=std.mean(), population=candidates.shape[0])
            if cfg.return_best:
                trace.record(i, predicted_reward=best_return / H)
            trace.tick(i)
            trace.snapshot(i + 1, best if cfg.return_best else mean)
        self._previous = (mean, elites)
        actions = best if cfg.return_best and cfg.iterations else mean
        actions = actions.clamp(-cfg.action_max, cfg.action_max)
        features, rewards = rollout(model, z0, actions)
        if cfg.iterations and not cfg.return_best:
            trace.record(cfg.iterations - 1, predicted_reward=rewards.mean())
        return Plan(actions=actions, features=features, trace=trace.as_dict())
