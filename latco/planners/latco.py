"""LatCo: latent collocation with Levenberg–Marquardt and per-time-step Lagrange multipliers.

Paper §4 (Algorithm 1, lines 5-8), §5 and Appendix B. Decision variables
are the latent features z_2..z_{H+1} and the actions a_1..a_H; z_1 = z0 is fixed. Per time step t
(block x_t = [a_t, z_{t+1}], d = A + F) the least-squares residuals are

    dynamics  ρᵈ_t = √λ_t · (z_{t+1} − μ(z_t, a_t))        (F residuals; touches x_{t-1} and x_t)
    action    ρᵃ_t = √ν_t · ``max(0, |a_t| − a_max)``       (A residuals; x_t only; "paper" only)
    reward    ρʳ_t = softplus(−(r(z_{t+1}) − r_ref))          (1 residual;  x_t only)

so JᵀJ is block tridiagonal and each Levenberg–Marquardt step (Eq. 5) is one block Cholesky solve
(``latco.solver``). ``LatCoPlanner.plan`` is Algorithm 1's inner loop: for k = 1..K, one LM step on
the Lagrangian (lines 6-7), then the multiplier update of §5 (line 8, ``Multipliers.update``):
λ_t ← λ_t + 0.1 · log(‖z_{t+1} − μ(z_t, a_t)‖²/ε + η) · λ_t.

The action bound (``constraints``), compared side by side in ``benchmarks/planner_quality.py``:

- ``"project"`` (default): a projected LM step on the action block. Actions start inside the box;
  action coordinates at the bound whose gradient pushes them outward are held fixed in the step
  (their rows and columns of JᵀJ are replaced by the identity: Bertsekas' projected Newton), the
  others take the LM step, and the result is clipped to ±a_max. The raw actions never leave the
  box, so the returned actions are exactly the ones the planned latents were optimized with.
- ``"tanh"``: a = a_max·tanh(u), u the decision variable. Always inside the box, but reaching the
  bound needs u → ∞, so saturated optima are approached slowly.
- ``"paper"``: the authors' scheme, a hinge residual ρᵃ with the §5 rule on ν. Where a step's bound
  is inactive the rule shrinks ν by ≈ ×0.54 per iteration and the hinge has no Jacobian, so on
  problems whose optimum saturates the bound the raw actions overshoot it again late in the
  optimization, and the clipped actions then no longer produce the planned latents. Kept for the
  ablation and for comparison.

The reward reference r_ref (``reward_reference``):

- ``"zero"`` (default, the paper's §5 residual): r_ref = 0, ρʳ = softplus(−r) = ln(1 + e^{−r}).
  It is not invariant to a constant shift of the reward: softplus saturates, so where r > ~4.6
  its slope sigmoid(−r) is below 0.01 and the reward barely pulls on the plan, while for r ≪ 0 the
  residual is ≈ −r and pulls with ``|r|``. A reward r + c is the same task for a return-maximizing
  planner (iCEM, GD and CEM plan the same), but LatCo's plan changes with c. Measured true returns
  with r and with r + 10, float64, default options: point mass −78.26 and −85.32, pendulum −38.04
  and −59.81 (both as in ``tests/test_reward_reference.py``), a small random-MLP dynamics −20.52
  and −45.37; iCEM and GD plan the same for both.
  The planner warns once (RuntimeWarning) when r(z0) and r of every initial latent are above ln 99
  (sigmoid(−r) < 0.01 everywhere: a saturated start).
- ``"best"``: r_ref = the best (largest) predicted reward seen so far in this plan's optimization,
  over r(z0) and the planned latents z_{t+1} of every iterate (per plan; a running max updated
  once per LM iteration next to the multiplier update, so fixed within each LM step). Adding c to
  the reward adds c to r_ref, so r − r_ref and the whole optimization are unchanged up to rounding;
  the residual stays in softplus's responsive range (r ≤ r_ref: slope >= 1/2), where it acts like
  the paper's ρʳ ≈ −r of a reward whose best value is 0. Measured on those models, unshifted: point
  mass −78.26 (L-BFGS-B over the actions: −78.25), pendulum −38.93 ("zero": −38.04; both a local
  optimum), random MLP −20.56 ("zero": −20.52). It is shift-invariant, not the best shift: "zero"
  with r − 10 earned −31.84 on the pendulum. When r_ref changes, the stored r(z) and
  ∂r/∂z of the current linearization are re-referenced (no model call), so the normal equations,
  the Lagrangian and adaptive damping's comparisons all use one r_ref per step. The polish uses
  the final r_ref of each plan; ``latco-no-relax`` is this planner, and ``latco-first-order``
  updates r_ref with its multipliers. ``trace['reward_reference']`` records r_ref per iteration.

Details the paper leaves out, taken from the authors' code (github zchuning/latco, ``latco.py``):
the plan is initialized from N(0, 1) (latents and actions); all residuals are divided by
(mean_t √λ_t + mean_t √ν_t + 1) per plan so the damping stays commensurate with the growing
multipliers; ``n_plans`` plans are optimized as one batch and the one whose actions (clipped to
the bound) earn the highest model reward when rolled out through μ is returned. Unlike the authors'
code, NaN never silently becomes a zero action: a non-finite step is rejected and damped, and a
plan that cannot recover is dropped (or, if every plan fails, ``PlanningError`` is raised).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.planners.evaluate import IterationTrace, rollout
from latco.planners.polish import POLISH_OBJECTIVES, PolishObjective, lbfgsb_polish, polish_loss
from latco.solver import Backend, LMState, NormalEquations, lm_step
from latco.solver.lm import PRECISIONS, Precision

Constraints = Literal["project", "tanh", "paper"]
CONSTRAINTS = ("project", "tanh", "paper")
RewardReference = Literal["zero", "best"]
REWARD_REFERENCES = ("zero", "best")
SATURATED_REWARD = math.log(99.0)
"""Above this reward softplus(−r) has slope sigmoid(−r) < 0.01: the paper's residual is saturated."""


