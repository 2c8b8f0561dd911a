"""Block-tridiagonal linear algebra and Levenberg–Marquardt for chains of pairwise residuals.

Paper §5 ("Levenberg–Marquardt optimization"), Eq. 5: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ.

A *chain* has T variable blocks x_0 … x_{T-1} (d each) and T residual groups ρ_0 … ρ_{T-1};
ρ_t depends on x_{t-1} and x_t only (ρ_0 on x_0 only). J is then block lower-bidiagonal and
JᵀJ block-tridiagonal, so the step costs O(T·d³) by block Cholesky instead of O((T·d)³)
(Mordatch et al. 2012; the recursion below is Golub & Van Loan, *Matrix Computations* §4.5.
Nothing here knows about planning or world models: ``latco.planners.latco`` builds the residuals.

Conventions (batched over any leading dims ``...``):
- ``diag``  (..., T, d, d)   the symmetric positive definite blocks A_tt,
- ``lower`` (..., T-1, d, d) the blocks A_{t+1,t} below the diagonal (above: their transposes),
- ``jac_curr`` (..., T, m, d) = ∂ρ_t/∂x_t,  ``jac_prev`` (..., T, m, d) = ∂ρ_t/∂x_{t-1}
  (``jac_prev[..., 0, :, :]`` is ignored).

The factorization always runs in float64. On CPU it calls LAPACK/BLAS through scipy (one
``dpotrf``, ``dtrsm`` and ``dsyrk`` per block: 2-3× faster than the same recursion through
``torch.linalg`` on small blocks, NOTES "Compute on this CPU"); elsewhere batched ``torch.linalg``.
No dense (T·d)² matrix is formed except by ``block_tridiagonal_to_dense`` (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, Self

import numpy as np
import torch
from scipy.linalg import blas, lapack
from torch import Tensor

Backend = Literal["auto", "scipy", "torch"]


# ---------------------------------------------------------------------------------- block Cholesky
@dataclass
class BlockCholesky:
    """Factor of a block-tridiagonal SPD matrix: M = 𝓛𝓛ᵀ with 𝓛 block lower-bidiagonal.

    𝓛 has L_t (lower triangular) on its diagonal and C_t at (t+1, t). ``failed`` (batch,) marks
    systems whose factorization broke down (not positive definite or not finite); their
    solutions come out NaN. Backend "scipy": numpy arrays ``Lt``/``Ct`` hold L_tᵀ and C_t as
    C-ordered blocks (so ``Lt[b, t].T`` is L_t in the column-major order LAPACK wants).
    """

    backend: str
    L: Tensor | np.ndarray  # torch: (B, T, d, d) L_t;   scipy: (B, T, d, d) L_tᵀ
    C: Tensor | np.ndarray  # torch: (B, T-1, d, d) C_tᵀ; scipy: (B, T-1, d, d) C_t
    failed: np.ndarray  # (B,) bool
    batch_shape: tuple[int, ...]


def _check_blocks(diag: Tensor, lower: Tensor) -> tuple[int, int]:
    if diag.dim() < 3 or diag.shape[-1] != diag.shape[-2]:
        raise ValueError(f"diag must have shape (..., T, d, d), got {tuple(diag.shape)}")
    T, d = diag.shape[-3], diag.shape[-1]
    if T < 1:
        raise ValueError("diag must hold at least one block (T >= 1)")
    expected = (*diag.shape[:-3], T - 1, d, d)
    if tuple(lower.shape) != expected:
        raise ValueError(f"lower must have shape {expected} for diag {tuple(diag.shape)}, got "
                         f"{tuple(lower.shape)}")
    return T, d


def _resolve_backend(backend: Backend, device: torch.device) -> str:
    if backend == "auto":
        return "scipy" if device.type == "cpu" else "torch"
    if backend not in ("scipy", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose one of: auto, scipy, torch")
    return backend


def block_cholesky(diag: Tensor, lower: Tensor, backend: Backend = "auto",
                   overwrite: bool = False) -> BlockCholesky:
    """Block Cholesky factorization of a block-tridiagonal SPD matrix, in float64.

    Recursion (Golub & Van Loan §4.5.4):  S_0 = A_00,  L_t L_tᵀ = S_t (Cholesky),
    C_t = A_{t+1,t} L_t⁻ᵀ,  S_{t+1} = A_{t+1,t+1} − C_t C_tᵀ.   Cost O(T·d³).
    ``overwrite=True`` lets the scipy backend factor float64 CPU inputs in place (saves a copy).
    """
    T, d = _check_blocks(diag, lower)
    batch_shape = tuple(diag.shape[:-3])
    if _resolve_backend(backend, diag.device) == "torch":
        return _block_cholesky_torch(diag, lower, batch_shape)
    return _block_cholesky_scipy(diag, lower, batch_shape, overwrite)


def _as_f64_numpy(x: Tensor, shape: tuple[int, ...], copy: bool) -> np.ndarray:
    x = x.detach()
    if x.device.type != "cpu" or x.dtype != torch.float64 or not x.is_contiguous():
        copy = False  # the conversion below already makes a fresh array
        x = x.to("cpu", torch.float64).contiguous()
    out = x.numpy().reshape(shape)
    return out.copy() if copy else out


def _block_cholesky_scipy(diag: Tensor, lower: Tensor, batch_shape: tuple[int, ...],
                          overwrite: bool) -> BlockCholesky:
    T, d = diag.shape[-3], diag.shape[-1]
    B = int(np.prod(batch_shape, dtype=np.int64))
    Lt = _as_f64_numpy(diag, (B, T, d, d), copy=not overwrite)
    Ct = _as_f64_numpy(lower, (B, T - 1, d, d), copy=not overwrite)
    failed = ~(np.isfinite(Lt).all(axis=(1, 2, 3)) & np.isfinite(Ct).all(axis=(1, 2, 3)))
    potrf, trsm, syrk = lapack.dpotrf, blas.dtrsm, blas.dsyrk
    for b in range(B):
        if failed[b]:
            continue
        # Column-major views: Lt[b, t].T is S_t (symmetric), Ct[b, t].T is A_{t+1,t}ᵀ.
        for t in range(T):
            S = Lt[b, t].T
            _, info = potrf(S, lower=1, clean=0, overwrite_a=1)  # lower(S) := L_t
            if info != 0:
                failed[b] = True
                break
            if t == T - 1:
                break
            X = Ct[b, t].T
            trsm(1.0, S, X, side=0, lower=1, trans_a=0, overwrite_b=1)  # X := L_t⁻¹ A_{t+1,t}ᵀ = C_tᵀ
            syrk(-1.0, X, beta=1.0, c=Lt[b, t + 1].T, trans=1, lower=1, overwrite_c=1)  # S_{t+1}
    Lt[failed] = np.nan
    Ct[failed] = np.nan
    return BlockCholesky("scipy", Lt, Ct, failed, batch_shape)


def _block_cholesky_torch(diag: Tensor, lower: Tensor, batch_shape: tuple[int, ...]) -> BlockCholesky:
    T, d = diag.shape[-3], diag.shape[-1]
    B = int(np.prod(batch_shape, dtype=np.int64))
    D = diag.detach().to(torch.float64).reshape(B, T, d, d)
    Bl = lower.detach().to(torch.float64).reshape(B, T - 1, d, d)
    failed = ~(torch.isfinite(D).flatten(1).all(1) & torch.isfinite(Bl).flatten(1).all(1))
    D = torch.where(failed[:, None, None, None], torch.eye(d, dtype=D.dtype, device=D.device), D)
    Bl = torch.where(failed[:, None, None, None], torch.zeros_like(Bl), Bl)
    Ls, Cs = [], []
    S = D[:, 0]
    for t in range(T):
        L, info = torch.linalg.cholesky_ex(S)
        bad = info != 0
        if bad.any():
            failed = failed | bad
            L = torch.where(bad[:, None, None], torch.eye(d, dtype=L.dtype, device=L.device), L)
        Ls.append(L)
        if t < T - 1:
            Xt = torch.linalg.solve_triangular(L, Bl[:, t].mT, upper=False)  # C_tᵀ = L_t⁻¹ A_{t+1,t}ᵀ
            Cs.append(Xt)
            S = D[:, t + 1] - Xt.mT @ Xt
    L = torch.stack(Ls, 1)
    C = torch.stack(Cs, 1) if Cs else Bl.new_zeros(Bl.shape)
    failed_np = failed.cpu().numpy()
    return BlockCholesky("torch", L, C, failed_np, batch_shape)


def block_cholesky_solve(factor: BlockCholesky, rhs: Tensor) -> Tensor:
    """Solve M x = rhs given M = 𝓛𝓛ᵀ from ``block_cholesky``; rhs (..., T, d) -> x (..., T, d).

    Forward:  y_0 = L_0⁻¹ f_0,   y_t = L_t⁻¹ (f_t − C_{t-1} y_{t-1});
    backward: x_{T-1} = L_{T-1}⁻ᵀ y_{T-1},   x_t = L_t⁻ᵀ (y_t − C_tᵀ x_{t+1}).
    Computed in float64, returned in rhs's dtype and device; NaN where the factorization failed.
    """
    if factor.backend == "torch":
        return _solve_torch(factor, rhs)
    return _solve_scipy(factor, rhs)


def _solve_scipy(factor: BlockCholesky, rhs: Tensor) -> Tensor:
    Lt, Ct = factor.L, factor.C
    B, T, d = Lt.shape[0], Lt.shape[1], Lt.shape[-1]
    y = _as_f64_numpy(rhs, (B, T, d), copy=True)
    gemv, trsv = blas.dgemv, blas.dtrsv
    for b in range(B):
        if factor.failed[b]:
            y[b] = np.nan
            continue
        yb, Lb, Cb = y[b], Lt[b], Ct[b]
        for t in range(T):
            if t > 0:  # y_t -= C_{t-1} y_{t-1}   (Cb[t-1].T is C_{t-1}ᵀ column-major)
                gemv(-1.0, Cb[t - 1].T, yb[t - 1], beta=1.0, y=yb[t], trans=1, overwrite_y=1)
            trsv(Lb[t].T, yb[t], lower=1, trans=0, overwrite_x=1)
        for t in range(T - 1, -1, -1):
            if t < T - 1:  # y_t -= C_tᵀ x_{t+1}
                gemv(-1.0, Cb[t].T, yb[t + 1], beta=1.0, y=yb[t], trans=0, overwrite_y=1)
            trsv(Lb[t].T, yb[t], lower=1, trans=1, overwrite_x=1)
    x = torch.from_numpy(y).reshape(*factor.batch_shape, T, d)
    return x.to(device=rhs.device, dtype=rhs.dtype)


def _solve_torch(factor: BlockCholesky, rhs: Tensor) -> Tensor:
    L, Ct = factor.L, factor.C
    B, T, d = L.shape[0], L.shape[1], L.shape[-1]
    f = rhs.detach().to(device=L.device, dtype=torch.float64).reshape(B, T, d, 1)
    ys = []
    for t in range(T):
        g = f[:, t] if t == 0 else f[:, t] - Ct[:, t - 1].mT @ ys[-1]
        ys.append(torch.linalg.solve_triangular(L[:, t], g, upper=False))
    xs = [None] * T
    for t in range(T - 1, -1, -1):
        g = ys[t] if t == T - 1 else ys[t] - Ct[:, t] @ xs[t + 1]
        xs[t] = torch.linalg.solve_triangular(L[:, t].mT, g, upper=True)
    x = torch.stack(xs, 1)[..., 0]
    failed = torch.as_tensor(factor.failed, device=x.device)
    x = torch.where(failed[:, None, None], torch.full_like(x, float("nan")), x)
    return x.reshape(*factor.batch_shape, T, d).to(rhs.dtype)


def solve_block_tridiagonal(diag: Tensor, lower: Tensor, rhs: Tensor, backend: Backend = "auto") -> Tensor:
    """Solve the block-tridiagonal SPD system M x = rhs by block Cholesky (float64 inside).

    diag (..., T, d, d) SPD blocks, lower (..., T-1, d, d) blocks at (t+1, t), rhs (..., T, d);
    returns x shaped and typed like rhs. Raises ``np.linalg.LinAlgError`` if M is not positive
    definite or not finite.
    """
    T, d = _check_blocks(diag, lower)
    if tuple(rhs.shape) != (*diag.shape[:-3], T, d):
        raise ValueError(f"rhs must have shape {(*diag.shape[:-3], T, d)}, got {tuple(rhs.shape)}")
    factor = block_cholesky(diag, lower, backend)
    if factor.failed.any():
        raise np.linalg.LinAlgError(
            f"block Cholesky failed for {int(factor.failed.sum())} of {factor.failed.size} systems: "
            "the matrix is not positive definite or has non-finite entries")
    return block_cholesky_solve(factor, rhs)


def block_tridiagonal_to_dense(diag: Tensor, lower: Tensor) -> Tensor:
    """The dense (..., T·d, T·d) matrix of the blocks — reference for tests and benchmarks only."""
    T, d = _check_blocks(diag, lower)
    M = diag.new_zeros(*diag.shape[:-3], T * d, T * d)
    for t in range(T):
        M[..., t * d:(t + 1) * d, t * d:(t + 1) * d] = diag[..., t, :, :]
        if t < T - 1:
            M[..., (t + 1) * d:(t + 2) * d, t * d:(t + 1) * d] = lower[..., t, :, :]
            M[..., t * d:(t + 1) * d, (t + 1) * d:(t + 2) * d] = lower[..., t, :, :].mT
    return M


# ---------------------------------------------------------------------- Gauss–Newton normal equations
def chain_normal_equations(
    residual: Tensor, jac_curr: Tensor, jac_prev: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The blocks of JᵀJ and Jᵀρ for a chain of pairwise residuals (the pieces of Eq. 5).

    residual (..., T, m), jac_curr (..., T, m, d) = ∂ρ_t/∂x_t, jac_prev (..., T, m, d) = ∂ρ_t/∂x_{t-1}.
    (JᵀJ)_tt = J_tᵗᵀ J_tᵗ + J_{t+1}ᵖᵀ J_{t+1}ᵖ,  (JᵀJ)_{t+1,t} = J_{t+1}ᶜᵀ J_{t+1}ᵖ,
    (Jᵀρ)_t = J_tᶜᵀ ρ_t + J_{t+1}ᵖᵀ ρ_{t+1}.   Generic dense-block version: planners with
    structured Jacobians (identity, diagonal or rank-one blocks) assemble the same blocks faster.
    """
    diag = jac_curr.mT @ jac_curr
    diag[..., :-1, :, :] += jac_prev[..., 1:, :, :].mT @ jac_prev[..., 1:, :, :]
    lower = jac_curr[..., 1:, :, :].mT @ jac_prev[..., 1:, :, :]
    grad = (jac_curr.mT @ residual[..., None])[..., 0]
    grad[..., :-1, :] += (jac_prev[..., 1:, :, :].mT @ residual[..., 1:, :, None])[..., 0]
    return diag, lower, grad


