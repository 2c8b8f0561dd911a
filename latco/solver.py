"""Block-tridiagonal linear algebra and Levenberg–Marquardt for chains of pairwise residuals.

Paper §5 ("Levenberg–Marquardt optimization"), Eq. 5: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ.

A *chain* has T variable blocks x_0 … x_{T-1} (d each) and T residual groups ρ_0 … ρ_{T-1};
ρ_t depends on x_{t-1} and x_t only (ρ_0 on x_0 only). J is then block lower-bidiagonal and
JᵀJ block-tridiagonal, so the step costs O(T·d³) by block Cholesky instead of O((T·d)³)
(Mordatch et al. 2012; the recursion below is Golub & Van Loan, *Matrix Computations* §4.5).
Nothing here knows about planning or world models: ``latco.planners.latco`` builds the residuals.

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
small blocks, NOTES "Compute on this CPU"), from both ends of the chain at once in two threads
(``latco._lapack`` calls release the GIL); elsewhere the forward recursion in batched ``torch.linalg``.
No dense (T·d)² matrix is formed except by ``block_tridiagonal_to_dense`` (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol, Self

import numpy as np
import torch
from scipy.linalg import blas, lapack
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
        return "scipy" if device.type == "cpu" else "torch"
    if backend not in ("scipy", "torch"):
        raise ValueError(f"unknown backend {backend!r}; choose one of: auto, scipy, torch")
    return backend


def block_cholesky(diag: Tensor, lower: Tensor, backend: Backend = "auto", overwrite: bool = False,
                   threads: int = 2, gram: Tensor | None = None) -> BlockCholesky:
    """Block Cholesky factorization of a block-tridiagonal SPD matrix, in float64.

    Forward recursion (Golub & Van Loan §4.5.4):  S_0 = A_00,  L_t L_tᵀ = S_t (Cholesky),
    C_t = A_{t+1,t} L_t⁻ᵀ,  S_{t+1} = A_{t+1,t+1} − C_t C_tᵀ.   Cost O(T·d³).
    The scipy backend runs it from both ends toward the middle block (see ``BlockCholesky``), the two
    halves in ``threads`` (1 or 2) threads; the result does not depend on ``threads``.
    ``overwrite=True`` lets it factor float64 CPU inputs in place (saves copying them); ``gram``
    is never modified.
    """
    T, d = _check_blocks(diag, lower)
    _check_gram(gram, diag)
    batch_shape = tuple(diag.shape[:-3])
    if _resolve_backend(backend, diag.device) == "torch":
        return _block_cholesky_torch(add_gram(diag, gram), lower, batch_shape)
    return _block_cholesky_scipy(diag, lower, gram, batch_shape, overwrite, threads)


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


def _as_f64_numpy(x: Tensor, shape: tuple[int, ...], copy: bool) -> np.ndarray:
    x = x.detach()
    if x.device.type != "cpu" or x.dtype != torch.float64 or not x.is_contiguous():
        copy = False  # the conversion below already makes a fresh array
        x = x.to("cpu", torch.float64).contiguous()
    out = x.numpy().reshape(shape)
    return out.copy() if copy else out


def _not_finite(*arrays: np.ndarray | None) -> np.ndarray:
    """(B,) True where any of the (B, ...) arrays has NaN/Inf — one summing pass each (NaN and Inf
    propagate through sums), cheaper than an elementwise isfinite."""
    bad = [~np.isfinite(a.reshape(a.shape[0], -1).sum(1)) for a in arrays if a is not None]
    return np.logical_or.reduce(bad)


_EXECUTOR: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latco-lapack")
    return _EXECUTOR


# Column-major views: a C-ordered (d, d) block X is read by LAPACK as Xᵀ. Diagonal blocks are
# symmetric; their lower triangle (as LAPACK sees it) receives L_t. Off-diagonal block t holds
# A_{t+1,t}, seen as A_{t+1,t}ᵀ, and is overwritten by C_tᵀ (top half) or G_{t+1} (bottom half).
def _add_gram(D: np.ndarray, G: np.ndarray | None, t: int) -> None:
    """D_t[-g:, -g:] += G_tᵀ G_t (lower triangle, as LAPACK sees it)."""
    if G is None:
        return
    d, (k, g) = D.shape[-1], G.shape[-2:]
    corner = D.ctypes.data + (t * d * d + (d - g) * (d + 1)) * 8
    _lapack.syrk_lower(b"N", g, k, 1.0, G.ctypes.data + t * k * g * 8, g, corner, d)


def _factor_top(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """Blocks 0..k-1: L_t = chol(S_t), C_tᵀ = L_t⁻¹ A_{t+1,t}ᵀ, S_{t+1} −= C_t C_tᵀ (not onto k)."""
    d, sz = D.shape[-1], D.shape[-1] ** 2 * 8
    dp, ep = D.ctypes.data, E.ctypes.data
    for t in range(k):
        _add_gram(D, G, t)
        if _lapack.potrf_lower(dp + t * sz, d, d):
            return t + 1
        _lapack.trsm(b"L", b"N", d, d, dp + t * sz, d, ep + t * sz, d)
        if t + 1 < k:
            _lapack.syrk_lower(b"T", d, d, -1.0, ep + t * sz, d, dp + (t + 1) * sz, d)
    return 0


def _factor_bottom(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """Blocks T-1..k+1: U_t = chol(R_t), G_t = A_{t,t-1}ᵀ U_t⁻ᵀ, R_{t-1} −= G_t G_tᵀ (not onto k)."""
    T, d, sz = D.shape[0], D.shape[-1], D.shape[-1] ** 2 * 8
    dp, ep = D.ctypes.data, E.ctypes.data
    for t in range(T - 1, k, -1):
        _add_gram(D, G, t)
        if _lapack.potrf_lower(dp + t * sz, d, d):
            return t + 1
        _lapack.trsm(b"R", b"T", d, d, dp + t * sz, d, ep + (t - 1) * sz, d)
        if t - 1 > k:
            _lapack.syrk_lower(b"N", d, d, -1.0, ep + (t - 1) * sz, d, dp + (t - 1) * sz, d)
    return 0


def _factor_middle(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """S_k = A_kk − C_{k-1} C_{k-1}ᵀ − G_{k+1} G_{k+1}ᵀ, then L_k = chol(S_k)."""
    T, d, sz = D.shape[0], D.shape[-1], D.shape[-1] ** 2 * 8
    dp, ep = D.ctypes.data, E.ctypes.data
    _add_gram(D, G, k)
    if k > 0:
        _lapack.syrk_lower(b"T", d, d, -1.0, ep + (k - 1) * sz, d, dp + k * sz, d)
    if k < T - 1:
        _lapack.syrk_lower(b"N", d, d, -1.0, ep + k * sz, d, dp + k * sz, d)
    return k + 1 if _lapack.potrf_lower(dp + k * sz, d, d) else 0


def _block_cholesky_scipy(diag: Tensor, lower: Tensor, gram: Tensor | None, batch_shape: tuple[int, ...],
                          overwrite: bool, threads: int) -> BlockCholesky:
    T, d = diag.shape[-3], diag.shape[-1]
    B = int(np.prod(batch_shape, dtype=np.int64))
    if not _lapack.AVAILABLE:  # pragma: no cover - scipy without usable Cython BLAS pointers
        D = _as_f64_numpy(add_gram(diag, gram), (B, T, d, d), copy=not overwrite or gram is not None)
        E = _as_f64_numpy(lower, (B, T - 1, d, d), copy=not overwrite)
        return _block_cholesky_wrappers(D, E, _not_finite(D, E), batch_shape)
    D = _as_f64_numpy(diag, (B, T, d, d), copy=not overwrite)
    E = _as_f64_numpy(lower, (B, T - 1, d, d), copy=not overwrite)
    G = None if gram is None else _as_f64_numpy(gram, (B, T, *gram.shape[-2:]), copy=False)
    # Non-finite inputs are not screened here (a pass over every block): they either stop dpotrf
    # or come out as a non-finite solution, which callers check (the LM loop rejects such steps).
    failed = np.zeros(B, dtype=bool)
    k = T // 2
    todo = [b for b in range(B) if not failed[b]]
    Gb = [None] * B if G is None else G

    def bottom_halves() -> list[int]:
        return [_factor_bottom(D[b], E[b], Gb[b], k) for b in todo]

    def top_halves() -> list[int]:
        return [_factor_top(D[b], E[b], Gb[b], k) for b in todo]

    if threads > 1 and k < T - 1:
        bottom_future = _executor().submit(bottom_halves)
        top = top_halves()
        bottom = bottom_future.result()
    else:
        top, bottom = top_halves(), bottom_halves()
    for b, top_info, bottom_info in zip(todo, top, bottom, strict=True):
        failed[b] = bool(top_info or bottom_info or _factor_middle(D[b], E[b], Gb[b], k))
    D[failed] = np.nan
    E[failed] = np.nan
    return BlockCholesky("scipy", D, E, failed, batch_shape, k)


def _block_cholesky_wrappers(D: np.ndarray, E: np.ndarray, failed: np.ndarray,
                             batch_shape: tuple[int, ...]) -> BlockCholesky:
    """Forward recursion through scipy.linalg's BLAS/LAPACK wrappers (they hold the GIL: one thread)."""
    B, T = D.shape[:2]
    potrf, trsm, syrk = lapack.dpotrf, blas.dtrsm, blas.dsyrk
    for b in range(B):
        if failed[b]:
            continue
        for t in range(T):
            S = D[b, t].T
            _, info = potrf(S, lower=1, clean=0, overwrite_a=1)  # lower(S) := L_t
            if info != 0:
                failed[b] = True
                break
            if t == T - 1:
                break
            X = E[b, t].T
            trsm(1.0, S, X, side=0, lower=1, trans_a=0, overwrite_b=1)  # X := L_t⁻¹ A_{t+1,t}ᵀ = C_tᵀ
            syrk(-1.0, X, beta=1.0, c=D[b, t + 1].T, trans=1, lower=1, overwrite_c=1)  # S_{t+1}
    D[failed] = np.nan
    E[failed] = np.nan
    return BlockCholesky("scipy", D, E, failed, batch_shape, T - 1)


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
    return BlockCholesky("torch", L, C, failed_np, batch_shape, T - 1)


