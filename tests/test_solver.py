"""Block-tridiagonal solver and Levenberg–Marquardt, against dense torch.linalg and scipy references."""

import numpy as np
import pytest
import scipy.optimize
import torch
from chain_reference import DenseChainLinearization, lm_step

from latco import _lapack
from latco.solver import (
    NormalEquations,
    add_damping,
    add_gram,
    block_cholesky,
    block_cholesky_solve,
    block_tridiagonal_matvec,
    block_tridiagonal_to_dense,
    chain_normal_equations,
    compute_delta,
    levenberg_marquardt,
    solve_block_tridiagonal,
    solve_refined,
)

BACKENDS = ["scipy", "torch"]


def random_chain(batch: tuple[int, ...], T: int, m: int, d: int, dtype=torch.float64, seed: int = 0):
    """Random residuals and Jacobian blocks of a chain (any such J gives an SPD JᵀJ + damping)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(*batch, T, m, generator=g, dtype=dtype)
    jc = torch.randn(*batch, T, m, d, generator=g, dtype=dtype)
    jp = torch.randn(*batch, T, m, d, generator=g, dtype=dtype)
    return r, jc, jp


def dense_jacobian(jc: torch.Tensor, jp: torch.Tensor) -> torch.Tensor:
    """The full block lower-bidiagonal J (..., T·m, T·d) — an independent reference."""
    *batch, T, m, d = jc.shape
    J = jc.new_zeros(*batch, T * m, T * d)
    for t in range(T):
        J[..., t * m:(t + 1) * m, t * d:(t + 1) * d] = jc[..., t, :, :]
        if t > 0:
            J[..., t * m:(t + 1) * m, (t - 1) * d:t * d] = jp[..., t, :, :]
    return J


def random_spd_system(batch, T, d, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(*batch, T * d, T * d + 3, generator=g, dtype=torch.float64)
    M = X @ X.mT
    M = 0.5 * (M + M.mT)
    # keep only the block-tridiagonal part, then make it diagonally dominant (hence SPD)
    mask = torch.zeros(T, T, dtype=torch.bool)
    for t in range(T):
        mask[t, max(t - 1, 0):t + 2] = True
    mask = mask.repeat_interleave(d, 0).repeat_interleave(d, 1)
    M = torch.where(mask, M, torch.zeros_like(M))
    M = M + M.abs().sum(-1).max() * torch.eye(T * d, dtype=torch.float64)
    diag = torch.stack([M[..., t * d:(t + 1) * d, t * d:(t + 1) * d] for t in range(T)], -3)
    lower = torch.stack([M[..., (t + 1) * d:(t + 2) * d, t * d:(t + 1) * d] for t in range(T - 1)], -3) \
        if T > 1 else M.new_zeros(*batch, 0, d, d)
    rhs = torch.randn(*batch, T, d, generator=g, dtype=torch.float64)
    return diag.to(dtype), lower.to(dtype), rhs.to(dtype), M


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
@pytest.mark.parametrize("T", [1, 2, 7])
def test_block_solve_equals_dense_solve(backend, batch, T):
    diag, lower, rhs, M = random_spd_system(batch, T, 5, seed=T)
    assert torch.equal(block_tridiagonal_to_dense(diag, lower), M)
    ref = torch.linalg.solve(M, rhs.reshape(*batch, T * 5, 1))[..., 0].reshape(rhs.shape)
    x = solve_block_tridiagonal(diag, lower, rhs, backend=backend)
    assert x.shape == rhs.shape and x.dtype == rhs.dtype
    assert ((x - ref).norm() / ref.norm()).item() <= 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
def test_block_solve_ill_conditioned_float32_input_is_factorized_in_float64(backend):
    # blocks of a least-squares chain with damping 1e-6: condition number ~1e7, beyond float32
    r, jc, jp = random_chain((2,), 6, 3, 4)
    diag, lower, grad = chain_normal_equations(r, jc, jp)
    add_damping(diag, 1e-6)
    M = block_tridiagonal_to_dense(diag, lower)
    ref = torch.linalg.solve(M, grad.reshape(2, -1, 1))[..., 0].reshape(grad.shape)
    x = solve_block_tridiagonal(diag.float(), lower.float(), grad.float(), backend=backend)
    assert x.dtype == torch.float32
    x64 = solve_block_tridiagonal(diag.float().double(), lower.float().double(), grad.float().double(),
                                  backend=backend)
    assert torch.allclose(x.double(), x64, rtol=1e-6, atol=1e-6 * x64.abs().max().item())
    assert torch.linalg.cond(M).max() > 1e4 and torch.isfinite(ref).all()


def test_block_solve_input_errors():
    diag, lower, rhs, _ = random_spd_system((), 3, 2)
    with pytest.raises(ValueError, match="lower must have shape"):
        solve_block_tridiagonal(diag, lower[:1], rhs)
    with pytest.raises(ValueError, match="rhs must have shape"):
        solve_block_tridiagonal(diag, lower, rhs[:2])
    bad = diag.clone()
    bad[1] = -torch.eye(2)
    for backend in BACKENDS:
        with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
            solve_block_tridiagonal(bad, lower, rhs, backend=backend)
        nan = diag.clone()
        nan[0, 0, 0] = float("nan")
        with pytest.raises(np.linalg.LinAlgError):
            solve_block_tridiagonal(nan, lower, rhs, backend=backend)


def test_block_solve_does_not_modify_inputs():
    diag, lower, rhs, _ = random_spd_system((2,), 4, 3)
    copies = [t.clone() for t in (diag, lower, rhs)]
    solve_block_tridiagonal(diag, lower, rhs, backend="scipy")
    assert all(torch.equal(a, b) for a, b in zip((diag, lower, rhs), copies, strict=True))


def test_normal_equations_equal_dense_products():
    r, jc, jp = random_chain((2,), 5, 4, 3, seed=1)
    J = dense_jacobian(jc, jp)
    diag, lower, grad = chain_normal_equations(r, jc, jp)
    assert torch.allclose(block_tridiagonal_to_dense(diag, lower), J.mT @ J, atol=1e-12)
    assert torch.allclose(grad.reshape(2, -1), (J.mT @ r.reshape(2, -1, 1))[..., 0], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_lm_step_equals_dense_lm_step(backend, batch):
    r, jc, jp = random_chain(batch, 6, 4, 3, seed=2)
    J = dense_jacobian(jc, jp)
    damping = 1e-3
    dense = torch.linalg.solve(J.mT @ J + damping * torch.eye(J.shape[-1], dtype=J.dtype),
                               J.mT @ r.reshape(*batch, -1, 1))[..., 0]
    step = lm_step(r, jc, jp, damping, backend=backend)
    assert ((step.reshape(dense.shape) - dense).norm() / dense.norm()).item() <= 1e-9


# -------------------------------------------------------- LM to convergence vs scipy least_squares
T_CHAIN, D_CHAIN, M_CHAIN = 6, 2, 3
TARGETS = torch.linspace(-1.0, 1.5, T_CHAIN, dtype=torch.float64)


def pair_residual(x_prev: torch.Tensor, x: torch.Tensor, t: int) -> torch.Tensor:
    """A small nonlinear chain: Rosenbrock-like coupling between neighbours plus a target term."""
    if t == 0:
        return torch.stack([x[0] - 0.3, 2.0 * (x[1] - x[0] ** 2), x[0] * x[1] - 0.1])
    return torch.stack([
        3.0 * (x[1] - torch.sin(x_prev[0]) - 0.5 * x_prev[1] ** 2),
        x[0] - TARGETS[t] + 0.2 * torch.tanh(x_prev[1]),
        0.5 * (x[0] * x[1] - x_prev[0]),
    ])


def chain_residual_flat(x_flat: torch.Tensor) -> torch.Tensor:
    x = x_flat.reshape(T_CHAIN, D_CHAIN)
    return torch.cat([pair_residual(x[t - 1] if t else x[0], x[t], t) for t in range(T_CHAIN)])


def linearize_chain(x: torch.Tensor) -> DenseChainLinearization:
    """Residuals and the two Jacobian blocks per pair, by autograd (batched over x's first dim)."""
    B = x.shape[0]
    r = x.new_zeros(B, T_CHAIN, M_CHAIN)
    jc = x.new_zeros(B, T_CHAIN, M_CHAIN, D_CHAIN)
    jp = x.new_zeros(B, T_CHAIN, M_CHAIN, D_CHAIN)
    for b in range(B):
        for t in range(T_CHAIN):
            prev = x[b, t - 1] if t else torch.zeros(D_CHAIN, dtype=x.dtype)
            r[b, t] = pair_residual(prev, x[b, t], t)
            jp[b, t], jc[b, t] = torch.func.jacrev(pair_residual, argnums=(0, 1))(prev, x[b, t], t)
    return DenseChainLinearization(r, jc, jp)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lm_converges_to_scipy_least_squares_minimum(backend):
    x0 = torch.stack([torch.full((T_CHAIN, D_CHAIN), 0.5, dtype=torch.float64),
                      torch.linspace(-0.5, 0.5, T_CHAIN * D_CHAIN, dtype=torch.float64).reshape(T_CHAIN, -1)])
    result = levenberg_marquardt(linearize_chain, x0, iterations=60, damping=1e-3, adaptive=True,
                                 backend=backend)
    assert not result.failed.any()

    def fun(v):
        return chain_residual_flat(torch.from_numpy(v)).numpy()

    def jac(v):
        return torch.func.jacrev(chain_residual_flat)(torch.from_numpy(v)).numpy()

    for b in range(2):
        ref = scipy.optimize.least_squares(fun, x0[b].flatten().numpy(), jac=jac, method="lm",
                                           xtol=1e-15, ftol=1e-15, gtol=1e-15)
        ours = result.x[b].flatten().numpy()
        assert 0.5 * np.sum(fun(ours) ** 2) == pytest.approx(ref.cost, rel=1e-10, abs=1e-14)
        np.testing.assert_allclose(ours, ref.x, atol=1e-7)
    # the chain's Jacobian blocks agree with the dense Jacobian of the flattened problem
    lin = linearize_chain(x0[:1])
    Jd = torch.func.jacrev(chain_residual_flat)(x0[0].flatten())
    assert torch.allclose(dense_jacobian(lin.jac_curr, lin.jac_prev)[0], Jd, atol=1e-12)


def test_lm_rejects_non_finite_steps_and_raises_damping():
    """Residual blows up (NaN) outside |x| < 2: the step toward the far target is rejected, damped."""

    class Lin(DenseChainLinearization):
        pass

    def linearize(x):
        r = 10.0 * (x - 5.0)
        r = torch.where(x.abs() < 2, r, torch.full_like(r, float("nan")))
        jc = 10.0 * torch.eye(2, dtype=x.dtype).expand(*x.shape[:2], 2, 2).clone()
        return Lin(r, jc, torch.zeros_like(jc))

    x0 = torch.zeros(1, 3, 2, dtype=torch.float64)
    result = levenberg_marquardt(linearize, x0, iterations=30, damping=1e-3)
    assert torch.isfinite(result.x).all() and (result.x.abs() < 2).all()
    assert result.rejected[0] > 0 and result.damping[0] > 1e-3
    assert (result.x > 1.0).all()  # it still made progress with smaller steps
    # a problem that is non-finite everywhere is reported as failed, never silently "solved"
    dead = levenberg_marquardt(lambda x: Lin(x * np.nan, linearize(x).jac_curr, linearize(x).jac_prev),
                               x0, iterations=3)
    assert dead.failed.all()


# ------------------------------------------------- Gram term, threads, backend without LAPACK
@pytest.mark.parametrize("backend", BACKENDS)
def test_gram_term_equals_forming_it(backend):
    """diag_t + gram_tᵀ gram_t on the last g variables, left to the factorization, equals forming it."""
    diag, lower, rhs, M = random_spd_system((2,), 5, 6, seed=3)
    gram = torch.randn(2, 5, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    full = diag.clone()
    full[..., 2:, 2:] += gram.mT @ gram
    assert torch.allclose(add_gram(diag, gram), full)
    dense_full = block_tridiagonal_to_dense(full, lower)
    assert torch.allclose(block_tridiagonal_to_dense(diag, lower, gram), dense_full)
    ref = torch.linalg.solve(block_tridiagonal_to_dense(full, lower), rhs.reshape(2, -1, 1))[..., 0]
    x = solve_block_tridiagonal(diag, lower, rhs, backend=backend, gram=gram)
    assert ((x.reshape(2, -1) - ref).norm() / ref.norm()).item() <= 1e-9
    with pytest.raises(ValueError, match="gram must have shape"):
        solve_block_tridiagonal(diag, lower, rhs, gram=gram[:, :3])


@pytest.mark.parametrize("T", [1, 2, 3, 8])
def test_two_threads_give_bitwise_the_same_factor_and_solution(T):
    diag, lower, rhs, _ = random_spd_system((3,), T, 4, seed=T)
    gram = torch.randn(3, T, 2, 4, dtype=torch.float64)
    f1 = block_cholesky(diag, lower, "scipy", threads=1, gram=gram)
    f2 = block_cholesky(diag, lower, "scipy", threads=2, gram=gram)
    assert np.array_equal(f1.L, f2.L) and np.array_equal(f1.C, f2.C)
    assert torch.equal(block_cholesky_solve(f1, rhs, threads=1), block_cholesky_solve(f2, rhs, threads=2))


def test_failed_system_in_a_batch_does_not_affect_the_others():
    diag, lower, rhs, M = random_spd_system((3,), 6, 3, seed=5)
    bad = diag.clone()
    bad[1, 4] = -torch.eye(3, dtype=torch.float64)  # system 1 is indefinite
    for backend in BACKENDS:
        factor = block_cholesky(bad, lower, backend)
        assert factor.failed.tolist() == [False, True, False]
        x = block_cholesky_solve(factor, rhs)
        assert torch.isnan(x[1]).all() and torch.isfinite(x[[0, 2]]).all()
        assert torch.allclose(x[[0, 2]], solve_block_tridiagonal(diag[[0, 2]], lower[[0, 2]], rhs[[0, 2]]))


def test_without_lapack_pointers_auto_uses_torch_and_scipy_raises(monkeypatch):
    """Without usable Cython BLAS pointers "auto" on CPU resolves to the torch backend."""
    diag, lower, rhs, M = random_spd_system((2,), 5, 4, seed=6)
    gram = torch.randn(2, 5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    ref = torch.linalg.solve(block_tridiagonal_to_dense(diag, lower, gram), rhs.reshape(2, -1, 1))[..., 0]
    monkeypatch.setattr(_lapack, "AVAILABLE", False)
    assert block_cholesky(diag, lower, gram=gram).backend == "torch"
    x = solve_block_tridiagonal(diag, lower, rhs, gram=gram)
    assert ((x.reshape(2, -1) - ref).norm() / ref.norm()).item() <= 1e-9
    with pytest.raises(RuntimeError, match="backend='torch'"):
        solve_block_tridiagonal(diag, lower, rhs, backend="scipy", gram=gram)


def test_gil_free_lapack_pointers_load_and_check_signatures():
    assert _lapack.AVAILABLE  # this environment exercises the two-thread path
    with pytest.raises(ImportError, match="unexpected signature"):
        _lapack._check_signature("dpotrf", "void (char *, int64_t *, double *, int64_t *, int64_t *)",
                                 (_lapack._C, _lapack._I, _lapack._P, _lapack._I, _lapack._I))


# ------------------------------------------------------------------ mixed precision (float32 + refinement)
def weighted_chain(weight: float, seed: int = 0, batch: int = 3, T: int = 6, m: int = 9, d: int = 7):
    """Normal equations of a chain whose first 4 residuals per step carry ``weight`` (LatCo's λ: late
    iterations reach 1e6), damped by 1e-3 as LM does; and the dense float64 solve as reference."""
    r, jc, jp = random_chain((batch,), T, m, d, seed=seed)
    w = torch.ones(batch, T, m, 1, dtype=torch.float64)
    w[:, :, :4] = weight
    diag, lower, grad = chain_normal_equations(r * w[..., 0].sqrt(), jc * w.sqrt(), jp * w.sqrt())
    add_damping(diag, 1e-3)
    M = block_tridiagonal_to_dense(diag, lower)
    ref = torch.linalg.solve(M, grad.reshape(batch, -1, 1))[..., 0].reshape(grad.shape)
    return diag, lower, grad, ref, torch.linalg.cond(M)


def block_matvec_reference(diag, lower, x, gram=None):
    M = block_tridiagonal_to_dense(diag, lower, gram)
    return (M @ x.reshape(*x.shape[:-2], -1, 1))[..., 0].reshape(x.shape)


def test_block_matvec_equals_the_dense_product():
    """Both paths: numpy on CPU (what block_tridiagonal_matvec takes here), torch.einsum elsewhere."""
    from latco.solver.blocks import _matvec, _torch_matvec

    diag, lower, rhs, _ = random_spd_system((2,), 5, 6, seed=7)
    gram = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    for g in (None, gram):
        reference = block_matvec_reference(diag, lower, rhs, g)
        torch.testing.assert_close(block_tridiagonal_matvec(diag, lower, rhs, g), reference,
                                   rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(_matvec(_torch_matvec, torch.transpose, diag, lower, rhs, g), reference,
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refined_float32_solve_reaches_float64_accuracy(backend, seed):
    """Well conditioned (cond ~1e3): the refined float32 solution agrees with the dense float64 solve
    to float64 accuracy, and float32 alone would not."""
    diag, lower, grad, ref, cond = weighted_chain(1.0, seed)
    assert cond.max() < 1e5
    x, unsolved = solve_refined(diag, lower, grad, backend=backend)
    assert not unsolved.any()
    assert ((x - ref).norm() / ref.norm()).item() < 1e-12
    plain = block_cholesky_solve(block_cholesky(diag, lower, backend, single=True), grad)
    assert ((plain - ref).norm() / ref.norm()).item() > 1e-9  # the refinement is what makes it exact


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weight", [1e3, 1e6])
def test_mixed_lm_step_equals_float64_when_ill_conditioned(backend, weight):
    """λ ~ 1e3-1e6 (cond up to ~1e9): systems the float32 factor cannot refine are solved in float64,
    so compute_delta's mixed step still equals the dense float64 solve."""
    diag, lower, grad, ref, cond = weighted_chain(weight, seed=4)
    _, unsolved = solve_refined(diag, lower, grad, backend=backend)
    if weight == 1e6:
        assert cond.max() > 1e8 and unsolved.any()  # the fallback is exercised
    ne = NormalEquations(diag.clone(), lower.clone(), grad.clone())
    ne.diag.diagonal(dim1=-2, dim2=-1).sub_(1e-3)  # compute_delta adds the damping itself
    damping = torch.full((3,), 1e-3, dtype=torch.float64)
    delta = compute_delta(ne, damping, backend, precision="mixed")
    ne64 = NormalEquations(ne.diag.clone(), ne.lower.clone(), ne.grad.clone())
    ne64.diag.diagonal(dim1=-2, dim2=-1).sub_(1e-3)  # the mixed call damped ne.diag in place
    delta64 = compute_delta(ne64, damping, backend, precision="float64")
    # as accurate as the float64 solve, whose own error grows with cond (about cond · 1e-16)
    assert ((delta - ref).norm() / ref.norm()).item() < max(1e-10, 1e-15 * cond.max().item())
    assert ((delta - delta64).norm() / delta64.norm()).item() < max(1e-10, 1e-15 * cond.max().item())
    with pytest.raises(ValueError, match="unknown precision"):
        compute_delta(ne, torch.full((3,), 1e-3, dtype=torch.float64), backend, precision="half")


def test_refined_solve_with_an_unformed_gram_term():
    diag, lower, rhs, _ = random_spd_system((2,), 5, 6, seed=3)
    gram = torch.randn(2, 5, 7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    M = block_tridiagonal_to_dense(diag, lower, gram)
    ref = torch.linalg.solve(M, rhs.reshape(2, -1, 1))[..., 0].reshape(rhs.shape)
    before = diag.clone()
    x, unsolved = solve_refined(diag, lower, rhs, gram=gram)
    assert not unsolved.any() and ((x - ref).norm() / ref.norm()).item() < 1e-12
    assert torch.equal(diag, before)  # the blocks are not modified
