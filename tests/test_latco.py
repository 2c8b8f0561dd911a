"""The LatCo planner, against independent references: dense autograd Jacobians, scipy optima."""

import math
import warnings

import numpy as np
import pytest
import scipy.optimize
import torch

from latco.analytic import LinearModel, PointMass
from latco.model import RSSM, WorldModelConfig
from latco.planners import Plan, PlanningError, available_planners, make_planner, planner_config
from latco.planners.latco import LatCoConfig, LatCoPlanner, Multipliers
from latco.solver import add_gram, block_tridiagonal_to_dense, chain_normal_equations


class NoJacobianLinear:
    """The same linear model without an analytic Jacobian (exercises the torch.func fallback)."""

    def __init__(self, model: LinearModel) -> None:
        self.m = model
        self.feature_size, self.action_size = model.feature_size, model.action_size

    def predict_mean(self, z, a):
        return self.m.predict_mean(z, a)

    def reward(self, z):
        return self.m.reward(z)


class TanhModel:
    """A small nonlinear model (no analytic Jacobian) for checking the assembled normal equations."""

    feature_size, action_size = 5, 3

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(3)
        self.W = torch.randn(5, 5, generator=g, dtype=torch.float64) / 2
        self.U = torch.randn(5, 3, generator=g, dtype=torch.float64)
        self.v = torch.randn(5, generator=g, dtype=torch.float64)

    def predict_mean(self, z, a):
        return torch.tanh(z @ self.W.T + a @ self.U.T) + 0.5 * z

    def reward(self, z):
        return torch.sin(z @ self.v) - 0.1 * (z**2).sum(-1)


def rollout_cost(model, z0, actions):
    """Σ_t softplus(−r(z_{t+1}))² along the model's own rollout: LatCo's objective once feasible."""
    z, cost = z0, 0.0
    for a in actions:
        z = model.predict_mean(z, a)
        cost += 0.5 * float(torch.nn.functional.softplus(-model.reward(z))) ** 2
    return cost


def step_errors(model, plan: Plan) -> torch.Tensor:
    """‖z_{t+1} − μ(z_t, a_t)‖ per step of the returned (clipped) plan."""
    return (plan.features[1:] - model.predict_mean(plan.features[:-1], plan.actions)).norm(dim=-1)


# ------------------------------------------------------------------ normal equations and LM step
def test_structured_normal_equations_equal_dense_autograd_ones():
    """The structured JᵀJ/Jᵀρ (identity, diagonal, rank-one blocks) equals the generic products of
    Jacobian blocks that autograd takes of the full weighted residual vector."""
    model = TanhModel()
    B, H, F, A = 2, 5, 5, 3
    planner = LatCoPlanner(LatCoConfig(action_max=0.5, constraints="paper"))  # the hinge residual too
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(F, generator=g, dtype=torch.float64)
    x = torch.randn(B, H, A + F, generator=g, dtype=torch.float64)
    duals = Multipliers(B, H, 1.0, 1.0)
    duals.lam = torch.rand(B, H, generator=g, dtype=torch.float64) * 5 + 0.1
    duals.nu = torch.rand(B, H, generator=g, dtype=torch.float64) * 5 + 0.1
    lin = planner.linearize(model, z0, x, duals)
    ne = lin.normal_equations()
    diag, lower, grad = add_gram(ne.diag, ne.gram), ne.lower, ne.grad
    wd, wa, wr = duals.weights()

    def residuals(xb, b):  # independent re-implementation of the three residuals, flattened
        a, z = xb[:, :A], xb[:, A:]
        zp = torch.cat([z0[None], z[:-1]])
        dyn = wd[b, :, None] * (z - model.predict_mean(zp, a))
        act = wa[b, :, None] * torch.clamp(a.abs() - 0.5, min=0)
        rew = wr[b] * torch.nn.functional.softplus(-model.reward(z))[:, None]
        return torch.cat([dyn, act, rew], -1)

    for b in range(B):
        r = residuals(x[b], b)
        J = torch.func.jacrev(residuals)(x[b], b)  # (H, m, H, d)
        jc = torch.stack([J[t, :, t] for t in range(H)])
        jp = torch.stack([J[t, :, t - 1] if t else torch.zeros_like(J[0, :, 0]) for t in range(H)])
        d_ref, l_ref, g_ref = chain_normal_equations(r, jc, jp)
        assert torch.allclose(diag[b], d_ref, atol=1e-10)
        assert torch.allclose(lower[b], l_ref, atol=1e-10)
        assert torch.allclose(grad[b], g_ref, atol=1e-10)
        assert torch.allclose(lin.residuals()[b], r, atol=1e-12)
        Jd = J.reshape(H * r.shape[-1], H * (A + F))
        assert torch.allclose(block_tridiagonal_to_dense(diag[b], lower[b]), Jd.T @ Jd, atol=1e-10)


