"""The own-model contract (``LatentModel``): checked once per model, broken members named.

Every planner calls ``check_model_contract`` through ``check_plan_inputs``; each bad model below
breaks one rule and must get a ``ModelContractError`` that names the member, what it returned and
what was expected, from every planner, before any optimization. Also: the option types of
``planner_config``.
"""

import weakref
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from latco.model import WorldModelConfig
from latco.paper.benchmark import random_model
from latco.planners import ModelContractError, check_model_contract, make_planner, planner_config
from latco.planners import base as planners_base

BUDGETS = {  # small budgets: a plan takes milliseconds
    "latco": dict(iterations=5),
    "latco-no-relax": dict(iterations=5),
    "latco-first-order": dict(iterations=5),
    "cem": dict(iterations=2, samples=20, elites=4),
    "mppi": dict(iterations=2, samples=20),
    "icem": dict(iterations=2, samples=20, elites=4),
    "gd": dict(iterations=5),
}
PLANNERS = ["latco", "cem", "icem", "gd", "mppi"]


class Good:
    """A correct plain-class model (no torch.nn.Module), nonlinear, with both optional derivatives.

    μ(z, a) = 0.5 z + tanh(W z + U a) (F = 3, A = 2): its Jacobian is far from symmetric, so a
    transposed one differs from it along almost every direction.
    """

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.feature_size, self.action_size = 3, 2
        self.W = torch.randn(3, 3, generator=g)
        self.U = torch.randn(3, 2, generator=g)
        self.goal = torch.tensor([1.0, -1.0, 0.5])

    def _pre(self, z, a):
        return z @ self.W.to(z.dtype).T + a @ self.U.to(z.dtype).T

    def predict_mean(self, z, a):
        return 0.5 * z + torch.tanh(self._pre(z, a))

    def predict_mean_jacobian(self, z, a):
        s = 1 - torch.tanh(self._pre(z, a)) ** 2  # (..., F)
        dz = s[..., :, None] * self.W.to(z.dtype) + 0.5 * torch.eye(3, dtype=z.dtype)
        da = s[..., :, None] * self.U.to(z.dtype)
        return dz, da

    def reward(self, z):
        return -((z - self.goal.to(z.dtype)) ** 2).sum(-1)

    def reward_grad(self, z):
        return -2 * (z - self.goal.to(z.dtype))


class RewardColumn(Good):
    def reward(self, z):
        return super().reward(z)[..., None]  # (..., 1): a reward head's output left unsqueezed


class RewardScalar(Good):
    def reward(self, z):
        return super().reward(z).sum()  # one number for the whole batch


class WrongFeatureSize(Good):
    def predict_mean(self, z, a):
        return torch.cat([super().predict_mean(z, a), z[..., :1]], -1)  # F + 1 features


class WrongDtype(Good):
    def predict_mean(self, z, a):
        return super().predict_mean(z, a).double()  # float64 for float32 inputs


class NoActions(Good):
    def __init__(self) -> None:
        super().__init__()
        self.action_size = 0


class TransposedJacobian(Good):
    def predict_mean_jacobian(self, z, a):
        dz, da = super().predict_mean_jacobian(z, a)
        return dz.mT, da  # ∂μ_j/∂z_i: columns and rows swapped (same shape, F × F)


class ScaledJacobian(Good):
    def predict_mean_jacobian(self, z, a):
        dz, da = super().predict_mean_jacobian(z, a)
        return 2 * dz, da


class WrongActionJacobian(Good):
    def predict_mean_jacobian(self, z, a):
        dz, da = super().predict_mean_jacobian(z, a)
        return dz, 0.5 * da


class JacobianShape(Good):
    def predict_mean_jacobian(self, z, a):
        dz, da = super().predict_mean_jacobian(z, a)
        return dz, da.mT  # (B, A, F) instead of (B, F, A)


class WrongRewardGrad(Good):
    def reward_grad(self, z):
        return 2 * (z - self.goal.to(z.dtype))  # sign flipped


class RewardGradShape(Good):
    def reward_grad(self, z):
        return super().reward_grad(z).sum(-1)  # (B,) instead of (B, F)


class UnbatchedOnly(Good):
    def predict_mean(self, z, a):
        if z.dim() != 2:
            raise RuntimeError("only (N, F) batches")
        return super().predict_mean(z, a)


