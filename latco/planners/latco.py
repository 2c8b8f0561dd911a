"""LatCo: latent collocation with Levenberg–Marquardt and per-time-step Lagrange multipliers.

Paper §4 (Algorithm 1, lines 5-8), §5 and Appendix B; SPEC "LatCo planner". Decision variables
are the latent features z_2..z_{H+1} and the actions a_1..a_H; z_1 = z0 is fixed. Per time step t
(block x_t = [a_t, z_{t+1}], d = A + F) the least-squares residuals are

    dynamics  ρᵈ_t = √λ_t · (z_{t+1} − μ(z_t, a_t))        (F residuals; touches x_{t-1} and x_t)
    action    ρᵃ_t = √ν_t · max(0, |a_t| − a_max)           (A residuals; x_t only)
    reward    ρʳ_t = softplus(−r(z_{t+1}))                    (1 residual;  x_t only)

so JᵀJ is block tridiagonal and each Levenberg–Marquardt step (Eq. 5) is one block Cholesky solve
(``latco.solver``). After every step the multipliers follow the §5 rule
λ_t ← λ_t + 0.1 · log(‖z_{t+1} − μ(z_t, a_t)‖²/ε + η) · λ_t (ν_t likewise with the action violation).

Details the paper leaves out, taken from the authors' code (github zchuning/latco, ``latco.py``):
the plan is initialized from N(0, 1) (latents and actions); all residuals are divided by
(mean_t √λ_t + mean_t √ν_t + 1) per plan so the damping stays commensurate with the growing
multipliers; ``n_plans`` plans are optimized as one batch and the one whose actions (clipped to
the bound) earn the highest model reward when rolled out through μ is returned. Unlike the authors'
code, NaN never silently becomes a zero action: a non-finite step is rejected and damped, and a
plan that cannot recover is dropped (or, if every plan fails, ``PlanningError`` is raised).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from latco.planners.base import LatentModel, Plan, PlanningError, check_plan_inputs, register_planner
from latco.solver import Backend, NormalEquations, levenberg_marquardt


@dataclass(frozen=True)
class LatCoConfig:
    """Hyperparameters of the LatCo planner; defaults are the paper's (App. B) and SPEC's."""

    iterations: int = 200
    """Levenberg–Marquardt steps per plan (App. B: 200)."""
    damping: float = 1e-3
    """LM damping added to JᵀJ in Eq. 5 (App. B: 1e-3); raised ×10 after a non-finite step."""
    lam_init: float = 1.0
    """λ₀, initial dynamics multiplier of every time step (App. B: 1)."""
    nu_init: float = 1.0
    """ν₀, initial action-bound multiplier of every time step (App. B: 1)."""
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
    """a_max, the action bound |a| <= a_max (the environments' action box is [-1, 1])."""
    n_plans: int = 1
    """Independent plans optimized as one batch; the best by model reward is returned."""
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
    solver_threads: int = 2
    """Threads of the CPU block Cholesky: 2 factor the chain from both ends at once (same result)."""
    max_damping: float = 1e8
    """A plan whose damping must exceed this to get a finite step is given up."""
    multiplier_min: float = 0.0
    """Floor of λ_t and ν_t after each update (0: the pure §5 rule)."""

    def __post_init__(self) -> None:
        checks = {
            "iterations": self.iterations >= 0, "damping": self.damping > 0,
            "lam_init": self.lam_init > 0, "nu_init": self.nu_init > 0, "eps": self.eps > 0,
            "eta": self.eta > 0, "action_max": self.action_max > 0, "n_plans": self.n_plans >= 1,
            "init_std": self.init_std >= 0, "record_every": self.record_every >= 0,
            "max_damping": self.max_damping >= self.damping, "solver_threads": self.solver_threads >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            listed = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"invalid LatCo option(s): {listed}")
        if self.jacobian not in ("auto", "analytic", "autograd"):
            raise ValueError(f"unknown jacobian {self.jacobian!r}; choose one of: auto, analytic, autograd")


# ------------------------------------------------------------------------- model derivatives
def dynamics_jacobian(model: LatentModel, z: Tensor, a: Tensor, mode: str = "auto") -> tuple[Tensor, Tensor]:
    """(∂μ/∂z (..., F, F), ∂μ/∂a (..., F, A)) at (z, a): analytic if the model offers it, else torch.func."""
    if mode != "autograd" and hasattr(model, "predict_mean_jacobian"):
        return model.predict_mean_jacobian(z, a)
    if mode == "analytic":
        raise ValueError("jacobian='analytic' but the model has no predict_mean_jacobian(z, a)")
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


# -------------------------------------------------------------------------- the linearization
@dataclass
class _Duals:
    """Per-plan, per-time-step multipliers (float64) and the residual weights derived from them."""

    lam: Tensor  # (B, H)
    nu: Tensor  # (B, H)
    normalize: bool

    def weights(self) -> tuple[Tensor, Tensor, Tensor]:
        """(w_dyn (B, H), w_act (B, H), w_rew (B,)): √λ, √ν, 1, each times the authors' normalizer."""
        sl, sn = self.lam.sqrt(), self.nu.sqrt()
        c = 1.0 / (sl.mean(1) + sn.mean(1) + 1.0) if self.normalize else torch.ones_like(sl[:, 0])
        return sl * c[:, None], sn * c[:, None], c


@dataclass
class CollocationLinearization:
    """Unweighted residuals and Jacobians of the LatCo problem at one plan (B plans × H steps).

    The weights (from the current multipliers) are applied when the normal equations are built,
    so the multipliers may change between iterations without re-evaluating the model.
    """

    dyn: Tensor  # (B, H, F)    z_{t+1} − μ(z_t, a_t)
    jz: Tensor  # (B, H, F, F)  ∂μ/∂z at (z_t, a_t)   (jz[:, 0] unused: z_1 is fixed)
    ja: Tensor  # (B, H, F, A)  ∂μ/∂a at (z_t, a_t)
    act: Tensor  # (B, H, A)    max(0, |a_t| − a_max)
    act_grad: Tensor  # (B, H, A)  ∂act/∂a_t: sign(a_t) where the bound is violated, else 0
    rew: Tensor  # (B, H)       softplus(−r(z_{t+1}))
    rew_grad: Tensor  # (B, H, F) ∂ softplus(−r(z_{t+1})) / ∂z_{t+1}
    reward: Tensor  # (B, H)    r(z_{t+1}) (for the trace)
    duals: _Duals
    workspace: dict[str, Tensor] = field(default_factory=dict)  # buffers shared by one plan's calls

    def _buffer(self, name: str, shape: tuple[int, ...]) -> Tensor:
        """A float64 buffer reused across iterations (fresh 13 MB arrays cost page faults each time)."""
        buf = self.workspace.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = self.workspace[name] = torch.empty(shape, dtype=torch.float64, device=self.dyn.device)
        return buf

    def normal_equations(self) -> NormalEquations:
        """JᵀJ blocks and Jᵀρ (float64), exploiting the residuals' structure.

        With w = w_dyn, per block x_t = [a_t, z_{t+1}] and Jacobians A_t = ∂μ/∂z, B_t = ∂μ/∂a,
        N_t = diag(∂act/∂a), g_t = ∂ρʳ/∂z:
          diag_t = [[w_t² B_tᵀB_t + w_act² N_t²,  −w_t² B_tᵀ],
                    [−w_t² B_t,  w_t² I + w_rew² g_t g_tᵀ + w_{t+1}² A_{t+1}ᵀA_{t+1}]]
          lower_t = [[0,  w_{t+1}² B_{t+1}ᵀ A_{t+1}], [0, −w_{t+1}² A_{t+1}]]
          grad_t  = [−w_t B_tᵀ ρᵈ_t + w_act N_t ρᵃ_t,  w_t ρᵈ_t + w_rew g_t ρʳ_t − w_{t+1} A_{t+1}ᵀ ρᵈ_{t+1}]
        The one O(F³) product per block, w²AᵀA + w_rew² g gᵀ, is passed unformed as the Gram factor
        G_t = [w_{t+1} A_{t+1}; w_rew g_tᵀ] ((F+1) × F): the block Cholesky forms G_tᵀG_t in float64
        (``dsyrk``) on two cores. Identity, diagonal and rank-one blocks are written directly.
        """
        wd, wa, wr = self.duals.weights()
        B, H, Fz = self.dyn.shape
        A = self.act.shape[-1]
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
        rho_r = wr[:, None] * self.rew  # weighted reward residual (B, H)
        grad = torch.empty(B, H, d, dtype=torch.float64, device=self.dyn.device)
        grad[..., :A] = -(wB.mT @ rho_d[..., None])[..., 0]
        grad[..., :A] += (wa[..., None] * self.act_grad) * (wa[..., None] * self.act)
        grad[..., A:] = wd[..., None] * rho_d + wr[:, None, None] * self.rew_grad * rho_r[..., None]
        grad[:, :-1, A:] -= torch.einsum("bhij,bhi->bhj", wA, rho_d[:, 1:])
        return NormalEquations(diag, lower, grad, gram)

    def residuals(self) -> Tensor:
        """(B, H, F + A + 1) the weighted residuals ρ_t = [ρᵈ_t, ρᵃ_t, ρʳ_t] (float64)."""
        wd, wa, wr = self.duals.weights()
        return torch.cat([wd[..., None] * self.dyn.to(torch.float64),
                          wa[..., None] * self.act.to(torch.float64),
                          wr[:, None, None] * self.rew.to(torch.float64)[..., None]], -1)

    def cost(self) -> Tensor:
        return 0.5 * self.residuals().pow(2).sum((1, 2))

    def finite(self) -> Tensor:
        # one summing pass per tensor: NaN and Inf propagate through sums (an overflow of the sum
        # itself would need entries ~1e33 and only makes the step be rejected)
        parts = (self.dyn, self.jz, self.ja, self.rew, self.rew_grad, self.reward)
        return torch.stack([p.flatten(1).sum(1).isfinite() for p in parts], 1).all(1)

    def select(self, mask: Tensor, other: CollocationLinearization) -> CollocationLinearization:
        if bool(mask.all()):
            return other
        if not bool(mask.any()):
            return self
        def pick(a: Tensor, b: Tensor) -> Tensor:
            return torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), b, a)

        names = ("dyn", "jz", "ja", "act", "act_grad", "rew", "rew_grad", "reward")
        return CollocationLinearization(**{n: pick(getattr(self, n), getattr(other, n)) for n in names},
                                        duals=self.duals, workspace=self.workspace)


