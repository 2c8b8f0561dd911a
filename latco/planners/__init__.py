"""Planners behind one interface: ``make_planner(name, **overrides).plan(model, z0, horizon) -> Plan``.

Importing this package registers every planner; ``available_planners()`` lists their names.
"""

from latco.planners import ablations as _ablations  # noqa: F401  ("latco-no-relax", "latco-first-order")
from latco.planners import cem as _cem  # noqa: F401  (registers "cem")
from latco.planners import gd as _gd  # noqa: F401  (registers "gd")
from latco.planners import icem as _icem  # noqa: F401  (registers "icem")
from latco.planners import latco as _latco  # noqa: F401  (registers "latco")
from latco.planners import mppi as _mppi  # noqa: F401  (registers "mppi")
from latco.planners.base import (
    LatentModel,
    Plan,
    Planner,
    PlanningError,
    available_planners,
    make_planner,
    planner_config,
)

__all__ = [
    "LatentModel",
    "Plan",
    "Planner",
    "PlanningError",
    "available_planners",
    "make_planner",
    "planner_config",
]