BAD = {  # model, the pattern its error must match
    "reward (B, 1)": (RewardColumn, r"model\.reward returned shape \(2, 1\) for features of shape "
                                    r"\(2, 3\); expected \(2,\): one reward per feature, with the "
                                    r"trailing dimension squeezed"),
    "reward scalar": (RewardScalar, r"model\.reward returned shape \(\) for features of shape \(2, 3\); "
                                    r"expected \(2,\)"),
    "predict_mean size": (WrongFeatureSize, r"model\.predict_mean returned shape \(2, 4\) for z of shape "
                                            r"\(2, 3\), a of shape \(2, 2\); expected \(2, 3\)"
                                            r".*feature_size=3"),
    "predict_mean dtype": (WrongDtype, r"model\.predict_mean returned dtype torch\.float64 .* inputs of "
                                       r"dtype torch\.float32"),
    "action_size 0": (NoActions, r"model\.action_size is 0 \(int\); expected an int >= 1"),
    "transposed dz": (TransposedJacobian, r"model\.predict_mean_jacobian disagrees with a central finite "
                                          r"difference of predict_mean in z.*not the transpose"),
    "scaled dz": (ScaledJacobian, r"model\.predict_mean_jacobian disagrees .* predict_mean in z"),
    "scaled da": (WrongActionJacobian, r"model\.predict_mean_jacobian disagrees .* predict_mean in a"),
    "da shape": (JacobianShape, r"model\.predict_mean_jacobian returned shape \(2, 2, 3\) "
                                r".*expected \(2, 3, 2\)"),
    "reward_grad value": (WrongRewardGrad, r"model\.reward_grad disagrees .* of reward"),
    "reward_grad shape": (RewardGradShape, r"model\.reward_grad returned shape \(2,\) .*expected \(2, 3\)"),
    "unbatched only": (UnbatchedOnly, r"model\.predict_mean\(z of shape \(3,\), a of shape \(2,\)\) raised "
                                      r"RuntimeError: only \(N, F\) batches"),
}