# ---------------------------------------------------------------------------------- the planner
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

    def linearize(self, model: LatentModel, z0: Tensor, x: Tensor, duals: _Duals,
                  workspace: dict[str, Tensor] | None = None) -> CollocationLinearization:
        """Evaluate residuals and Jacobians at the plan x (B, H, A + F) = [a_t, z_{t+1}] per step.

        ``workspace``: buffers for the normal equations, shared by the linearizations of one plan.
        """
        cfg, A = self.config, model.action_size
        a, z_next = x[..., :A], x[..., A:]
        z_prev = torch.cat([z0.expand(x.shape[0], 1, -1), z_next[:, :-1]], 1)
        mu = model.predict_mean(z_prev, a)
        jz, ja = dynamics_jacobian(model, z_prev, a, cfg.jacobian)
        reward, reward_grad = reward_and_grad(model, z_next)
        over = a.abs() - cfg.action_max
        return CollocationLinearization(
            dyn=z_next - mu, jz=jz, ja=ja,
            act=over.clamp(min=0), act_grad=torch.where(over > 0, a.sign(), torch.zeros_like(a)),
            rew=F.softplus(-reward), rew_grad=-torch.sigmoid(-reward)[..., None] * reward_grad,
            reward=reward, duals=duals, workspace={} if workspace is None else workspace,
        )

    def dual_update(self, duals: _Duals, lin: CollocationLinearization, accepted: Tensor) -> None:
        """§5: λ_t += lr·log(‖z_{t+1} − μ_t‖²/ε + η)·λ_t and ν_t likewise, for plans whose step was taken."""
        cfg = self.config
        viol_dyn = lin.dyn.to(torch.float64).pow(2).sum(-1)
        viol_act = lin.act.to(torch.float64).pow(2).sum(-1)
        step = accepted.to(duals.lam.device)[:, None]
        lam = duals.lam * (1 + cfg.dual_lr * torch.log(viol_dyn / cfg.eps + cfg.eta))
        nu = duals.nu * (1 + cfg.dual_lr * torch.log(viol_act / cfg.eps + cfg.eta))
        duals.lam = torch.where(step, lam, duals.lam).clamp(min=cfg.multiplier_min)
        duals.nu = torch.where(step, nu, duals.nu).clamp(min=cfg.multiplier_min)

    @torch.no_grad()
    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan:
        """Algorithm 1, lines 5-8: a plan of ``horizon`` actions from the feature z0 (F,).

        ``trace`` holds, per iteration, means over time steps of the plan finally chosen:
        ``dynamics_violation`` ‖z_{t+1} − μ(z_t, a_t)‖², ``predicted_reward`` r(z_{t+1}) of the planned
        latents, ``action_violation`` ‖max(0, |a_t| − a_max)‖², ``lam`` λ_t, ``nu`` ν_t, plus ``damping``
        and ``wall_time`` (seconds since planning started, at the end of each iteration).
        ``plan_rewards`` (n_plans,) is each plan's model reward used to choose; with ``record_every``
        > 0, ``snapshot_iteration`` (n,), ``snapshot_features`` (n, H+1, F) and ``snapshot_actions``
        (n, H, A) hold the chosen plan after those iterations (0 = initialization).
        Returned actions are clipped to ±a_max (what would be executed); the raw violation is traced.
        """
        cfg = self.config
        z0 = check_plan_inputs(model, z0, horizon)
        horizon = int(horizon)
        B, H, Fz, A = cfg.n_plans, horizon, model.feature_size, model.action_size
        device, dtype = z0.device, z0.dtype
        # initialization as in the authors' code: every latent and action ~ N(0, 1)
        x = cfg.init_std * torch.randn(B, H, A + Fz, generator=self.generator, dtype=torch.float64)
        x = x.to(device=device, dtype=dtype)
        f64 = dict(dtype=torch.float64, device=device)
        duals = _Duals(torch.full((B, H), cfg.lam_init, **f64), torch.full((B, H), cfg.nu_init, **f64),
                       cfg.normalize_residuals)
        keys = ("dynamics_violation", "predicted_reward", "action_violation", "lam", "nu", "damping")
        curves = {k: np.zeros((cfg.iterations, B)) for k in keys}
        snapshots: list[tuple[int, Tensor]] = [(0, x.clone())] if cfg.record_every else []
        wall_time, start = np.zeros(cfg.iterations), time.perf_counter()

        def after_step(k: int, x: Tensor, lin: CollocationLinearization, accepted: Tensor,
                       damping: Tensor) -> None:
            self.dual_update(duals, lin, accepted)  # Algorithm 1, line 8 (§5 update rule)
            wall_time[k] = time.perf_counter() - start
            curves["damping"][k] = damping.numpy()
            curves["dynamics_violation"][k] = lin.dyn.double().pow(2).sum(-1).mean(1).cpu().numpy()
            curves["predicted_reward"][k] = lin.reward.double().mean(1).cpu().numpy()
            curves["action_violation"][k] = lin.act.double().pow(2).sum(-1).mean(1).cpu().numpy()
            curves["lam"][k] = duals.lam.mean(1).cpu().numpy()
            curves["nu"][k] = duals.nu.mean(1).cpu().numpy()
            if cfg.record_every and ((k + 1) % cfg.record_every == 0 or k + 1 == cfg.iterations):
                snapshots.append((k + 1, x.clone()))

        workspace: dict[str, Tensor] = {}

        def linearize(x: Tensor) -> CollocationLinearization:
            return self.linearize(model, z0, x, duals, workspace)

        result = levenberg_marquardt(linearize, x, cfg.iterations, damping=cfg.damping,
                                     max_damping=cfg.max_damping, backend=cfg.backend,
                                     threads=cfg.solver_threads, callback=after_step)
        x, failed = result.x, result.failed
        if failed.all():
            raise PlanningError(
                f"LatCo failed on all {B} plan(s): the model returned NaN/Inf (or the LM system broke "
                f"down) and raising the damping to {cfg.max_damping:g} did not recover a finite step. "
                "Check the model and z0 for non-finite outputs, or lower init_std.")
        # choose the plan whose clipped actions earn the most model reward through μ (authors' code)
        a = x[..., :A].clamp(-cfg.action_max, cfg.action_max)
        z, rewards = z0.expand(B, -1), []
        for t in range(H):
            z = model.predict_mean(z, a[:, t])
            rewards.append(model.reward(z))
        plan_rewards = torch.stack(rewards, 1).double().sum(1)
        plan_rewards = torch.where(failed.to(device) | ~torch.isfinite(plan_rewards),
                                   torch.full_like(plan_rewards, -math.inf), plan_rewards)
        if failed.any():
            warnings.warn(f"LatCo: {int(failed.sum())} of {B} plans hit non-finite values and were dropped",
                          RuntimeWarning, stacklevel=2)
        best = int(torch.argmax(plan_rewards)) if torch.isfinite(plan_rewards).any() else \
            int(torch.nonzero(~failed)[0])
        trace = {k: v[:, best].copy() for k, v in curves.items()}
        trace["wall_time"] = wall_time
        trace["plan_rewards"] = plan_rewards.cpu().numpy()
        trace["rejected_steps"] = np.array(int(result.rejected[best]))
        if snapshots:
            trace["snapshot_iteration"] = np.array([k for k, _ in snapshots])
            trace["snapshot_features"] = np.stack(
                [torch.cat([z0[None], s[best, :, A:]]).cpu().numpy() for _, s in snapshots])
            trace["snapshot_actions"] = np.stack([s[best, :, :A].cpu().numpy() for _, s in snapshots])
        features = torch.cat([z0[None], x[best, :, A:]], 0)
        return Plan(actions=a[best], features=features, trace=trace)