@dataclass(frozen=True)
class LatCoConfig:
    """Hyperparameters of the LatCo planner; defaults are the paper's (App. B)."""

    iterations: int = 200
    """Levenberg–Marquardt steps per plan (App. B: 200)."""
    damping: float = 1e-3
    """LM damping added to JᵀJ in Eq. 5 (App. B: 1e-3); raised ×10 after a rejected step."""
    adaptive_damping: bool = False
    """False (authors): every finite step is taken. True: classic LM, a step must lower the
    Lagrangian at the current multipliers, else it is rejected and the damping raised ×10."""
    lam_init: float = 1.0
    """λ₀, initial dynamics multiplier of every time step (App. B: 1)."""
    nu_init: float = 1.0
    """ν₀, initial action-bound multiplier of every time step (App. B: 1; ``constraints="paper"``)."""
    dual_lr: float = 0.1
    """Step size of the §5 multiplier rule λ += dual_lr · ln(viol/eps + eta) · λ (paper: 0.1).
    The authors' released code uses log10, ε = 1e-4 and η = 0.1: dual_lr = 0.1/ln 10, eps = 1e-4,
    eta = 0.1 reproduce it."""
    eps: float = 1e-5
    """ε, target squared violation per time step of the dynamics and action constraints (App. B);
    the rule's fixed point is a violation of ε(1 − η), i.e. ‖z_{t+1} − μ‖ ≈ √ε per step."""
    eta: float = 0.01
    """η in the multiplier rule; keeps the log finite and bounds the decrease (App. B: 0.01)."""
    action_max: float = 1.0
    """a_max, the action bound ``|a| <= a_max`` (the environments' action box is [-1, 1])."""
    constraints: Constraints = "project"
    """How the action bound is kept: "project" (default), "tanh" or "paper" (module docstring)."""
    n_plans: int = 1
    """Independent plans optimized as one batch; the best by model reward is returned."""
    shift: int | None = None
    """MPC warm start: the previous call's chosen plan, shifted by this many steps (the actions
    executed in between: the agent's T_cache), starts plan 0 of the next call; its new tail holds
    the last action and rolls the latents out through μ. None (the authors): every call starts
    from N(0, 1). ``reset()`` forgets the previous plan (the agent calls it every episode)."""
    init_std: float = 1.0
    """Std of the N(0, std²) initialization of latents and actions (authors' code: 1)."""
    normalize_residuals: bool = True
    """Divide all residuals by (mean √λ + mean √ν + 1) per plan, as the authors' code does."""
    seed: int | None = 0
    """Seed of the planner's generator for the initialization (None: nondeterministic)."""
    record_every: int = 0
    """If > 0, store the plan every this many iterations in ``trace['snapshot_*']`` (Fig. 1/6)."""
    jacobian: Literal["auto", "analytic", "autograd"] = "auto"
    """∂μ/∂(z, a): the model's ``predict_mean_jacobian`` if present ("auto"), or torch.func."""
    backend: Backend = "auto"
    """Block Cholesky backend: scipy LAPACK on CPU, torch.linalg elsewhere ("auto")."""
    precision: Precision = "float64"
    """How each LM step is solved: "float64" (block Cholesky in float64) or "mixed" (float32 block
    Cholesky refined against the float64 system to float64 accuracy; float64 where refinement does
    not converge; ``latco.solver.compute_delta``). On a 2-core CPU mixed was measured slower per
    step (52.0 against 46.3 ms at paper size: the refinement costs more than float32 saves); it is
    there for hardware where float32 is much faster than float64 (docs: performance)."""
    solver_threads: int = 2
    """Threads of the CPU block Cholesky: 2 factor the chain from both ends at once (same result)."""
    max_damping: float = 1e8
    """A plan whose damping must exceed this to get a finite step is given up."""
    multiplier_min: float = 0.0
    """Floor of λ_t and ν_t after each update (0: the pure §5 rule)."""
    refine_tol: float = 0.0
    """Projected step: an action at the bound that the LM step pushes outward by more than
    refine_tol·a_max is held and the step solved once more; smaller overshoots are only clipped."""
    hold_memory: int = 10
    """Projected step: actions held in one step start the next steps held (saves solving again),
    and every this many iterations the held set is forgotten and found anew (0: never remember)."""
    polish_iterations: int = 0
    """After the LM loop, this many steps on the actions of every plan through the rollout
    (shooting on LatCo's objective ½Σ softplus(−r)², ``polish_method``), from the collocation
    actions, so the returned actions are optimal for their own rollout (0: none, the paper)."""
    polish_method: Literal["lbfgsb", "adam"] = "lbfgsb"
    """How the polish steps: "lbfgsb", L-BFGS-B iterations per plan with the bound as box constraints
    (``latco.planners.polish``), or "adam", projected Adam steps of ``polish_lr`` (GD's optimizer,
    no host round trip per step); either keeps a plan's collocation actions where it did not help."""
    polish_lr: float = 0.05
    """Adam step size of the "adam" polish (GD's, App. B)."""
    polish_objective: PolishObjective = "latco"
    """What the polish minimizes through the rollout: "latco", LatCo's objective ½Σ softplus(−r)²;
    "return" (beyond the paper), −Σ r, the model return by which the plans are chosen and which
    the shooting planners maximize (``latco.planners.polish``)."""
    stop_tol: float = 0.0
    """0 (the paper): always run all ``iterations``. > 0: stop early once every plan has converged,
    i.e. over the last ``stop_window`` iterations each step's dynamics violation stayed within
    ``stop_violation``·ε (the §5 rule holds it near its fixed point ε(1 − η)), the plan's mean
    predicted reward changed by at most stop_tol·max(1, abs(reward)) and its actions by at most
    stop_tol·a_max (RMS over steps). ``trace['stopped_at']`` is the number of iterations run."""
    stop_window: int = 10
    """Iterations over which ``stop_tol``'s changes are measured."""
    stop_violation: float = 2.0
    """Multiple of ε that every step's dynamics violation must stay within for ``stop_tol``'s stop."""
    reward_reference: RewardReference = "zero"
    """r_ref of the reward residual softplus(−(r − r_ref)): "zero" (default) the paper's softplus(−r);
    "best" the best predicted reward seen so far in the plan's optimization, which makes the plan
    invariant to a constant shift of the reward (module docstring)."""

    def __post_init__(self) -> None:
        checks = {
            "iterations": self.iterations >= 0, "damping": self.damping > 0,
            "lam_init": self.lam_init > 0, "nu_init": self.nu_init > 0, "eps": self.eps > 0,
            "eta": self.eta > 0, "action_max": self.action_max > 0, "n_plans": self.n_plans >= 1,
            "init_std": self.init_std >= 0, "record_every": self.record_every >= 0,
            "max_damping": self.max_damping >= self.damping, "solver_threads": self.solver_threads >= 1,
            "polish_iterations": self.polish_iterations >= 0, "refine_tol": self.refine_tol >= 0,
            "hold_memory": self.hold_memory >= 0, "shift": self.shift is None or self.shift >= 1,
            "polish_lr": self.polish_lr > 0, "stop_tol": self.stop_tol >= 0,
            "stop_window": self.stop_window >= 1, "stop_violation": self.stop_violation > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            listed = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"invalid LatCo option(s): {listed}")
        if self.polish_method not in ("lbfgsb", "adam"):
            raise ValueError(f"unknown polish_method {self.polish_method!r}; choose one of: lbfgsb, adam")
        if self.polish_objective not in POLISH_OBJECTIVES:
            raise ValueError(f"unknown polish_objective {self.polish_objective!r}; "
                             f"choose one of: {', '.join(POLISH_OBJECTIVES)}")
        if self.jacobian not in ("auto", "analytic", "autograd"):
            raise ValueError(f"unknown jacobian {self.jacobian!r}; choose one of: auto, analytic, autograd")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")
        if self.constraints not in CONSTRAINTS:
            raise ValueError(f"unknown constraints {self.constraints!r}; "
                             f"choose one of: {', '.join(CONSTRAINTS)}")
        check_reward_reference(self.reward_reference)


