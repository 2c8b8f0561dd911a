"""The interface every planner shares: the model it sees, the plan it returns, and a registry.

A planner sees the world model only through ``LatentModel`` (an ``RSSM`` or any plain class with
these members) and returns a ``Plan``. Planners are made by name with ``make_planner``; each one's
hyperparameters are the fields of its config dataclass, overridable by keyword.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


@runtime_checkable
class LatentModel(Protocol):
    """What a planner needs from a world model (paper Fig. 2: μ(z, a) and r(z)): the contract.

    An ``RSSM`` keeps it, and so can any plain class (no ``torch.nn.Module`` needed). With
    F = ``feature_size`` and A = ``action_size`` (ints >= 1) and ``...`` any leading batch shape,
    none included (planners call the members on (F,), (N, F) and (B, H, F) batches):

    - ``predict_mean(z (..., F), a (..., A)) -> (..., F)``: the mean of the next feature;
    - ``reward(z (..., F)) -> (...)``: one reward per feature. A head whose last layer has one
      output must squeeze it: (..., 1) is an error, and so is one scalar for a whole batch.

    Optional extras, used by LatCo when present (else it differentiates with torch):
    ``predict_mean_jacobian(z, a) -> (dz, da)`` with dz (..., F, F) = ∂μ/∂z and
    da (..., F, A) = ∂μ/∂a, row i the gradient of μ_i (dz[..., i, j] = ∂μ_i/∂z_j, not its
    transpose), and ``reward_grad(z) -> (..., F)`` = ∂r/∂z.

    dtype and device: a planner plans on the device and in the float dtype of the model's
    parameters (a ``torch.nn.Module`` with parameters), else on z0's (float32 if z0 is not
    floating), and every output must keep its inputs' dtype and device.

    Without ``predict_mean_jacobian``, LatCo takes ∂μ/∂(z, a) with ``torch.func`` (vmap of jacrev),
    which needs a functional ``predict_mean``: no in-place ops on its inputs, no ``.item()``,
    ``float()`` or numpy round trips, no Python control flow on tensor values (use
    ``torch.where``). The first such call in a process pays torch.func's warm-up (its first
    backward imports ``torch._dynamo``; LatCo says so once in a warning): 0.9-1.3 s
    measured on 2 CPU cores with a 2-feature plain-class model (``latco.analytic.Pendulum``, one
    (30, 2) batch), 3.4 s while other jobs loaded the cores; 1 ms per call afterwards. A first
    default LatCo plan on ``PointMass`` took 1.5 s, the next ones 0.4 s.

    ``check_model_contract`` checks all of this once per model (every planner calls it through
    ``check_plan_inputs``) and raises ``ModelContractError`` naming the member that broke it.
    """

    feature_size: int
    action_size: int

    def predict_mean(self, z: Tensor, a: Tensor) -> Tensor:
        """Mean of the one-step prediction of the next feature: (..., F), (..., A) -> (..., F)."""
        ...

    def reward(self, z: Tensor) -> Tensor:
        """Predicted reward of a feature: (..., F) -> (...)."""
        ...


@dataclass
class Plan:
    """A planned trajectory: ``actions[t]`` leads from ``features[t]`` to ``features[t + 1]``."""

    actions: Tensor
    """(horizon, A) the planned actions."""
    features: Tensor
    """(horizon + 1, F) the planned latent features; ``features[0]`` is z0."""
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    """Optimization curves, one value per iteration (each planner documents its keys)."""


class Planner(Protocol):
    """Anything that turns (model, z0, horizon) into a ``Plan``."""

    def plan(self, model: LatentModel, z0: Tensor, horizon: int) -> Plan: ...


def reseed(planner: Planner, episode_seed: int) -> None:
    """Restart a seeded planner's random stream for one episode.

    The plans of an episode then depend only on (planner seed, episode seed), not on how many
    plans the planner made before: a resumed or re-run evaluation, or one episode evaluated on
    its own, repeats them exactly. Planners without a ``generator`` or with ``seed=None`` are
    left alone.
    """
    generator = getattr(planner, "generator", None)
    seed = getattr(getattr(planner, "config", None), "seed", None)
    if isinstance(generator, torch.Generator) and seed is not None:
        generator.manual_seed((seed * 1_000_003 + episode_seed) % 2**63)


# ------------------------------------------------------------------------------------ registry
_REGISTRY: dict[str, tuple[type, Callable[[Any], Planner]]] = {}


def register_planner(name: str, config_cls: type) -> Callable[[Callable[[Any], Planner]], Callable]:
    """Class/function decorator: ``make_planner(name, **overrides)`` builds it from ``config_cls``."""

    def wrap(factory: Callable[[Any], Planner]) -> Callable[[Any], Planner]:
        if name in _REGISTRY:
            raise ValueError(f"planner {name!r} is already registered")
        _REGISTRY[name] = (config_cls, factory)
        return factory

    return wrap


def available_planners() -> list[str]:
    """Names accepted by ``make_planner``."""
    return sorted(_REGISTRY)


def planner_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of planner ``name`` with ``overrides`` applied (validated).

    Each override is checked against its field's annotation (``check_option_type``) before the
    config's own range checks, so ``iterations=2.5`` or ``samples="100"`` fail here, by name.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown planner {name!r}; choose one of: {', '.join(available_planners())}")
    config_cls, _ = _REGISTRY[name]
    valid = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for planner {name!r}; "
                         f"valid options: {', '.join(valid)}")
    hints = typing.get_type_hints(config_cls)
    checked = {key: check_option_type(key, value, hints[key], name) for key, value in overrides.items()}
    return config_cls(**checked)


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    """The values a ``Literal`` (or a union holding one, e.g. ``Literal[...] | None``) admits."""
    if typing.get_origin(annotation) is Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_literal_choices(a) for a in typing.get_args(annotation)]
        if any(p is not None for p in parts):
            return tuple(v for a, p in zip(typing.get_args(annotation), parts, strict=True)
                         for v in (p if p is not None else (None,) if a is type(None) else ()))
    return None


def _option_value(value: Any, annotation: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``annotation``, the value converted to it); unknown types fit as is."""
    is_bool = isinstance(value, bool | np.bool_)
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return is_bool, bool(value) if is_bool else value
    if annotation is int:  # no bools, no floats (not even integral ones: 100.0 is rejected)
        ok = isinstance(value, int | np.integer) and not is_bool
        return ok, int(value) if ok else value
    if annotation is float:  # ints and floats (numpy's too), stored as float
        ok = isinstance(value, numbers.Real) and not is_bool
        return ok, float(value) if ok else value
    if annotation is str:
        return isinstance(value, str), str(value) if isinstance(value, str) else value
    if typing.get_origin(annotation) is Literal:
        for choice in typing.get_args(annotation):
            same_kind = isinstance(value, str) if isinstance(choice, str) else type(value) is type(choice)
            if same_kind and value == choice:
                return True, choice
        return False, value
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        for arg in args:
            ok, converted = _option_value(value, arg)
            if ok:
                return True, converted
        known = all(a in (type(None), bool, int, float, str) or typing.get_origin(a) is Literal for a in args)
        return not known, value
    return True, value  # other annotations are left to the config's own checks


