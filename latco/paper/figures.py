"""The paper's figures as functions of loaded results: notebooks load, call these and save.

Fig. 1/6 ``plan_optimization``, Fig. 3 ``trajectories``, Fig. 4 ``planned_vs_executed``,
Fig. 5 ``optimization_curves``, Fig. 7 ``multipliers``, Fig. 8 ``reward_heatmap``; beside
Table 1, ``online_curves`` (success over online training, one line per planner).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from latco.data import Episode
from latco.model import RSSM
from latco.paper.plotting import image_strip


def decode(model: RSSM, features: np.ndarray | torch.Tensor) -> np.ndarray:
    """Images (..., S, S, 3) uint8 the model's decoder draws for features (..., F)."""
    with torch.no_grad():
        images = model.decode_images(torch.as_tensor(np.asarray(features), dtype=torch.float32))
    return np.asarray(images)


def plan_optimization(model: RSSM, snapshot_features: np.ndarray, snapshot_iteration: np.ndarray,
                      steps: Sequence[int], title: str = "") -> Figure:
    """Fig. 1/6: the plan's latent states decoded to images (columns: time steps) after each
    recorded optimization iteration (rows). These are LatCo's *planned latents* (its decision
    variables), not the rollout of its actions: early on they violate the dynamics by design."""
    rows = len(snapshot_iteration)
    fig = Figure(figsize=(1.25 * len(steps) + 0.8, 1.3 * rows + 0.4))
    axes = fig.subplots(rows, len(steps), squeeze=False)
    for r, (k, features) in enumerate(zip(snapshot_iteration, snapshot_features, strict=True)):
        images = decode(model, features[list(steps)])
        image_strip(images, [f"t={t}" for t in steps] if r == 0 else None, axes=axes[r])
        axes[r, 0].set_ylabel(f"iter {int(k)}", fontsize=8)
    fig.suptitle(f"{title}\n(decoded: the planned latents, not a rollout of the actions)" if title
                 else "decoded: the planned latents, not a rollout of the actions", fontsize=10)
    fig.tight_layout()
    return fig