def add_damping(diag: Tensor, damping: Tensor | float) -> Tensor:
    """diag + damping·I in place (the LM term of Eq. 5); damping is a float or (...,) per system."""
    damping = torch.as_tensor(damping, dtype=diag.dtype, device=diag.device)
    diag.diagonal(dim1=-2, dim2=-1).add_(damping.reshape(*damping.shape, *([1] * 2)))
    return diag


def lm_step(residual: Tensor, jac_curr: Tensor, jac_prev: Tensor, damping: float,
            backend: Backend = "auto") -> Tensor:
    """One Levenberg–Marquardt step of Eq. 5 for a chain: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ; x_new = x − Δ."""
    diag, lower, grad = chain_normal_equations(residual, jac_curr, jac_prev)
    return solve_block_tridiagonal(add_damping(diag, damping), lower, grad, backend)


# ------------------------------------------------------------------------------- the LM loop
class ChainLinearization(Protocol):
    """Residuals and Jacobian of a chain at one point, for a batch of B independent problems."""

    def normal_equations(self) -> tuple[Tensor, Tensor, Tensor]:
        """Fresh tensors (B, T, d, d), (B, T-1, d, d), (B, T, d): JᵀJ blocks and Jᵀρ (no damping)."""
        ...

    def cost(self) -> Tensor:
        """(B,) ½‖ρ‖²."""
        ...

    def finite(self) -> Tensor:
        """(B,) bool: residuals and Jacobians are all finite."""
        ...

    def select(self, mask: Tensor, other: Self) -> Self:
        """Batch-wise merge: ``other`` where mask (B,) is True, self elsewhere."""
        ...