@pytest.mark.parametrize("planner", PLANNERS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_every_planner_names_the_broken_member(case, planner):
    model_cls, pattern = BAD[case]
    with pytest.raises(ModelContractError, match=pattern):
        make_planner(planner, **BUDGETS[planner]).plan(model_cls(), torch.zeros(3), 4)


@pytest.mark.parametrize("planner", sorted(BUDGETS))
def test_a_correct_plain_class_model_passes_every_planner(planner):
    model = Good()
    plan = make_planner(planner, **BUDGETS[planner]).plan(model, torch.zeros(3), 4)
    assert plan.actions.shape == (4, 2) and torch.isfinite(plan.actions).all()
    assert plan.actions.dtype == torch.float32  # planned in z0's dtype (a plain class has no parameters)


def test_the_error_is_a_type_error_and_exported():
    assert issubclass(ModelContractError, TypeError)
    with pytest.raises(TypeError, match="LatentModel"):
        make_planner("cem", **BUDGETS["cem"]).plan(object(), torch.zeros(3), 4)


def test_a_tiny_rssm_passes_and_its_wrong_jacobians_fail():
    """float32, nonlinear (ELU, GRU): the analytic Jacobian passes; transposed or 10 % off, it fails."""
    model = random_model(WorldModelConfig(action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16,
                                          reward_hidden=16))
    z0 = torch.randn(model.feature_size, generator=torch.Generator().manual_seed(1))
    check_model_contract(model, z0)

    class Wrapped:
        def __init__(self, transform):
            self.feature_size, self.action_size = model.feature_size, model.action_size
            self.predict_mean, self.reward, self.transform = model.predict_mean, model.reward, transform

        def predict_mean_jacobian(self, z, a):
            dz, da = model.predict_mean_jacobian(z, a)
            return self.transform(dz), da

    check_model_contract(Wrapped(lambda dz: dz), z0)
    for transform in (lambda dz: dz.mT, lambda dz: 1.1 * dz):
        with pytest.raises(ModelContractError, match="predict_mean_jacobian disagrees"):
            check_model_contract(Wrapped(transform), z0)


def test_the_check_runs_once_per_model(monkeypatch):
    model, planner = Good(), make_planner("cem", **BUDGETS["cem"])
    planner.plan(model, torch.zeros(3), 4)

    def fail(*args, **kwargs):
        raise AssertionError("checked again")

    monkeypatch.setattr(planners_base, "_check_outputs", fail)
    planner.plan(model, torch.zeros(3), 4)  # remembered: no second check
    make_planner("gd", **BUDGETS["gd"]).plan(model, torch.zeros(3), 4)  # by any planner
    with pytest.raises(AssertionError, match="checked again"):  # a new object is checked
        planner.plan(Good(), torch.zeros(3), 4)
    with pytest.raises(AssertionError, match="checked again"):  # so is another dtype
        planner.plan(model, torch.zeros(3, dtype=torch.float64), 4)


class Slotted:
    """Cannot be weakly referenced (``__slots__`` without ``__weakref__``): remembered by id."""

    __slots__ = ("feature_size", "action_size")

    def __init__(self) -> None:
        self.feature_size, self.action_size = 3, 2

    def predict_mean(self, z, a):
        return 0.9 * z + 0.1 * torch.cat([a, a[..., :1]], -1)

    def reward(self, z):
        return -(z**2).sum(-1)


@dataclass
class Unhashable:
    """A dataclass (eq=True, so unhashable) model: remembered all the same."""

    feature_size: int = 3
    action_size: int = 2

    def predict_mean(self, z, a):
        return z + 0.1 * torch.cat([a, a[..., :1]], -1)

    def reward(self, z):
        return -(z**2).sum(-1)


@pytest.mark.parametrize("model_cls", [Slotted, Unhashable])
def test_models_that_cannot_be_weakly_referenced_or_hashed_are_remembered(model_cls, monkeypatch):
    model = model_cls()
    with pytest.raises(TypeError):  # what the fallbacks are for
        weakref.ref(model) if model_cls is Slotted else hash(model)
    make_planner("cem", **BUDGETS["cem"]).plan(model, torch.zeros(3), 4)
    monkeypatch.setattr(planners_base, "_check_outputs", lambda *a, **k: pytest.fail("checked again"))
    make_planner("cem", **BUDGETS["cem"]).plan(model, torch.zeros(3), 4)


def test_nan_outputs_are_left_to_the_planners():
    """NaN is a PlanningError's business, not the contract's (the shapes are right)."""

    class NaNModel(Good):
        def predict_mean(self, z, a):
            return super().predict_mean(z, a) * float("nan")

    check_model_contract(NaNModel(), torch.zeros(3))


# ------------------------------------------------------------------------------ option types
@pytest.mark.parametrize("planner", sorted(BUDGETS))
def test_int_options_reject_fractions_strings_and_bools(planner):
    for value, type_name in ((2.5, "float"), ("3", "str"), (True, "bool"), (100.0, "float")):
        with pytest.raises(ValueError, match=rf"option iterations={value!r} of planner '{planner}' has type "
                                             rf"{type_name}; expected int"):
            planner_config(planner, iterations=value)
    assert planner_config(planner, iterations=np.int64(3)).iterations == 3
    assert type(planner_config(planner, iterations=np.int64(3)).iterations) is int


@pytest.mark.parametrize("planner", ["cem", "icem", "mppi"])
def test_sample_counts_must_be_ints(planner):
    with pytest.raises(ValueError, match=r"option samples='100' of planner .* has type str; expected int"):
        make_planner(planner, samples="100")


def test_float_bool_optional_and_literal_options():
    config = planner_config("latco", damping=1, eps=np.float32(1e-4))
    assert config.damping == 1.0 and type(config.damping) is float and type(config.eps) is float
    with pytest.raises(ValueError, match=r"option damping='1e-3' of planner 'latco' has type str; "
                                         r"expected float"):
        planner_config("latco", damping="1e-3")
    with pytest.raises(ValueError, match=r"option damping=True .* has type bool; expected float"):
        planner_config("latco", damping=True)
    with pytest.raises(ValueError, match=r"option adaptive_damping=1 .* has type int; expected bool"):
        planner_config("latco", adaptive_damping=1)
    assert planner_config("latco", shift=None).shift is None and planner_config("latco", shift=2).shift == 2
    with pytest.raises(ValueError, match=r"option shift=2.0 .* has type float; expected int or None"):
        planner_config("latco", shift=2.0)
    assert planner_config("mppi", elites=None).elites is None
    with pytest.raises(ValueError, match="unknown constraints 'box'; choose one of: project, tanh, paper"):
        planner_config("latco", constraints="box")
    with pytest.raises(ValueError, match="unknown reward_reference 'max'; choose one of: zero, best"):
        planner_config("latco", reward_reference="max")
    with pytest.raises(ValueError, match="unknown backend 1; choose one of: auto, scipy, torch"):
        planner_config("latco", backend=1)
