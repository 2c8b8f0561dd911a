"""The CPU backend: a twisted block Cholesky through scipy's LAPACK/BLAS, on two threads.

One ``dpotrf``, ``dtrsm`` and ``dsyrk`` per block (2-3× faster than ``torch.linalg`` on small blocks,
measured on a 2-core CPU), called through ``latco._lapack``, whose calls release the GIL: the top
and bottom halves of each chain are factored (and substituted) in two threads at once
(see ``latco.solver.blocks.BlockCholesky``). Needs ``latco._lapack.AVAILABLE``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch
from torch import Tensor

from latco import _lapack
from latco.solver.blocks import BlockCholesky


def _as_numpy(x: Tensor, shape: tuple[int, ...], copy: bool,
              dtype: torch.dtype = torch.float64) -> np.ndarray:
    x = x.detach()
    if x.device.type != "cpu" or x.dtype != dtype or not x.is_contiguous():
        copy = False  # the conversion below already makes a fresh array
        x = x.to("cpu", dtype).contiguous()
    out = x.numpy().reshape(shape)
    return out.copy() if copy else out


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
    d, (k, g), w = D.shape[-1], G.shape[-2:], D.itemsize
    corner = D.ctypes.data + (t * d * d + (d - g) * (d + 1)) * w
    _lapack.syrk_lower(b"N", g, k, 1.0, G.ctypes.data + t * k * g * w, g, corner, d, w == 4)


def _factor_top(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """Blocks 0..k-1: L_t = chol(S_t), C_tᵀ = L_t⁻¹ A_{t+1,t}ᵀ, S_{t+1} −= C_t C_tᵀ (not onto k)."""
    d, sz, single = D.shape[-1], D.shape[-1] ** 2 * D.itemsize, D.itemsize == 4
    dp, ep = D.ctypes.data, E.ctypes.data
    for t in range(k):
        _add_gram(D, G, t)
        if _lapack.potrf_lower(dp + t * sz, d, d, single=single):
            return t + 1
        _lapack.trsm(b"L", b"N", d, d, dp + t * sz, d, ep + t * sz, d, single=single)
        if t + 1 < k:
            _lapack.syrk_lower(b"T", d, d, -1.0, ep + t * sz, d, dp + (t + 1) * sz, d, single=single)
    return 0


def _factor_bottom(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """Blocks T-1..k+1: U_t = chol(R_t), G_t = A_{t,t-1}ᵀ U_t⁻ᵀ, R_{t-1} −= G_t G_tᵀ (not onto k)."""
    T, d, sz, single = D.shape[0], D.shape[-1], D.shape[-1] ** 2 * D.itemsize, D.itemsize == 4
    dp, ep = D.ctypes.data, E.ctypes.data
    for t in range(T - 1, k, -1):
        _add_gram(D, G, t)
        if _lapack.potrf_lower(dp + t * sz, d, d, single=single):
            return t + 1
        _lapack.trsm(b"R", b"T", d, d, dp + t * sz, d, ep + (t - 1) * sz, d, single=single)
        if t - 1 > k:
            _lapack.syrk_lower(b"N", d, d, -1.0, ep + (t - 1) * sz, d, dp + (t - 1) * sz, d, single=single)
    return 0


def _factor_middle(D: np.ndarray, E: np.ndarray, G: np.ndarray | None, k: int) -> int:
    """S_k = A_kk − C_{k-1} C_{k-1}ᵀ − G_{k+1} G_{k+1}ᵀ, then L_k = chol(S_k)."""
    T, d, sz, single = D.shape[0], D.shape[-1], D.shape[-1] ** 2 * D.itemsize, D.itemsize == 4
    dp, ep = D.ctypes.data, E.ctypes.data
    _add_gram(D, G, k)
    if k > 0:
        _lapack.syrk_lower(b"T", d, d, -1.0, ep + (k - 1) * sz, d, dp + k * sz, d, single=single)
    if k < T - 1:
        _lapack.syrk_lower(b"N", d, d, -1.0, ep + k * sz, d, dp + k * sz, d, single=single)
    return k + 1 if _lapack.potrf_lower(dp + k * sz, d, d, single=single) else 0


def factor(diag: Tensor, lower: Tensor, gram: Tensor | None, batch_shape: tuple[int, ...],
           overwrite: bool, threads: int, single: bool = False) -> BlockCholesky:
    """The twisted factor of ``block_cholesky`` (split k = T // 2), the two halves in ``threads`` threads;
    in float32 (``spotrf`` …) on float32 copies of the blocks with ``single``, else in float64."""
    T, d = diag.shape[-3], diag.shape[-1]
    B = int(np.prod(batch_shape, dtype=np.int64))
    dtype = torch.float32 if single else torch.float64
    D = _as_numpy(diag, (B, T, d, d), copy=not overwrite, dtype=dtype)
    E = _as_numpy(lower, (B, T - 1, d, d), copy=not overwrite, dtype=dtype)
    G = None if gram is None else _as_numpy(gram, (B, T, *gram.shape[-2:]), copy=False, dtype=dtype)
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


def solve(factor: BlockCholesky, rhs: Tensor, threads: int) -> Tensor:
    """``block_cholesky_solve`` for a twisted factor: both ends toward the split block, in ``threads``."""
    D, E, k = factor.L, factor.C, factor.split
    B, T, d = D.shape[0], D.shape[1], D.shape[-1]
    single = D.itemsize == 4
    y = _as_numpy(rhs, (B, T, d), copy=True, dtype=torch.float32 if single else torch.float64)
    todo = [b for b in range(B) if not factor.failed[b]]
    y[factor.failed] = np.nan
    sz, vz = d * d * D.itemsize, d * D.itemsize
    gemv, trsv = partial(_lapack.gemv_sub, single=single), partial(_lapack.trsv_lower, single=single)

    def forward_top() -> None:  # y_t = L_t⁻¹ (f_t − C_{t-1} y_{t-1}),  t = 0 .. k-1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k):
                if t > 0:
                    gemv(b"T", d, d, ep + (t - 1) * sz, d, yp + (t - 1) * vz, yp + t * vz)
                trsv(b"N", d, dp + t * sz, d, yp + t * vz)

    def forward_bottom() -> None:  # v_t = U_t⁻¹ (f_t − G_{t+1} v_{t+1}),  t = T-1 .. k+1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(T - 1, k, -1):
                if t < T - 1:
                    gemv(b"N", d, d, ep + t * sz, d, yp + (t + 1) * vz, yp + t * vz)
                trsv(b"N", d, dp + t * sz, d, yp + t * vz)

    def middle() -> None:  # x_k = L_k⁻ᵀ L_k⁻¹ (f_k − C_{k-1} y_{k-1} − G_{k+1} v_{k+1})
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            if k > 0:
                gemv(b"T", d, d, ep + (k - 1) * sz, d, yp + (k - 1) * vz, yp + k * vz)
            if k < T - 1:
                gemv(b"N", d, d, ep + k * sz, d, yp + (k + 1) * vz, yp + k * vz)
            trsv(b"N", d, dp + k * sz, d, yp + k * vz)
            trsv(b"T", d, dp + k * sz, d, yp + k * vz)

    def backward_top() -> None:  # x_t = L_t⁻ᵀ (y_t − C_tᵀ x_{t+1}),  t = k-1 .. 0
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k - 1, -1, -1):
                gemv(b"N", d, d, ep + t * sz, d, yp + (t + 1) * vz, yp + t * vz)
                trsv(b"T", d, dp + t * sz, d, yp + t * vz)

    def backward_bottom() -> None:  # x_t = U_t⁻ᵀ (v_t − G_tᵀ x_{t-1}),  t = k+1 .. T-1
        for b in todo:
            dp, ep, yp = D[b].ctypes.data, E[b].ctypes.data, y[b].ctypes.data
            for t in range(k + 1, T):
                gemv(b"T", d, d, ep + (t - 1) * sz, d, yp + (t - 1) * vz, yp + t * vz)
                trsv(b"T", d, dp + t * sz, d, yp + t * vz)

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