def _describe_type(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in typing.get_args(annotation))
    return str(annotation)


def check_option_type(option: str, value: Any, annotation: Any, planner: str = "") -> Any:
    """``value`` checked against the config field's ``annotation`` and converted to it.

    int fields take ints (and numpy integers), not bools, floats or strings: ``iterations=2.5``
    and also the integral ``iterations=100.0`` are rejected rather than silently truncated.
    float fields take ints and floats (stored as float), not bools or strings; bool fields only
    bools; ``X | None`` also None; ``Literal`` fields only their listed values. Other annotations
    are left to the config's own checks. Raises ValueError naming option, value, type and the
    expected type.
    """
    ok, converted = _option_value(value, annotation)
    if ok:
        return converted
    where = f" of planner {planner!r}" if planner else ""
    choices = _literal_choices(annotation)
    if choices is not None:
        raise ValueError(f"unknown {option} {value!r}; choose one of: {', '.join(map(str, choices))} "
                         f"(option {option}{where} got a {type(value).__name__})")
    raise ValueError(f"option {option}={value!r}{where} has type {type(value).__name__}; "
                     f"expected {_describe_type(annotation)}")


def make_planner(name: str, **overrides: Any) -> Planner:
    """The planner called ``name`` with its config's defaults replaced by ``overrides``.

    >>> make_planner("latco", iterations=50)
    """
    config = planner_config(name, **overrides)
    return _REGISTRY[name][1](config)


# ---------------------------------------------------------------------------- input checking
def model_device_dtype(model: LatentModel, z0: Tensor) -> tuple[torch.device, torch.dtype]:
    """Where and in which float type to plan: the model's parameters if it has any, else z0's."""
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return p.device, p.dtype
    dtype = z0.dtype if z0.is_floating_point() else torch.get_default_dtype()
    return z0.device, dtype


def check_plan_inputs(model: LatentModel, z0: Tensor, horizon: int) -> Tensor:
    """Validate (model, z0, horizon) for ``Planner.plan`` and return z0 (F,) on the model's device/dtype.

    The model is checked against the ``LatentModel`` contract on its first plan
    (``check_model_contract``; cheap afterwards), so every planner gets the same named errors.
    """
    _check_members(model)
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
    if not isinstance(z0, Tensor):
        z0 = torch.as_tensor(z0)
    F = model.feature_size
    if tuple(z0.shape) != (F,):
        raise ValueError(f"z0 must be one feature vector of shape ({F},) (the filtered posterior "
                         f"feature of the current observation), got shape {tuple(z0.shape)}")
    device, dtype = model_device_dtype(model, z0)
    z0 = z0.detach().to(device=device, dtype=dtype)
    if not torch.isfinite(z0).all():
        raise ValueError("z0 contains NaN or Inf; check the observation and the model's encoder")
    check_model_contract(model, z0)
    return z0


# ------------------------------------------------------------------------------ model contract
class ModelContractError(TypeError):
    """The model breaks the ``LatentModel`` contract: a member is missing, or returned the wrong
    type, shape, dtype, device or (for the optional derivatives) value. The message names the
    member, what it returned and what was expected. Raised before planning starts."""


_CHECKED: dict[int, tuple[weakref.ref | None, type, set[tuple[str, str]]]] = {}
"""id(model) -> (weak reference to it, or None if it cannot be weakly referenced; its type; the
(device, dtype) pairs it passed ``check_model_contract`` on)."""

FD_RTOL = 0.02
"""Relative tolerance of the finite-difference check of the optional derivatives
(``check_model_contract``)."""


def _checked_pairs(model: object) -> set[tuple[str, str]] | None:
    entry = _CHECKED.get(id(model))
    if entry is None:
        return None
    ref, kind, pairs = entry
    if (ref is not None and ref() is not model) or kind is not type(model):  # a dead object's id, reused
        return None
    return pairs


def _remember_checked(model: object, key: tuple[str, str]) -> None:
    pairs = _checked_pairs(model)
    if pairs is not None:
        pairs.add(key)
        return
    ident = id(model)
    try:  # forget the entry when the model is collected, so a new object with its id is checked
        ref = weakref.ref(model, lambda _, ident=ident: _CHECKED.pop(ident, None))
    except TypeError:  # e.g. __slots__ without __weakref__: remembered by id alone
        ref = None
    _CHECKED[ident] = (ref, type(model), {key})


def _is_size(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_) and value >= 1


def _check_members(model: object) -> None:
    for attr in ("feature_size", "action_size", "predict_mean", "reward"):
        if not hasattr(model, attr):
            raise ModelContractError(f"model lacks {attr!r}: a planner needs a LatentModel "
                                     "(feature_size, action_size, predict_mean(z, a), reward(z))")
    for attr in ("feature_size", "action_size"):
        value = getattr(model, attr)
        if not _is_size(value):
            raise ModelContractError(f"model.{attr} is {value!r} ({type(value).__name__}); expected an int "
                                     f">= 1 (the size of the {attr.split('_')[0]} vector)")
    for attr in ("predict_mean", "reward", "predict_mean_jacobian", "reward_grad"):
        if hasattr(model, attr) and not callable(getattr(model, attr)):
            raise ModelContractError(f"model.{attr} is not callable")


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def _call(member: str, args: str, fn: Callable, *inputs: Tensor) -> Any:
    """``fn(*inputs)``; an exception from the model is re-raised naming the member and the shapes."""
    try:
        return fn(*inputs)
    except Exception as error:
        raise ModelContractError(f"model.{member}({args}) raised {type(error).__name__}: {error}") from error


def _expect(member: str, out: object, shape: tuple[int, ...], like: Tensor, given: str,
            meaning: str) -> Tensor:
    """``out`` must be a floating Tensor of ``shape`` with ``like``'s dtype and device."""
    if not isinstance(out, Tensor):
        raise ModelContractError(f"model.{member} returned a {type(out).__name__} for {given}; "
                                 f"expected a torch.Tensor of shape {shape}: {meaning}")
    if _shape(out) != shape:
        raise ModelContractError(f"model.{member} returned shape {_shape(out)} for {given}; "
                                 f"expected {shape}: {meaning}")
    if out.dtype != like.dtype or out.device != like.device:
        raise ModelContractError(
            f"model.{member} returned dtype {out.dtype} on {out.device} for inputs of dtype {like.dtype} "
            f"on {like.device}; expected the inputs' dtype and device (the planners plan on the model "
            "parameters' device and dtype, or z0's for a plain class)")
    return out


def _agrees(fd: Tensor, analytic: Tensor, noise: Tensor) -> bool:
    """A central difference ``fd`` matches ``analytic`` within FD_RTOL plus the rounding ``noise``."""
    err = float((fd - analytic).double().norm())
    scale = max(float(fd.double().norm()), float(analytic.double().norm()))
    return err <= FD_RTOL * scale + float(noise)


def _directional_check(member: str, what: str, f: Callable[[Tensor], Tensor], x: Tensor, u: Tensor,
                       analytic: Tensor, hint: str) -> None:
    """Compare ``analytic`` = (derivative of f at x) · u with central differences of f along u.

    f maps a batch (n, d) of points to (n, m). Two steps, h and h/8 with h = eps^(1/3)·max(1, |x|∞)
    (the float type's optimal step for a central difference); agreement at either passes (the
    smaller one for models with kinks or steep curvature near x). Skipped if anything is non-finite.
    """
    eps = torch.finfo(x.dtype).eps
    h0 = eps ** (1 / 3) * max(1.0, float(x.abs().max()))
    hs = (h0, h0 / 8)
    points = torch.stack([x + s * h * u for h in hs for s in (1, -1)])
    values = f(points)
    if not (torch.isfinite(values).all() and torch.isfinite(analytic).all()):
        return  # NaN handling is the planners' business (PlanningError), not the contract's
    values = values.double()
    shown = []
    for i, h in enumerate(hs):
        plus, minus = values[2 * i], values[2 * i + 1]
        fd = (plus - minus) / (2 * h)
        # rounding of the outputs, amplified by 1/h: 16 ulps of their size (measured on float32 RSSMs,
        # paper-sized and tiny, 20 seeds each: the differences are within 5e-4 of the Jacobian)
        noise = 16 * eps * (plus.norm() + minus.norm()) / (2 * h)
        if _agrees(fd, analytic.double(), noise):
            return
        shown.append(fd)
    fd, analytic = shown[0], analytic.double()
    relative = float((fd - analytic).norm()) / max(float(fd.norm()), float(analytic.norm()), 1e-30)
    raise ModelContractError(
        f"model.{member} disagrees with a central finite difference of {what}: along a random unit "
        f"direction it gives the derivative {_fmt(analytic)}, the finite difference {_fmt(fd)} "
        f"(relative difference {relative:.2g}, allowed {FD_RTOL:g} plus rounding); {hint}")


def _fmt(x: Tensor) -> str:
    values = x.double().flatten().tolist()
    shown = ", ".join(f"{v:.4g}" for v in values[:4])
    return f"[{shown}{', …' if len(values) > 4 else ''}]"


def check_model_contract(model: LatentModel, z0: Tensor) -> None:
    """Check ``model`` against the ``LatentModel`` contract, once per model object and dtype/device.

    With a batch of two copies of z0 (F,) and small fixed actions, on the planning device/dtype:
    ``feature_size``/``action_size`` are ints >= 1; ``predict_mean`` maps (2, F), (2, A) to (2, F)
    and keeps dtype and device, as on (F,) and (1, 2, ·) inputs; ``reward`` maps (2, F) to (2,)
    (also (F,) to () and (1, 2, F) to (1, 2)); if offered, ``predict_mean_jacobian`` returns
    (dz (2, F, F), da (2, F, A)) and ``reward_grad`` (2, F), each agreeing with a central finite
    difference of ``predict_mean``/``reward`` along one random direction (in z, and in a) within
    2 % (``FD_RTOL``) plus rounding, which passes float32 RSSMs and fails a transposed or scaled
    Jacobian. A model that passed is remembered (weakly; by id if it cannot be weakly referenced)
    and not checked again. NaN outputs pass: the planners report those (``PlanningError``).
    Raises ``ModelContractError``. Costs a few model calls on tiny batches (3-17 ms measured on a
    tiny and a paper-sized random RSSM).
    """
    _check_members(model)
    if not isinstance(z0, Tensor):
        z0 = torch.as_tensor(z0)
    device, dtype = model_device_dtype(model, z0)
    key = (str(device), str(dtype))
    pairs = _checked_pairs(model)
    if pairs is not None and key in pairs:
        return
    F, A = int(model.feature_size), int(model.action_size)
    if _shape(z0) != (F,):
        raise ValueError(f"z0 must be one feature vector of shape ({F},), got shape {_shape(z0)}")
    g = torch.Generator().manual_seed(12345)  # fixed and local: the global random stream is untouched
    like = dict(device=device, dtype=dtype)
    z = z0.detach().to(**like).expand(2, F).clone()
    a = (torch.rand(2, A, generator=g, dtype=torch.float64) - 0.5).to(**like)  # in [-0.5, 0.5)
    u_z = torch.randn(F, generator=g, dtype=torch.float64)
    u_a = torch.randn(A, generator=g, dtype=torch.float64)
    u_z, u_a = (u / u.norm() for u in (u_z, u_a))
    u_z, u_a = u_z.to(**like), u_a.to(**like)
    with torch.no_grad():
        _check_outputs(model, z, a, F, A, u_z, u_a)
    _remember_checked(model, key)


def _check_outputs(model: LatentModel, z: Tensor, a: Tensor, F: int, A: int, u_z: Tensor,
                   u_a: Tensor) -> None:
    """The shape/dtype/device checks and, for the optional derivatives, the value checks."""
    B = z.shape[0]
    za = f"z of shape {_shape(z)}, a of shape {_shape(a)}"
    nxt = f"the next feature, one per (z, a) pair, of size feature_size={F}"
    one = "one reward per feature, with the trailing dimension squeezed"
    _expect("predict_mean", _call("predict_mean", za, model.predict_mean, z, a), (B, F), z, za, nxt)
    feats = f"features of shape {_shape(z)}"
    _expect("reward", _call("reward", feats, model.reward, z), (B,), z, feats, one)
    # the other batch shapes planners use: a single (F,) feature, and (1, B, F) batches
    for zs, as_ in ((z[0], a[0]), (z[None], a[None])):
        given = f"z of shape {_shape(zs)}, a of shape {_shape(as_)}"
        _expect("predict_mean", _call("predict_mean", given, model.predict_mean, zs, as_),
                _shape(zs), zs, given, nxt + " (any leading batch shape)")
        given = f"features of shape {_shape(zs)}"
        _expect("reward", _call("reward", given, model.reward, zs), _shape(zs)[:-1], zs, given,
                one + " (any leading batch shape)")
    if hasattr(model, "predict_mean_jacobian"):
        out = _call("predict_mean_jacobian", za, model.predict_mean_jacobian, z, a)
        if not (isinstance(out, tuple | list) and len(out) == 2):
            raise ModelContractError(f"model.predict_mean_jacobian returned a {type(out).__name__} for {za}; "
                                     "expected a pair (dz (B, F, F), da (B, F, A))")
        dz = _expect("predict_mean_jacobian", out[0], (B, F, F), z, f"{za} (dz)",
                     f"dz = ∂μ/∂z, (B, F, F) with F={F}")
        da = _expect("predict_mean_jacobian", out[1], (B, F, A), z, f"{za} (da)",
                     f"da = ∂μ/∂a, (B, F, A) with F={F}, A={A}")
        z0, a0 = z[0], a[0]
        hint = "check its formula and its layout: row i is the gradient of μ_i, dz[..., i, j] = ∂μ_i/∂z_j " \
               "(not the transpose), da[..., i, k] = ∂μ_i/∂a_k"
        _directional_check("predict_mean_jacobian", "predict_mean in z (its dz)",
                           lambda p: model.predict_mean(p, a0.expand(p.shape[0], A)), z0, u_z,
                           dz[0] @ u_z, hint)
        _directional_check("predict_mean_jacobian", "predict_mean in a (its da)",
                           lambda p: model.predict_mean(z0.expand(p.shape[0], F), p), a0, u_a,
                           da[0] @ u_a, hint)
    if hasattr(model, "reward_grad"):
        feats = f"features of shape {_shape(z)}"
        grad = _expect("reward_grad", _call("reward_grad", feats, model.reward_grad, z), (B, F), z, feats,
                       "∂r/∂z, one gradient per feature")
        _directional_check("reward_grad", "reward", lambda p: model.reward(p)[:, None], z[0], u_z,
                           (grad[0] @ u_z)[None], "check its formula: reward_grad(z)[..., j] = ∂r/∂z_j")


class PlanningError(RuntimeError):
    """The optimizer could not produce a usable plan (e.g. the model returned NaN/Inf throughout)."""
