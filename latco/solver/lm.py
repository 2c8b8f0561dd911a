"""Levenberg–Marquardt for B independent chains of pairwise residuals (paper §5, Eq. 5).

Each step solves (JᵀJ + damping·I) Δ = Jᵀρ with the block Cholesky of ``latco.solver.blocks``.
Nothing here knows about planning or world models: ``latco.planners.latco`` builds the residuals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, Self

import torch
from torch import Tensor

from latco.solver.blocks import (
    Backend,
    NormalEquations,
    add_damping,
    block_cholesky,
    block_cholesky_solve,
    solve_refined,
)

Precision = Literal["float64", "mixed"]
PRECISIONS = ("float64", "mixed")


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
class LMState:
    """Where B independent problems stand between two Levenberg–Marquardt steps."""

    x: Tensor
    """(B, T, d) the current point of each problem."""
    linearization: ChainLinearization
    """Residuals and Jacobians at ``x``."""
    damping: Tensor
    """(B,) float64 the damping each problem will use in its next step."""
    failed: Tensor
    """(B,) bool: the solver gave up on these (no finite step even at ``max_damping``)."""
    rejected: Tensor
    """(B,) number of rejected steps so far."""

    @classmethod
    def start(cls, linearize: Callable[[Tensor], ChainLinearization], x: Tensor, damping: float) -> LMState:
        """The state at x before any step; problems whose residuals are not finite start failed."""
        lin = linearize(x)
        B = x.shape[0]
        return cls(x, lin, torch.full((B,), float(damping), dtype=torch.float64), ~lin.finite().cpu(),
                   torch.zeros(B, dtype=torch.long))


def compute_delta(ne: NormalEquations, damping: Tensor, backend: Backend = "auto",
                  threads: int = 2, precision: Precision = "float64") -> Tensor:
    """Δ = (JᵀJ + damping·I)⁻¹ Jᵀρ (Eq. 5) by block Cholesky; float64, NaN where it broke down.

    ``damping`` (B,) per problem. The diagonal blocks of ``ne`` are damped in place. ``precision``:
    "float64" factors them in float64, in place; "mixed" factors a float32 copy and refines the
    solution against the float64 system (``solve_refined``), and solves in float64 the problems
    where that does not converge (a float32 factor that breaks down, or cond(M) near 10⁷).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    diag = add_damping(ne.diag, damping.to(ne.diag.device))
    if precision == "mixed":
        delta, unsolved = solve_refined(diag, ne.lower, ne.grad, backend, threads, ne.gram)
        if not unsolved.any():
            return delta
        rows = torch.as_tensor(unsolved, device=diag.device)
        gram = None if ne.gram is None else ne.gram[rows]
        factor = block_cholesky(diag[rows], ne.lower[rows], backend, threads=threads, gram=gram)
        delta[rows] = block_cholesky_solve(factor, ne.grad[rows], threads).to(delta.dtype)
        return delta
    factor = block_cholesky(diag, ne.lower, backend, overwrite=True, threads=threads, gram=ne.gram)
    return block_cholesky_solve(factor, ne.grad, threads)


def lm_step(
    linearize: Callable[[Tensor], ChainLinearization],
    state: LMState,
    damping: float = 1e-3,
    adaptive: bool = False,
    damping_factor: float = 10.0,
    max_damping: float = 1e8,
    backend: Backend = "auto",
    threads: int = 2,
    project: Callable[[Tensor], Tensor] | None = None,
    precision: Precision = "float64",
) -> tuple[LMState, Tensor]:
    """One batched LM step: normal equations → block solve → x − Δ (projected) → accept/reject → damping.

    - ``adaptive=False`` (LatCo, as the authors run it: a Gauss–Newton step with fixed damping,
      since the residual weights change every iteration): every finite step is accepted.
    - ``adaptive=True`` (classic LM, Marquardt 1963): a step is accepted only if it lowers the cost.

    A rejected step (non-finite, or not lowering the cost when adaptive) keeps x and multiplies that
    problem's damping by ``damping_factor``; an accepted one divides it again (down to ``damping``).
    A problem that gets no finite step even at ``max_damping`` is marked failed and left alone.
    ``project`` maps a proposed point into the feasible set (LatCo: actions into the box). A
    linearization with a ``refine_step(delta) -> bool`` method may ask for the step to be solved once
    more after seeing it (LatCo holds the actions at the bound that the step pushes outward).
    ``precision``: how the step is solved (``compute_delta``).
    Returns the new state and accepted (B,) bool: which problems moved.
    """
    x, lin, mu, failed = state.x, state.linearization, state.damping, state.failed
    delta = compute_delta(lin.normal_equations(), mu, backend, threads, precision)
    refine = getattr(lin, "refine_step", None)
    if refine is not None and refine(delta):  # e.g. LatCo's projected step: hold more bounds, solve again
        delta = compute_delta(lin.normal_equations(), mu, backend, threads, precision)
    delta = delta.to(x.dtype)
    x_new = x - delta
    if project is not None:
        x_new = project(x_new)
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
    rejected = state.rejected + (~ok & ~failed).long()
    failed = failed | (~finite & (mu > max_damping))  # no finite step even with the largest damping
    mu = torch.where(failed, mu, torch.clamp(mu, max=max_damping))  # at a minimum: stay put
    return LMState(x, lin, mu, failed, rejected), ok


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
    project: Callable[[Tensor], Tensor] | None = None,
) -> LMState:
    """Minimize ½‖ρ(x)‖² for B independent chains x (B, T, d): ``iterations`` calls of ``lm_step``.

    For a fixed least-squares problem (tests, references); LatCo writes its own loop, since its
    multipliers change between steps (``LatCoPlanner.plan``).
    """
    state = LMState.start(linearize, x, damping)
    for _ in range(iterations):
        state, _ = lm_step(linearize, state, damping, adaptive, damping_factor, max_damping, backend, threads,
                           project)
    return state
