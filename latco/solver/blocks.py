"""Block-tridiagonal linear algebra for chains of pairwise residuals (the backend-independent part).

A *chain* has T variable blocks x_0 … x_{T-1} (d each) and T residual groups ρ_0 … ρ_{T-1};
ρ_t depends on x_{t-1} and x_t only (ρ_0 on x_0 only). J is then block lower-bidiagonal and
JᵀJ block-tridiagonal, so the step costs O(T·d³) by block Cholesky instead of O((T·d)³)
(Mordatch et al. 2012; the recursion below is Golub & Van Loan, *Matrix Computations* §4.5).

Conventions (batched over any leading dims ``...``):

- ``diag``  (..., T, d, d)   the symmetric positive definite blocks A_tt,
- ``lower`` (..., T-1, d, d) the blocks A_{t+1,t} below the diagonal (above: their transposes),
- ``gram``  (..., T, k, g)   optional: A_tt is ``diag[t]`` plus gram_tᵀ gram_t on its last g rows and
  columns — a Gram (JᵀJ) term left unformed, so the factorization computes it in float64 (one
  ``dsyrk`` per block, on two cores) instead of the caller forming it,
- ``jac_curr`` (..., T, m, d) = ∂ρ_t/∂x_t,  ``jac_prev`` (..., T, m, d) = ∂ρ_t/∂x_{t-1}
  (``jac_prev[..., 0, :, :]`` is ignored).

The factorization always runs in float64. On CPU it calls scipy's LAPACK/BLAS (one ``dpotrf``,
``dtrsm`` and ``dsyrk`` per block: 2-3× faster than the same recursion through ``torch.linalg`` on
small blocks on a 2-core CPU), from both ends of the chain at once in two threads
(``latco.solver.lapack``); elsewhere, or where scipy lacks usable GIL-free BLAS pointers
(``latco._lapack.AVAILABLE``), the forward recursion in batched ``torch.linalg``
(``latco.solver.torch_backend``). No dense (T·d)² matrix is formed except by
``block_tridiagonal_to_dense`` (tests, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from latco import _lapack

Backend = Literal["auto", "scipy", "torch"]


# ---------------------------------------------------------------------------------- block Cholesky
@dataclass
class BlockCholesky:
    """Factor of a block-tridiagonal SPD matrix M, from ``block_cholesky``.

    "scipy" backend: a *twisted* block Cholesky (Meurant 1992, "burn at both ends"): blocks 0..k-1
    are eliminated from the top, blocks T-1..k+1 from the bottom, and block k = ``split`` last. This
    is the ordinary Cholesky factor of M with its blocks reordered (0, …, k-1, T-1, …, k+1, k), so it
    costs the same O(T·d³) — but its two halves are independent and run on two cores at once.
    ``L`` (B, T, d, d) holds the triangular factors and ``C`` (B, T-1, d, d) the off-diagonal factor
    blocks, both as C-ordered numpy arrays read by LAPACK as column-major (so ``L[b, t].T`` is L_t);
    non-finite inputs are not screened (they show up as non-finite solutions).
    "torch" backend: the forward recursion (split = T-1) in batched torch.linalg: ``L`` (B, T, d, d)
    = L_t, ``C`` (B, T-1, d, d) = C_tᵀ. ``failed`` (B,) marks systems whose factorization broke down
    (not positive definite or not finite); their solutions come out NaN.
    """

    backend: str
    L: Tensor | np.ndarray
    C: Tensor | np.ndarray
    failed: np.ndarray  # (B,) bool
    batch_shape: tuple[int, ...]
    split: int


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
        return "scipy" if device.type == "cpu" and _lapack.AVAILABLE else "torch"
    if backend not in ("scipy", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose one of: auto, scipy, torch")
    if backend == "scipy" and not _lapack.AVAILABLE:
        raise RuntimeError("backend='scipy' needs scipy's Cython BLAS/LAPACK pointers, which this scipy "
                           "build lacks or which failed latco._lapack's self-check; use backend='torch'")
    return backend


def block_cholesky(diag: Tensor, lower: Tensor, backend: Backend = "auto", overwrite: bool = False,
                   threads: int = 2, gram: Tensor | None = None, single: bool = False) -> BlockCholesky:
    """Block Cholesky factorization of a block-tridiagonal SPD matrix, in float64 (float32 with
    ``single``: for ``solve_refined``, which recovers float64 accuracy).

    Forward recursion (Golub & Van Loan §4.5.4):  S_0 = A_00,  L_t L_tᵀ = S_t (Cholesky),
    C_t = A_{t+1,t} L_t⁻ᵀ,  S_{t+1} = A_{t+1,t+1} − C_t C_tᵀ.   Cost O(T·d³).
    The scipy backend runs it from both ends toward the middle block (see ``BlockCholesky``), the two
    halves in ``threads`` (1 or 2) threads; the result does not depend on ``threads``.
    ``overwrite=True`` lets it factor float64 CPU inputs in place (saves copying them); ``gram``
    is never modified.
    """
    from latco.solver import lapack, torch_backend  # they import BlockCholesky from here

    T, d = _check_blocks(diag, lower)
    _check_gram(gram, diag)
    batch_shape = tuple(diag.shape[:-3])
    if _resolve_backend(backend, diag.device) == "torch":
        dtype = torch.float32 if single else torch.float64
        return torch_backend.factor(add_gram(diag, gram), lower, batch_shape, dtype)
    return lapack.factor(diag, lower, gram, batch_shape, overwrite and not single, threads, single)


def _check_gram(gram: Tensor | None, diag: Tensor) -> None:
    if gram is None:
        return
    T, d = diag.shape[-3], diag.shape[-1]
    if gram.dim() != diag.dim() or tuple(gram.shape[:-2]) != (*diag.shape[:-3], T) or gram.shape[-1] > d:
        raise ValueError(f"gram must have shape {(*diag.shape[:-3], T)} + (k, g) with g <= {d}, "
                         f"got {tuple(gram.shape)}")


def add_gram(diag: Tensor, gram: Tensor | None) -> Tensor:
    """diag with gram_tᵀ gram_t added to the last g rows/columns of each block (a new float64 tensor)."""
    if gram is None:
        return diag
    g = gram.shape[-1]
    out = diag.to(torch.float64, copy=True)
    gram = gram.to(device=out.device, dtype=torch.float64)
    out[..., -g:, -g:] += gram.mT @ gram
    return out


def block_cholesky_solve(factor: BlockCholesky, rhs: Tensor, threads: int = 2) -> Tensor:
    """Solve M x = rhs given M = 𝓛𝓛ᵀ from ``block_cholesky``; rhs (..., T, d) -> x (..., T, d).

    Forward:  y_0 = L_0⁻¹ f_0,   y_t = L_t⁻¹ (f_t − C_{t-1} y_{t-1});
    backward: x_{T-1} = L_{T-1}⁻ᵀ y_{T-1},   x_t = L_t⁻ᵀ (y_t − C_tᵀ x_{t+1})
    (for the twisted factor: the same from both ends, meeting at the split block; the two ends in
    ``threads`` threads). Computed in float64, returned in rhs's dtype and device; NaN where the
    factorization failed.
    """
    from latco.solver import lapack, torch_backend

    if factor.backend == "torch":
        return torch_backend.solve(factor, rhs)
    return lapack.solve(factor, rhs, threads)


def solve_block_tridiagonal(diag: Tensor, lower: Tensor, rhs: Tensor, backend: Backend = "auto",
                            gram: Tensor | None = None) -> Tensor:
    """Solve the block-tridiagonal SPD system M x = rhs by block Cholesky (float64 inside).

    diag (..., T, d, d) SPD blocks, lower (..., T-1, d, d) blocks at (t+1, t), rhs (..., T, d),
    optional gram (..., T, k, g) added to the diagonal blocks (see the module docstring);
    returns x shaped and typed like rhs. Raises ``np.linalg.LinAlgError`` if M is not positive
    definite or not finite.
    """
    T, d = _check_blocks(diag, lower)
    if tuple(rhs.shape) != (*diag.shape[:-3], T, d):
        raise ValueError(f"rhs must have shape {(*diag.shape[:-3], T, d)}, got {tuple(rhs.shape)}")
    factor = block_cholesky(diag, lower, backend, gram=gram)
    x = block_cholesky_solve(factor, rhs)
    failed = factor.failed | ~torch.isfinite(x.reshape(-1, T * d)).all(1).cpu().numpy()
    if failed.any():
        raise np.linalg.LinAlgError(
            f"block Cholesky failed for {int(failed.sum())} of {failed.size} systems: "
            "the matrix is not positive definite or has non-finite entries")
    return x


def block_tridiagonal_matvec(diag: Tensor, lower: Tensor, x: Tensor, gram: Tensor | None = None) -> Tensor:
    """M x for the block-tridiagonal M of (diag, lower[, gram]) and x (..., T, d), in float64:
    (M x)_t = A_tt x_t + A_{t,t-1} x_{t-1} + A_{t+1,t}ᵀ x_{t+1}. O(T·d²), no dense matrix. On CPU
    through numpy's batched matrix-vector product (3x faster than torch.einsum there), elsewhere
    through torch.einsum (torch's ``A @ x[..., None]`` is ~5x slower than einsum; measured)."""
    diag, lower, x = (v.to(torch.float64) for v in (diag, lower, x))
    gram = None if gram is None else gram.to(torch.float64)
    if diag.device.type == "cpu":
        return torch.from_numpy(_matvec(np.matmul, np.swapaxes, diag.numpy(), lower.numpy(), x.numpy(),
                                        None if gram is None else gram.numpy()))
    return _matvec(_torch_matvec, torch.transpose, diag, lower, x, gram)


def _torch_matvec(a: Tensor, v: Tensor) -> Tensor:
    """a (..., i, j) times v (..., j, 1) by einsum."""
    return torch.einsum("...ij,...j->...i", a, v[..., 0])[..., None]


def _matvec(matvec, swap, D, E, X, G):
    """``block_tridiagonal_matvec`` with the batched product ``matvec(A, v[..., None])`` and the
    axis swap ``swap`` of numpy or torch, on arrays of that library."""
    Y = matvec(D, X[..., None])[..., 0]
    Y[..., 1:, :] += matvec(E, X[..., :-1, :, None])[..., 0]
    Y[..., :-1, :] += matvec(swap(E, -1, -2), X[..., 1:, :, None])[..., 0]
    if G is not None:
        g = G.shape[-1]
        Y[..., -g:] += matvec(swap(G, -1, -2), matvec(G, X[..., -g:, None]))[..., 0]
    return Y


def solve_refined(diag: Tensor, lower: Tensor, rhs: Tensor, backend: Backend = "auto", threads: int = 2,
                  gram: Tensor | None = None, sweeps: int = 4,
                  tol: float = 1e-9) -> tuple[Tensor, np.ndarray]:
    """M x = rhs by a float32 block Cholesky and iterative refinement against the float64 M.

    x₀ = M̃⁻¹ b with the float32 factor M̃; then, up to ``sweeps`` times, r = b − M x in float64 and
    x += M̃⁻¹ r, until every system's correction is below ``tol``·‖x‖ (Wilkinson's mixed-precision
    refinement: each sweep gains about −log₁₀(cond(M)·2⁻²⁴) digits while cond(M) ≪ 10⁷). Returns x
    (float64, shaped like rhs) and ``unsolved`` (B,) bool: systems whose float32 factorization broke
    down or whose corrections did not shrink below ``tol`` — solve those in float64. The blocks are
    not modified.
    """
    T, d = _check_blocks(diag, lower)
    factor = block_cholesky(diag, lower, backend, threads=threads, gram=gram, single=True)
    b = rhs.to(torch.float64)
    x = block_cholesky_solve(factor, b, threads).to(torch.float64)
    flat = (-1, T * d)
    unsolved = factor.failed | ~torch.isfinite(x.reshape(flat)).all(1).cpu().numpy()
    converged = np.zeros_like(unsolved)
    for _ in range(sweeps):
        correction = block_cholesky_solve(factor, b - block_tridiagonal_matvec(diag, lower, x, gram), threads)
        x = x + correction.to(torch.float64)
        size = correction.reshape(flat).norm(dim=1) / x.reshape(flat).norm(dim=1).clamp(min=1e-300)
        converged = (size <= tol).cpu().numpy()
        if (converged | unsolved).all():
            break
    unsolved = unsolved | ~converged | ~torch.isfinite(x.reshape(flat)).all(1).cpu().numpy()
    return x.reshape(rhs.shape), unsolved


def block_tridiagonal_to_dense(diag: Tensor, lower: Tensor, gram: Tensor | None = None) -> Tensor:
    """The dense (..., T·d, T·d) matrix of the blocks — reference for tests and benchmarks only."""
    T, d = _check_blocks(diag, lower)
    diag = add_gram(diag, gram)
    M = diag.new_zeros(*diag.shape[:-3], T * d, T * d, dtype=torch.promote_types(diag.dtype, lower.dtype))
    for t in range(T):
        M[..., t * d:(t + 1) * d, t * d:(t + 1) * d] = diag[..., t, :, :]
        if t < T - 1:
            M[..., (t + 1) * d:(t + 2) * d, t * d:(t + 1) * d] = lower[..., t, :, :]
            M[..., t * d:(t + 1) * d, (t + 1) * d:(t + 2) * d] = lower[..., t, :, :].mT
    return M


# ---------------------------------------------------------------------- Gauss–Newton normal equations
@dataclass
class NormalEquations:
    """The Gauss–Newton system of B chains (Eq. 5 before damping): the blocks of JᵀJ, and Jᵀρ.

    diag (B, T, d, d), lower (B, T-1, d, d), grad (B, T, d) and an optional unformed Gram term
    gram (B, T, k, g) of the diagonal blocks (module docstring). The LM loop adds the damping to
    diag and factors diag and lower in place.
    """

    diag: Tensor
    lower: Tensor
    grad: Tensor
    gram: Tensor | None = None

    def dense(self) -> Tensor:
        """The dense (B, T·d, T·d) JᵀJ — reference for tests and benchmarks only."""
        return block_tridiagonal_to_dense(self.diag, self.lower, self.gram)


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