def test_autograd_jacobian_fallback_gives_the_same_plan():
    model = LinearModel()
    kw = dict(iterations=30, seed=4)
    analytic = make_planner("latco", **kw).plan(model, torch.zeros(4), 8)
    fallback = make_planner("latco", **kw).plan(NoJacobianLinear(model), torch.zeros(4), 8)
    forced = make_planner("latco", jacobian="autograd", **kw).plan(model, torch.zeros(4), 8)
    for other in (fallback, forced):
        assert torch.allclose(analytic.actions, other.actions, atol=1e-4)
        assert torch.allclose(analytic.features, other.features, atol=1e-4)
    with pytest.raises(ValueError, match="no predict_mean_jacobian"):
        make_planner("latco", jacobian="analytic").plan(NoJacobianLinear(model), torch.zeros(4), 3)


# ------------------------------------------------------------------------ optimality vs scipy
def scipy_reference(model: LinearModel, z0: np.ndarray, H: int, a_max: float):
    """The constrained optimum by shooting on the true dynamics (convex): L-BFGS-B with box bounds."""
    Am, Bm, goal = model.A.double(), model.B.double(), model.goal.double()

    def residual(av):  # softplus(−r(z_{t+1})) along the rollout, in float64
        z, out = torch.as_tensor(z0, dtype=torch.float64), []
        for a in av.reshape(H, -1):
            z = Am @ z + Bm @ a
            out.append(torch.nn.functional.softplus(((z - goal) ** 2).sum()))
        return torch.stack(out)

    def cost_and_grad(v):
        v = torch.from_numpy(v).requires_grad_(True)
        cost = 0.5 * residual(v).pow(2).sum()
        return cost.item(), torch.autograd.grad(cost, v)[0].numpy()

    ref = scipy.optimize.minimize(cost_and_grad, np.zeros(H * model.action_size), jac=True, method="L-BFGS-B",
                                  bounds=[(-a_max, a_max)] * (H * model.action_size),
                                  options=dict(ftol=1e-15, gtol=1e-10, maxiter=10_000))
    assert ref.success, ref.message
    return ref.fun, ref.x.reshape(H, -1)


@pytest.mark.parametrize("seed", [1, 2])
def test_linear_model_plan_matches_scipy_optimum(seed):
    model = LinearModel(seed=seed)
    H, a_max = 10, 1.0
    ref_cost, ref_actions = scipy_reference(model, np.zeros(4), H, a_max)
    assert np.isclose(np.abs(ref_actions).max(), a_max)  # the bound is active at the optimum
    plan = make_planner("latco").plan(model, torch.zeros(4), H)
    assert plan.actions.shape == (H, 2) and plan.features.shape == (H + 1, 4)
    assert torch.equal(plan.features[0], torch.zeros(4))
    # dynamics: the mean squared violation settles at about eps = 1e-5 (the §5 rule's fixed point)
    assert plan.trace["dynamics_violation"][-1] <= 1e-3
    assert plan.trace["dynamics_violation"][-1] <= 3e-5  # oscillates about the fixed point
    assert step_errors(model, plan).max() <= 1e-2
    # action bound: returned actions inside the box, raw violation of the plan small
    assert plan.actions.abs().max() <= a_max
    assert plan.trace["action_violation"][-1] <= 1e-4
    # objective of the executed actions on the true dynamics within 1 % of the optimum (measured:
    # 0.02-0.06 %; the plan's own latents may score below the optimum by using the eps slack)
    cost = rollout_cost(model, torch.zeros(4), plan.actions)
    assert ref_cost <= cost * (1 + 1e-6) and cost <= 1.01 * ref_cost


