"""Block-tridiagonal linear algebra and Levenberg–Marquardt for chains of pairwise residuals.

Paper §5 ("Levenberg–Marquardt optimization"), Eq. 5: Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ, solved in
O(T·d³) by block Cholesky since JᵀJ of a chain is block-tridiagonal.

- ``blocks``: conventions, the factor/solve entry points and backend choice, normal equations, damping;
- ``lapack``: the CPU backend, a twisted block Cholesky through scipy's LAPACK on two threads;
- ``torch_backend``: the forward recursion in batched ``torch.linalg`` (GPU, or no usable LAPACK);
- ``lm``: one batched Levenberg–Marquardt step (``lm_step``) over a ``ChainLinearization``,
  and a loop of them.
"""

from latco.solver.blocks import (
    Backend,
    BlockCholesky,
    NormalEquations,
    add_damping,
    add_gram,
    block_cholesky,
    block_cholesky_solve,
    block_tridiagonal_matvec,
    block_tridiagonal_to_dense,
    chain_normal_equations,
    solve_block_tridiagonal,
    solve_refined,
)
from latco.solver.lm import ChainLinearization, LMState, compute_delta, levenberg_marquardt, lm_step

__all__ = [
    "Backend",
    "BlockCholesky",
    "ChainLinearization",
    "LMState",
    "NormalEquations",
    "add_damping",
    "add_gram",
    "block_cholesky",
    "block_cholesky_solve",
    "block_tridiagonal_matvec",
    "block_tridiagonal_to_dense",
    "chain_normal_equations",
    "compute_delta",
    "levenberg_marquardt",
    "lm_step",
    "solve_block_tridiagonal",
    "solve_refined",
]