def optimization_curves(trace: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Fig. 5: mean squared dynamics violation (log) and mean predicted reward per iteration."""
    fig = Figure(figsize=(7.5, 3.0), layout="constrained")  # keeps the y labels clear of the title
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))  # and a strip at the bottom for the stamp
    left, right = fig.subplots(1, 2)
    iters = np.arange(1, len(trace["dynamics_violation"]) + 1)
    left.semilogy(iters, trace["dynamics_violation"], color="C3")
    left.set_ylabel("dynamics violation ‖z' − μ(z, a)‖²")
    right.plot(iters, trace["predicted_reward"], color="C0")
    right.set_ylabel("predicted reward\n(mean over the plan)")
    for ax in (left, right):
        ax.set_xlabel("optimization iteration")
        ax.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return fig


def online_curves(runs: Mapping[tuple[str, str, int], pd.DataFrame], title: str = "") -> Figure:
    """Success rate against planner episodes collected, one panel per task and one colour per
    planner: each seed's run as a thin faint line, the mean over seeds bold.

    ``runs`` maps (task, planner, seed) to ``latco.paper.online.online_evaluations`` tables; tasks keep
    the order of ``latco.envs.TASKS``.
    """
    from latco.envs import TASKS

    present = {task for task, _, _ in runs}
    tasks = [t for t in TASKS if t in present] + sorted(present - set(TASKS))
    fig = Figure(figsize=(3.6 * max(len(tasks), 1) + 0.6, 3))
    axes = np.atleast_1d(fig.subplots(1, max(len(tasks), 1), squeeze=False)[0])
    for ax, task in zip(axes, tasks, strict=False):
        planners = dict.fromkeys(p for t, p, _ in runs if t == task)  # keep the given order
        for i, planner in enumerate(planners):
            evals = [e for (t, p, _), e in runs.items() if t == task and p == planner and len(e)]
            if not evals:
                continue
            for e in evals:
                ax.plot(e["episodes_collected"], e["success"], color=f"C{i}", alpha=0.3, linewidth=0.8)
            mean = pd.concat(evals).groupby("episodes_collected")["success"].mean()
            # a marker, dash and size per planner, so equal curves (e.g. two at 0) stay visible
            ax.plot(mean.index, mean.values, marker="os^Dv"[i % 5], linestyle=["-", "--", ":"][i % 3],
                    markersize=max(9 - 2 * i, 3), color=f"C{i}", linewidth=2,
                    label=f"{planner} ({len(evals)} seed{'s' if len(evals) > 1 else ''})")
        ax.set_title(task, fontsize=10)
        # from episode 0 on, even for runs evaluated only at their end (``OnlineConfig.eval_at_start``)
        last = max([float(e["episodes_collected"].max()) for (t, _, _), e in runs.items()
                    if t == task and len(e)] + [1.0])
        ax.set_xlim(-0.05 * last, 1.05 * last)
        ax.set_xlabel("planner episodes collected")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("success rate (evaluation)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def multipliers(trace: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Fig. 7: the Lagrange multipliers λ (dynamics) and ν (action bound) over the optimization."""
    fig = Figure(figsize=(4.5, 3))
    ax = fig.subplots()
    iters = np.arange(1, len(trace["lam"]) + 1)
    ax.semilogy(iters, trace["lam"], label="λ (dynamics), mean over t")
    ax.semilogy(iters, trace["nu"], label="ν (action bound), mean over t")
    ax.set_xlabel("optimization iteration")
    ax.set_ylabel("multiplier")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def trajectories(episodes: Mapping[str, Episode], columns: int = 6, title: str = "") -> Figure:
    """Fig. 3: executed episodes, one row per task, ``columns`` frames evenly from start to end."""
    fig = Figure(figsize=(1.7 * columns + 0.4, 1.85 * len(episodes)))
    axes = fig.subplots(len(episodes), columns, squeeze=False)
    for r, (task, e) in enumerate(episodes.items()):
        steps = np.linspace(0, len(e), columns).round().astype(int)
        titles = [f"t={t}" + (" (success)" if t > 0 and e.success[t - 1] else "") for t in steps]
        image_strip(e.images[steps], titles, axes=axes[r])
        axes[r, 0].set_ylabel(task, fontsize=10)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def planned_vs_executed(model: RSSM, runs: Mapping[str, tuple[np.ndarray, Episode | np.ndarray]],
                        steps: Sequence[int], title: str = "") -> Figure:
    """Fig. 4: per planner, a plan's ``Plan.features`` decoded (top) above the frames the agent then
    saw (bottom; an ``Episode`` that starts with the plan, or its frames from the plan's step,
    ``Evaluation.plan_and_frames``), at the same time ``steps``. For LatCo these are its planned
    latents (feasible to the tolerance, ``trace['feasibility_gap']``); for shooting planners, the
    model's rollout of their actions: the row labels say which."""
    fig = Figure(figsize=(1.3 * len(steps) + 1.2, 2.7 * len(runs)))
    axes = fig.subplots(2 * len(runs), len(steps), squeeze=False)
    for r, (label, (features, episode)) in enumerate(runs.items()):
        planned = decode(model, features[[min(t, len(features) - 1) for t in steps]])
        image_strip(planned, [f"t={t}" for t in steps], axes=axes[2 * r])
        frames = getattr(episode, "images", episode)
        image_strip(frames[[min(t, len(frames) - 1) for t in steps]], axes=axes[2 * r + 1])
        kind = "planned latents" if label.lower().startswith("latco") else "rollout of plan"
        axes[2 * r, 0].set_ylabel(f"{label}\n{kind}", fontsize=8)
        axes[2 * r + 1, 0].set_ylabel(f"{label}\nexecuted", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def reward_heatmap(xs: np.ndarray, ys: np.ndarray, predicted: np.ndarray, true: np.ndarray | None,
                   goal: np.ndarray, title: str = "") -> Figure:
    """Fig. 8: the reward predictor over puck positions (x, y) on the table, goal marked.

    ``predicted`` and ``true`` are (len(ys), len(xs)); ``true`` (the environment's reward) is
    drawn beside it when given.
    """
    panels = [("learned reward predictor", predicted)] + ([("true reward", true)] if true is not None else [])
    fig = Figure(figsize=(4 * len(panels), 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    extent = (xs[0], xs[-1], ys[0], ys[-1])
    for ax, (label, values) in zip(axes, panels, strict=True):
        image = ax.imshow(values, origin="lower", extent=extent, cmap="viridis", aspect="auto")
        ax.plot(goal[0], goal[1], marker="*", color="red", markersize=12, label="goal")
        ax.set_xlabel("puck x (m)")
        ax.set_ylabel("puck y (m)")
        ax.set_title(label, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