@dataclass
class DenseChainLinearization:
    """A ``ChainLinearization`` from dense Jacobian blocks: residual (B, T, m), jac_* (B, T, m, d)."""

    residual: Tensor
    jac_curr: Tensor
    jac_prev: Tensor

    def normal_equations(self) -> tuple[Tensor, Tensor, Tensor]:
        return chain_normal_equations(self.residual, self.jac_curr, self.jac_prev)

    def cost(self) -> Tensor:
        return 0.5 * self.residual.pow(2).flatten(1).sum(1)

    def finite(self) -> Tensor:
        parts = (self.residual, self.jac_curr, self.jac_prev[:, 1:])
        return torch.stack([torch.isfinite(p).flatten(1).all(1) for p in parts], 1).all(1)

    def select(self, mask: Tensor, other: DenseChainLinearization) -> DenseChainLinearization:
        def pick(a: Tensor, b: Tensor) -> Tensor:
            return torch.where(mask.reshape(-1, *([1] * (a.dim() - 1))), b, a)

        return DenseChainLinearization(pick(self.residual, other.residual),
                                       pick(self.jac_curr, other.jac_curr),
                                       pick(self.jac_prev, other.jac_prev))


@dataclass
class LMResult:
    """Outcome of ``levenberg_marquardt``."""

    x: Tensor
    """(B, T, d) the final point of each problem."""
    linearization: ChainLinearization
    """Residuals and Jacobians at ``x``."""
    damping: Tensor
    """(B,) the damping each problem ended with."""
    failed: Tensor
    """(B,) True where the solver gave up: no finite step even at ``max_damping``."""
    rejected: Tensor
    """(B,) number of rejected steps."""


