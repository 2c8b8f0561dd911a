"""MPPI: the CEM loop with a softmax-weighted refit instead of a hard elite cut (beyond the paper).

Model-predictive path integral control (Williams et al. 2017) as the LatCo authors run it
(``planners/shooting_cem.py``, agent ``shooting_mppi``) and as TD-MPC2 plans (Hansen et al. 2024):
every iteration the Gaussian over action sequences is refit to the samples weighted by
w_i = softmax(temperature · R_i) over their returns R_i = Σ_t r(z_{t+1}):

    mean = Σ_i w_i a_i,    std = sqrt(Σ_i w_i (a_i − mean)² + min_std²).

The authors weight all samples (temperature 10 in their Meta-World config); TD-MPC2 weights only the
top ``elites``. Both are here (``elites=None``: all samples). The plan is the final mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latco.planners.base import register_planner
from latco.planners.cem import CEMPlanner, _check_sampling_config


@dataclass(frozen=True)
class MPPIConfig:
    """Hyperparameters of MPPI; defaults follow the authors' Meta-World config (CEM's budget)."""

    iterations: int = 100
    """Refits of the sampling distribution per plan (authors: 100, as CEM)."""
    samples: int = 10_000
    """Action sequences sampled and rolled out per iteration (authors: 10 000, as CEM)."""
    temperature: float = 10.0
    """Inverse temperature of the softmax over returns (authors' ``mppi_gamma``: 10)."""
    elites: int | None = None
    """Weight only the top this many samples (TD-MPC2: 64 of 512); None weights all (authors)."""
    init_std: float = 1.0
    """Std of the initial N(0, std²) over every action."""
    min_std: float = 1e-3
    """Floor of the refit std: std = sqrt(var + min_std²)."""
    action_max: float = 1.0
    """Samples are clipped to [-action_max, action_max]."""
    seed: int | None = 0
    """Seed of the planner's generator (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the mean every this many iterations in ``trace['snapshot_*']``."""

    def __post_init__(self) -> None:
        _check_sampling_config(self, "MPPI")
        if self.temperature <= 0 or (self.elites is not None and not 1 <= self.elites <= self.samples):
            raise ValueError(f"invalid MPPI option(s): temperature={self.temperature!r}, "
                             f"elites={self.elites!r} (need temperature > 0; elites None or 1..samples)")


@register_planner("mppi", MPPIConfig)
class MPPIPlanner(CEMPlanner):
    """CEM's sampling loop with the MPPI refit; ``trace['weighted_return']`` replaces ``elite_return``."""

    name = "MPPI"

    def __init__(self, config: MPPIConfig | None = None) -> None:
        super().__init__(config or MPPIConfig())

    def refit(self, samples: Tensor, returns: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Softmax(temperature · return)-weighted mean and std of ``samples`` (N, H, A)."""
        cfg = self.config
        if cfg.elites is not None:
            top = returns.topk(cfg.elites).indices
            samples, returns = samples[top], returns[top]
        w = torch.softmax(cfg.temperature * returns, 0)
        mean = torch.einsum("n,nha->ha", w, samples)
        var = torch.einsum("n,nha->ha", w, (samples - mean) ** 2)
        return mean, (var + cfg.min_std**2).sqrt(), {"weighted_return": (w * returns).sum()}
