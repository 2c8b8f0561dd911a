"""The torch backend (non-CPU devices, or scipy without usable BLAS pointers): the forward block
Cholesky recursion and substitution of ``latco.solver.blocks``, batched in float64 (or float32)
``torch.linalg``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from latco.solver.blocks import BlockCholesky


def factor(diag: Tensor, lower: Tensor, batch_shape: tuple[int, ...],
           dtype: torch.dtype = torch.float64) -> BlockCholesky:
    """``block_cholesky`` by the forward recursion (split = T-1) in ``dtype``; non-finite systems are
    marked failed."""
    T, d = diag.shape[-3], diag.shape[-1]
    B = int(np.prod(batch_shape, dtype=np.int64))
    D = diag.detach().to(dtype).reshape(B, T, d, d)
    Bl = lower.detach().to(dtype).reshape(B, T - 1, d, d)
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


def solve(factor: BlockCholesky, rhs: Tensor) -> Tensor:
    """``block_cholesky_solve`` for a torch factor: forward then backward substitution."""
    L, Ct = factor.L, factor.C
    B, T, d = L.shape[0], L.shape[1], L.shape[-1]
    f = rhs.detach().to(device=L.device, dtype=L.dtype).reshape(B, T, d, 1)
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