def test_tighter_eps_satisfies_dynamics_to_1e_3():
    """eps sets the final violation: at 1e-7 every step's ‖z_{t+1} − μ(z_t, a_t)‖ is below 1e-3."""
    model = LinearModel()
    plan = make_planner("latco", eps=1e-7).plan(model, torch.zeros(4), 10)
    assert step_errors(model, plan).max() <= 1e-3
    ref_cost, _ = scipy_reference(model, np.zeros(4), 10, 1.0)
    assert rollout_cost(model, torch.zeros(4), plan.actions) <= 1.03 * ref_cost


def test_trace_shows_dynamics_relaxed_first_then_enforced():
    """Paper Fig. 5: the plan first jumps toward the goal (high violation, high predicted reward),
    then the growing multipliers make it feasible."""
    model = PointMass()
    plan = make_planner("latco", record_every=50).plan(model, torch.zeros(2), 30)
    tr = plan.trace
    assert set(tr) >= {"dynamics_violation", "predicted_reward", "action_violation", "lam", "nu"}
    assert all(len(tr[k]) == 200 for k in ("dynamics_violation", "predicted_reward", "lam", "nu"))
    dyn, rew = tr["dynamics_violation"], tr["predicted_reward"]
    assert dyn[:20].max() >= 1000 * dyn[-1] and dyn[-1] <= 2e-5
    assert rew[:20].max() >= rew[-1] + 0.2  # reward found by violating dynamics is given back
    assert tr["lam"][-1] >= 100 * tr["lam"][0]  # multipliers grew as the constraint was enforced
    assert (plan.features[-1] - model.goal).norm() <= 0.1  # ... and the feasible plan reaches the goal
    assert step_errors(model, plan).max() <= 2e-2
    # snapshots for Fig. 1/6
    assert list(tr["snapshot_iteration"]) == [0, 50, 100, 150, 200]
    assert tr["snapshot_features"].shape == (5, 31, 2) and tr["snapshot_actions"].shape == (5, 30, 2)
    np.testing.assert_allclose(tr["snapshot_features"][-1], plan.features.numpy())


# ---------------------------------------------------------------------------- batches, seeds
def test_n_plans_returns_the_best_by_model_reward():
    model = PointMass(goal=(1.0, 1.0))
    plan = make_planner("latco", n_plans=3, iterations=60, seed=1).plan(model, torch.zeros(2), 15)
    rewards = plan.trace["plan_rewards"]
    assert rewards.shape == (3,)
    z, total = torch.zeros(2), 0.0
    for a in plan.actions:
        z = model.predict_mean(z, a)
        total += float(model.reward(z))
    assert total == pytest.approx(rewards.max(), rel=1e-5)
    single = make_planner("latco", n_plans=1, iterations=60, seed=1).plan(model, torch.zeros(2), 15)
    assert single.trace["plan_rewards"][0] <= rewards.max() + 1e-9


def test_seeded_planner_is_deterministic_and_advances():
    model = LinearModel()
    p1 = make_planner("latco", iterations=5, seed=7)
    p2 = make_planner("latco", iterations=5, seed=7)
    a, b = p1.plan(model, torch.zeros(4), 6), p2.plan(model, torch.zeros(4), 6)
    assert torch.equal(a.actions, b.actions)
    assert not torch.equal(p1.plan(model, torch.zeros(4), 6).actions, a.actions)  # fresh init per call


def test_horizon_one_and_zero_iterations():
    model = LinearModel()
    plan = make_planner("latco", iterations=20).plan(model, torch.zeros(4), 1)
    assert plan.actions.shape == (1, 2) and plan.features.shape == (2, 4)
    plan0 = make_planner("latco", iterations=0).plan(model, torch.zeros(4), 3)
    assert plan0.actions.shape == (3, 2) and len(plan0.trace["lam"]) == 0


# ------------------------------------------------------------------------------- RSSM, float32
def test_plans_with_a_tiny_rssm_in_float32():
    torch.manual_seed(0)
    model = RSSM(WorldModelConfig(action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16,
                                  reward_hidden=16))
    z0 = torch.randn(model.feature_size)
    plan = make_planner("latco", iterations=100).plan(model, z0, 12)
    assert plan.actions.dtype == torch.float32 and plan.features.dtype == torch.float32
    assert torch.isfinite(plan.actions).all() and plan.actions.abs().max() <= 1
    assert plan.trace["dynamics_violation"][-1] <= 1e-4
    assert plan.trace["dynamics_violation"][:10].max() > 10 * plan.trace["dynamics_violation"][-1]
    # analytic Jacobian (model.predict_mean_jacobian) and torch.func agree on the first steps
    a = make_planner("latco", iterations=3).plan(model, z0, 5)
    b = make_planner("latco", iterations=3, jacobian="autograd").plan(model, z0, 5)
    assert torch.allclose(a.features, b.features, atol=1e-4)