def block_cholesky_solve(factor: BlockCholesky, rhs: Tensor, threads: int = 2) -> Tensor:
    """Solve M x = rhs given M = 𝓛𝓛ᵀ from ``block_cholesky``; rhs (..., T, d) -> x (..., T, d).

    Forward:  y_0 = L_0⁻¹ f_0,   y_t = L_t⁻¹ (f_t − C_{t-1} y_{t-1});
    backward: x_{T-1} = L_{T-1}⁻ᵀ y_{T-1},   x_t = L_t⁻ᵀ (y_t − C_tᵀ x_{t+1})
    (for the twisted factor: the same from both ends, meeting at the split block; the two ends in
    ``threads`` threads). Computed in float64, returned in rhs's dtype and device; NaN where the
    factorization failed.
    """
    if factor.backend == "torch":
        return _solve_torch(factor, rhs)
    if not _lapack.AVAILABLE:  # pragma: no cover
        return _solve_wrappers(factor, rhs)
    D, E, k = factor.L, factor.C, factor.split
    B, T, d = D.shape[0], D.shape[1], D.shape[-1]
    y = _as_f64_numpy(rhs, (B, T, d), copy=True)
    todo = [b for b in range(B) if not factor.failed[b]]
    y[factor.failed] = np.nan
    sz, vz = d * d * 8, d * 8

    def forward_top() -> None:  # y_t = L_t⁻¹ (f_t − C_{t-1} y_{t-1}),  t = 0 .. k-1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k):
                if t > 0:
                    _lapack.gemv_sub(b"T", d, d, ep + (t - 1) * sz, d, yp + (t - 1) * vz, yp + t * vz)
                _lapack.trsv_lower(b"N", d, dp + t * sz, d, yp + t * vz)

    def forward_bottom() -> None:  # v_t = U_t⁻¹ (f_t − G_{t+1} v_{t+1}),  t = T-1 .. k+1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(T - 1, k, -1):
                if t < T - 1:
                    _lapack.gemv_sub(b"N", d, d, ep + t * sz, d, yp + (t + 1) * vz, yp + t * vz)
                _lapack.trsv_lower(b"N", d, dp + t * sz, d, yp + t * vz)

    def middle() -> None:  # x_k = L_k⁻ᵀ L_k⁻¹ (f_k − C_{k-1} y_{k-1} − G_{k+1} v_{k+1})
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            if k > 0:
                _lapack.gemv_sub(b"T", d, d, ep + (k - 1) * sz, d, yp + (k - 1) * vz, yp + k * vz)
            if k < T - 1:
                _lapack.gemv_sub(b"N", d, d, ep + k * sz, d, yp + (k + 1) * vz, yp + k * vz)
            _lapack.trsv_lower(b"N", d, dp + k * sz, d, yp + k * vz)
            _lapack.trsv_lower(b"T", d, dp + k * sz, d, yp + k * vz)

    def backward_top() -> None:  # x_t = L_t⁻ᵀ (y_t − C_tᵀ x_{t+1}),  t = k-1 .. 0
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k - 1, -1, -1):
                _lapack.gemv_sub(b"N", d, d, ep + t * sz, d, yp + (t + 1) * vz, yp + t * vz)
                _lapack.trsv_lower(b"T", d, dp + t * sz, d, yp + t * vz)

    def backward_bottom() -> None:  # x_t = U_t⁻ᵀ (v_t − G_tᵀ x_{t-1}),  t = k+1 .. T-1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k + 1, T):
                _lapack.gemv_sub(b"T", d, d, ep + (t - 1) * sz, d, yp + (t - 1) * vz, yp + t * vz)
                _lapack.trsv_lower(b"T", d, dp + t * sz, d, yp + t * vz)

    for top, bottom in ((forward_top, forward_bottom), (middle, None), (backward_top, backward_bottom)):
        if bottom is None:
            top()
        elif threads > 1 and k < T - 1:
            future = _executor().submit(bottom)
            top()
            future.result()
        else:
            top()
            bottom()
    x = torch.from_numpy(y).reshape(*factor.batch_shape, T, d)
    return x.to(device=rhs.device, dtype=rhs.dtype)