def check_reward_reference(value: object) -> None:
    """ValueError unless ``value`` is one of ``REWARD_REFERENCES``."""
    if value not in REWARD_REFERENCES:
        raise ValueError(f"unknown reward_reference {value!r}; choose one of: {', '.join(REWARD_REFERENCES)}")


# ------------------------------------------------------------------------- model derivatives
def _dynamo_loaded() -> bool:
    return "torch._dynamo" in sys.modules


_AUTOGRAD_NOTED = False


def _note_first_autograd_jacobian() -> None:
    """Say once per process what the first torch.func Jacobian costs: torch.func imports
    ``torch._dynamo`` on its first backward (3-7 s on a 2-core CPU, measured), whatever the model."""
    global _AUTOGRAD_NOTED
    if _AUTOGRAD_NOTED or _dynamo_loaded():
        return
    _AUTOGRAD_NOTED = True
    warnings.warn(
        "LatCo: the model has no predict_mean_jacobian(z, a), so ∂μ/∂(z, a) comes from torch.func "
        "(vmap of jacrev), whose first call imports torch._dynamo: a one-time 3-7 s on a 2-core CPU. "
        "Later calls do not pay it. To avoid it, give the model an analytic "
        "predict_mean_jacobian(z, a) -> (∂μ/∂z (..., F, F), ∂μ/∂a (..., F, A)) (latco.model.RSSM has one; "
        "it is also 5-6x faster per call), or import torch._dynamo at start-up where the time matters "
        "less.", UserWarning, stacklevel=4)


def dynamics_jacobian(model: LatentModel, z: Tensor, a: Tensor, mode: str = "auto") -> tuple[Tensor, Tensor]:
    """(∂μ/∂z (..., F, F), ∂μ/∂a (..., F, A)) at (z, a): analytic if the model offers it, else torch.func."""
    if mode != "autograd" and hasattr(model, "predict_mean_jacobian"):
        return model.predict_mean_jacobian(z, a)
    if mode == "analytic":
        raise ValueError("jacobian='analytic' but the model has no predict_mean_jacobian(z, a)")
    _note_first_autograd_jacobian()
    lead, Fz, A = z.shape[:-1], z.shape[-1], a.shape[-1]
    jac = torch.func.vmap(torch.func.jacrev(model.predict_mean, argnums=(0, 1)))
    dz, da = jac(z.reshape(-1, Fz), a.reshape(-1, A))
    return dz.reshape(*lead, Fz, Fz), da.reshape(*lead, Fz, A)


def reward_and_grad(model: LatentModel, z: Tensor) -> tuple[Tensor, Tensor]:
    """(r(z) (...), ∂r/∂z (..., F)), batched over all leading dims in one backward pass."""
    if hasattr(model, "reward_grad"):
        return model.reward(z), model.reward_grad(z)
    with torch.enable_grad():
        zg = z.detach().requires_grad_(True)
        r = model.reward(zg)
        (grad,) = torch.autograd.grad(r.sum(), zg)
    return r.detach(), grad


# ------------------------------------------------------------------------------ multipliers
class Multipliers:
    """Per-plan, per-time-step Lagrange multipliers λ_t (dynamics) and ν_t (action bound), float64.

    ``update`` is the §5 rule (Algorithm 1, line 8): m ← m · (1 + dual_lr · ln(viol/ε + η)), which
    grows m while the squared violation exceeds ε(1 − η) and shrinks it (at most ×(1 + dual_lr·ln η))
    below. ``weights`` gives the residual weights √λ, √ν, 1, each divided by the authors' per-plan
    normalizer (mean √λ + mean √ν + 1) when ``normalize``.
    """

    def __init__(self, batch: int, horizon: int, lam_init: float, nu_init: float, dual_lr: float = 0.1,
                 eps: float = 1e-5, eta: float = 0.01, minimum: float = 0.0, maximum: float = math.inf,
                 normalize: bool = True, device: torch.device | str = "cpu") -> None:
        f64 = dict(dtype=torch.float64, device=device)
        self.lam = torch.full((batch, horizon), float(lam_init), **f64)
        self.nu = torch.full((batch, horizon), float(nu_init), **f64)
        self.dual_lr, self.eps, self.eta = dual_lr, eps, eta
        self.minimum, self.maximum, self.normalize = minimum, maximum, normalize

    @classmethod
    def from_config(cls, cfg: LatCoConfig, batch: int, horizon: int,
                    device: torch.device | str = "cpu", maximum: float = math.inf) -> Multipliers:
        """λ₀, ν₀ and the rule's constants from a LatCo config (the ablations share them)."""
        return cls(batch, horizon, cfg.lam_init, cfg.nu_init, cfg.dual_lr, cfg.eps, cfg.eta,
                   cfg.multiplier_min, maximum, cfg.normalize_residuals, device)

    def weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """(w_dyn (B, H), w_act (B, H), w_rew (B,)): √λ, √ν, 1, each times the normalizer."""
        sl, sn = self.lam.sqrt(), self.nu.sqrt()
        c = 1.0 / (sl.mean(1) + sn.mean(1) + 1.0) if self.normalize else torch.ones_like(sl[:, 0])
        return sl * c[:, None], sn * c[:, None], c

    def _rule(self, m: Tensor, violation: Tensor) -> Tensor:
        return m * (1 + self.dual_lr * torch.log(violation.to(torch.float64) / self.eps + self.eta))

    def update(self, dyn_violation: Tensor, act_violation: Tensor, mask: Tensor | None = None) -> None:
        """§5 rule from the squared violations (B, H) per step; plans where ``mask`` (B,) is False
        keep theirs."""
        lam, nu = self._rule(self.lam, dyn_violation), self._rule(self.nu, act_violation)
        if mask is not None:
            keep = ~mask.to(self.lam.device)[:, None]
            lam, nu = torch.where(keep, self.lam, lam), torch.where(keep, self.nu, nu)
        self.lam = lam.clamp(self.minimum, self.maximum)
        self.nu = nu.clamp(self.minimum, self.maximum)


