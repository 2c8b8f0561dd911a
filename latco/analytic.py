"""Small planning problems with known dynamics, and their optima by multi-start L-BFGS-B.

They check planners against an independent reference (tests, ``benchmarks/planner_quality.py``):
each is a ``LatentModel`` whose features are the true state, so the rollout of a plan's actions is
the truth. Several saturate the action bound at the optimum, which is where constraint handling
shows; the pendulum is nonlinear with local optima (pump once or twice, swing left or right).

``reference_optimum`` minimizes a planner's objective over the actions alone, rolled out through
the true dynamics, with box bounds (scipy's L-BFGS-B from several starts, float64, exact gradients
by autograd), and keeps the best.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch
import torch.nn.functional as F
from torch import Tensor


class LinearModel:
    """z' = A z + B a with reward −‖z − goal‖²: convex, and at ``|a| ≤ 1`` the bound is active
    unless ``gain`` (scaling B) makes the goal cheap to approach, e.g. 4 or more."""

    def __init__(self, F: int = 4, A: int = 2, seed: int = 1, gain: float = 1.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.feature_size, self.action_size = F, A
        self.A = torch.eye(F) + 0.1 * torch.randn(F, F, generator=g)
        self.B = 0.3 * gain * torch.randn(F, A, generator=g)
        self.goal = torch.ones(F)

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        return z @ self.A.to(z.dtype).T + a @ self.B.to(z.dtype).T

    def predict_mean_jacobian(self, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        lead = z.shape[:-1]
        return self.A.to(z.dtype).expand(*lead, -1, -1), self.B.to(z.dtype).expand(*lead, -1, -1)

    def reward(self, z: Tensor) -> Tensor:
        return -((z - self.goal.to(z.dtype)) ** 2).sum(-1)


class DoubleIntegrator:
    """Position and velocity per axis, z = [p, v], p' = p + dt·v', v' = v + dt·a·gain; reward
    −‖p − goal‖². With a goal farther than the horizon allows, the optimum is bang-bang: every
    action sits on the bound until the last steps."""

    def __init__(self, axes: int = 1, goal: float = 3.0, dt: float = 0.1, gain: float = 1.0) -> None:
        self.axes, self.dt, self.gain = axes, dt, gain
        self.feature_size, self.action_size = 2 * axes, axes
        self.goal = torch.full((axes,), float(goal))

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        p, v = z[..., : self.axes], z[..., self.axes:]
        v = v + self.dt * self.gain * a
        return torch.cat([p + self.dt * v, v], -1)

    def reward(self, z: Tensor) -> Tensor:
        return -((z[..., : self.axes] - self.goal.to(z.dtype)) ** 2).sum(-1)


class PointMass:
    """z' = z + step·a in the plane, reward −‖z − goal‖²; a goal beyond H·step saturates the bound."""

    feature_size, action_size = 2, 2

    def __init__(self, goal: tuple[float, float] = (2.0, 0.0), step: float = 0.1) -> None:
        self.goal, self.step = torch.tensor(goal), step

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        return z + self.step * a

    def reward(self, z: Tensor) -> Tensor:
        return -((z - self.goal.to(z.dtype)) ** 2).sum(-1)


class Pendulum:
    """A damped pendulum with a weak motor, z = [θ, ω] (θ = 0 hanging down, π upright):
    ω' = ω + dt·(−(g/l)·sin θ − b·ω + torque·a), θ' = θ + dt·ω'. Reward −(1 + cos θ) is 0 upright.
    At ``torque`` below g/l the motor cannot lift it directly: the swing-up must pump, and
    pumping first one way or the other gives different local optima."""

    feature_size, action_size = 2, 1

    def __init__(self, torque: float = 5.0, g_over_l: float = 10.0, damping: float = 0.1,
                 dt: float = 0.1) -> None:
        self.torque, self.g_over_l, self.damping, self.dt = torque, g_over_l, damping, dt

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        theta, omega = z[..., :1], z[..., 1:]
        omega = omega + self.dt * (-self.g_over_l * torch.sin(theta) - self.damping * omega + self.torque * a)
        return torch.cat([theta + self.dt * omega, omega], -1)

    def reward(self, z: Tensor) -> Tensor:
        return -(1 + torch.cos(z[..., 0]))