def levenberg_marquardt(
    linearize: Callable[[Tensor], ChainLinearization],
    x: Tensor,
    iterations: int,
    damping: float = 1e-3,
    adaptive: bool = False,
    damping_factor: float = 10.0,
    max_damping: float = 1e8,
    backend: Backend = "auto",
    callback: Callable[[int, Tensor, ChainLinearization, Tensor, Tensor], None] | None = None,
) -> LMResult:
    """Minimize ½‖ρ(x)‖² for B independent chains x (B, T, d) by Levenberg–Marquardt steps (Eq. 5).

    Each iteration solves (JᵀJ + damping·I) Δ = Jᵀρ by block Cholesky and proposes x − Δ.
    - ``adaptive=False`` (LatCo, as the authors run it: a Gauss–Newton step with fixed damping,
      since the residual weights change every iteration): every finite step is accepted.
    - ``adaptive=True`` (classic LM, Marquardt 1963): a step is accepted only if it lowers the cost.
    A rejected step (non-finite, or not lowering the cost when adaptive) keeps x and multiplies that
    problem's damping by ``damping_factor``; an accepted one divides it again (down to ``damping``).
    A problem that gets no finite step even at ``max_damping`` is marked failed and left alone.
    ``callback(k, x, linearization, accepted, damping)`` runs after every iteration k (LatCo's dual
    update); accepted (B,) bool says which problems moved, damping (B,) is their current damping.
    """
    lin = linearize(x)
    B = x.shape[0]
    mu = torch.full((B,), float(damping), dtype=torch.float64)
    failed = ~lin.finite().cpu()
    rejected = torch.zeros(B, dtype=torch.long)
    for k in range(iterations):
        diag, lower, grad = lin.normal_equations()
        factor = block_cholesky(add_damping(diag, mu.to(diag.device)), lower, backend, overwrite=True)
        delta = block_cholesky_solve(factor, grad).to(x.dtype)
        x_new = x - delta
        x_new = torch.where(failed.to(x.device)[:, None, None], x, x_new)
        lin_new = linearize(x_new)
        finite = (torch.isfinite(delta).flatten(1).all(1) & lin_new.finite()).cpu()
        ok = finite & ~failed
        if adaptive:
            ok &= (lin_new.cost() <= lin.cost()).cpu()
        ok_dev = ok.to(x.device)
        x = torch.where(ok_dev[:, None, None], x_new, x)
        lin = lin.select(ok_dev, lin_new)
        mu = torch.where(ok, torch.clamp(mu / damping_factor, min=damping), mu * damping_factor)
        rejected += (~ok & ~failed).long()
        failed |= ~finite & (mu > max_damping)  # no finite step even with the largest damping
        mu = torch.where(failed, mu, torch.clamp(mu, max=max_damping))  # at a minimum: stay put
        if callback is not None:
            callback(k, x, lin, ok, mu)
    return LMResult(x=x, linearization=lin, damping=mu, failed=failed, rejected=rejected)
