"""How offline data size (and the model's training recipe) changes planning on a trained model.

One *run* = offline data of a given size -> a world model at the profile's fixed training budget
-> the reward head's quality (held-out success AUC, calibration on imagined windows) -> offline
evaluation of each planner from the same start states (success, Table 3's achieved − predicted
gap). Every stage resumes from its directory, and a larger collection of a task contains every
smaller one as a prefix (episode i has seed ``seed + i`` whatever the total), so the sizes of a
scaling curve share their data. ``studies/data_scaling.py`` drives it; the figure is
``figures/data_scaling.png``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from latco import envs
from latco.agent import evaluate
from latco.paper import diagnostics, offline, recipe
from latco.paper.profiles import DataConfig, Profile, make_profile_planner
from latco.paper.results import MODEL_DONE
from latco.train import CHECKPOINT, METRICS


def data_recipe(profile: Profile, task: str, steps: int) -> DataConfig:
    """The profile's data mix for ``task`` (noisy oracle : random : greedy) scaled to ``steps`` env steps."""
    return profile.data_for(task).scaled_to(steps, envs.task_spec(task).t_tot)


def run_name(steps: int, balance: float, reward_scale: float = 1.0, train_steps: int | None = None) -> str:
    """Directory name of one run: ``steps060000_balance0.5``, with ``_reward10`` if the reward is
    weighted and ``_train09000`` if the model trains other than the profile's number of steps."""
    return (f"steps{steps:06d}_balance{balance:g}" + (f"_reward{reward_scale:g}" if reward_scale != 1 else "")
            + (f"_train{train_steps:05d}" if train_steps is not None else ""))


def _trained_steps(model_dir: Path) -> int | None:
    """The steps a finished model directory trained (its ``MODEL_DONE`` marker), else None."""
    marker = model_dir / MODEL_DONE
    return json.loads(marker.read_text())["steps"] if marker.exists() else None


def _start_from_shorter_run(task_dir: Path, base: str, default_steps: int, train_steps: int,
                            model_dir: Path) -> int:
    """Seed ``model_dir`` with the finished checkpoint of the same run trained fewer steps, if any.

    ``base`` is the run's name without ``_train``; the run without it trained ``default_steps``.
    Training resumes a checkpoint exactly as if it had never stopped (``tests/test_train.py``), so
    a 9000-step run started from the 6000-step run's checkpoint ends with the parameters of one
    uninterrupted 9000-step run, and a training-steps curve costs only its longest run.
    Returns the step it starts from (0: from scratch).
    """
    if (model_dir / CHECKPOINT).exists():
        return 0
    shorter = [(default_steps, task_dir / base / "model")]
    for folder in task_dir.glob(f"{base}_train*"):
        shorter.append((int(folder.name.rsplit("_train", 1)[1]), folder / "model"))
    done = [(n, d) for n, d in shorter if n < train_steps and _trained_steps(d) == n]
    if not done:
        return 0
    start, source = max(done)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT, METRICS):  # not MODEL_DONE: this run is not finished until it trains
        shutil.copy2(source / name, model_dir / name)
    return start


