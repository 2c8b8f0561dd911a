"""The figure manifest: which notebook makes which file of ``figures/``, read by the Snakefile
(its targets) and by the notebooks (``path`` refuses a name the manifest does not list), so the
two cannot drift apart."""

from __future__ import annotations

import os
from pathlib import Path

from latco.envs.tasks import TASKS


def _both(*stems: str, extra: tuple[str, ...] = ("png", "pdf")) -> tuple[str, ...]:
    return tuple(f"{stem}.{ext}" for stem in stems for ext in extra)


FIGURES: dict[str, tuple[str, ...]] = {
    "00_tasks": _both("tasks"),
    "02_world_model": _both(*(f"world_model_open_loop_{task}" for task in TASKS)),
    "10_plan_optimization": _both("fig1_plan_optimization", "fig5_optimization", "fig7_multipliers")
    + ("fig1_plan_optimization.gif",),
    "11_trajectories": _both("fig3_trajectories", "fig4_push_plans", extra=("png", "pdf", "gif")),
    "12_reward_heatmap": _both("fig8_reward_heatmap"),
    "13_tables": _both("table1_online", "table2_offline", "table3_predicted_vs_achieved", extra=("csv", "md"))
    + _both("online_curves"),
    "14_planning_time": _both("planning_time", extra=("csv", "md", "png", "pdf")) + _both("solver_scaling"),
}
"""Notebook (without ``.ipynb``) -> the files it writes into the figures directory (02 once per task)."""

FIG3_PLANNER = "latco"
"""Fig. 3 shows this planner's offline episodes on every task."""
FIG4_PLANNERS = ("latco", "cem")
"""Fig. 4 compares a Push plan of these planners, decoded, with what was executed."""
FIG4_PLAN = 1
"""Which re-planning of the episode Fig. 4 shows: the second (made at step 20 of Push's 120). At step 0
the arm is at the top right corner of the 32-pixel view (about 40 arm-coloured pixels), which the quick
models decode as a faint smear, so the first plan cannot show a reader the gripper move. The same plan
for every planner and episode, whatever its success."""


def all_files() -> list[str]:
    """Every file of the figures directory, in manifest order."""
    return [name for files in FIGURES.values() for name in files]


def path(fig_dir: str | os.PathLike, name: str) -> Path:
    """``fig_dir / name`` for a file the manifest lists; a ValueError names the listed ones."""
    if name not in all_files():
        raise ValueError(f"{name!r} is not in latco.paper.manifest.FIGURES; add it there (the Snakefile's "
                         f"targets come from it) or use one of: {', '.join(all_files())}")
    return Path(fig_dir) / name


def table_stem(fig_dir: str | os.PathLike, stem: str) -> Path:
    """``fig_dir / stem`` for a table the manifest lists as ``stem.csv`` and ``stem.md``
    (``latco.paper.plotting.save_table`` writes both)."""
    for ext in ("csv", "md"):
        path(fig_dir, f"{stem}.{ext}")
    return Path(fig_dir) / stem