# -------------------------------------------------------------------------- non-finite values
class NaNBeyond(PointMass):
    """Point mass whose model returns NaN once x > 1.2: a reward pulling to x = 2 must not win."""

    def predict_mean(self, z, a):
        out = super().predict_mean(z, a)
        return torch.where((z[..., :1] > 1.2) | (out[..., :1] > 1.2), torch.full_like(out, math.nan), out)

    def reward(self, z):
        r = super().reward(z)
        return torch.where(z[..., 0] > 1.2, torch.full_like(r, math.nan), r)


def test_non_finite_steps_are_rejected_and_damped():
    model = NaNBeyond()
    plan = make_planner("latco", iterations=60, init_std=0.3).plan(model, torch.zeros(2), 20)
    assert torch.isfinite(plan.actions).all() and torch.isfinite(plan.features).all()
    assert plan.trace["rejected_steps"] > 0
    assert plan.trace["damping"].max() > 1e-3


def test_all_nan_model_raises_instead_of_zero_actions():
    class AllNaN(PointMass):
        def predict_mean(self, z, a):
            return z * math.nan

    with pytest.raises(PlanningError, match="non-finite|NaN"):
        make_planner("latco", iterations=5).plan(AllNaN(), torch.zeros(2), 4)


def test_nan_in_some_plans_drops_them_with_a_warning():
    class NaNForFirstPlan(PointMass):
        calls = 0

        def predict_mean(self, z, a):
            out = super().predict_mean(z, a)
            if out.dim() == 3:  # the (n_plans, H, F) batch of the optimizer: poison plan 0
                out = out.clone()
                out[0] = math.nan
            return out

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = make_planner("latco", n_plans=2, iterations=5).plan(NaNForFirstPlan(), torch.zeros(2), 4)
    assert torch.isfinite(plan.actions).all()
    assert any("dropped" in str(w.message) for w in caught)


# ------------------------------------------------------------------------------ API and inputs
def test_registry_and_config_validation():
    assert "latco" in available_planners()
    assert planner_config("latco", iterations=50).iterations == 50
    assert make_planner("latco", iterations=50).config.iterations == 50
    with pytest.raises(ValueError, match="unknown planner 'latko'; choose one of: .*latco"):
        make_planner("latko")
    with pytest.raises(ValueError, match="unknown option.*'iters'.*valid options: iterations"):
        make_planner("latco", iters=3)
    with pytest.raises(ValueError, match="invalid LatCo option.*damping"):
        make_planner("latco", damping=-1.0)
    for name in ("iterations", "damping", "lam_init", "nu_init", "eps", "eta", "n_plans"):
        assert LatCoConfig.__dataclass_fields__[name].default is not None


def test_input_validation():
    planner, model = make_planner("latco", iterations=2), LinearModel()
    with pytest.raises(ValueError, match=r"z0 must be one feature vector of shape \(4,\)"):
        planner.plan(model, torch.zeros(1, 4), 5)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        planner.plan(model, torch.zeros(4), 0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        planner.plan(model, torch.tensor([0.0, math.nan, 0.0, 0.0]), 5)
    with pytest.raises(TypeError, match="LatentModel"):
        planner.plan(object(), torch.zeros(4), 5)


def test_solver_backends_and_threads_agree():
    """torch.linalg (the GPU path) and LAPACK give the same plan; LAPACK threads change nothing."""
    model = LinearModel()
    kw = dict(iterations=25, seed=3)
    ref = make_planner("latco", **kw).plan(model, torch.zeros(4), 9)
    one_thread = make_planner("latco", solver_threads=1, **kw).plan(model, torch.zeros(4), 9)
    assert torch.equal(ref.actions, one_thread.actions) and torch.equal(ref.features, one_thread.features)
    torch_backend = make_planner("latco", backend="torch", **kw).plan(model, torch.zeros(4), 9)
    assert torch.allclose(ref.features, torch_backend.features, atol=1e-4)