# ------------------------------------------------------------------------------- residuals
@dataclass
class CollocationResiduals:
    """LatCo's unweighted residuals at a plan x (B, H, A + F), and the points they were taken at.

    The one definition that ``LatCoPlanner.linearize`` (with Jacobians) and the first-order ablation
    (differentiated by autograd) share.
    """

    actions: Tensor  # (B, H, A)  a_t (for "tanh": a_max·tanh(u_t))
    z_prev: Tensor  # (B, H, F)   z_t (z0 first)
    z_next: Tensor  # (B, H, F)   z_{t+1}
    dyn: Tensor  # (B, H, F)      z_{t+1} − μ(z_t, a_t)
    act: Tensor  # (B, H, A)      max(0, |a_t| − a_max) (0 unless "paper")
    rew: Tensor  # (B, H)         softplus(−(r(z_{t+1}) − r_ref)), r_ref = 0 for "zero"
    reward: Tensor  # (B, H)      r(z_{t+1})

    def dynamics_violation(self) -> Tensor:
        """(B, H) ‖z_{t+1} − μ(z_t, a_t)‖² in float64."""
        return self.dyn.to(torch.float64).pow(2).sum(-1)

    def action_violation(self) -> Tensor:
        """(B, H) ``‖max(0, |a_t| − a_max)‖²`` in float64."""
        return self.act.to(torch.float64).pow(2).sum(-1)

    def lagrangian(self, weights: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """(B,) ½‖ρ‖² with the weighted residuals ρ (Eq. 4 as least squares)."""
        wd, wa, wr = weights
        return 0.5 * ((wd**2 * self.dynamics_violation()).sum(1) + (wa**2 * self.action_violation()).sum(1)
                      + wr**2 * self.rew.to(torch.float64).pow(2).sum(1))


def plan_actions(x: Tensor, action_size: int, action_max: float, constraints: Constraints) -> Tensor:
    """The actions a plan x (..., H, A + F) stands for: its first A entries, or a_max·tanh of them."""
    u = x[..., :action_size]
    return action_max * torch.tanh(u) if constraints == "tanh" else u


CURVES = ("dynamics_violation", "predicted_reward", "action_violation", "lam", "nu", "damping")
"""The per-iteration curves every LatCo plan's trace holds (empty with ``iterations=0``)."""


def start_rows(z0: Tensor, batch: int) -> Tensor:
    """(batch, F) start features: z0 (F,) shared by every plan, or one per plan (batch, F) as is."""
    return z0.reshape(-1, z0.shape[-1]).expand(batch, -1)


def collocation_residuals(model: LatentModel, z0: Tensor, x: Tensor, action_max: float,
                          constraints: Constraints = "project",
                          reward: Tensor | None = None,
                          reference: Tensor | None = None) -> CollocationResiduals:
    """LatCo's residuals at the plan x (B, H, A + F) = [a_t (or u_t), z_{t+1}]; differentiable in x.

    ``reward``: r(z_{t+1}) (B, H) if the caller has it already (``linearize`` takes it with ∂r/∂z).
    ``reference``: r_ref (B,) of ``reward_reference="best"``; None is the paper's r_ref = 0.
    """
    A = model.action_size
    a = plan_actions(x, A, action_max, constraints)
    z_next = x[..., A:]
    z_prev = torch.cat([start_rows(z0, x.shape[0])[:, None], z_next[:, :-1]], 1)
    if reward is None:
        reward = model.reward(z_next)
    act = (a.abs() - action_max).clamp(min=0) if constraints == "paper" else torch.zeros_like(a)
    return CollocationResiduals(a, z_prev, z_next, z_next - model.predict_mean(z_prev, a), act,
                                reward_residual(reward, reference), reward)


def reward_residual(reward: Tensor, reference: Tensor | None = None) -> Tensor:
    """ρʳ = softplus(−(r − r_ref)) for rewards (B, H) and r_ref (B,); softplus(−r) for None."""
    if reference is None:
        return F.softplus(-reward)
    return F.softplus(-(reward - reference.to(reward.dtype)[:, None]))


def initial_reference(r0: Tensor, batch: int) -> Tensor:
    """r_ref (batch,) before any latent is seen: r(z0), or −inf if that is not finite."""
    return torch.where(torch.isfinite(r0), r0, torch.full_like(r0, -math.inf)).expand(batch).clone()


def best_reward(reward: Tensor) -> Tensor:
    """(B,) the largest finite reward of each plan in ``reward`` (B, H) (−inf where none is finite)."""
    return torch.where(torch.isfinite(reward), reward, torch.full_like(reward, -math.inf)).amax(1)


def warn_if_saturated(r0: Tensor, reward: Tensor, stacklevel: int = 3) -> bool:
    """With the paper's residual softplus(−r): warn (RuntimeWarning) and return True if r(z0) and
    every finite reward of the initial latents (B, H) exceed ln 99, where sigmoid(−r) < 0.01."""
    finite = reward[torch.isfinite(reward)]
    if not (bool(torch.isfinite(r0).all()) and float(r0.min()) > SATURATED_REWARD
            and bool((finite > SATURATED_REWARD).all())):
        return False
    low = min(float(r0.min()), float(finite.min())) if finite.numel() else float(r0.min())
    warnings.warn(
        f"LatCo: the predicted reward is at least {low:.3g} at z0 and at every initial latent, too large "
        f"for the paper's residual softplus(−r), whose slope is below 0.01 beyond {SATURATED_REWARD:.2f}: "
        "the reward barely pulls on the plan, and a constant shift of the reward changes LatCo's plan. "
        "Use reward_reference=\"best\" (shift-invariant), or shift the reward down.",
        RuntimeWarning, stacklevel=stacklevel)
    return True


# -------------------------------------------------------------------------- the linearization
@dataclass
class CollocationLinearization:
    """Residuals and Jacobians of the LatCo problem at one plan (B plans × H steps).

    The weights (from the current multipliers) are applied when the normal equations are built,
    so the multipliers may change between iterations without re-evaluating the model.
    """

    res: CollocationResiduals
    jz: Tensor  # (B, H, F, F)  ∂μ/∂z at (z_t, a_t)   (jz[:, 0] unused: z_1 is fixed)
    ja: Tensor  # (B, H, F, A)  ∂μ/∂(a or u) at (z_t, a_t)
    act_grad: Tensor  # (B, H, A)  ∂act/∂a_t: sign(a_t) where the bound is violated, else 0
    rew_grad: Tensor  # (B, H, F) ∂ softplus(−(r(z_{t+1}) − r_ref)) / ∂z_{t+1}
    multipliers: Multipliers
    at_bound: Tensor | None = None  # (B, H, A) bool: action at ±a_max ("project")
    held: Tensor | None = None  # (B, H, A) bool: actions the projected step keeps where they are
    refine_tol: float = 0.0  # outward steps of at most this are clipped without solving again
    sticky: Tensor | None = None  # (B, H, A) bool: held in the previous steps (a guess for this one)
    workspace: dict[str, Tensor] = field(default_factory=dict)  # buffers shared by one plan's calls
    raw_reward_grad: Tensor | None = None  # (B, H, F) ∂r/∂z_{t+1} (to re-reference the reward residual)

    def set_reference(self, reference: Tensor) -> None:
        """Take the reward residual and its gradient against a new r_ref (B,) from the stored r(z)
        and ∂r/∂z (no model call): ``reward_reference="best"`` after r_ref rose."""
        shifted = self.res.reward - reference.to(self.res.reward.dtype)[:, None]
        self.res = dataclasses.replace(self.res, rew=F.softplus(-shifted))
        self.rew_grad = -torch.sigmoid(-shifted)[..., None] * self.raw_reward_grad

    @property
    def dyn(self) -> Tensor:
        return self.res.dyn

    @property
    def reward(self) -> Tensor:
        return self.res.reward

    def _buffer(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """A float64 buffer reused across iterations (fresh 13 MB arrays cost page faults each time)."""
        buf = self.workspace.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = self.workspace[name] = torch.empty(shape, dtype=torch.float64, device=self.dyn.device)
        return buf

    def normal_equations(self) -> NormalEquations:
        """JᵀJ blocks and Jᵀρ (float64), exploiting the residuals' structure.

        With w = w_dyn, per block x_t = [a_t, z_{t+1}] and Jacobians A_t = ∂μ/∂z, B_t = ∂μ/∂a,
        N_t = diag(∂act/∂a), g_t = ∂ρʳ/∂z::

          diag_t = [[w_t² B_tᵀB_t + w_act² N_t²,  −w_t² B_tᵀ],
                    [−w_t² B_t,  w_t² I + w_rew² g_t g_tᵀ + w_{t+1}² A_{t+1}ᵀA_{t+1}]]
          lower_t = [[0,  w_{t+1}² B_{t+1}ᵀ A_{t+1}], [0, −w_{t+1}² A_{t+1}]]
          grad_t  = [−w_t B_tᵀ ρᵈ_t + w_act N_t ρᵃ_t,  w_t ρᵈ_t + w_rew g_t ρʳ_t − w_{t+1} A_{t+1}ᵀ ρᵈ_{t+1}]

        The one O(F³) product per block, w²AᵀA + w_rew² g gᵀ, is passed unformed as the Gram factor
        G_t = [w_{t+1} A_{t+1}; w_rew g_tᵀ] ((F+1) × F): the block Cholesky forms G_tᵀG_t in float64
        (``dsyrk``) on two cores. Identity, diagonal and rank-one blocks are written directly.
        With ``at_bound`` (projected step) the action coordinates at the bound whose gradient points
        outward get identity rows and columns and zero gradient: the step leaves them where they are.
        """
        wd, wa, wr = self.multipliers.weights()
        B, H, Fz = self.dyn.shape
        A = self.res.act.shape[-1]
        d = A + Fz
        gram = self._buffer("gram", (B, H, Fz + 1, Fz))
        wA = gram[:, :-1, :Fz]  # w_{t+1} A_{t+1}, t = 0 .. H-2 (the Jacobians come in the model's dtype)
        torch.mul(self.jz[:, 1:], wd[:, 1:, None, None], out=wA)
        gram[:, -1, :Fz] = 0
        gram[:, :, Fz] = wr[:, None, None] * self.rew_grad
        diag = self._buffer("diag", (B, H, d, d)).zero_()
        diag[..., A:, A:].diagonal(dim1=-2, dim2=-1).copy_((wd**2)[..., None].expand(B, H, Fz))
        # action rows/columns: w² BᵀB + diag(w_act² N²) and −w² B (all small)
        wB = wd[..., None, None] * self.ja  # (B, H, F, A) float64
        diag[..., :A, :A] = wB.mT @ wB
        diag[..., :A, :A].diagonal(dim1=-2, dim2=-1).add_((wa[..., None] * self.act_grad) ** 2)
        diag[..., A:, :A] = -wd[..., None, None] * wB
        diag[..., :A, A:] = diag[..., A:, :A].mT
        # lower blocks: [[0, w² BᵀA], [0, −w² A]] at (t+1, t); BᵀA (A × F) in the model's dtype
        lower = self._buffer("lower", (B, H - 1, d, d))
        lower[..., :A] = 0
        torch.mul(wA, -wd[:, 1:, None, None], out=lower[..., A:, A:])
        lower[..., :A, A:] = (self.ja[:, 1:].mT @ self.jz[:, 1:]) * (wd[:, 1:, None, None] ** 2)
        # gradient Jᵀρ
        rho_d = wd[..., None] * self.dyn  # weighted dynamics residual (B, H, F), float64
        rho_r = wr[:, None] * self.res.rew  # weighted reward residual (B, H)
        grad = torch.empty(B, H, d, dtype=torch.float64, device=self.dyn.device)
        grad[..., :A] = -(wB.mT @ rho_d[..., None])[..., 0]
        grad[..., :A] += (wa[..., None] * self.act_grad) * (wa[..., None] * self.res.act)
        grad[..., A:] = wd[..., None] * rho_d + wr[:, None, None] * self.rew_grad * rho_r[..., None]
        grad[:, :-1, A:] -= torch.einsum("bhij,bhi->bhj", wA, rho_d[:, 1:])
        if self.at_bound is not None:
            self._hold_active_bounds(diag, lower, grad, A)
        return NormalEquations(diag, lower, grad, gram)

    def _hold_active_bounds(self, diag: Tensor, lower: Tensor, grad: Tensor, A: int) -> None:
        """Projected Newton (Bertsekas 1982): fix actions at the bound whose descent step −Jᵀρ points
        out of the box (or whose last proposed step did, ``refine_step``), by identity rows/columns
        of JᵀJ and zero gradient for them."""
        a = self.res.actions.to(torch.float64)
        held = self.at_bound & (grad[..., :A] * a.sign() < 0)
        if self.held is not None:
            held |= self.held
        elif self.sticky is not None:  # what the last steps held, if still at the bound
            held |= self.at_bound & self.sticky
        self.held = held
        if not bool(held.any()):
            return
        keep = (~held).to(torch.float64)
        diag[..., :A, :] *= keep[..., :, None]
        diag[..., :, :A] *= keep[..., None, :]
        diag[..., :A, :A].diagonal(dim1=-2, dim2=-1).add_(held.to(torch.float64))
        lower[..., :A, :] *= keep[:, 1:, :, None]  # rows of block t+1's actions (columns of t's are 0)
        grad[..., :A] *= keep

    def residuals(self) -> Tensor:
        """(B, H, F + A + 1) the weighted residuals ρ_t = [ρᵈ_t, ρᵃ_t, ρʳ_t] (float64)."""
        wd, wa, wr = self.multipliers.weights()
        f64 = torch.float64
        return torch.cat([wd[..., None] * self.dyn.to(f64), wa[..., None] * self.res.act.to(f64),
                          wr[:, None, None] * self.res.rew.to(f64)[..., None]], -1)

    def refine_step(self, delta: Tensor) -> bool:
        """After a proposed step x − Δ: hold also the actions at the bound that it pushes outward
        (the Newton step can, where the gradient alone does not). True if the step must be solved
        again with them held; otherwise clipping the step loses nothing the latents relied on."""
        if self.at_bound is None:
            return False
        A = self.res.actions.shape[-1]
        a = self.res.actions.to(torch.float64)
        step = delta[..., :A].to(torch.float64)
        # pushed outward by more than the tolerance (smaller overshoots are clipped: ≤ that much slack)
        outward = self.at_bound & (step * a.sign() < -self.refine_tol)
        new = outward & ~self.held if self.held is not None else outward
        if not bool(new.any()):
            return False
        self.held = new if self.held is None else self.held | new
        return True

    def cost(self) -> Tensor:
        """(B,) ½‖ρ‖² at the current multipliers."""
        return self.res.lagrangian(self.multipliers.weights())

    def finite(self) -> Tensor:
        # one summing pass per tensor: NaN and Inf propagate through sums (an overflow of the sum
        # itself would need entries ~1e33 and only makes the step be rejected)
        parts = (self.dyn, self.jz, self.ja, self.res.rew, self.rew_grad, self.reward)
        return torch.stack([p.flatten(1).sum(1).isfinite() for p in parts], 1).all(1)

    def select(self, mask: Tensor, other: CollocationLinearization) -> CollocationLinearization:
        """Batch-wise merge: ``other`` where mask (B,) is True, self elsewhere."""
        if bool(mask.all()):
            return other
        if not bool(mask.any()):
            return self

        def pick(a: Tensor | None, b: Tensor | None) -> Tensor | None:
            if a is None:
                return None
            return torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), b, a)

        res = CollocationResiduals(**{n: pick(getattr(self.res, n), getattr(other.res, n))
                                      for n in CollocationResiduals.__dataclass_fields__})
        names = ("jz", "ja", "act_grad", "rew_grad", "at_bound", "raw_reward_grad")
        return CollocationLinearization(res, **{n: pick(getattr(self, n), getattr(other, n)) for n in names},
                                        multipliers=self.multipliers, refine_tol=self.refine_tol,
                                        workspace=self.workspace)


