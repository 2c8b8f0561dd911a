"""Analyses beyond the paper's tables, on finished results: planners crossed with online runs'
models, and which way round Obstacle's wall the offline episodes went."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from latco.agent import evaluate
from latco.paper.online import ONLINE_EVAL_SEED
from latco.paper.profiles import Profile, make_profile_planner
from latco.train import load_model


def cross_evaluation(
    task: str,
    models: Mapping[str, str | os.PathLike],
    planners: Sequence[str],
    profile: Profile,
    episodes: int,
    device: str | None = None,
    planner_overrides: Mapping[str, Mapping[str, object]] | None = None,
    seed: int = ONLINE_EVAL_SEED,
) -> pd.DataFrame:
    """Every planner on every given model, from the same start states as the online evaluations
    (or, with ``seed=OFFLINE_EVAL_SEED``, as the offline ones).

    ``models`` maps a label (e.g. the planner whose online run trained the model) to a model
    directory. Online runs confound the planner with the data it collected; planning on each
    other's models separates the two: a planner that does worse on a model another planner
    solves has an optimizer problem, not a data problem. One row per (model, planner), with
    success rate, return, the model's predicted reward of the executed plans and s / plan.
    """
    rows = []
    for label, model_dir in models.items():
        model = load_model(model_dir, device=device)
        for planner in planners:
            agent = make_profile_planner(profile, planner, **(planner_overrides or {}).get(planner, {}))
            table = evaluate(model, agent, task, episodes, seed=seed, progress=False)
            rows.append({"model": label, "planner": planner, "episodes": len(table),
                         "success": table["success"].mean(), "return": table["return"].mean(),
                         "predicted": table["predicted_reward"].mean(),
                         "final distance": table["final_distance"].mean(),
                         "s / plan": table["plan_seconds"].mean()})
    return pd.DataFrame(rows)


def obstacle_passages(results: str | os.PathLike, planners: Sequence[str]) -> pd.DataFrame:
    """Which way round the wall did each planner's offline Obstacle episodes go, and did they get there?

    One row per planner with episode counts per ``envs.obstacle.wall_passage`` outcome
    (``above``, ``below``, ``blocked``: pressed against the wall), how many of each succeeded,
    and the mean lowest agent y of the blocked episodes (the wall ends at y = −0.45; an agent of
    radius 0.1 needs its centre below −0.55 to pass below it). Reads the saved
    episodes of ``offline_evaluation`` (``latco.paper.results.MissingResult`` if one is unfinished).
    """
    from latco.envs.obstacle import wall_passage
    from latco.paper import results as readers

    table = []
    for planner in planners:
        evaluation = readers.offline(results, "obstacle", planner)
        rows = evaluation.table.to_dict("records")
        counts: dict[str, list[int]] = {"above": [0, 0], "below": [0, 0], "blocked": [0, 0]}
        lowest = []
        for index, row in enumerate(rows):
            agent = evaluation.episode(index).state["agent"]
            side = wall_passage(agent)
            counts[side][0] += 1
            counts[side][1] += bool(row["success"])
            if side == "blocked":
                lowest.append(agent[:, 1].min())
        entry: dict[str, object] = {"planner": planner, "episodes": len(rows),
                                    "success": sum(r["success"] for r in rows) / len(rows)}
        for side, (n, solved) in counts.items():
            entry[side] = f"{n} ({solved} solved)"
        entry["lowest y (blocked)"] = float(np.mean(lowest)) if lowest else float("nan")
        table.append(entry)
    return pd.DataFrame(table)
