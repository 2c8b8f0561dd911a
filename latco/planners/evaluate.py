"""The one rollout every shooting planner and every comparison uses, and the per-iteration trace.

Paper Eq. 1: a shooting planner scores an action sequence by the rewards along its rollout
z_{t+1} = μ(z_t, a_t) from z_1 = z0. ``rollout_return`` is also the common yardstick of the planner
benchmark: each planner's current actions, clipped to the action box, rolled out from the same z0.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from latco.planners.base import LatentModel


def rollout(model: LatentModel, z0: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """Deterministic rollout through the model mean: (features (..., H+1, F), rewards (..., H)).

    ``actions`` (..., H, A) for any batch shape ``...``; z0 (F,) or broadcastable to (..., F).
    ``rewards[..., t]`` = r(z_{t+1}): the reward of the feature that action t leads to. One batched
    ``predict_mean`` call per time step (no loop over samples); differentiable when grad is enabled.
    Use it where the features are needed; ``rollout_return`` scores returns without keeping them.
    """
    z = z0.expand(*actions.shape[:-2], z0.shape[-1])
    features = [z]
    for t in range(actions.shape[-2]):
        z = model.predict_mean(z, actions[..., t, :])
        features.append(z)
    features = torch.stack(features, -2)
    return features, model.reward(features[..., 1:, :])


def rollout_return(model: LatentModel, z0: Tensor, actions: Tensor,
                   action_max: float | None = None) -> Tensor:
    """Σ_t r(z_{t+1}) along the rollout of ``actions`` (..., H, A) from z0: (...).

    With ``action_max`` the actions are first clipped to ±action_max (what the agent would execute).
    The sampling planners' hot path: the reward is summed step by step and no feature is kept, so
    memory stays O(batch · F) instead of the (..., H+1, F) stack and reward activations of
    ``rollout``. Same values as ``rollout(...)[1].sum(-1)`` up to summation order. Measured on the
    paper-sized RSSM, H = 30, 1 thread: 1.3× faster at 1000 and at 10 000 samples, up to 2.2× at
    10 000 when other load competes for memory bandwidth (``benchmarks/sampling_planners.py``).
    """
    if action_max is not None:
        actions = actions.clamp(-action_max, action_max)
    batch = actions.shape[:-2]
    z = z0.expand(*batch, z0.shape[-1])
    total = None
    for t in range(actions.shape[-2]):
        z = model.predict_mean(z, actions[..., t, :])
        r = model.reward(z)
        total = r if total is None else total + r
    return z0.new_zeros(batch) if total is None else total


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from the planner's CPU generator (deterministic per seed).

    Sampling on the device avoids copying every population from the CPU; drawing the seed advances
    the planner's generator, so consecutive plans differ as LatCo's do.
    """
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    if device.type == "cpu":
        return torch.Generator().manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def seeded_generator(seed: int | None) -> torch.Generator:
    """The planner's CPU generator: seeded, or nondeterministic for ``seed=None``."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


class IterationTrace:
    """Per-iteration curves of a planner (``Plan.trace``), with the wall time of each iteration.

    ``record(k, name=value, ...)`` stores the values of iteration k: scalars, or one value per plan
    (B,) for planners that optimize a batch of plans; ``tick(k)`` stamps ``wall_time[k]`` (seconds
    since the trace was created, i.e. since planning started); ``snapshot(k, actions)`` keeps the
    current actions after iteration k (0 = initialization) when ``record_every`` asks for it, as
    LatCo's ``snapshot_*`` keys do. ``as_dict(plan)`` gives numpy arrays, per-plan ones for ``plan``.
    """

    def __init__(self, iterations: int, record_every: int = 0) -> None:
        self.start = time.perf_counter()
        self.iterations, self.record_every = iterations, record_every
        self.curves: dict[str, np.ndarray] = {"wall_time": np.zeros(iterations)}
        self.snapshots: list[tuple[int, ...]] = []

    def tick(self, k: int) -> None:
        self.curves["wall_time"][k] = time.perf_counter() - self.start

    def record(self, k: int, **values: float | Tensor) -> None:
        for name, value in values.items():
            value = value.detach().double().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
            if name not in self.curves:
                self.curves[name] = np.full((self.iterations, *value.shape), np.nan)
            self.curves[name][k] = value

    def stop(self, iterations: int) -> None:
        """End the trace after ``iterations`` iterations (an early stop): the curves are cut there
        and the solution after that iteration counts as the last snapshot."""
        self.iterations = iterations
        self.curves = {name: v[:iterations] for name, v in self.curves.items()}

    def wants_snapshot(self, k: int) -> bool:
        """Whether the solution after k iterations is kept (k = 0: initialization; always the last)."""
        return bool(self.record_every) and (k % self.record_every == 0 or k == self.iterations)

    def snapshot(self, k: int, actions: Tensor, features: Tensor | None = None) -> None:
        """Keep ``actions`` ((H, A), or (B, H, A) for a batch of plans) as the solution after k
        iterations, and ``features`` ((H+1, F) or (B, H+1, F)) for planners that plan latents."""
        if self.wants_snapshot(k):
            kept = [x.detach().cpu().numpy().copy() for x in (actions, features) if x is not None]
            self.snapshots.append((k, *kept))

    def as_dict(self, plan: int | None = None) -> dict[str, np.ndarray]:
        """The curves (iterations,) and snapshots; for per-plan values, those of plan index ``plan``."""
        def pick(v: np.ndarray, batched: bool) -> np.ndarray:
            return v[:, plan] if plan is not None and batched else v

        out = {k: pick(v, v.ndim > 1) for k, v in self.curves.items()}
        if self.snapshots:
            out["snapshot_iteration"] = np.array([s[0] for s in self.snapshots])
            for i, name in enumerate(("snapshot_actions", "snapshot_features")[: len(self.snapshots[0]) - 1]):
                stacked = np.stack([s[i + 1] for s in self.snapshots])
                out[name] = pick(stacked, stacked.ndim == 4)
        return out