# ---------------------------------------------------------------------------------- the planner
class ConvergenceMonitor:
    """Decides ``LatCoConfig.stop_tol``'s early stop from the iterates of a batch of plans.

    A plan has converged when, over the last ``window`` iterations, every step's dynamics violation
    stayed within ``violation_max`` and its mean predicted reward and its actions moved less than the
    tolerances; failed plans count as converged. The batch stops when all plans have converged.
    """

    def __init__(self, tol: float, window: int, violation_max: float, action_max: float) -> None:
        self.tol, self.window, self.violation_max, self.action_max = tol, window, violation_max, action_max
        self.history: list[tuple[Tensor, Tensor]] = []  # (reward (B,), actions (B, H, A)) per iteration
        self.feasible_since: Tensor | None = None  # (B,) iterations in a row within the violation bound

    def update(self, violation: Tensor, reward: Tensor, actions: Tensor, failed: Tensor) -> bool:
        """Record one iteration: ``violation`` (B, H) per step, ``reward`` (B,) mean predicted reward,
        ``actions`` (B, H, A) clipped, ``failed`` (B,). Returns True when every plan has converged."""
        feasible = (violation <= self.violation_max).all(1).cpu()
        if self.feasible_since is None:
            self.feasible_since = torch.zeros_like(feasible, dtype=torch.long)
        self.feasible_since = torch.where(feasible, self.feasible_since + 1, 0)
        self.history.append((reward.detach().double().cpu(), actions.detach().double().cpu()))
        if len(self.history) <= self.window:
            return False
        r_old, a_old = self.history.pop(0)
        r_new, a_new = self.history[-1]
        reward_still = (r_new - r_old).abs() <= self.tol * r_new.abs().clamp(min=1.0)
        action_still = (a_new - a_old).pow(2).mean((1, 2)).sqrt() <= self.tol * self.action_max
        converged = (self.feasible_since >= self.window) & reward_still & action_still
        return bool((converged | failed.cpu()).all())


