"""Test-only references for chains: dense Jacobian blocks as a ``ChainLinearization``, one dense LM step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from latco.solver import (
    Backend,
    NormalEquations,
    add_damping,
    chain_normal_equations,
    solve_block_tridiagonal,
)


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


def lm_step(residual: Tensor, jac_curr: Tensor, jac_prev: Tensor, damping: float,
            backend: Backend = "auto") -> Tensor:
    """One Levenberg–Marquardt step of Eq. 5 for a chain: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ; x_new = x − Δ."""
    diag, lower, grad = chain_normal_equations(residual, jac_curr, jac_prev)
    return solve_block_tridiagonal(add_damping(diag, damping), lower, grad, backend)
