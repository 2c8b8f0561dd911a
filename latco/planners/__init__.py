"""Planners behind one interface: ``make_planner(name, **overrides).plan(model, z0, horizon) -> Plan``.

Importing this package registers every planner; ``available_planners()`` lists their names.
"""

from latco.planners import latco as _latco  # noqa: F401  (registers "latco")
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