def _solve_wrappers(factor: BlockCholesky, rhs: Tensor) -> Tensor:
    """Forward/backward substitution through scipy.linalg's wrappers (factor from the forward recursion)."""
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


def lm_step(residual: Tensor, jac_curr: Tensor, jac_prev: Tensor, damping: float,
            backend: Backend = "auto") -> Tensor:
    """One Levenberg–Marquardt step of Eq. 5 for a chain: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ; x_new = x − Δ."""
    diag, lower, grad = chain_normal_equations(residual, jac_curr, jac_prev)
    return solve_block_tridiagonal(add_damping(diag, damping), lower, grad, backend)


# ------------------------------------------------------------------------------- the LM loop
class ChainLinearization(Protocol):
    """Residuals and Jacobian of a chain at one point, for a batch of B independent problems."""

    def normal_equations(self) -> NormalEquations:
        """JᵀJ blocks and Jᵀρ, no damping. The caller may modify them in place (the LM loop factors
        them in place); an implementation may reuse the same buffers on its next call."""
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

    def normal_equations(self) -> NormalEquations:
        return NormalEquations(*chain_normal_equations(self.residual, self.jac_curr, self.jac_prev))

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
    threads: int = 2,
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
    ``threads`` (1 or 2): threads of the CPU block Cholesky (``block_cholesky``).
    """
    lin = linearize(x)
    B = x.shape[0]
    mu = torch.full((B,), float(damping), dtype=torch.float64)
    failed = ~lin.finite().cpu()
    rejected = torch.zeros(B, dtype=torch.long)
    for k in range(iterations):
        ne = lin.normal_equations()
        factor = block_cholesky(add_damping(ne.diag, mu.to(ne.diag.device)), ne.lower, backend,
                                overwrite=True, threads=threads, gram=ne.gram)
        delta = block_cholesky_solve(factor, ne.grad, threads).to(x.dtype)
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