def scaling_run(
    task: str,
    profile: Profile,
    steps: int,
    root: str | os.PathLike,
    planners: Sequence[str] = ("latco", "cem", "gd"),
    starts: int = 20,
    balance: float | None = None,
    workers: int = 1,
    seed: int = 0,
    reward_scale: float | None = None,
    train_steps: int | None = None,
) -> pd.DataFrame:
    """One run of ``task`` on ``steps`` offline steps under ``root/<task>/``; one row per planner.

    ``balance``, ``reward_scale`` and ``train_steps`` (gradient steps) override the profile's
    ``TrainConfig``; a longer run starts from a shorter one's checkpoint (``_start_from_shorter_run``).
    Columns: task, steps, balance, reward_scale, train_steps, planner, starts, success, predicted,
    achieved, gap (achieved − predicted, mean over starts), success_auc, imagined_precision,
    imagined_recall, imagined_gap. Also written to the run's ``summary.csv``.
    """
    train = profile.train_for(task)
    balance = train.balance if balance is None else balance
    reward_scale = train.reward_scale if reward_scale is None else reward_scale
    if train_steps == train.steps:
        train_steps = None  # the profile's own budget: the run without a ``_train`` suffix
    prof = replace(profile, task_data={**profile.task_data, task: data_recipe(profile, task, steps)},
                   task_train_steps={**profile.task_train_steps, task: train_steps or train.steps},
                   train=replace(train, balance=balance, reward_scale=reward_scale))
    task_dir = Path(root) / task
    run_dir = task_dir / run_name(steps, balance, reward_scale, train_steps)
    episodes = recipe.oracle_data(task, prof, task_dir / "data", seed, workers=workers)
    if train_steps is not None:
        _start_from_shorter_run(task_dir, run_name(steps, balance, reward_scale), train.steps,
                                train_steps, run_dir / "model")
    model = offline.world_model_for_task(task, prof, episodes["train"], run_dir / "model", seed=seed)
    quality = diagnostics.reward_quality(model, episodes["heldout"])
    imagined = diagnostics.imagined_reward_calibration(model, episodes["heldout"])
    (run_dir / "diagnostics.json").write_text(json.dumps({**quality, **imagined}, indent=1))
    rows = []
    for planner in planners:
        table = evaluate(model, make_profile_planner(prof, planner), task, starts,
                         seed=offline.OFFLINE_EVAL_SEED, out_dir=run_dir / f"offline_{planner}")
        rows.append({
            "task": task, "steps": sum(len(e) for e in episodes["train"]), "balance": balance,
            "reward_scale": reward_scale, "train_steps": prof.train_for(task).steps,
            "planner": planner, "starts": len(table), "success": table["success"].mean(),
            "predicted": table["predicted_reward"].mean(), "achieved": table["achieved_reward"].mean(),
            "gap": (table["achieved_reward"] - table["predicted_reward"]).mean(),
            "success_auc": quality["success_auc"], "imagined_precision": imagined["precision"],
            "imagined_recall": imagined["recall"], "imagined_gap": imagined["gap"],
        })
    out = pd.DataFrame(rows)
    out.to_csv(run_dir / "summary.csv", index=False)
    return out


def collect_summaries(root: str | os.PathLike) -> pd.DataFrame:
    """Every finished run's ``summary.csv`` under ``root``, one table."""
    paths = sorted(Path(root).glob("*/*/summary.csv"))
    if not paths:
        raise FileNotFoundError(f"no finished scaling run under {root}; run studies/data_scaling.py")
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    # runs written before reward_scale was an option trained with the ELBO's weight 1
    # runs written before reward_scale and train_steps were options trained with the ELBO's weight
    # 1 and an unrecorded number of steps
    ones = pd.Series(1.0, index=table.index)
    return table.assign(reward_scale=table.get("reward_scale", ones).fillna(1.0),
                        train_steps=table.get("train_steps", ones * float("nan")))


def scaling_figure(table: pd.DataFrame, x: str = "steps"):
    """Success rate and achieved − predicted gap against ``x`` (``steps``: offline env steps, or
    ``train_steps``: the model's gradient steps), a line per planner and setting, a column per
    task (Fig. ``data_scaling``); runs with ``balance`` > 0 dashed."""
    import matplotlib.pyplot as plt

    if x not in ("steps", "train_steps"):
        raise ValueError(f"x must be 'steps' or 'train_steps', got {x!r}")
    other = "train_steps" if x == "steps" else "steps"
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 5.4), squeeze=False)
    colors = dict(zip(dict.fromkeys(table["planner"]), plt.rcParams["axes.prop_cycle"].by_key()["color"],
                      strict=False))
    markers = dict(zip(sorted(set(table[other].dropna())), "o^vDP*", strict=False))
    for col, task in enumerate(tasks):
        groups = table[table["task"] == task].groupby(["planner", "balance", "reward_scale", other],
                                                            dropna=False)
        for (planner, balance, scale, fixed), rows in groups:
            rows = rows.sort_values(x)
            label = planner + "".join([f", balance {balance:g}" if balance > 0 else "",
                                       f", reward x{scale:g}" if scale != 1 else "",
                                       f", {fixed:g} {'gradient' if x == 'steps' else 'env'} steps"
                                       if table[other].nunique() > 1 else ""])
            style = dict(color=colors[planner], marker="o" if scale == 1 else "s",
                         ls="--" if balance > 0 else "-", label=label)
            if table[other].nunique() > 1:
                style["marker"] = markers.get(fixed, "x")
            axes[0, col].plot(rows[x], rows["success"], **style)
            axes[1, col].plot(rows[x], rows["gap"], **style)
        axes[0, col].set_title(task)
        axes[0, col].set_ylim(-0.05, 1.05)
        axes[1, col].axhline(0, color="k", lw=0.5)
        axes[1, col].set_xlabel("offline env steps" if x == "steps" else "world-model gradient steps")
        for ax in axes[:, col]:
            ax.set_xscale("log")
    axes[0, 0].set_ylabel("offline success rate")
    axes[1, 0].set_ylabel("achieved − predicted reward")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig
