"""Planners behind one interface: ``make_planner(name, **overrides).plan(model, z0, horizon) -> Plan``.

Importing this package registers every planner; ``available_planners()`` lists their names.
Overrides are checked against the config fields' types (``iterations=2.5`` and ``samples="100"``
are ValueErrors naming option, value and expected type; ints for int fields, bools for bool ones).

The model contract (``LatentModel``; F = ``feature_size``, A = ``action_size``, ints >= 1):
``predict_mean(z (..., F), a (..., A)) -> (..., F)`` and ``reward(z (..., F)) -> (...)`` (one
reward per feature: squeeze a (..., 1) head output), for any leading batch shape; optional
``predict_mean_jacobian(z, a) -> (dz (..., F, F), da (..., F, A))`` (row i = gradient of μ_i) and
``reward_grad(z) -> (..., F)``. Planners plan on the model parameters' device and dtype (z0's for a
plain class without parameters); every output must keep its inputs' dtype and device. Without
``predict_mean_jacobian`` LatCo differentiates ``predict_mean`` with torch.func, so it must be
functional (no in-place ops on inputs, no ``.item()``, no Python control flow on tensor values),
and the first such call in a process costs a torch.func warm-up: 0.9-1.3 s measured on 2 CPU
cores with a 2-feature plain-class model (3.4 s with the cores loaded by other jobs). Every
planner checks the contract on its first plan with a model object (``check_model_contract``, a
few calls on a batch of two; later plans skip it) and raises ``ModelContractError`` (a TypeError)
naming the member, what it returned and what was expected; the optional derivatives are also
compared with central finite differences.

``latco`` runs the paper's settings (App. B); ``latco-fast`` is LatCo with two plans of 24 iterations
and an L-BFGS-B polish of the returned actions on the model return, about a third of the time for
more model reward (beyond the paper; ``LatCoFastConfig``).

``Plan.trace`` keys: each planner's ``plan`` docstring lists them: ``LatCoPlanner.plan``
(``latco``, ``latco-fast``, ``latco-no-relax``), ``LatCoFirstOrderPlanner.plan``, ``CEMPlanner.plan``
(``mppi`` too, with ``weighted_return`` for ``elite_return``), ``ICEMPlanner.plan`` and ``GDPlanner.plan``.
"""

from latco.planners import ablations as _ablations  # noqa: F401  ("latco-no-relax", "latco-first-order")
from latco.planners import cem as _cem  # noqa: F401  (registers "cem")
from latco.planners import gd as _gd  # noqa: F401  (registers "gd")
from latco.planners import icem as _icem  # noqa: F401  (registers "icem")
from latco.planners import latco as _latco  # noqa: F401  (registers "latco", "latco-fast")
from latco.planners import mppi as _mppi  # noqa: F401  (registers "mppi")
from latco.planners.base import (
    LatentModel,
    ModelContractError,
    Plan,
    Planner,
    PlanningError,
    available_planners,
    check_model_contract,
    make_planner,
    planner_config,
)

__all__ = [
    "LatentModel",
    "ModelContractError",
    "Plan",
    "Planner",
    "PlanningError",
    "available_planners",
    "check_model_contract",
    "make_planner",
    "planner_config",
]