# ---------------------------------------------------------------------------------- objectives
class ShiftedReward:
    """``model`` with reward r + c: the same task for a planner that maximizes the return, so a plan
    that changes with c depends on the reward's offset (LatCo's ``reward_reference``). The optional
    derivatives are the model's own when it offers them (a constant shift leaves them as they are)."""

    def __init__(self, model, c: float) -> None:
        self.model, self.c = model, c
        self.feature_size, self.action_size = model.feature_size, model.action_size

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        return self.model.predict_mean(z, a)

    def reward(self, z: Tensor) -> Tensor:
        return self.model.reward(z) + self.c

    def __getattr__(self, name: str):
        if name in ("predict_mean_jacobian", "reward_grad") and "model" in self.__dict__:
            return getattr(self.model, name)
        raise AttributeError(name)


def rollout_features(model, z0: Tensor, actions: Tensor) -> Tensor:
    """(..., H, F) features z_2..z_{H+1} of the rollout of ``actions`` (..., H, A) from z0."""
    z, out = z0.expand(*actions.shape[:-2], z0.shape[-1]), []
    for t in range(actions.shape[-2]):
        z = model.predict_mean(z, actions[..., t, :])
        out.append(z)
    return torch.stack(out, -2)


def collocation_objective(model, z0: Tensor, actions: Tensor) -> Tensor:
    """LatCo's objective once the dynamics hold: ½ Σ_t softplus(−r(z_{t+1}))² along the rollout."""
    return 0.5 * F.softplus(-model.reward(rollout_features(model, z0, actions))).pow(2).sum(-1)


def negative_return(model, z0: Tensor, actions: Tensor) -> Tensor:
    """The shooting planners' objective, −Σ_t r(z_{t+1}) along the rollout."""
    return -model.reward(rollout_features(model, z0, actions)).sum(-1)


Objective = Callable[[object, Tensor, Tensor], Tensor]


@dataclass
class Optimum:
    """The best of several L-BFGS-B solves: its objective value and actions (H, A)."""

    value: float
    actions: np.ndarray
    values: np.ndarray
    """(starts,) every start's final value (to see how many local optima there are)."""


def reference_optimum(model, z0: Tensor, horizon: int, action_max: float = 1.0,
                      objective: Objective = collocation_objective, starts: int = 8,
                      seed: int = 0) -> Optimum:
    """min over actions in [−a_max, a_max]^(H×A) of ``objective`` on the true dynamics, by L-BFGS-B
    from zero and from ``starts`` − 1 uniform random starts (float64, autograd gradients)."""
    A = model.action_size
    z0 = torch.as_tensor(z0, dtype=torch.float64)
    rng = np.random.default_rng(seed)

    def value_and_grad(v: np.ndarray) -> tuple[float, np.ndarray]:
        a = torch.from_numpy(v).reshape(horizon, A).requires_grad_(True)
        with torch.enable_grad():
            value = objective(model, z0, a)
            (grad,) = torch.autograd.grad(value, a)
        return float(value.detach()), grad.numpy().ravel().astype(np.float64)

    inits = [np.zeros(horizon * A)]
    inits += [rng.uniform(-action_max, action_max, horizon * A) for _ in range(starts - 1)]
    results = [scipy.optimize.minimize(value_and_grad, v0, jac=True, method="L-BFGS-B",
                                       bounds=[(-action_max, action_max)] * (horizon * A),
                                       options=dict(ftol=1e-15, gtol=1e-10, maxiter=20_000))
               for v0 in inits]
    values = np.array([r.fun for r in results])
    best = results[int(np.argmin(values))]
    return Optimum(float(best.fun), best.x.reshape(horizon, A), values)


def problems() -> dict[str, tuple[object, Tensor, int]]:
    """Named (model, z0, horizon) cases of the tests and the planner-quality benchmark."""
    return {
        "linear": (LinearModel(seed=1), torch.zeros(4), 10),
        # the optimum inside the bound; LatCo's loop alone stalls far from it (latco.planners.polish)
        "linear-strong": (LinearModel(F=3, A=2, seed=4, gain=8.0), torch.zeros(3), 10),
        "double-integrator": (DoubleIntegrator(axes=2, goal=3.0), torch.zeros(4), 20),
        "point-mass": (PointMass(goal=(3.0, 1.0)), torch.zeros(2), 15),
        "pendulum": (Pendulum(), torch.zeros(2), 30),
    }


__all__ = ["DoubleIntegrator", "LinearModel", "Optimum", "Pendulum", "PointMass", "collocation_objective",
           "negative_return", "problems", "reference_optimum", "rollout_features"]
