"""The interface every planner shares: the model it sees, the plan it returns, and a registry.

A planner sees the world model only through ``LatentModel`` (an ``RSSM`` or any plain class with
these members) and returns a ``Plan``. Planners are made by name with ``make_planner``; each one's
hyperparameters are the fields of its config dataclass, overridable by keyword.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


@runtime_checkable
class LatentModel(Protocol):
    """What a planner needs from a world model (paper Fig. 2: μ(z, a) and r(z)).

    Optional extras a planner uses when present: ``predict_mean_jacobian(z, a) -> (dz, da)`` with
    dz (..., F, F) = ∂μ/∂z and da (..., F, A) = ∂μ/∂a, and ``reward_grad(z) -> (..., F)`` = ∂r/∂z.
    """

    feature_size: int
    action_size: int

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        """Mean of the one-step prediction of the next feature: (..., F), (..., A) -> (..., F)."""
        ...

    def reward(self, z: Tensor) -> Tensor:
        """Predicted reward of a feature: (..., F) -> (...)."""
        ...


@dataclass
class Plan:
    """A planned trajectory: ``actions[t]`` leads from ``features[t]`` to ``features[t + 1]``."""

    actions: Tensor
    """(horizon, A) the planned actions."""
    features: Tensor
    """(horizon + 1, F) the planned latent features; ``features[0]`` is z0."""
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    """Optimization curves, one value per iteration (each planner documents its keys)."""


class Planner(Protocol):
    """Anything that turns (model, z0, horizon) into a ``Plan``."""

    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan: ...


def reseed(planner: Planner, episode_seed: int) -> None:
    """Restart a seeded planner's random stream for one episode.

    The plans of an episode then depend only on (planner seed, episode seed), not on how many
    plans the planner made before: a resumed or re-run evaluation, or one episode evaluated on
    its own, repeats them exactly. Planners without a ``generator`` or with ``seed=None`` are
    left alone.
    """
    generator = getattr(planner, "generator", None)
    seed = getattr(getattr(planner, "config", None), "seed", None)
    if isinstance(generator, torch.Generator) and seed is not None:
        generator.manual_seed((seed * 1_000_003 + episode_seed) % 2**63)


# ------------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, tuple[type, Callable[[Any], Planner]]] = {}


def register_planner(name: str, config_cls: type) -> Callable[[Callable[[Any], Planner]], Callable]:
    """Class/function decorator: ``make_planner(name, **overrides)`` builds it from ``config_cls``."""

    def wrap(factory: Callable[[Any], Planner]) -> Callable[[Any], Planner]:
        if name in _REGISTRY:
            raise ValueError(f"planner {name!r} is already registered")
        _REGISTRY[name] = (config_cls, factory)
        return factory

    return wrap


def available_planners() -> list[str]:
    """Names accepted by ``make_planner``."""
    return sorted(_REGISTRY)


def planner_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of planner ``name`` with ``overrides`` applied (validated)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown planner {name!r}; choose one of: {', '.join(available_planners())}")
    config_cls, _ = _REGISTRY[name]
    valid = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for planner {name!r}; "
                         f"valid options: {', '.join(valid)}")
    return config_cls(**overrides)


def make_planner(name: str, **overrides: Any) -> Planner:
    """The planner called ``name`` with its config's defaults replaced by ``overrides``.

    >>> make_planner("latco", iterations=50)
    """
    config = planner_config(name, **overrides)
    return _REGISTRY[name][1](config)


# ---------------------------------------------------------------------------- input checking
def model_device_dtype(model: LatentModel, z0: Tensor) -> tuple[torch.device, torch.dtype]:
    """Where and in which float type to plan: the model's parameters if it has any, else z0's."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device, p.dtype
    dtype = z0.dtype if z0.is_floating_point() else torch.get_default_dtype()
    return z0.device, dtype


def check_plan_inputs(model: LatentModel, z0: Tensor, horizon: int) -> Tensor:
    """Validate (z0, horizon) for ``Planner.plan`` and return z0 (F,) on the model's device/dtype."""
    for attr in ("feature_size", "action_size", "predict_mean", "reward"):
        if not hasattr(model, attr):
            raise TypeError(f"model lacks {attr!r}: a planner needs a LatentModel "
                            "(feature_size, action_size, predict_mean(z, a), reward(z))")
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if not isinstance(z0, Tensor):
        z0 = torch.as_tensor(z0)
    F = model.feature_size
    if tuple(z0.shape) != (F,):
        raise ValueError(f"z0 must be one feature vector of shape ({F},) (the filtered posterior "
                         f"feature of the current observation), got shape {tuple(z0.shape)}")
    device, dtype = model_device_dtype(model, z0)
    z0 = z0.detach().to(device=device, dtype=dtype)
    if not torch.isfinite(z0).all():
        raise ValueError("z0 contains NaN or Inf; check the observation and the model's encoder")
    return z0


class PlanningError(RuntimeError):
    """The optimizer could not produce a usable plan (e.g. the model returned NaN/Inf throughout)."""