@register_planner("latco", LatCoConfig)
class LatCoPlanner:
    """Latent collocation (paper §4-5): optimize latents and actions jointly, enforce dynamics late."""

    def __init__(self, config: LatCoConfig | None = None) -> None:
        self.config = config or LatCoConfig()
        self.generator = torch.Generator()
        if self.config.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(self.config.seed)
        self._warned_saturated = False  # the saturated-reward warning is given once per planner
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan (``shift``'s warm start); call at the start of every episode."""
        self._previous: Tensor | None = None  # (H, A + F) decision variables of the last plan

    def warm_start(self, model: LatentModel, horizon: int) -> Tensor | None:
        """The previous plan shifted by ``shift`` steps, its tail filled (see ``shift``), or None."""
        prev, shift = self._previous, self.config.shift
        if shift is None or prev is None or shift >= prev.shape[0]:
            return None
        A = model.action_size
        kept = prev[shift:horizon + shift]
        tail = []
        z, a = kept[-1, A:], kept[-1, :A]
        for _ in range(horizon - kept.shape[0]):
            z = model.predict_mean(z, plan_actions(a, A, self.config.action_max, self.config.constraints))
            tail.append(torch.cat([a, z]))
        return torch.cat([kept, torch.stack(tail)]) if tail else kept

    def linearize(self, model: LatentModel, z0: Tensor, x: Tensor, multipliers: Multipliers,
                  workspace: dict[str, Tensor] | None = None,
                  reference: Tensor | None = None) -> CollocationLinearization:
        """Residuals and Jacobians at the plan x (B, H, A + F) = [a_t (or u_t), z_{t+1}] per step.

        ``workspace``: buffers for the normal equations, shared by the linearizations of one plan.
        ``reference``: r_ref (B,) of the reward residual (``reward_reference="best"``); None: 0.
        """
        cfg = self.config
        reward, reward_grad = reward_and_grad(model, x[..., model.action_size:])
        res = collocation_residuals(model, z0, x, cfg.action_max, cfg.constraints, reward=reward,
                                    reference=reference)
        shifted = reward if reference is None else reward - reference.to(reward.dtype)[:, None]
        jz, ja = dynamics_jacobian(model, res.z_prev, res.actions, cfg.jacobian)
        if cfg.constraints == "tanh":  # chain rule through a = a_max·tanh(u)
            ja = ja * (cfg.action_max - res.actions**2 / cfg.action_max)[..., None, :]
        a = res.actions
        violated = (a.abs() > cfg.action_max) & (cfg.constraints == "paper")  # the hinge's support
        act_grad = torch.where(violated, a.sign(), torch.zeros_like(a))
        at_bound = a.abs() >= cfg.action_max if cfg.constraints == "project" else None
        return CollocationLinearization(
            res, jz=jz, ja=ja, act_grad=act_grad,
            rew_grad=-torch.sigmoid(-shifted)[..., None] * reward_grad, multipliers=multipliers,
            at_bound=at_bound, refine_tol=cfg.refine_tol * cfg.action_max,
            workspace={} if workspace is None else workspace, raw_reward_grad=reward_grad,
        )

    def project(self, x: Tensor, action_size: int) -> Tensor:
        """The plan with its actions clipped to the box (``constraints="project"``; else x as is)."""
        if self.config.constraints != "project":
            return x
        a_max = self.config.action_max
        return torch.cat([x[..., :action_size].clamp(-a_max, a_max), x[..., action_size:]], -1)

    def initial_plan(self, batch: int, horizon: int, model: LatentModel, like: Tensor) -> Tensor:
        """N(0, init_std²) latents and actions, as the authors' code (actions projected into the box)."""
        cfg = self.config
        x = cfg.init_std * torch.randn(batch, horizon, model.action_size + model.feature_size,
                                       generator=self.generator, dtype=torch.float64)
        return self.project(x.to(device=like.device, dtype=like.dtype), model.action_size)

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """Algorithm 1, lines 5-8: a plan of ``horizon`` actions from the feature z0 (F,).

        ``Plan.actions`` are the chosen plan's actions clipped to ±a_max (what would be executed);
        ``Plan.features`` are its *planned* latents [z0, z_2, …, z_{H+1}], the collocation variables.
        They satisfy the dynamics step by step up to the tolerance: ‖z_{t+1} − μ(z_t, a_t)‖² ≈ ε.
        The rollout of ``Plan.actions`` through μ departs from them by the accumulated slack: about
        H·√ε for non-expansive dynamics, more where the dynamics amplify errors (a pendulum near the
        top). ``trace['feasibility_gap']`` is that max abs difference, measured on every plan. With
        ``polish_iterations`` > 0 the returned actions were polished by shooting, so ``Plan.features``
        is their rollout (exactly feasible) and the gap is that of the collocation latents before.
        ``trace`` holds, per iteration k (after its step and multiplier update), for the plan finally
        chosen: ``dynamics_violation`` mean over steps of ‖z_{t+1} − μ(z_t, a_t)‖², ``predicted_reward``
        mean r(z_{t+1}) of the planned latents, ``action_violation`` mean ``‖max(0, |a_t| − a_max)‖²`` of
        the raw actions, ``lam`` and ``nu`` mean multipliers, ``damping``, ``wall_time`` (seconds since
        planning started). ``plan_rewards`` (n_plans,) is each plan's model return of its clipped
        actions, used to choose; ``rejected_steps``; ``raw_action_max`` ``max |a|`` of the chosen plan's
        actions before clipping (≤ a_max unless ``constraints="paper"``); with
        ``reward_reference="best"``, ``reward_reference`` the plan's r_ref after each iteration's
        update (see the module docstring); ``stopped_at`` the number of LM iterations run (fewer
        than ``iterations`` after a ``stop_tol`` stop; the curves end there); with ``record_every`` > 0,
        ``snapshot_iteration`` (n,), ``snapshot_features`` (n, H+1, F) and ``snapshot_actions``
        (n, H, A) of the chosen plan after those iterations (0 = initialization).
        """
        z0 = check_plan_inputs(model, z0, horizon)
        return self._plan(model, z0[None], int(horizon))[0]

    @torch.no_grad()
    def plan_batch(self, model: LatentModel, z0s: Tensor, horizon: int) -> list[Plan]:
        """Plans from N start features z0s (N, F) at once: the N·``n_plans`` problems share one
        batched LM loop (one Jacobian, normal-equation and solver call per iteration for all; MPC
        over N vectorized environments). ``result[i]`` is start i's plan, chosen among its own
        ``n_plans`` as ``plan`` chooses. An early stop (``stop_tol``) waits for every problem. The
        random initializations are drawn for all problems at once, so ``result[i]`` need not equal
        ``plan(model, z0s[i], horizon)`` unless ``init_std=0``. Not with ``shift`` (a warm start
        follows one start's plans)."""
        if self.config.shift is not None:
            raise ValueError("plan_batch plans several starts at once; shift (the MPC warm start) "
                             "follows one start's plans: use plan() per start, or shift=None")
        if not isinstance(z0s, Tensor):
            z0s = torch.as_tensor(z0s)
        if z0s.dim() != 2 or z0s.shape[0] < 1:
            raise ValueError(f"z0s must be N >= 1 start features of shape (N, {model.feature_size}), "
                             f"got shape {tuple(z0s.shape)}")
        starts = torch.stack([check_plan_inputs(model, z0, horizon) for z0 in z0s])
        return self._plan(model, starts, int(horizon))

    def _plan(self, model: LatentModel, starts: Tensor, H: int) -> list[Plan]:
        """The LM loop of ``plan`` for checked start features ``starts`` (N, F), ``n_plans`` each."""
        cfg = self.config
        N, A = starts.shape[0], model.action_size
        B = N * cfg.n_plans
        z0 = starts.repeat_interleave(cfg.n_plans, 0)  # (B, F): problem b starts at start b // n_plans
        x = self.initial_plan(B, H, model, z0)
        warm = self.warm_start(model, H) if N == 1 else None
        if warm is not None:
            x[0] = warm.to(x.dtype)
        multipliers = Multipliers.from_config(cfg, B, H, z0.device)
        trace = IterationTrace(cfg.iterations, cfg.record_every)
        workspace: dict[str, Tensor] = {}
        r0 = model.reward(z0)  # r(z0): where r_ref starts ("best"), and the saturation guard ("zero")
        best = cfg.reward_reference == "best"
        reference = initial_reference(r0, B) if best else None  # r_ref (B,), fixed within each LM step

        def linearize(x: Tensor) -> CollocationLinearization:
            return self.linearize(model, z0, x, multipliers, workspace, reference)

        def update_reference(state: LMState) -> Tensor:
            """r_ref ← max(r_ref, best reward of the current latents); re-reference the state's residuals."""
            rewards = state.linearization.res.reward
            new = torch.maximum(reference, torch.where(state.failed.to(rewards.device),
                                                       reference, best_reward(rewards)))
            state.linearization.set_reference(new)
            return new

        def snapshot(k: int, x: Tensor) -> None:
            if trace.wants_snapshot(k):  # only then build the (B, H+1, F) copy
                a = plan_actions(x, A, cfg.action_max, cfg.constraints)
                trace.snapshot(k, a, features=torch.cat([z0[:, None], x[..., A:]], 1))

        snapshot(0, x)
        monitor = ConvergenceMonitor(cfg.stop_tol, cfg.stop_window, cfg.stop_violation * cfg.eps,
                                     cfg.action_max) if cfg.stop_tol > 0 else None
        stopped_at = cfg.iterations
        state = LMState.start(linearize, x, cfg.damping)
        if best:
            reference = update_reference(state)  # the initial latents count as seen
        elif not self._warned_saturated:
            self._warned_saturated = warn_if_saturated(r0, state.linearization.res.reward)
        for k in range(cfg.iterations):
            used = state.linearization
            state, accepted = lm_step(linearize, state, damping=cfg.damping, adaptive=cfg.adaptive_damping,
                                      max_damping=cfg.max_damping, backend=cfg.backend,
                                      threads=cfg.solver_threads, precision=cfg.precision,
                                      project=lambda x: self.project(x, A))  # lines 6-7 (Eq. 4, 5)
            if cfg.hold_memory and (k + 1) % cfg.hold_memory and state.linearization is not used:
                state.linearization.sticky = used.held  # start the next step with these held
            res = state.linearization.res
            violation, act_violation = res.dynamics_violation(), res.action_violation()  # (B, H) each
            multipliers.update(violation, act_violation, accepted)  # line 8
            if best:  # next to the multiplier update: r_ref stays fixed within each LM step
                reference = update_reference(state)
                trace.record(k, reward_reference=reference)
            trace.tick(k)
            mean_reward = res.reward.double().mean(1)
            trace.record(k, dynamics_violation=violation.mean(1), predicted_reward=mean_reward,
                         action_violation=act_violation.mean(1),
                         lam=multipliers.lam.mean(1), nu=multipliers.nu.mean(1), damping=state.damping)
            if monitor is not None and k + 1 < cfg.iterations:
                a_max = cfg.action_max
                executed = plan_actions(state.x, A, a_max, cfg.constraints).clamp(-a_max, a_max)
                if monitor.update(violation, mean_reward, executed, state.failed):
                    stopped_at = k + 1
                    trace.stop(stopped_at)
                    snapshot(stopped_at, state.x)
                    break
            snapshot(k + 1, state.x)
        plans = self._choose(model, z0, state, trace, reference)
        for plan in plans:
            plan.trace["stopped_at"] = np.asarray(stopped_at)
        return plans

    def polish(self, model: LatentModel, z0: Tensor, actions: Tensor,
               reference: Tensor | None = None) -> Tensor:
        """``polish_iterations`` steps (``polish_method``) on actions (B, H, A) through the rollout,
        minimizing ½Σ_t softplus(−(r(z_{t+1}) − r_ref))² (LatCo's objective once the dynamics hold),
        or −Σ_t r with ``polish_objective="return"``; r_ref (B,) the LM loop's final ``reference`` per
        plan (None: the paper's 0). Returns each
        plan's best actions seen (the start included), so the polish never makes a plan worse: with a
        fixed step size Adam can oscillate around an optimum that sits inside the bound."""
        cfg = self.config
        if cfg.polish_method == "lbfgsb":
            return lbfgsb_polish(model, z0, actions, reference, cfg.polish_iterations, cfg.action_max,
                                 cfg.polish_objective)
        a = actions.detach().clone().requires_grad_(True)
        best, best_loss = a.detach().clone(), None
        optimizer = torch.optim.Adam([a], lr=cfg.polish_lr)
        for k in range(cfg.polish_iterations + 1):
            with torch.enable_grad():
                per_plan = polish_loss(model, z0, a, reference, cfg.polish_objective)
            loss = per_plan.detach()
            better = loss <= best_loss if best_loss is not None else torch.ones_like(loss, dtype=torch.bool)
            best = torch.where(better[:, None, None], a.detach(), best)
            best_loss = loss if best_loss is None else torch.where(better, loss, best_loss)
            if k == cfg.polish_iterations:
                break
            optimizer.zero_grad(set_to_none=False)
            with torch.enable_grad():
                per_plan.sum().backward()
            optimizer.step()
            a.data.clamp_(-cfg.action_max, cfg.action_max)
        return best

    def _choose(self, model: LatentModel, z0: Tensor, state: LMState, trace: IterationTrace,
                reference: Tensor | None = None) -> list[Plan]:
        """Per start, the plan whose clipped actions earn the most model reward through μ (authors'
        code); z0 (B, F) the start of each problem, ``n_plans`` consecutive problems per start."""
        cfg, A, n = self.config, model.action_size, self.config.n_plans
        x, failed = state.x, state.failed.to(z0.device)
        B = x.shape[0]
        raw = plan_actions(x, A, cfg.action_max, cfg.constraints)
        actions = raw.clamp(-cfg.action_max, cfg.action_max)
        if cfg.polish_iterations:
            actions = self.polish(model, z0, actions, reference)
        rolled, rewards = rollout(model, z0, actions)
        plan_rewards = rewards.double().sum(-1)
        plan_rewards = torch.where(failed | ~torch.isfinite(plan_rewards),
                                   torch.full_like(plan_rewards, -math.inf), plan_rewards)
        plans = []
        for i in range(B // n):
            rows = slice(i * n, (i + 1) * n)
            where = "" if B == n else f" from start {i}"
            if bool(failed[rows].all()):
                raise PlanningError(
                    f"LatCo failed on all {n} plan(s){where}: the model returned NaN/Inf (or the LM "
                    f"system broke down) and raising the damping to {cfg.max_damping:g} did not recover a "
                    "finite step. Check the model and z0 for non-finite outputs, or lower init_std.")
            if bool(failed[rows].any()):
                warnings.warn(f"LatCo: {int(failed[rows].sum())} of {n} plans{where} hit non-finite values "
                              "and were dropped", RuntimeWarning, stacklevel=4)
            ours = plan_rewards[rows]
            best = i * n + (int(torch.argmax(ours)) if bool(torch.isfinite(ours).any())
                            else int(torch.nonzero(~failed[rows])[0]))
            if B == n:
                self._previous = x[best].clone()
            planned = torch.cat([z0[best][None], x[best, :, A:]], 0)
            features = rolled[best] if cfg.polish_iterations else planned
            out = trace.as_dict(plan=best)
            for name in CURVES:
                out.setdefault(name, np.zeros(0))  # iterations=0
            out["plan_rewards"] = ours.cpu().numpy()
            out["rejected_steps"] = state.rejected[best].numpy().copy()
            out["raw_action_max"] = raw[best].abs().max().double().cpu().numpy()
            out["feasibility_gap"] = (planned - rolled[best]).abs().max().double().cpu().numpy()
            plans.append(Plan(actions=actions[best], features=features, trace=out))
        return plans


@dataclass(frozen=True)
class LatCoFastConfig(LatCoConfig):
    """LatCo at about a third of the paper's time (beyond the paper): two plans of 24 LM iterations
    in one batch, then 30 L-BFGS-B polish steps on each plan's actions (``polish_iterations``) that
    maximize the model return Σ r, the objective the paper states (``polish_objective="return"``).

    On the trained quick models it returned more model reward than the paper's 1 × 200 in about
    0.3× its time per 30-step plan of the paper-sized RSSM on 2 CPU cores, and as much as
    paper-setting CEM's 10⁶ samples in under 1 % of CEM's time (``benchmarks/planning_time.py``,
    ``benchmarks/planner_quality.py``; docs/performance.md, docs/method.md). Any option can still be
    overridden: ``n_plans=4, polish_iterations=100`` finds CEM's basin on more starts."""

    n_plans: int = 2
    iterations: int = 24
    polish_iterations: int = 30
    polish_objective: PolishObjective = "return"


register_planner("latco-fast", LatCoFastConfig)(LatCoPlanner)
